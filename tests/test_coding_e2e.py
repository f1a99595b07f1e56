"""Coding and statistics through the real processes, on a stack of our own.

A stack of our own because re-reminders need a short interval
(CHATVAKT_CODING_REMIND_S), and so the seeded month is the only data in its
range. The month is seeded the way the coding service learns about chats in
production: chat_ended and risk_detected events published on the real broker
exactly as the chat and escalation services publish them (the same contract,
`chatvakt.events.dump`), and codings saved through the coding service's RPC
exactly as the gateway calls it. Only the chat service is left out: it cannot
hold chats that ended two years ago, and a month through the HTTP API would
take minutes. The flow of one real chat (in/out filled from the chat, the rule,
reminders, corrections) goes through the HTTP API and the socket.
"""

import csv
import datetime as dt
import io
import math
import random
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from chatvakt import events as ev
from chatvakt.vocabulary import GENDERS
from services.coding.rules import CONTACT_TYPES
from services.coding.taxonomy import load_taxonomy
from services.coding.tests.test_taxonomy_rules import good
from tests.client import Socket, active_chat, staff, until
from tests.stack import Stack

pytestmark = pytest.mark.e2e

REMIND_S = 2
REMIND_MAX = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("coding-stack"),
        env={"CHATVAKT_CODING_REMIND_S": str(REMIND_S), "CHATVAKT_CODING_REMIND_MAX": str(REMIND_MAX)},
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def people(stack):
    """Accounts made once (each `chatvakt accounts add` takes seconds)."""
    return staff(stack), staff(stack), staff(stack, "supervisor")


def ended_chat(stack, counsellor, gender="boy", age=14):
    """A real chat: started by a child, taken, moved to a phase, ended by the child."""
    chat_id, child = active_chat(stack, counsellor, gender=gender, age=age)
    phase = counsellor.put(f"/api/v1/chats/{chat_id}/phase", {"phase": "request_and_goal"})
    assert phase.status_code == 200, phase.text
    assert child.post(f"/api/v1/chats/{chat_id}/end").json()["status"] == "ended"
    return chat_id, child


# The coding rules' own valid example (services/coding/tests), as a client sends it: no empty fields.
GOOD = {field: value for field, value in good().items() if value is not None}


def test_a_chat_is_coded_by_the_rule_and_nothing_uncoded_goes_unnoticed(stack, people):
    counsellor, other, supervisor = people
    socket = Socket(stack.url, counsellor.token)
    watcher = Socket(stack.url, supervisor.token)
    chat_id, child = ended_chat(stack, counsellor)
    path = f"/api/v1/chats/{chat_id}/coding"

    # an uncoded record exists at once, and the counsellor is told
    first = socket.wait_for("coding.required", lambda d: d["chat_id"] == chat_id)
    assert first["reminder"] == 0 and first["uncoded"] == 1
    mine = counsellor.get("/api/v1/coding/uncoded").json()
    assert [c["chat_id"] for c in mine["chats"]] == [chat_id] and mine["count"] == 1
    assert other.get("/api/v1/coding/uncoded").json()["chats"] == []
    assert chat_id in [c["chat_id"] for c in supervisor.get("/api/v1/coding/uncoded").json()["chats"]]

    # still uncoded: reminded again, and supervisors told once it is overdue
    again = socket.wait_for(
        "coding.required", lambda d: d["chat_id"] == chat_id and d["reminder"] == 1, timeout=REMIND_S * 4
    )
    assert again["uncoded"] == 1 and not again["overdue"]
    overdue = watcher.wait_for("coding.overdue", lambda d: d["chat_id"] == chat_id, timeout=REMIND_S * 4)
    assert overdue["reminder"] == REMIND_MAX and overdue["counsellor_id"] == counsellor.id

    # in and out are filled from the chat; time per phase too
    chat = counsellor.get(f"/api/v1/chats/{chat_id}").json()
    draft = counsellor.get(path).json()
    assert draft["coded"] is False and draft["gender"] == "boy" and draft["age"] == 14
    assert draft["time_in"] == chat["started_at"] and draft["time_out"] == chat["ended_at"]
    assert set(draft["phase_seconds"]) == {"opening", "request_and_goal"}
    assert draft["phase_seconds_source"] == "chat"

    # every branch of the rule: 422 naming the field
    for change, field in (
        ({"categories": []}, "categories"),
        ({"categories": ["violence", "violence.bullying"]}, "categories"),
        ({"categories": ["violence.bullying", "violence"]}, "categories"),
        ({"categories": ["no_such_code"]}, "categories"),
        ({"categories": "violence.bullying"}, "categories"),
        ({"acute_danger_assessed": False}, "acute_danger_assessed"),
        ({"contact_type": "prank"}, "contact_type"),
        ({"time_out": "2001-01-01T00:00:00Z"}, "time_out"),
        ({"age": 99}, "age"),
    ):
        bad = counsellor.put(path, {**GOOD, **change})
        assert bad.status_code == 422, (change, bad.text)
        assert field in bad.json()["error"]["fields"], (change, bad.text)
    assert counsellor.put(path, {k: v for k, v in GOOD.items() if k != "acute_danger_assessed"}).status_code == 422
    assert other.put(path, GOOD).status_code == 404
    # The chat has ended, and the child's token with it (409); a live one would be 403.
    assert child.put(path, GOOD).status_code == 409

    # a main category alone is accepted as "no subcategory fits"
    saved = counsellor.put(path, {**GOOD, "categories": ["family_relationships", "violence.bullying"]})
    assert saved.status_code == 200, saved.text
    coding = saved.json()
    assert coding["coded"] and coding["main_only"] == ["family_relationships"]
    assert coding["category_details"][0]["no_subcategory_fits"] is True
    assert coding["taxonomy_version"] == counsellor.get("/api/v1/taxonomy").json()["version"]
    assert counsellor.get("/api/v1/coding/uncoded").json()["chats"] == []

    # a correction later, kept with who and when
    fixed = supervisor.put(path, {**GOOD, "categories": ["violence.cyberbullying"], "acute_danger": True})
    assert fixed.status_code == 200, fixed.text
    history = counsellor.get(f"{path}/history")
    assert history.status_code == 200, history.text
    versions = history.json()["history"]
    assert [v["changed_by"] for v in versions] == [counsellor.id, supervisor.id]
    assert versions[0]["coding"]["categories"] == ["family_relationships", "violence.bullying"]
    assert versions[1]["correction"] and "categories" in versions[1]["changed_fields"]
    assert versions[0]["changed_at"] <= versions[1]["changed_at"]
    assert other.get(f"{path}/history").status_code == 404
    assert supervisor.get(f"{path}/history").status_code == 200
    socket.close()
    watcher.close()


def test_stats_endpoint_validates_and_is_for_supervisors(stack, people):
    counsellor, _, supervisor = people
    assert counsellor.get("/api/v1/stats").status_code == 403
    assert counsellor.get("/api/v1/stats?format=csv").status_code == 403
    for query, field in (
        ("from=yesterday", "from"),
        ("to=2024-02-30", "to"),
        ("from=2024-03-02&to=2024-03-01", "to"),
        ("format=xlsx", "format"),
    ):
        bad = supervisor.get(f"/api/v1/stats?{query}")
        assert bad.status_code == 422, (query, bad.text)
        assert field in bad.json()["error"]["fields"]
    assert supervisor.get("/api/v1/taxonomy?version=never-was").status_code == 404


# -- a seeded month ----------------------------------------------------------------

OSLO = ZoneInfo("Europe/Oslo")
MONTH_FROM = dt.datetime(2023, 3, 1, tzinfo=OSLO).astimezone(dt.UTC)
MONTH_TO = dt.datetime(2023, 4, 1, tzinfo=OSLO).astimezone(dt.UTC)  # after the switch to summer time
COUNSELLORS = ("seed-kari", "seed-ola", "seed-nora")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def iso(t):
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def seed_month(tax, n=260, seed=116111):
    rnd = random.Random(seed)
    subs = [c for c in tax.codes() if tax.is_sub(c)]
    mains = tax.main_codes()
    span = (MONTH_TO - MONTH_FROM).total_seconds()
    starts = [MONTH_FROM + dt.timedelta(seconds=rnd.uniform(0, span - 1)) for _ in range(n)]
    # the range's edges: a minute inside and a minute outside each end
    starts += [MONTH_FROM, MONTH_TO - dt.timedelta(minutes=1), MONTH_FROM - dt.timedelta(minutes=1), MONTH_TO]
    chats = []
    for i, started in enumerate(starts):
        chat = {
            "chat_id": f"seed-{i:04d}",
            "started_at": started,
            "at_risk": rnd.random() < 0.15,
            "gender": rnd.choice([*GENDERS, None]),
            "age": rnd.choice([None, 5, 9, 10, 12, 13, 14, 15, 16, 19, 25]),
            "coding": None,
        }
        if rnd.random() < 0.78:
            wait = rnd.choice([rnd.uniform(0, 299), rnd.uniform(301, 2400), 300.0])
            chat["assigned_at"] = started + dt.timedelta(seconds=wait)
            chat["ended_at"] = chat["assigned_at"] + dt.timedelta(seconds=rnd.uniform(60, 4000))
            chat["status"] = rnd.choice(["ended", "ended", "ended", "timed_out"])
            chat["counsellor_id"] = rnd.choice(COUNSELLORS)
            if rnd.random() < 0.85:
                if rnd.random() < 0.2:
                    codes = [rnd.choice(mains)] + rnd.sample(subs, rnd.choice([0, 1]))
                else:
                    codes = rnd.sample(subs, rnd.choice([1, 1, 2, 3]))
                # keep the rule: no main category next to one of its own subcategories
                codes = [
                    c for c in dict.fromkeys(codes) if not (tax.is_main(c) and any(tax.parent(o) == c for o in codes))
                ]
                chat["coding"] = {
                    "gender": rnd.choice(GENDERS),
                    "age": rnd.choice([None, 11, 13, 14, 17, 22]),
                    "categories": codes,
                    "contact_type": rnd.choice(CONTACT_TYPES),
                    "acute_danger_assessed": True,
                    "acute_danger": rnd.random() < 0.08,
                }
        else:
            chat["assigned_at"] = None
            chat["ended_at"] = started + dt.timedelta(seconds=rnd.uniform(5, 1800))
            chat["status"] = "abandoned"
            chat["counsellor_id"] = None
        chats.append(chat)
    return chats


def chat_ended(chat):
    return {
        "chat_id": chat["chat_id"],
        "status": chat["status"],
        "ended_by": "child",
        "started_at": iso(chat["started_at"]),
        "assigned_at": iso(chat["assigned_at"]) if chat["assigned_at"] else None,
        "ended_at": iso(chat["ended_at"]),
        "counsellor_id": chat["counsellor_id"],
        "counsellor_name": "Seed" if chat["counsellor_id"] else None,
        "gender": chat["gender"],
        "age": chat["age"],
        "phases": {},
    }


def nearest_rank(values, p):
    values = sorted(values)
    return values[max(1, math.ceil(p / 100 * len(values))) - 1] if values else None


def band(age):
    if age is None:
        return "unknown"
    return next(
        name
        for name, lo, hi in (("5-9", 5, 9), ("10-12", 10, 12), ("13-15", 13, 15), ("16-18", 16, 18), ("19-25", 19, 25))
        if lo <= age <= hi
    )


def expected(chats, tax):
    """The month's numbers, computed here from the seed alone."""
    inside = [c for c in chats if MONTH_FROM <= c["started_at"] < MONTH_TO]
    answered = [c for c in inside if c["assigned_at"]]
    abandoned = [c for c in inside if not c["assigned_at"]]
    coded = [c for c in inside if c["coding"]]
    left = len(answered) + len(abandoned)
    waits = [(c["assigned_at"] - c["started_at"]).total_seconds() for c in answered]
    durations = [(c["ended_at"] - c["assigned_at"]).total_seconds() for c in answered]
    risky = [c for c in inside if c["at_risk"]]

    def said(c, key):
        return (c["coding"] or {}).get(key, c[key]) if c["coding"] else c[key]

    hours = {d: [0] * 24 for d in WEEKDAYS}
    for c in inside:
        local = c["started_at"].astimezone(OSLO)
        hours[WEEKDAYS[local.weekday()]][local.hour] += 1
    main_only = Counter()
    for c in coded:
        cats = c["coding"]["categories"]
        main_only.update(m for m in cats if tax.is_main(m) and not any(tax.parent(o) == m for o in cats))
    return {
        "total_chats": len(inside),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "coded": len(coded),
        "by_primary_category": Counter(c["coding"]["categories"][0] for c in coded),
        "by_any_category": Counter(code for c in coded for code in c["coding"]["categories"]),
        "main_only": main_only,
        "by_gender": Counter(said(c, "gender") or "unknown" for c in inside),
        "by_age_band": Counter(band(said(c, "age")) for c in inside),
        "by_contact_type": Counter(c["coding"]["contact_type"] if c["coding"] else "unknown" for c in inside),
        "hour_by_weekday": hours,
        "wait_p50": nearest_rank(waits, 50),
        "wait_p90": nearest_rank(waits, 90),
        "duration_p50": nearest_rank(durations, 50),
        "duration_p90": nearest_rank(durations, 90),
        "abandoned_share": len(abandoned) / left,
        "answered_within_5min_share": sum(w <= 300 for w in waits) / left,
        "at_risk_answered_within_5min_share": sum(
            1 for c in risky if c["assigned_at"] and (c["assigned_at"] - c["started_at"]).total_seconds() <= 300
        )
        / len(risky),
        "acute_danger_share": sum(c["coding"]["acute_danger"] for c in coded) / len(coded),
        "coded_share": len(coded) / len(answered),
    }


def nonzero(counts):
    return {k: v for k, v in counts.items() if v}


def test_statistics_over_a_seeded_month(stack, people):
    tax = load_taxonomy()
    chats = seed_month(tax)
    config = {"AMQP_URI": stack.amqp_uri}
    publish = event_dispatcher(config)
    for chat in chats:
        if chat["at_risk"]:
            publish(
                ev.ESCALATION,
                ev.RISK_DETECTED,
                ev.dump(
                    ev.ESCALATION,
                    ev.RISK_DETECTED,
                    {
                        "chat_id": chat["chat_id"],
                        "seq": 2,
                        "category": "suicide",
                        "severity": "high",
                        "reason": "seed",
                        "detected_at": iso(chat["started_at"]),
                    },
                ),
            )
        publish(ev.CHAT, ev.CHAT_ENDED, ev.dump(ev.CHAT, ev.CHAT_ENDED, chat_ended(chat)))
    supervisor = people[2]
    # chat_ended is the coding service's one source: a coding waits for its record
    to_code = {chat["chat_id"] for chat in chats if chat["coding"]}
    until(
        lambda: to_code <= {c["chat_id"] for c in supervisor.get("/api/v1/coding/uncoded").json()["chats"]},
        timeout=30,
        interval=0.2,
    )
    with ClusterRpcProxy(config) as cluster:
        replies = [
            cluster.coding.save_coding.call_async(
                chat_ended(chat), chat["coding"], {"role": "counsellor", "id": chat["counsellor_id"], "name": "Seed"}
            )
            for chat in chats
            if chat["coding"]
        ]
        assert all(reply.result()["coded"] for reply in replies)

    want = expected(chats, tax)
    query = "/api/v1/stats?from=2023-03-01&to=2023-03-31"
    got = {}

    def arrived():  # every risk_detected too
        got.update(supervisor.get(query).json())
        return (got["total_chats"], got["at_risk_answered_within_5min_share"]) == (
            want["total_chats"],
            want["at_risk_answered_within_5min_share"],
        )

    until(arrived, timeout=30, interval=0.2)

    for key in ("total_chats", "answered", "abandoned", "coded"):
        assert got[key] == want[key], key
    for key in ("by_primary_category", "by_any_category", "main_only", "by_gender", "by_age_band", "by_contact_type"):
        assert nonzero(got[key]) == dict(want[key]), key
    assert sum(want["main_only"].values()) > 0
    assert got["hour_by_weekday"] == want["hour_by_weekday"]
    assert (got["wait_s"]["p50"], got["wait_s"]["p90"]) == pytest.approx((want["wait_p50"], want["wait_p90"]), abs=1e-3)
    assert (got["duration_s"]["p50"], got["duration_s"]["p90"]) == pytest.approx(
        (want["duration_p50"], want["duration_p90"]), abs=1e-3
    )
    for key in (
        "abandoned_share",
        "answered_within_5min_share",
        "at_risk_answered_within_5min_share",
        "acute_danger_share",
        "coded_share",
    ):
        assert got[key] == pytest.approx(want[key]), key

    # the same numbers as CSV, with every count that could single out a child suppressed
    response = supervisor.get(query + "&format=csv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = {(r["section"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(response.text))}

    def shown(n):
        return "<5" if 0 < n < 5 else str(n)

    assert rows[("summary", "total_chats")] == shown(want["total_chats"])
    for code in tax.codes():
        assert rows[("by_primary_category", code)] == shown(want["by_primary_category"][code]), code
        assert rows[("by_any_category", code)] == shown(want["by_any_category"][code]), code
    for day, counts in want["hour_by_weekday"].items():
        for hour, n in enumerate(counts):
            assert rows[("hour_by_weekday", f"{day} {hour:02d}")] == shown(n)
    for gender, n in want["by_gender"].items():
        assert rows[("by_gender", gender)] == shown(n)
    assert any(v == "<5" for v in rows.values()) and any(v not in ("<5", "0", "") for v in rows.values())
    assert float(rows[("summary", "coded_share")]) == pytest.approx(want["coded_share"], abs=1e-6)
