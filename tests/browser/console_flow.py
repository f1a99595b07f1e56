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
import sys
import time
import traceback

import requests
from playwright.sync_api import expect, sync_playwright

# Run as a script, this folder is on sys.path: the child page's flow lends its helpers.
from child_flow import ARGS, CHROMIUM, IN_SIGHT, TIMEOUT_MS, Run

SIZES = [("1280x720", {"width": 1280, "height": 720}, False),
         ("1440x900", {"width": 1440, "height": 900}, False),
         ("390x844", {"width": 390, "height": 844}, True)]

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


def api(url, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url + path, json=body, headers=headers, timeout=15)


def one_click(page, locator, what):
    """In the viewport, not covered at its centre; then the one click."""
    locator.scroll_into_view_if_needed()
    seen = locator.evaluate(IN_SIGHT)
    assert seen["ok"], f"{what} is not in sight or is covered: {seen}"
    locator.click()


def login(page, url, user, password):
    page.goto(f"{url}/console/")
    page.get_by_label("Brukernavn").fill(user)
    page.get_by_label("Passord").fill(password)
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("#me-name")).not_to_be_empty()


def state(run, page, name, size):
    run.shot(page, f"console-{name}-{size}")
    run.axe(page, f"{name}-{size}")
    run.step(f"{name} at {size}")


def main():
    config = json.loads(sys.argv[1])
    run = Run(config)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                expect.set_options(timeout=TIMEOUT_MS)
                for size, viewport, phone in SIZES:
                    sizes(run, browser, size, viewport, phone)
            except Exception:
                for name, page in run.pages.items():
                    try:
                        if not page.is_closed():
                            run.shot(page, f"failure-console-{name}")
                    except Exception:  # noqa: BLE001 - best effort
                        pass
                raise
            finally:
                browser.close()
    except Exception as error:  # noqa: BLE001 - reported to the test as JSON
        run.result["failed"] = {"step_after": run.result["steps"][-1] if run.result["steps"] else None,
                                "error": f"{type(error).__name__}: {error}",
                                "trace": traceback.format_exc()[-4000:]}
    print(json.dumps(run.result, ensure_ascii=False))


def sizes(run, browser, size, viewport, phone):
    url = run.url
    user, password = run.config["counsellor"]
    sup_user, sup_password = run.config["supervisor"]
    options = {"viewport": viewport, "locale": "nb-NO"}
    if phone:
        options.update(device_scale_factor=2, is_mobile=True, has_touch=True)
    ctx = browser.new_context(**options)
    run.guard(ctx, f"console-{size}")
    ctx.add_init_script(BEEP_SPY)
    page = ctx.new_page()
    run.watch(page, f"console-{size}")
    sup_ctx = browser.new_context(**options)
    run.guard(sup_ctx, f"supervisor-{size}")
    sup = sup_ctx.new_page()
    run.watch(sup, f"supervisor-{size}")
    facts = run.result["facts"].setdefault(size, {})

    page.goto(f"{url}/console/")
    state(run, page, "login", size)
    login(page, url, user, password)
    page.get_by_label("Status").select_option("offline")
    expect(page.locator("body")).to_have_attribute("data-presence", "offline")
    # No wrap: the header is one line at desktop sizes.
    bar_h = page.locator("header.bar").evaluate("(e) => e.getBoundingClientRect().height")
    facts["header_height"] = bar_h
    if not phone:
        assert bar_h < 64, f"the header wraps at {size}: {bar_h}px"
    login(sup, url, sup_user, sup_password)

    # -- a child enters the queue: a sound, the title, the row
    child = api(url, "POST", "/api/v1/chats", body={"gender": "boy", "age": 14, "message": "hei, jeg lurer på noe"}).json()
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

    # -- the child leaves by quick exit: the card and the supervisor say it plainly
    assert api(url, "POST", f"/api/v1/chats/{chat_id}/end", token, {"reason": "quick_exit"}).status_code == 200
    banner = card.locator(".quick-exit-banner")
    expect(banner).to_contain_text("ikke trygt å kontakte barnet")
    banner.scroll_into_view_if_needed()
    state(run, page, "quick-exit", size)
    expect(sup.locator(f'#alerts .alert.quick[data-chat-id="{chat_id}"]')).to_contain_text("ikke trygt å kontakte")
    state(run, sup, "supervisor-quick-exit", size)

    # -- coded, the card folds away
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
    page.get_by_label("Status").select_option("offline")

    # -- statistics: the screen says what the CSV says
    sup.get_by_role("button", name="Statistikk").click()
    expect(sup.locator("#stats-keys")).to_contain_text("Samtaler")
    state(run, sup, "stats", size)
    sup_ctx.close()
    ctx.close()


if __name__ == "__main__":
    main()
