"""The child says "I am in danger now" on the page (issue 14), in a real headless
Chromium at 390x844 and 320x640.

For each size: the question "Er du i fare akkurat nå?" shows with the first
message; one tap on Ja and Start chat, and the supervisor's queue shows the chat
at risk with "Sier selv at hen er i fare nå". A second child answers nothing; while
waiting, "Jeg trenger hjelp nå" is in the viewport and not covered; one tap, a calm
line instead, and the queue shows that chat at risk too. Screenshots as
results/screenshots/child-danger-*.png; axe-core finds nothing serious or critical.

Run as a plain script (see child_flow.py, whose helpers it uses); prints one JSON object.
"""

import json
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child_flow import Counsellor, check_exit_and_numbers, child_page  # noqa: E402
from flow import IN_SIGHT, run_script  # noqa: E402

SIZES = [("390x844", {"width": 390, "height": 844}), ("320x640", {"width": 320, "height": 640})]
SAID = "Sier selv at hen er i fare nå"


def done(run, page, name, size):
    check_exit_and_numbers(run, page, name, size)
    run.shot(page, f"child-danger-{name}-{size}")
    run.axe(page, f"danger-{name}-{size}")
    run.step(f"{name} at {size}")


def at_risk_in_queue(supervisor, chat_id, timeout=10):
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        waiting = supervisor.call("GET", "/api/v1/queue").json()["waiting"]
        row = next((w for w in waiting if w["chat_id"] == chat_id), None)
        # The child's own word ranks it; when the screen also found something,
        # its reason (in words) may be the one shown, the source stays self_report.
        if row and row["risk"] and (SAID in (row["reason"] or "") or row.get("priority_source") == "self_report"):
            return row
        time.sleep(0.2)
    raise AssertionError(f"the chat is not at risk in the queue: {row}")


def saved_chat(page):
    return json.loads(page.evaluate("sessionStorage.getItem('chatvakt-chat')"))


def leave(run, saved):
    requests.post(
        f"{run.url}/api/v1/chats/{saved['chat_id']}/end",
        json={},
        timeout=10,
        headers={"Authorization": f"Bearer {saved['token']}"},
    )


def yes_with_the_first_message(run, browser, supervisor, size, viewport):
    ctx, page = child_page(run, browser, f"danger-start-{size}", viewport)
    page.get_by_label("Vil du skrive noe allerede nå? (valgfritt)").fill("Det er noen utenfor døra.")
    question = page.get_by_role("group", name="Er du i fare akkurat nå?")
    question.scroll_into_view_if_needed()
    expect(question).to_be_visible()
    for answer in ("Ja", "Nei", "Vil ikke svare"):
        expect(question.get_by_label(answer, exact=True)).to_be_visible()
    assert not question.get_by_label("Ja", exact=True).is_checked(), "nothing is answered for the child"
    done(run, page, "question", size)
    question.get_by_text("Ja", exact=True).tap()  # one tap on the answer's label
    expect(question.get_by_label("Ja", exact=True)).to_be_checked()
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#queue-text")).to_contain_text("køen")
    saved = saved_chat(page)
    row = at_risk_in_queue(supervisor, saved["chat_id"])
    run.result["facts"][f"start_yes_{size}"] = {
        "priority": row["priority"],
        "reason": row["reason"],
        "position": row["position"],
    }
    # said already: a calm line in the button's place
    expect(page.locator("#help-now-said")).to_contain_text("Takk for at du sa ifra")
    expect(page.locator("#help-now-button")).to_be_hidden()
    done(run, page, "waiting-said-at-start", size)
    chat = supervisor.call("GET", f"/api/v1/chats/{saved['chat_id']}").json()
    assert chat["in_danger"] is True, chat
    leave(run, saved)
    ctx.close()


def help_now_while_waiting(run, browser, supervisor, size, viewport):
    ctx, page = child_page(run, browser, f"danger-later-{size}", viewport)
    page.get_by_label("Vil du skrive noe allerede nå? (valgfritt)").fill("hei")
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#queue-text")).to_contain_text("køen")
    saved = saved_chat(page)
    button = page.get_by_role("button", name="Jeg trenger hjelp nå")
    expect(button).to_be_visible()
    found = button.evaluate(IN_SIGHT)
    assert found["ok"], f"'Jeg trenger hjelp nå' not in sight/reachable at {size}: {found}"
    # still in sight with a longer wait: the child writes a few messages
    for n in range(6):
        page.locator("#text").fill(f"Er det noen der? {n}")
        page.get_by_role("button", name="Send").click()
    expect(page.locator("#log .msg.child").last).to_contain_text("Er det noen der? 5")
    page.locator("#text").blur()
    found = button.evaluate(IN_SIGHT)
    assert found["ok"], f"'Jeg trenger hjelp nå' covered after messages at {size}: {found}"
    run.result["facts"][f"help_button_{size}"] = found["rect"]
    done(run, page, "help-button", size)
    button.tap()
    expect(page.locator("#help-now-said")).to_contain_text("Takk for at du sa ifra")
    expect(button).to_be_hidden()
    row = at_risk_in_queue(supervisor, saved["chat_id"])
    run.result["facts"][f"help_now_{size}"] = {
        "priority": row["priority"],
        "reason": row["reason"],
        "position": row["position"],
    }
    done(run, page, "help-said", size)
    # the same in English
    page.get_by_role("button", name="English").click()
    expect(page.locator("#help-now-said")).to_contain_text("Thank you for telling us")
    run.shot(page, f"child-danger-help-said-english-{size}")
    page.get_by_role("button", name="Norsk").click()
    leave(run, saved)
    ctx.close()


def both_sizes(run, browser):
    supervisor = Counsellor(run.url, *run.config["supervisor"])
    for size, viewport in SIZES:
        yes_with_the_first_message(run, browser, supervisor, size, viewport)
        help_now_while_waiting(run, browser, supervisor, size, viewport)


if __name__ == "__main__":
    run_script(both_sizes)
