"""The counsellor console at the moment of danger (issue 13, outcomes 1, 4, 7, 9, 11,
12, 13 for the console), in a real headless Chromium at 1280x720, 1440x900 and a
phone 390x844. Every control a step uses must be inside the viewport and the element
a click at its centre reaches; axe-core (the pinned local copy) must find nothing
serious or critical in any state. Run as a plain script (see test_console.py).

    python tests/browser/console_flow.py '{"url": ..., "counsellor": [user, password],
        "supervisor": [user, password], "out": "results/screenshots", "axe": "path/to/axe.min.js"}'
"""

import json
import re
import time

import requests

# Run as a script, this folder is on sys.path: the shared flow lends its helpers.
from child_flow import child_page
from flow import IN_SIGHT, login, run_script, viewport_options
from playwright.sync_api import expect

SIZES = [
    ("1280x720", {"width": 1280, "height": 720}, False),
    ("1440x900", {"width": 1440, "height": 900}, False),
    ("390x844", {"width": 390, "height": 844}, True),
]

# Test-only: count the console's WebAudio beeps (no sound in a headless browser).
BEEP_SPY = """
(() => {
  window.__beeps = 0;
  const Native = window.AudioContext;
  if (!Native) return;
  window.AudioContext = class extends Native {
    createOscillator() { const o = super.createOscillator(); const start = o.start.bind(o);
      o.start = (...a) => { window.__beeps += 1; return start(...a); }; return o; }
  };
})();
"""


# A category's code where a person should read words. "suicide risk" is the
# English half of the reason's words ("Selvmordsfare / suicide risk"), not a code.
CATEGORY_CODES = re.compile(
    r"\b(self_harm|violence_home|sexual_abuse|self_report|medical_danger|acute_threat"
    r"|grooming_sextortion|someone_else|self report)\b|\bsuicide\b(?! risk)"
)


# The risk screen's categories in words (the console's table, else the server's
# category_words), in each language: a strict alert names one of them.
SCREEN_WORDS_NB = re.compile(
    "Selvmordstanker|Selvskading|Vold i hjemmet|Seksuelle overgrep|Medisinsk fare"
    "|Grooming eller sextortion|Akutt trussel nå|En annen i fare"
)
SCREEN_WORDS_EN = re.compile(
    "Suicidal thoughts|Self-harm|Violence at home|Sexual abuse|Medical danger"
    "|Grooming or sextortion|Acute threat now|Someone else at risk"
)
# The Norwegian half of a reason the server wrote (services/escalation/risk.py CATEGORY_WORDS)
SERVER_NB = re.compile(
    "Selvmordsfare|Selvskading|Vold eller omsorgssvikt|Seksuelle overgrep|Akutt medisinsk|Sier selv|treff:"
)
NORWEGIAN = re.compile(
    r"[æøå]|\b(AKUTT|Risiko|Sier|Samtaler|Besvart|Forlatt|Kodet|Ventetid|Kjønn|Mørkere|besvart"
    r"|forlatt|ukjent|Fra|Til og med|Vis|Last ned|Vold|Mobbing|Jente|Gutt|man|tir|ons|tor|fre"
    r"|gjelder|antall|dag|kl)\b"
)

# Every control in the header: inside the viewport and the element a tap at its
# centre reaches (the escalation side panel must not lie over it).
HEADER_TAPPABLE = """
() => {
  const bar = document.querySelector('header.bar');
  const vw = document.documentElement.clientWidth, vh = window.innerHeight;
  const items = [...bar.querySelectorAll('button, select, input, summary')]
    .filter((el) => el.getClientRects().length && !el.closest('[hidden]') && !el.closest('.cooldown-menu'));
  const covered = items.filter((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !(hit && (hit === el || el.contains(hit))) || r.right > vw + 0.5 || r.bottom > vh + 0.5 || r.top < -0.5;
  }).map((el) => el.id || el.textContent.trim().slice(0, 20));
  return {covered, count: items.length};
}
"""


def api(url, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url + path, json=body, headers=headers, timeout=15)


def one_click(page, locator, what):
    """In the viewport, not covered at its centre; then the one click."""
    locator.scroll_into_view_if_needed()
    seen = locator.evaluate(IN_SIGHT)
    assert seen["ok"], f"{what} is not in sight or is covered: {seen}"
    locator.click()


# The header keeps one line and nothing in it leaves the screen (issue 13: the
# cool-down pushed "Varsler", "English" and "Logg ut" off at 1280 px).
HEADER_FITS = """
() => {
  const bar = document.querySelector('header.bar');
  const vw = document.documentElement.clientWidth;
  const out = [...bar.querySelectorAll('button, select, input, summary, .pill, #me-name')]
    .filter((el) => el.getClientRects().length && !el.closest('[hidden]') && !el.closest('.cooldown-menu'))
    .map((el) => [el.id || el.textContent.trim().slice(0, 20), el.getBoundingClientRect()])
    .filter(([, r]) => r.right > vw + 0.5 || r.left < -0.5).map(([name]) => name);
  return {ok: out.length === 0 && bar.scrollWidth <= bar.clientWidth + 1, out,
          height: bar.getBoundingClientRect().height, scroll: bar.scrollWidth, client: bar.clientWidth,
          doc: document.documentElement.scrollWidth, vw};
}
"""


def header_fits(page, size, phone, facts, what):
    fit = page.evaluate(HEADER_FITS)
    facts[f"header_{what}"] = fit
    assert fit["ok"] and fit["doc"] <= fit["vw"], f"the header overflows at {size} ({what}): {fit}"
    if not phone:
        assert fit["height"] < 64, f"the header wraps at {size} ({what}): {fit}"


def state(run, page, name, size):
    run.shot(page, f"console-{name}-{size}")
    run.axe(page, f"{name}-{size}")
    run.step(f"{name} at {size}")


def console(run, browser):
    if run.config.get("mode") == "offers":
        offers(run, browser)
    else:
        for size, viewport, phone in SIZES:
            sizes(run, browser, size, viewport, phone)


def sizes(run, browser, size, viewport, phone):
    url = run.url
    user, password = run.config["counsellor"]
    sup_user, sup_password = run.config["supervisor"]
    options = viewport_options(viewport, phone)
    ctx, page = run.open(browser, f"console-{size}", BEEP_SPY, **options)
    sup_ctx, sup = run.open(browser, f"supervisor-{size}", **options)
    facts = run.result["facts"].setdefault(size, {})

    page.goto(f"{url}/console/")
    expect(page.locator("#login-title")).to_have_text("chatvakt – veilederkonsoll")
    state(run, page, "login", size)
    one_click(page, page.get_by_role("button", name="English"), "English on the login page")
    expect(page.locator("#login-title")).to_have_text("chatvakt – counsellor console")
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    state(run, page, "login-en", size)
    page.get_by_role("button", name="Norsk").click()
    login(page, url, user, password)
    expect(page.locator("#me-role")).to_have_text("chatvert")
    page.get_by_label("Status").select_option("offline")
    expect(page.locator("body")).to_have_attribute("data-presence", "offline")
    # No wrap: the header is one line at desktop sizes.
    bar_h = page.locator("header.bar").evaluate("(e) => e.getBoundingClientRect().height")
    facts["header_height"] = bar_h
    if not phone:
        assert bar_h < 64, f"the header wraps at {size}: {bar_h}px"
    login(sup, url, sup_user, sup_password)

    # -- a child enters the queue: a sound, the title, the row
    child = api(
        url, "POST", "/api/v1/chats", body={"gender": "boy", "age": 14, "message": "hei, jeg lurer på noe"}
    ).json()
    chat_id, token = child["chat_id"], child["token"]
    row = page.locator(f'#queue li[data-chat-id="{chat_id}"]')
    expect(row).to_contain_text("Gutt 14")
    expect(page).to_have_title(re.compile("barn venter"))
    facts["beeps_on_entry"] = page.evaluate("window.__beeps")
    assert facts["beeps_on_entry"] >= 1, "no sound when a child entered the queue"
    state(run, page, "queue-new-child", size)

    # -- offline cannot take: 409 not_available, the console offers to go available (one click)
    one_click(page, row.get_by_role("button", name="Ta"), "the queue row's Ta")
    expect(page.locator("#queue-error")).to_contain_text("ikke tilgjengelig")
    go = page.locator("#go-available")
    expect(go).to_be_visible()
    state(run, page, "not-available", size)
    one_click(page, go, "go available")
    card = page.locator(f'.chat-card[data-chat-id="{chat_id}"]')
    expect(card.locator(".chat-title")).to_have_text("Gutt 14")
    expect(page.locator("body")).to_have_attribute("data-presence", "available")
    run.step(f"offline take refused, one click went available and took the chat at {size}")

    # -- the card: words, times, a tel: link, a keyboard-scrollable transcript
    card.locator("textarea").fill("Du kan også ringe oss på 116 111.")
    card.get_by_role("button", name="Send").click()
    link = card.locator('.log a[href="tel:116111"]')
    expect(link).to_have_text("116 111")
    expect(card.locator(".times")).to_contain_text("Ventet")
    expect(card.locator(".times")).to_contain_text("Varighet")
    log = card.locator(".log")
    assert log.get_attribute("tabindex") == "0" and log.get_attribute("role") == "log"
    assert "Gutt 14" in (log.get_attribute("aria-label") or "")
    state(run, page, "chat", size)

    # -- acute danger in a side panel; the child's next message arrives in sight
    one_click(page, card.get_by_role("button", name="Eskaler …"), "Eskaler")
    panel = page.locator("#escalate-dialog")
    expect(panel).to_be_visible()
    panel.get_by_label("Hva skjer? (kort)").fill("Har tabletter")
    panel.get_by_label("Hvor er barnet? (om barnet vil si det)").fill("Storgata 1, Bergen, tlf 91234567")
    api(url, "POST", f"/api/v1/chats/{chat_id}/messages", token, {"text": "ja. jeg har tabletter her"})
    newest = card.locator(".log .msg").last
    expect(newest).to_contain_text("jeg har tabletter her")
    if not phone:
        seen = newest.evaluate(IN_SIGHT)
        facts["newest_with_panel"] = seen
        assert seen["ok"], f"the child's message is hidden behind the form: {seen}"
    header = page.evaluate(HEADER_TAPPABLE)
    facts["header_with_panel"] = header
    assert header["covered"] == [], f"the side panel covers the header at {size}: {header}"
    state(run, page, "escalation-panel", size)
    one_click(page, panel.get_by_role("button", name="Registrer akutt fare og varsle vakthavende"), "save")
    detail = page.locator("#detail-dialog")
    expect(detail.locator("#detail-ok")).to_contain_text("Registrert")
    one_click(page, detail.get_by_role("button", name="Vis det jeg skrev (logges)"), "read back")
    expect(detail.locator("#detail-readback")).to_contain_text("Storgata 1, Bergen")
    expect(detail.locator('#detail-readback a[href="tel:91234567"]')).to_have_count(1)
    state(run, page, "readback", size)
    detail.get_by_role("button", name="Lukk", exact=True).click()
    expect(detail).to_be_hidden()

    # -- a referral: an editable preview, sent as edited
    one_click(page, card.get_by_role("button", name="Eskaler …"), "Eskaler")
    panel.get_by_label("Informere om annen tjeneste").check()
    services = panel.locator("select[multiple]")
    services.select_option(index=0)
    preview = panel.locator("#e-preview")
    assert preview.input_value().startswith("Du kan også ta kontakt med"), preview.input_value()
    preview.fill(preview.input_value() + "\nSi fra hvis du vil at jeg skal hjelpe deg å ringe.")
    state(run, page, "referral-preview", size)
    one_click(page, panel.get_by_role("button", name="Registrer og send til barnet"), "send referral")
    expect(card.locator(".log")).to_contain_text("Si fra hvis du vil at jeg skal hjelpe deg å ringe.")
    page.locator("#detail-dialog").get_by_role("button", name="Lukk", exact=True).click()
    run.step(f"referral previewed, edited and sent at {size}")
    if size == "1280x720":
        referral_in_english(run, page, card, size)
        approve_beside_transcript(run, page, sup, chat_id, size, facts)

    # -- the child leaves by quick exit: the card and the supervisor say it plainly
    assert api(url, "POST", f"/api/v1/chats/{chat_id}/end", token, {"reason": "quick_exit"}).status_code == 200
    banner = card.locator(".quick-exit-banner")
    expect(banner).to_contain_text("ikke trygt å kontakte barnet")
    banner.scroll_into_view_if_needed()
    state(run, page, "quick-exit", size)

    # -- acute danger, then the chat ended: a cool-down, folded into one pill in the header
    cooldown = page.locator("#cooldown")
    expect(cooldown).to_be_visible()
    expect(cooldown.locator("summary")).to_contain_text("Pause til")
    header_fits(page, size, phone, facts, "cooldown")
    one_click(page, cooldown.locator("summary"), "the cool-down pill")
    ready = page.get_by_role("button", name="Jeg er klar igjen")
    expect(ready).to_be_visible()
    state(run, page, "cooldown", size)
    one_click(page, ready, "ready again")
    expect(cooldown.locator("summary")).to_contain_text("Pause avbrutt")
    header_fits(page, size, phone, facts, "cooldown-opted-in")
    run.step(f"cool-down pill opened, opted in with one click, header in one line at {size}")
    expect(sup.locator(f'#alerts .alert.quick[data-chat-id="{chat_id}"]')).to_contain_text("ikke trygt å kontakte")
    state(run, sup, "supervisor-quick-exit", size)
    # a colleague's note follows the language switch (it was drawn in Norwegian)
    note = sup.locator("#queue-info")
    expect(note).to_contain_text("er klar igjen")
    one_click(sup, sup.get_by_role("button", name="English"), "English")
    expect(note).to_contain_text("is ready again")
    facts["queue_info_en"] = note.inner_text()
    sup.get_by_role("button", name="Norsk").click()

    # -- coded, the card folds away
    if size == "1280x720":
        coding_follows_the_chat(run, page, card, size, facts)
    one_click(page, card.get_by_role("button", name="Kode"), "Kode")
    coding = page.locator("#coding-dialog")
    coding.get_by_label("Søk i kategoriene").fill("mobbing")
    coding.get_by_label("Mobbing", exact=True).check()
    coding.get_by_label("Jeg har vurdert akutt fare").check()
    coding.get_by_role("button", name="Lagre koding").click()
    expect(coding).to_be_hidden()
    expect(card.locator(".log")).to_be_hidden()
    expect(card.get_by_role("button", name="Vis samtalen")).to_be_visible()
    state(run, page, "folded", size)

    # -- English on a switch
    one_click(page, page.get_by_role("button", name="English"), "English")
    expect(page.locator("#mine-title")).to_have_text("My chats")
    assert page.evaluate("document.documentElement.lang") == "en"
    expect(cooldown.locator("summary")).to_contain_text("Pause ended")
    expect(card.locator(".quick-exit-banner")).to_contain_text("may not be safe")
    expect(card.locator(".flags")).to_contain_text("Flags")
    facts["card_flags_en"] = card.locator(".flags").inner_text()
    left_nb = re.findall(SERVER_NB.pattern + "|registrert|meldt av chatvert", facts["card_flags_en"])
    assert not left_nb, facts["card_flags_en"]
    expect(page.locator("#me-role")).to_have_text("counsellor")
    header_fits(page, size, phone, facts, "english")
    # issue 13: the parts that were Norwegian-only (phases, ready phrases, status, actions)
    expect(card.locator(".phases")).to_contain_text("Opening")
    expect(page.locator("#presence-status option[value=available]")).to_have_text("Available")
    english = page.evaluate("""() => [...document.querySelectorAll(
        '#work .chat-card .phases, #work .chat-card .phrases option, #work .chat-card .modes, '
        + '#presence-status, #uncoded-title, #esc-title')].map((e) => e.textContent).join(' | ')""")
    facts["english_text"] = english[:600]
    left = re.findall(
        r"\b(Åpning|Bestilling|Hilsen|Hva kan jeg|Til barnet|Internt notat|Tilgjengelig|Frakoblet"
        r"|Ukodede|Venter)\b",
        english,
    )
    assert not left, f"Norwegian left in the English console: {left}"
    # the lists' empty lines, the labels on messages already on the card, the tab title
    expect(page.locator("#uncoded")).to_contain_text(re.compile(r"Everything is coded\.|Code"))
    facts["uncoded_en"] = page.locator("#uncoded").inner_text()
    assert not re.search(r"Alt er kodet|Kode", facts["uncoded_en"]), facts["uncoded_en"]
    labels = card.locator(".log .who").evaluate_all("(nodes) => nodes.map((n) => n.textContent)")
    facts["labels_en"] = labels
    expect(page.locator(f'#alerts .alert.quick[data-chat-id="{chat_id}"] strong')).to_contain_text("Boy 14")
    assert "Counsellor" in labels and "Boy 14" in labels, labels
    assert not {"Chatvert", "Gutt 14", "Internt notat"} & set(labels), f"Norwegian labels on the card: {labels}"
    facts["title_en"] = page.title()
    assert not re.search("konsoll|VARSEL|barn venter|ventet lenge", facts["title_en"]), facts["title_en"]
    state(run, page, "english", size)
    page.get_by_role("button", name="Norsk").click()

    # -- mute: the next child rings no more
    one_click(page, page.get_by_role("button", name="Lyd av"), "mute")
    before = page.evaluate("window.__beeps")
    other = api(url, "POST", "/api/v1/chats", body={"message": "hei"}).json()
    expect(page.locator(f'#queue li[data-chat-id="{other["chat_id"]}"]')).to_be_visible()
    time.sleep(0.5)
    facts["beeps_muted"] = page.evaluate("window.__beeps") - before
    assert facts["beeps_muted"] == 0, "a muted console rang"
    page.get_by_role("button", name="Lyd på").click()
    api(url, "POST", f"/api/v1/chats/{other['chat_id']}/end", other["token"], {})

    if size == "1280x720":
        child_language_and_tel(run, browser, page, size, facts)
    page.get_by_label("Status").select_option("offline")
    expect(page.locator("body")).to_have_attribute("data-presence", "offline")

    # -- the child says they are in danger, and the screen flags a message: the
    # label and the hand-mark button on the queue row, the alert in words, the ⚑
    said = api(url, "POST", "/api/v1/chats", body={"gender": "girl", "age": 13, "message": RISKY}).json()
    alert = sup.locator(f'#alerts .alert[data-chat-id="{said["chat_id"]}"]')
    # The screen's finding first; the child's own yes comes after it and shares the
    # server's one open alert for the chat: the category in words must stay.
    expect(alert.locator("strong")).to_contain_text(SCREEN_WORDS_NB)
    assert (
        api(url, "POST", f"/api/v1/chats/{said['chat_id']}/danger", said["token"], {"in_danger": True}).status_code
        == 200
    )
    said_row = page.locator(f'#queue li[data-chat-id="{said["chat_id"]}"]')
    expect(said_row).to_contain_text("Sier selv at hen er i fare nå")
    mark = said_row.get_by_role("button", name=re.compile("^Marker: "))
    expect(mark).to_be_visible()
    state(run, page, "self-report", size)
    page.once("dialog", lambda dialog: dialog.accept("nettlesertest"))
    before = mark.inner_text()
    one_click(page, mark, "the queue row's mark button")
    expect(page.locator("#queue-error")).to_be_hidden()
    facts["mark_clicked"] = before
    expect(alert).to_have_count(1)
    words = alert.locator("strong")
    expect(words).to_contain_text("Sier selv at hen er i fare")
    expect(words).to_contain_text(SCREEN_WORDS_NB)
    # the categories in words after the severity, never "Risiko: Risiko"
    expect(words).to_contain_text(re.compile("^⚠ (AKUTT|Risiko): "))
    expect(words).not_to_contain_text("Risiko: Risiko")
    expect(sup.locator("#me-role")).to_have_text("vakthavende")
    facts["alert_text"] = alert.inner_text()
    assert not re.search(CATEGORY_CODES, facts["alert_text"]), facts["alert_text"]
    state(run, sup, "alert", size)
    # A reload (or a supervisor who logs in later) reads the server's stored alert:
    # both categories are still there, not only the child's own "in danger".
    sup.reload()
    expect(words).to_contain_text("Sier selv at hen er i fare")
    expect(words).to_contain_text(SCREEN_WORDS_NB)
    facts["alert_text_reload"] = alert.inner_text()
    state(run, sup, "alert-reload", size)
    # The same banner and the role pill in English
    one_click(sup, sup.get_by_role("button", name="English"), "English")
    expect(words).to_contain_text(re.compile("^⚠ (ACUTE|Risk): "))
    expect(words).not_to_contain_text("Risk: Risk")
    expect(words).to_contain_text(SCREEN_WORDS_EN)
    expect(words).to_contain_text("Says they are in danger")
    expect(alert.get_by_role("button", name="Acknowledge")).to_be_visible()
    expect(sup.locator("#me-role")).to_have_text("supervisor")
    facts["alert_text_en"] = alert.inner_text()
    assert not re.search(NORWEGIAN, words.inner_text()), facts["alert_text_en"]
    # the server's reason ("Selvmordsfare / suicide risk — matched: …"): the English half
    assert not re.search(SERVER_NB, facts["alert_text_en"]), facts["alert_text_en"]
    # the tab title
    expect(sup).to_have_title(re.compile(r"^\(\d+\) ALERT – chatvakt$"))
    state(run, sup, "alert-en", size)
    sup.get_by_role("button", name="Norsk").click()
    expect(sup).to_have_title(re.compile(r"^\(\d+\) VARSEL – chatvakt$"))
    one_click(sup, alert.get_by_role("button", name="Åpne samtalen"), "open the flagged chat")
    flagged = sup.locator(f'.chat-card[data-chat-id="{said["chat_id"]}"] .log .msg.flagged')
    expect(flagged.first).to_contain_text("⚑")
    expect(flagged.first).to_contain_text("ta livet mitt")
    flagged.first.scroll_into_view_if_needed()
    state(run, sup, "flagged", size)
    # Messages already on the card follow a switch: their labels and the ⚑ line
    one_click(sup, sup.get_by_role("button", name="English"), "English")
    expect(flagged.first).to_contain_text("Flagged by the risk screen")
    sup_card = sup.locator(f'.chat-card[data-chat-id="{said["chat_id"]}"]')
    expect(sup_card.locator(".log .who").first).to_contain_text("Girl 13")
    facts["flags_en"] = sup_card.locator(".flags").inner_text()
    assert not re.search(SERVER_NB, facts["flags_en"]), facts["flags_en"]
    state(run, sup, "flagged-en", size)
    sup.get_by_role("button", name="Norsk").click()
    expect(flagged.first).to_contain_text("Flagget av risikoskjermen")
    api(url, "POST", f"/api/v1/chats/{said['chat_id']}/end", said["token"], {})

    # -- statistics: the screen says what the CSV says (small cells suppressed alike)
    sup.get_by_role("button", name="Statistikk").click()
    expect(sup.locator("#stats-keys")).to_contain_text("Samtaler")
    expect(sup.locator("#stats-suppress")).to_contain_text("<5")
    compare_stats(sup, url, facts)
    state(run, sup, "stats", size)
    stats_in_english(run, sup, size, facts)
    # The next size starts with the same accounts: nothing of this one left open.
    sup_token = json.loads(sup.evaluate("sessionStorage.getItem('chatvakt-console')"))["token"]
    for open_alert in api(url, "GET", "/api/v1/alerts", sup_token).json().get("alerts", []):
        api(url, "POST", f"/api/v1/alerts/{open_alert['chat_id']}/ack", sup_token, {"alert_id": open_alert["alert_id"]})
    sup_ctx.close()
    ctx.close()


def referral_in_english(run, page, card, size):
    """The referral's message to the child is previewed in the console's language."""
    one_click(page, page.get_by_role("button", name="English"), "English")
    one_click(page, card.get_by_role("button", name="Escalate …"), "Escalate")
    panel = page.locator("#escalate-dialog")
    panel.get_by_label("Tell about another service").check()
    panel.locator("select[multiple]").select_option(index=0)
    preview = panel.locator("#e-preview")
    expect(preview).to_have_value(re.compile(r"^You can also contact:\n"))
    expect(panel.get_by_label("Message to the child (you can change it before it is sent)")).to_be_visible()
    text = preview.input_value()
    run.result["facts"]["referral_preview_en"] = text
    assert "Du kan" not in text and "Gratis" not in text, f"Norwegian in the English referral: {text!r}"
    state(run, page, "referral-preview-en", size)
    panel.get_by_role("button", name="Cancel").click()
    expect(panel).to_be_hidden()
    page.get_by_role("button", name="Norsk").click()
    expect(page.locator("#me-role")).to_have_text("chatvert")


def stats_in_english(run, sup, size, facts):
    """The statistics screen's labels, captions, chart labels and legends in English."""
    one_click(sup, sup.get_by_role("button", name="English"), "English")
    stats = sup.locator("#stats")
    expect(sup.locator("#stats-title")).to_have_text("Statistics")
    expect(sup.locator('#stats-keys [data-key="total_chats"] .key-label')).to_have_text("Chats")
    expect(stats.get_by_role("button", name="Download CSV")).to_be_visible()
    expect(stats.locator("figcaption").first).to_have_text("Chats by main category (primary code)")
    expect(sup.locator("#chart-heat")).to_contain_text("Darker = more chats")
    expect(sup.locator("#chart-main table")).to_contain_text("Violence")
    text = sup.evaluate("() => document.getElementById('stats').textContent")
    facts["stats_text_en"] = text[:600]
    left = sorted({m.group(0) for m in NORWEGIAN.finditer(text)})
    assert not left, f"Norwegian left on the English statistics screen: {left}"
    state(run, sup, "stats-en", size)
    sup.get_by_role("button", name="Norsk").click()
    expect(sup.locator("#stats-title")).to_have_text("Statistikk")
    expect(sup.locator("#chart-main table")).to_contain_text("Vold")


def coding_follows_the_chat(run, page, card, size, facts):
    """Outcome 8: a chat with an acute-danger escalation opens its coding with acute
    danger assessed and present chosen; a validation message speaks the console's language."""
    coding = page.locator("#coding-dialog")
    for lang, code_name, save_name, cancel, expected in (
        ("nb", "Kode", "Lagre koding", "Avbryt", "Velg minst én kategori"),
        ("en", "Code", "Save coding", "Cancel", "Choose at least one category"),
    ):
        if lang == "en":
            one_click(page, page.get_by_role("button", name="English"), "English")
        one_click(page, card.get_by_role("button", name=code_name), code_name)
        expect(coding).to_be_visible()
        expect(coding.locator("#c-assessed")).to_be_checked()
        expect(coding.locator('input[name="c-danger"][value="yes"]')).to_be_checked()
        one_click(page, coding.get_by_role("button", name=save_name), save_name)
        message = coding.locator('[data-field="categories"]')
        expect(message).to_contain_text(expected)
        facts[f"coding_validation_{lang}"] = message.inner_text() + " / " + coding.locator("#coding-error").inner_text()
        if lang == "en":
            expect(coding.locator("#coding-error")).to_contain_text("The coding is not valid")
            assert not re.search(r"[æøå]|\b(Velg|Kjønn|Alder)\b", coding.inner_text().split("Categories")[0]), (
                "Norwegian left at the top of the English coding dialog"
            )
        # The coding tree's category names in the console's language (the server sends both)
        search, sub, main, other = (
            ("Søk i kategoriene", "Mobbing", "Vold", "Bullying")
            if lang == "nb"
            else ("Search the categories", "Bullying", "Violence", "Mobbing")
        )
        coding.get_by_label(search).fill(sub.lower())
        expect(coding.get_by_label(sub, exact=True)).to_be_visible()
        expect(coding.locator("#c-tree summary").first).to_contain_text(main)
        assert other not in coding.locator("#c-tree").inner_text(), f"{other} in the {lang} coding tree"
        message.scroll_into_view_if_needed()
        state(run, page, f"coding-validation-{lang}", size)
        coding.get_by_label(search).fill("")
        coding.get_by_role("button", name=cancel).click()
        expect(coding).to_be_hidden()
    one_click(page, page.get_by_role("button", name="Norsk"), "Norsk")
    run.step(f"coding prefilled from the escalation, validation in nb and en at {size}")


def approve_beside_transcript(run, page, sup, chat_id, size, facts):
    """Outcome 10: the supervisor approving a report of concern reads the chat
    beside the draft: both in the viewport, neither covered."""
    token = json.loads(page.evaluate("sessionStorage.getItem('chatvakt-console')"))["token"]
    made = api(
        run.url,
        "POST",
        f"/api/v1/chats/{chat_id}/escalations",
        token,
        {
            "kind": "report_of_concern",
            "details": {"cause": "Forteller om slag hjemme", "observed": "I chatten i dag", "duration": "over_time"},
        },
    )
    assert made.status_code in (200, 201), made.text
    esc_id = made.json()["escalation_id"]
    row = sup.locator(f'#escalations li[data-escalation-id="{esc_id}"]')
    expect(row).to_be_visible()
    one_click(sup, row.get_by_role("button", name="Åpne"), "the escalation's Åpne")
    panel = sup.locator("#detail-dialog")
    log = panel.locator("#detail-transcript .log")
    expect(log).to_contain_text("jeg har tabletter her")
    cause = panel.locator("#detail-fields textarea").first
    expect(cause).to_have_value("Forteller om slag hjemme")
    # The supervisor scrolls the draft to its cause; the transcript stays beside it.
    cause.evaluate("(e) => e.scrollIntoView({block: 'center'})")
    seen = {"transcript": log.evaluate(IN_SIGHT), "draft": cause.evaluate(IN_SIGHT)}
    box = {"transcript": log.bounding_box(), "draft": cause.bounding_box()}
    facts["approve_in_sight"], facts["approve_boxes"] = seen, box
    assert seen["transcript"]["ok"] and seen["draft"]["ok"], f"transcript or draft out of sight: {seen}"
    one_click(sup, panel.locator("#detail-moves").get_by_role("button", name="Godkjenn"), "Godkjenn")
    expect(panel.locator("#detail-status")).to_have_text("godkjent")
    expect(log).to_be_visible()
    state(run, sup, "supervisor-approve", size)
    panel.get_by_role("button", name="Lukk", exact=True).click()


def offers(run, browser):
    """Outcome 9 on a stack with offered assignment on: the offer rings, declining
    passes it to the next counsellor, and a muted console rings no more."""
    size, viewport = "1280x720", {"width": 1280, "height": 720}
    url = run.url
    pages = []
    for who in ("counsellor", "counsellor2"):
        _, page = run.open(browser, f"{who}-offers", BEEP_SPY, viewport=viewport)
        login(page, url, *run.config[who])
        page.get_by_label("Status").select_option("offline")
        expect(page.locator("body")).to_have_attribute("data-presence", "offline")
        pages.append(page)
    first, second = pages
    facts = run.result["facts"].setdefault("offers", {})
    first.get_by_label("Status").select_option("available")
    expect(first.locator("body")).to_have_attribute("data-presence", "available")
    before = first.evaluate("window.__beeps")
    child = api(url, "POST", "/api/v1/chats", body={"gender": "girl", "age": 12, "message": "hei"}).json()
    offer = first.locator(f'#offers li[data-chat-id="{child["chat_id"]}"]')
    expect(offer).to_contain_text("Tilbud: Jente 12")
    facts["beeps_offer"] = first.evaluate("window.__beeps") - before
    assert facts["beeps_offer"] >= 1, "the offer did not ring"
    state(run, first, "offer", size)
    second.get_by_label("Status").select_option("available")
    expect(second.locator("body")).to_have_attribute("data-presence", "available")
    one_click(first, offer.get_by_role("button", name="Avslå"), "Avslå")
    expect(offer).to_be_hidden()
    passed = second.locator(f'#offers li[data-chat-id="{child["chat_id"]}"]')
    expect(passed).to_contain_text("Tilbud: Jente 12")
    state(run, second, "offer-passed", size)
    one_click(second, passed.get_by_role("button", name="Ta samtalen"), "Ta samtalen")
    expect(second.locator(f'.chat-card[data-chat-id="{child["chat_id"]}"] .chat-title')).to_have_text("Jente 12")
    run.step("declined offer passed to the other counsellor, who took it")
    # Muted: the next offer shows but makes no sound.
    one_click(first, first.get_by_role("button", name="Lyd av"), "mute")
    before = first.evaluate("window.__beeps")
    other = api(url, "POST", "/api/v1/chats", body={"gender": "boy", "age": 15, "message": "hallo"}).json()
    muted = first.locator(f'#offers li[data-chat-id="{other["chat_id"]}"]')
    expect(muted).to_contain_text("Tilbud: Gutt 15")
    time.sleep(0.5)
    facts["beeps_muted_offer"] = first.evaluate("window.__beeps") - before
    assert facts["beeps_muted_offer"] == 0, "a muted console rang for an offer"
    state(run, first, "offer-muted", size)
    one_click(first, muted.get_by_role("button", name="Avslå"), "Avslå")
    for chat in (child, other):
        api(url, "POST", f"/api/v1/chats/{chat['chat_id']}/end", chat["token"], {})


RISKY = "han gjør ting med meg som jeg ikke vil og jeg vil ta livet mitt i kveld"


def compare_stats(sup, url, facts):
    """Every key number on the screen is the CSV's cell for the same range."""
    token = json.loads(sup.evaluate("sessionStorage.getItem('chatvakt-console')"))["token"]
    start, end = sup.locator("#stats-from").input_value(), sup.locator("#stats-to").input_value()
    stop = time.strftime("%Y-%m-%d", time.localtime(time.mktime(time.strptime(end, "%Y-%m-%d")) + 86400 + 3600))
    csv_text = api(url, "GET", f"/api/v1/stats?from={start}&to={stop}&format=csv", token).text
    cells = {}
    for line in csv_text.splitlines()[1:]:
        section, key, value = line.split(",", 2)
        cells[(section, key)] = value
    shown = {
        k: v
        for k, v in sup.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#stats-keys [data-key]')]
          .map((el) => [el.dataset.key, el.querySelector('.key-value').textContent]))""").items()
    }

    def pct(value):
        return "–" if value == "" else f"{round(float(value) * 100)} %"

    expected = {
        "total_chats": cells[("summary", "total_chats")],
        "answered": cells[("summary", "answered")],
        "abandoned_share": pct(cells[("summary", "abandoned_share")]),
        "coded_share": pct(cells[("summary", "coded_share")]),
    }
    facts["stats_screen"], facts["stats_csv"] = shown, expected
    for key, value in expected.items():
        assert shown[key] == value, f"stats {key}: screen {shown[key]!r}, CSV {value!r}"
    # the main-category chart (its text table) against the CSV's section
    rows = sup.evaluate("""() => [...document.querySelectorAll('#chart-main table tr')].slice(1)
        .map((tr) => [...tr.children].map((td) => td.textContent))""")
    counts = [value for (section, _), value in cells.items() if section == "by_primary_main_category"]
    assert sorted(r[1] for r in rows) == sorted(counts + ["0"] * (len(rows) - len(counts))), (rows, counts)


def child_language_and_tel(run, browser, page, size, facts):
    """The child's page in English: the card says so, numbers reach the child as
    tel: links, and the counsellor sees the switch back to Norwegian."""
    child_ctx, kid = child_page(run, browser, f"child-lang-{size}", {"width": 390, "height": 844})
    kid.get_by_role("button", name="English").click()
    kid.get_by_label("Do you want to write something already? (optional)").fill("hi, can I talk to someone")
    kid.get_by_role("button", name="Start chat").click()
    expect(kid.locator("#log .msg.child")).to_contain_text("hi, can I talk to someone")
    saved = json.loads(kid.evaluate("sessionStorage.getItem('chatvakt-chat')"))
    chat_id = saved["chat_id"]
    page.get_by_label("Status").select_option("available")
    offer = page.locator(f'#offers li[data-chat-id="{chat_id}"]')
    row = page.locator(f'#queue li[data-chat-id="{chat_id}"]')
    expect(offer.or_(row).first).to_be_visible()
    if offer.count():
        offer.get_by_role("button", name="Ta samtalen").click()
    else:
        row.get_by_role("button", name="Ta").click()
    card = page.locator(f'.chat-card[data-chat-id="{chat_id}"]')
    expect(card.locator(".child-lang")).to_have_text("English")
    card.locator("textarea").fill("You can also call us on 116 111 or the police on 112.")
    card.get_by_role("button", name="Send").click()
    link = kid.locator('#log a[href="tel:116111"]')
    expect(link).to_have_text("116 111")
    expect(kid.locator('#log a[href="tel:112"]')).to_have_count(1)
    seen = link.evaluate(IN_SIGHT)
    facts["child_tel_link"] = seen
    assert seen["ok"], f"the child's tel: link is not in sight: {seen}"
    state(run, kid, "child-tel", "390x844")
    kid.get_by_role("button", name="Norsk").click()
    switch = card.locator(".log .msg.lang-switch")
    expect(switch).to_contain_text("byttet til norsk")
    expect(card.locator(".child-lang")).to_be_hidden()
    switch.scroll_into_view_if_needed()
    state(run, page, "child-lang", size)
    api(run.url, "POST", f"/api/v1/chats/{chat_id}/end", saved["token"], {})
    child_ctx.close()


if __name__ == "__main__":
    run_script(console)
