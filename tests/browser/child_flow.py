"""The child's page at the moment of danger, in a real headless Chromium, at four sizes.

For each size (390x844 and 320x640 phones, 1280x720 and 1440x900 desktops) a child
starts a chat, waits, chats (50 messages, a counsellor answering over the HTTP API),
opens the dialogs, opens the on-screen keyboard (the viewport's height reduced),
scrolls up while a message arrives, and sees the chat end. In every state the quick
exit and the emergency numbers must be inside the viewport and not covered (the
element at the button's centre is the button), the newest message must be above the
message box, nothing may scroll sideways, and axe-core (a pinned local copy) must
find no serious or critical violation. The quick exit is then used for real: one
tap with the end-chat dialog open, and Escape twice with the numbers dialog open.

Run as a plain script (Playwright's sync API does not run under the suite's eventlet
monkey patching). Prints one JSON object with the steps, the first failure, the
screenshots, the facts and the axe results.

    python tests/browser/child_flow.py '{"url": ..., "counsellor": [user, password],
                                         "out": "results/screenshots", "axe": "path/to/axe.min.js"}'
"""

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow import EXIT_HOST, IN_SIGHT, run_script, viewport_options  # noqa: E402

# (label, viewport, phone?, height with the on-screen keyboard open)
SIZES = [
    ("390x844", {"width": 390, "height": 844}, True, 470),
    ("320x640", {"width": 320, "height": 640}, True, 360),
    ("1280x720", {"width": 1280, "height": 720}, False, 420),
    ("1440x900", {"width": 1440, "height": 900}, False, 520),
]

# The newest message: inside the list's visible part, above the message box, reachable.
NEWEST_IN_SIGHT = """
() => {
  const items = [...document.querySelectorAll('#log > li')];
  const last = items[items.length - 1];
  if (!last) return {ok: false, why: 'no message'};
  const r = last.getBoundingClientRect();
  const list = document.getElementById('scroller').getBoundingClientRect();
  const composer = document.getElementById('composer');
  const floor = composer.hidden ? window.innerHeight : composer.getBoundingClientRect().top;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height / 2, 12));
  const reached = Boolean(hit) && (hit === last || last.contains(hit));
  const ok = r.top >= list.top - 0.5 && r.bottom <= list.bottom + 0.5 && r.bottom <= floor + 0.5 && reached;
  return {ok, text: last.innerText.slice(0, 80), bottom: Math.round(r.bottom), floor: Math.round(floor),
          list: [Math.round(list.top), Math.round(list.bottom)], reached, count: items.length};
}
"""

NO_SIDEWAYS = """
() => ({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
        vw: document.documentElement.clientWidth, x: window.scrollX})
"""

# The quick exit's label is whole: one line, nothing cut off.
LABEL_FITS = """
() => {
  const b = document.getElementById('quick-exit');
  const label = b.querySelector('[data-i18n=exit]');
  const lr = label.getBoundingClientRect();
  const lineHeight = parseFloat(getComputedStyle(label).lineHeight) || 24;
  return {text: b.innerText.trim(), fits: b.scrollWidth <= b.clientWidth + 1 && lr.height <= lineHeight * 1.3,
          width: Math.round(b.getBoundingClientRect().width)};
}
"""


class Counsellor:
    """The demo counsellor over the HTTP API (what the console would do)."""

    def __init__(self, url, username, password):
        self.url = url
        self.http = requests.Session()
        answer = self.http.post(
            f"{url}/api/v1/auth/login", json={"username": username, "password": password}, timeout=15
        )
        assert answer.status_code == 200, answer.text
        self.http.headers["Authorization"] = f"Bearer {answer.json()['token']}"

    def call(self, method, path, body=None):
        return self.http.request(method, self.url + path, json=body, timeout=15)

    def presence(self, status):
        # opt_in: the flow's own chats may trip the cool-down after acute
        # danger; a counsellor who says they are ready may take chats again.
        answer = self.call("PUT", "/api/v1/presence", {"status": status, "capacity": 10, "opt_in": True})
        assert answer.status_code == 200, answer.text

    def take(self, chat_id):
        self.presence("available")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = self.call("POST", "/api/v1/queue/take", {"chat_id": chat_id})
            if answer.status_code == 200:
                return
            # Offered assignment (when on) may have offered it to us already.
            if self.call("POST", f"/api/v1/queue/offers/{chat_id}/accept").status_code == 200:
                return
            if self.call("GET", f"/api/v1/chats/{chat_id}").json().get("status") == "active":
                return
            time.sleep(0.3)
        raise AssertionError(f"could not take {chat_id}: {answer.status_code} {answer.text}")

    def say(self, chat_id, text):
        answer = self.call("POST", f"/api/v1/chats/{chat_id}/messages", {"text": text})
        assert answer.status_code == 201, answer.text

    def end(self, chat_id):
        answer = self.call("POST", f"/api/v1/chats/{chat_id}/end", {"reason": "counsellor"})
        assert answer.status_code == 200, answer.text

    def chat(self, chat_id):
        return self.call("GET", f"/api/v1/chats/{chat_id}").json()


def child_page(run, browser, label, viewport, phone=True):
    """The child's page in a context of its own, opened at the start."""
    ctx, page = run.open(browser, label, **viewport_options(viewport, phone))
    # The socket passes through as it is; a test may push a frame of its own to
    # the page (page.chatvakt_push) as if the gateway had sent it.
    routes = []

    def through(ws):
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket("**/ws", through)
    page.chatvakt_push = lambda event, data: routes[-1].send(
        json.dumps({"type": "event", "event": event, "data": data})
    )
    page.goto(f"{run.url}/")
    return ctx, page


def all_states(run, browser):
    counsellor = Counsellor(run.url, *run.config["counsellor"])
    counsellor.presence("away")
    # A waiting chat is nobody's yet: the supervisor reads it (a counsellor sees only their own).
    counsellor.reader = Counsellor(run.url, *run.config["supervisor"])
    try:
        for label, viewport, phone, keyboard_h in SIZES:
            states(run, browser, counsellor, label, viewport, phone, keyboard_h)
        quick_exit_with_dialog(run, browser, counsellor)
        escape_twice(run, browser, counsellor)
        send_after_a_silent_end(run, browser, counsellor)
    finally:
        try:
            counsellor.presence("offline")
        except Exception:  # noqa: BLE001 - best effort, the result says what failed
            pass


def check_exit_and_numbers(run, page, where, size):
    """The quick exit and the emergency numbers: in the viewport, not covered, whole label."""
    for selector in ("#quick-exit", "#show-emergency"):
        found = page.locator(selector).evaluate(IN_SIGHT)
        assert found["ok"], f"{selector} not in sight/reachable in {where} at {size}: {found}"
    wide = page.evaluate(NO_SIDEWAYS)
    assert wide["doc"] <= wide["vw"] and wide["body"] <= wide["vw"] and wide["x"] == 0, (
        f"sideways scroll in {where} at {size}: {wide}"
    )
    label = page.evaluate(LABEL_FITS)
    assert label["fits"] and label["text"].endswith("Avslutt raskt"), f"exit label in {where} at {size}: {label}"


def check_newest(page, where, size):
    deadline = time.monotonic() + 5
    while True:
        found = page.evaluate(NEWEST_IN_SIGHT)
        if found["ok"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found["ok"], f"the newest message is not in sight in {where} at {size}: {found}"
    return found


def state_done(run, page, state, size, axe=True):
    check_exit_and_numbers(run, page, state, size)
    run.shot(page, f"child-{state}-{size}")
    if axe:
        run.axe(page, f"{state}-{size}")
    run.step(f"{state} at {size}")


def visible_count(page, text):
    """How many visible leaf elements show this exact number."""
    return page.evaluate(
        """(text) => [...document.querySelectorAll('body *')].filter(el => {
        if (el.children.length && ![...el.children].every(c => c.tagName === 'SMALL')) return false;
        const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
        if (own !== text) return false;
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight
          && !el.closest('[hidden], .visually-hidden');
      }).length""",
        text,
    )


def start_chat(page, first_message):
    page.get_by_label("Vil du skrive noe allerede nå? (valgfritt)").fill(first_message)
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#queue-text")).to_contain_text("køen")
    expect(page.locator("#log .msg.child")).to_contain_text(first_message)
    return json.loads(page.evaluate("sessionStorage.getItem('chatvakt-chat')"))


def states(run, browser, counsellor, size, viewport, phone, keyboard_h):
    ctx, page = child_page(run, browser, f"child-{size}", viewport, phone)

    # -- start
    expect(page.get_by_role("heading", name="Chat med en voksen")).to_be_visible()
    state_done(run, page, "start", size)

    # -- waiting: calm words, the numbers once, the child's first message, name and 116 111
    first = "Hei. Jeg har det ikke så bra hjemme."
    saved = start_chat(page, first)
    chat_id, token = saved["chat_id"], saved["token"]
    waiting = page.locator("#waiting").inner_text()
    for jargon in ("chatvert", "kapasitet", "tilgjengelig", "Forventet ventetid"):
        assert jargon.lower() not in waiting.lower(), f"staff words in the waiting text: {jargon!r}: {waiting}"
    assert visible_count(page, "112") == 1, "the emergency numbers are not shown exactly once while waiting"
    newest = check_newest(page, "waiting", size)
    assert first in newest["text"], f"the child's first message is not the newest in sight: {newest}"
    for selector in (".brand-name", ".brand-number"):
        found = page.locator(selector).evaluate(IN_SIGHT)
        assert found["inside"], f"{selector} not visible while waiting at {size}: {found}"
    expect(page.locator(".brand-number")).to_have_attribute("href", "tel:116111")
    run.result["facts"][f"waiting_text_{size}"] = waiting
    state_done(run, page, "waiting", size)

    # -- the emergency numbers dialog open (while waiting)
    page.get_by_role("button", name="Nødnumre").click()
    expect(page.locator("#emergency")).to_be_visible()
    expect(page.locator("#emergency")).to_contain_text("116 117")
    state_done(run, page, "dialog-emergency", size)
    page.locator("#emergency").get_by_role("button", name="Lukk").click()
    expect(page.locator("#emergency")).to_be_hidden()

    # -- a longer wait: the child writes on; the place in the queue stays in sight
    for n in range(6):
        page.locator("#text").fill(f"Er det noen der? {n}")
        page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#log .msg.child").last).to_contain_text("Er det noen der? 5")
    page.locator("#text").blur()
    check_newest(page, "waiting-long", size)
    found = page.locator("#queue-text").evaluate(IN_SIGHT)
    run.result["facts"][f"queue_line_{size}"] = found
    assert found["ok"], f"the place in the queue is not in sight after a longer wait at {size}: {found}"
    state_done(run, page, "waiting-long", size)

    # -- an active chat of 50 messages
    counsellor.take(chat_id)
    expect(page.locator("#counsellor-line")).to_be_visible()
    # A place in the queue computed before the take can reach the page after it
    # (queue changes and assignments come on separate queues): the child who is
    # talking must not be told "you are next in the queue" again.
    page.chatvakt_push("queue.position", {"chat_id": chat_id, "position": 1, "estimated_wait_s": None, "notice": None})
    page.wait_for_timeout(800)
    expect(page.locator("#waiting")).to_be_hidden()
    expect(page.locator("#counsellor-line")).to_be_visible()
    child_api = requests.Session()
    child_api.headers["Authorization"] = f"Bearer {token}"
    # The child answers the first 16: with the 7 above, 23 of a child's 30 messages
    # a minute (burst 30), however fast this machine runs the flow.
    for n in range(1, 29):
        counsellor.say(chat_id, f"Melding {n} fra den voksne. Hvordan har du det nå?")
        if n > 16:
            continue
        answer = child_api.post(
            f"{run.url}/api/v1/chats/{chat_id}/messages", json={"text": f"Svar {n} fra meg."}, timeout=15
        )
        assert answer.status_code == 201, answer.text
    counsellor.say(chat_id, "Er du i fare akkurat nå?")
    expect(page.locator("#log .msg.counsellor").last).to_contain_text("Er du i fare akkurat nå?")
    count = page.locator("#log > li").count()
    assert count >= 50, f"only {count} messages in the log"
    newest = check_newest(page, "chat50", size)
    assert "Er du i fare akkurat nå?" in newest["text"], newest
    run.result["facts"][f"messages_{size}"] = count
    state_done(run, page, "chat50", size)

    # -- the end-chat dialog open
    page.get_by_role("button", name="Avslutt chatten").click()
    expect(page.locator("#confirm-end")).to_be_visible()
    state_done(run, page, "dialog-end", size)
    page.locator("#confirm-end").get_by_role("button", name="Nei, fortsett").click()
    expect(page.locator("#confirm-end")).to_be_hidden()

    # -- the on-screen keyboard open: the viewport's height shrinks; type a message
    page.set_viewport_size({"width": viewport["width"], "height": keyboard_h})
    page.locator("#text").focus()
    page.locator("#text").fill("jeg skriver nå")
    counsellor.say(chat_id, "Jeg er her. Skriv når du vil.")
    expect(page.locator("#log .msg.counsellor").last).to_contain_text("Jeg er her.")
    newest = check_newest(page, "keyboard", size)
    assert "Jeg er her." in newest["text"], newest
    found = page.locator("#text").evaluate(IN_SIGHT)
    assert found["inside"], f"the message box is not in sight with the keyboard open: {found}"
    state_done(run, page, "keyboard", size)
    page.locator("#text").fill("")
    page.set_viewport_size(viewport)
    # The keyboard closed: the page takes the full height again (the visual viewport's resize).
    page.wait_for_function(
        "(h) => getComputedStyle(document.documentElement).getPropertyValue('--app-h') === h + 'px'",
        arg=viewport["height"],
    )
    page.wait_for_timeout(200)
    check_newest(page, "keyboard closed", size)

    # -- scrolled up, a new message arrives: a button, not a jump
    page.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    page.wait_for_timeout(150)
    counsellor.say(chat_id, "Er du der fortsatt?")
    expect(page.locator("#new-below")).to_be_visible()
    expect(page.locator("#new-below")).to_contain_text("Ny melding")
    top = page.locator("#scroller").evaluate("el => el.scrollTop")
    assert top < 50, f"the list jumped down ({top}px) although the child had scrolled up"
    found = page.locator("#new-below").evaluate(IN_SIGHT)
    assert found["ok"], f"the new-message button is not reachable: {found}"
    state_done(run, page, "scrolled-new", size)
    page.locator("#new-below").click()
    newest = check_newest(page, "after new-message button", size)
    assert "Er du der fortsatt?" in newest["text"], newest
    expect(page.locator("#new-below")).to_be_hidden()
    run.step(f"new-message button brings the newest in sight at {size}")

    # -- the chat ends (the counsellor ends it; the child's token stops working)
    counsellor.end(chat_id)
    ended = page.locator("#ended-box")
    expect(ended).to_be_visible()
    expect(page.locator("#composer")).to_be_hidden()
    for number in ("112", "113", "110", "116117", "116111"):
        expect(ended.locator(f'a[href="tel:{number}"]')).to_have_count(1)
    expect(ended).to_contain_text("privat nettlesing")
    expect(ended).to_contain_text("nettleserloggen")
    found = page.locator("#ended-text").evaluate(IN_SIGHT)
    assert found["inside"], f"the end is not in sight: {found}"
    state_done(run, page, "ended", size)
    # With the token no longer valid the page stays calm and keeps what it has.
    after = child_api.get(f"{run.url}/api/v1/chats/{chat_id}", timeout=15).status_code
    run.result["facts"][f"token_after_end_{size}"] = after
    assert after == 409, f"a child's token after the end answers {after}, not API.md's 409"
    assert page.locator("#log > li").count() >= 50
    page.get_by_role("button", name="Tøm skjermen").click()
    expect(page.locator("#log > li")).to_have_count(0)
    expect(page.locator("#cleared")).to_contain_text("tømt")
    expect(ended.locator('a[href="tel:116111"]')).to_be_visible()
    assert "Er du i fare akkurat nå?" not in page.locator("body").inner_text()
    state_done(run, page, "ended-cleared", size)

    # -- the same ended screen in English
    page.get_by_role("button", name="English").click()
    expect(ended).to_contain_text("private browsing")
    expect(ended).to_contain_text("Clear the browser history")
    expect(page.get_by_role("button", name="Clear the screen")).to_be_visible()
    run.shot(page, f"child-ended-english-{size}")
    page.get_by_role("button", name="Norsk").click()
    run.step(f"ended screen in English at {size}")
    ctx.close()


def exit_facts(run, page, ctx, chat_id, counsellor, label):
    """After a quick exit: a neutral page, no history entry back to the chat, nothing kept,
    and the chat ended on the server as quick_exit."""
    page.wait_for_url(f"https://{EXIT_HOST}/**")
    facts = {"history_length_after": page.evaluate("history.length")}
    page.go_back()
    facts["url_after_back"] = page.url
    assert urlparse(page.url).netloc != run.origin, f"Back returned to the chat page: {page.url}"
    check = ctx.new_page()
    check.goto(f"{run.url}/static/common/net.js")
    facts["storage_after"] = check.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    check.close()
    assert facts["storage_after"] == [0, 0, ""], facts
    deadline = time.monotonic() + 10
    while True:
        chat = counsellor.reader.chat(chat_id)
        if chat.get("status") in ("ended", "abandoned") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    facts["server"] = {"status": chat.get("status"), "ended_by": chat.get("ended_by")}
    # A chat that never left the queue ends as "abandoned"; either way the child left quickly.
    assert chat.get("status") in ("ended", "abandoned") and chat.get("ended_by") == "quick_exit", facts
    run.result["facts"][label] = facts


def quick_exit_with_dialog(run, browser, counsellor):
    """One tap on the quick exit with the end-chat dialog open, in a chat, on a phone."""
    size = "390x844"
    ctx, page = child_page(run, browser, "exit", {"width": 390, "height": 844})
    saved = start_chat(page, "Kan jeg snakke med noen?")
    counsellor.take(saved["chat_id"])
    counsellor.say(saved["chat_id"], "Hei, jeg heter Demo.")
    expect(page.locator("#log .msg.counsellor").last).to_contain_text("Hei, jeg heter Demo.")
    run.result["facts"]["quick_exit_chat_id"] = saved["chat_id"]
    history_before = page.evaluate("history.length")
    page.get_by_role("button", name="Avslutt chatten").click()
    expect(page.locator("#confirm-end")).to_be_visible()
    check_exit_and_numbers(run, page, "quick-exit", size)
    run.shot(page, f"child-quick-exit-before-{size}")
    page.locator("#quick-exit").click()
    exit_facts(run, page, ctx, saved["chat_id"], counsellor, "quick_exit_tap")
    run.result["facts"]["quick_exit_tap"]["history_length_before"] = history_before
    assert run.result["facts"]["quick_exit_tap"]["history_length_after"] <= history_before
    run.shot(page, f"child-quick-exit-after-{size}")
    run.step("one tap on the quick exit with the end-chat dialog open: gone, no history, ended as quick_exit")
    ctx.close()


def escape_twice(run, browser, counsellor):
    """Escape twice (the numbers dialog open, the child waiting, 320 px)."""
    ctx, page = child_page(run, browser, "escape", {"width": 320, "height": 640})
    saved = start_chat(page, "hei")
    page.get_by_role("button", name="Nødnumre").click()
    expect(page.locator("#emergency")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    exit_facts(run, page, ctx, saved["chat_id"], counsellor, "quick_exit_escape")
    run.step("Escape twice: gone, no history, ended as quick_exit")
    ctx.close()


def send_after_a_silent_end(run, browser, counsellor):
    """The chat ends while no push reaches the page (the socket's ended event and
    its close are lost on the way): the child's next message is what learns it.
    The gateway answers 409; the page must say calmly that the chat has ended,
    keep the message on the screen marked as not sent, offer nothing to try
    again, and keep the way out and the numbers in sight. 390x844."""
    size = "390x844"
    ctx, page = run.open(browser, "after-end", **viewport_options({"width": 390, "height": 844}, True))

    def silent_end(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: None if '"chat.ended"' in str(message) else ws.send(message))
        server.on_close(lambda code, reason: None)  # the page's socket stays open: no reconnect, no poll

    page.route_web_socket("**/ws", silent_end)
    page.goto(f"{run.url}/")
    saved = start_chat(page, "Hei, er det noen der?")
    chat_id = saved["chat_id"]
    counsellor.take(chat_id)
    counsellor.say(chat_id, "Hei, jeg er her.")
    expect(page.locator("#log .msg.counsellor").last).to_contain_text("Hei, jeg er her.")
    counsellor.end(chat_id)
    page.wait_for_timeout(500)  # the ended push would have come by now
    expect(page.locator("#composer")).to_be_visible()  # the page has not heard
    run.shot(page, f"child-silent-end-before-{size}")

    text = "Jeg vil fortelle noe mer."
    page.locator("#text").fill(text)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/messages")) as sent:
        page.locator("#send").click()
    status = sent.value.status
    mine = page.locator("#log .msg.child").last
    expect(mine).to_contain_text(text)
    expect(mine).to_contain_text("Ikke sendt.")
    expect(mine.locator(".retry")).to_have_count(0)
    expect(page.locator("#ended-box")).to_be_visible()
    expect(page.locator("#composer")).to_be_hidden()
    found = page.locator("#ended-text").evaluate(IN_SIGHT)
    assert found["inside"], f"the end is not in sight after a 409: {found}"
    check_exit_and_numbers(run, page, "send after a silent end", size)
    run.shot(page, f"child-silent-end-after-{size}")
    stored = [m["text"] for m in counsellor.reader.call("GET", f"/api/v1/chats/{chat_id}/messages").json()["messages"]]
    run.result["facts"]["send_after_end"] = {"status": status, "stored": text in stored}
    assert status == 409, f"a child's message after the end was answered {status}, not API.md's 409"
    assert text not in stored
    run.step("a message sent after a silent end: 409, the end said calmly, the message kept and marked not sent")
    ctx.close()


if __name__ == "__main__":
    run_script(all_states)
