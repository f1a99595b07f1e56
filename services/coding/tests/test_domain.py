"""The coding service's domain on a real database (SQLite and PostgreSQL), without a broker."""

import datetime as dt

import pytest

from chatvakt.errors import Conflict, Invalid, NotFound
from chatvakt.testing import read, run
from services.coding import domain
from services.coding.taxonomy import load_taxonomy, taxonomy_from_dict

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 6, 20, 0, tzinfo=UTC)
KARI = {"role": "counsellor", "id": "kari", "name": "Kari Nordmann"}
OLA = {"role": "counsellor", "id": "ola", "name": "Ola"}
BOSS = {"role": "supervisor", "id": "boss", "name": "Vakthavende"}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


@pytest.fixture
def ended(db):
    """A database that has learned of chat c1's end, as chat_ended tells it."""
    run(db, domain.record_chat, facts())
    return db


def iso(t):
    return t.isoformat().replace("+00:00", "Z")


def facts(chat_id="c1", status="ended", counsellor="kari", **over):
    base = {
        "chat_id": chat_id,
        "status": status,
        "started_at": iso(T0),
        "assigned_at": iso(T0 + dt.timedelta(minutes=2)) if counsellor else None,
        "ended_at": iso(T0 + dt.timedelta(minutes=32)) if status not in ("waiting", "active") else None,
        "counsellor_id": counsellor,
        "counsellor_name": "Kari Nordmann" if counsellor else None,
        "gender": "girl",
        "age": 13,
        "phases": {
            "opening": iso(T0),
            "request_and_goal": iso(T0 + dt.timedelta(minutes=5)),
            "summary_and_close": iso(T0 + dt.timedelta(minutes=25)),
        },
    }
    base.update(over)
    return base


def body(**over):
    out = {
        "gender": "girl",
        "age": 13,
        "categories": ["violence.bullying"],
        "acute_danger_assessed": True,
        "acute_danger": False,
    }
    out.update(over)
    return out


def test_an_ended_chat_is_recorded_once_and_its_counsellor_reminded(db):
    created, outbox = run(db, domain.record_chat, facts())
    assert created and outbox.events == [
        ("coding_required", {"chat_id": "c1", "counsellor_id": "kari", "uncoded": 1, "reminder": 0})
    ]
    again, outbox = run(db, domain.record_chat, facts())
    assert not again and outbox.events == []
    assert [c["chat_id"] for c in read(db, domain.uncoded, KARI)] == ["c1"]
    assert read(db, domain.uncoded, OLA) == []
    assert [c["chat_id"] for c in read(db, domain.uncoded, BOSS)] == ["c1"]


def test_abandoned_and_open_chats_need_no_coding(db):
    _, outbox = run(db, domain.record_chat, facts("a", status="abandoned", counsellor=None))
    assert outbox.events == []
    assert run(db, domain.record_chat, facts("b", status="active"))[0] is False
    assert read(db, domain.uncoded, BOSS) == []
    draft = read(db, domain.get_coding, facts("b", status="active"), KARI, load_taxonomy())
    assert draft["coded"] is False
    assert read(db, domain.uncoded, BOSS) == []
    with pytest.raises(Conflict):
        run(db, domain.save_coding, facts("b", status="active"), body(), KARI, load_taxonomy())


def test_time_in_and_out_and_phases_are_filled_from_the_chat(ended, tax):
    coding, _ = run(ended, domain.save_coding, facts(), body(), KARI, tax)
    assert coding["time_in"] == iso(T0) and coding["time_out"] == iso(T0 + dt.timedelta(minutes=32))
    # opening counts from the assignment (minute 2), not from the start of the wait
    assert coding["phase_seconds"] == {"opening": 180.0, "request_and_goal": 1200.0, "summary_and_close": 420.0}
    assert coding["phase_seconds_source"] == "chat"
    corrected, _ = run(ended, domain.save_coding, facts(), body(phase_seconds={"opening": 60}), KARI, tax)
    assert corrected["phase_seconds"] == {"opening": 60.0}
    assert corrected["phase_seconds_source"] == "counsellor"


def test_time_in_out_correctable_within_the_chat(ended, tax):
    ok, _ = run(ended, domain.save_coding, facts(), body(time_in=iso(T0 + dt.timedelta(minutes=2))), KARI, tax)
    assert ok["time_in"] == iso(T0 + dt.timedelta(minutes=2))
    with pytest.raises(Invalid) as bad:
        run(ended, domain.save_coding, facts(), body(time_out=iso(T0 + dt.timedelta(hours=3))), KARI, tax)
    assert "time_out" in bad.value.fields


@pytest.mark.parametrize(
    "categories, field",
    [
        ([], "categories"),
        (["violence", "violence.bullying"], "categories"),
        (["no_such_code"], "categories"),
    ],
)
def test_the_rule_refuses(ended, tax, categories, field):
    with pytest.raises(Invalid) as bad:
        run(ended, domain.save_coding, facts(), body(categories=categories), KARI, tax)
    assert field in bad.value.fields


def test_a_main_category_alone_is_no_subcategory_fits(ended, tax):
    coding, outbox = run(
        ended, domain.save_coding, facts(), body(categories=["violence", "mental_health.anxiety"]), KARI, tax
    )
    assert coding["main_only"] == ["violence"]
    assert [d["no_subcategory_fits"] for d in coding["category_details"]] == [True, False]
    assert coding["category_details"][0]["label"] == "Vold" and coding["primary_category"] == "violence"
    assert outbox.events[-1] == (
        "chat_coded",
        {
            "chat_id": "c1",
            "counsellor_id": "kari",
            "coded_at": outbox.events[-1][1]["coded_at"],
            "acute_danger": False,
            "corrected": False,
        },
    )


def test_only_the_chats_counsellor_or_a_supervisor_codes(ended, tax):
    with pytest.raises(NotFound):
        run(ended, domain.save_coding, facts(), body(), OLA, tax)
    run(ended, domain.save_coding, facts(), body(), BOSS, tax)
    with pytest.raises(NotFound):
        read(ended, domain.coding_history, "c1", OLA)


def test_corrections_are_kept_with_who_and_when(ended, tax):
    run(ended, domain.save_coding, facts(), body(), KARI, tax, now=T0 + dt.timedelta(hours=1))
    _, outbox = run(
        ended,
        domain.save_coding,
        facts(),
        body(acute_danger=True, categories=["mental_health.self_harm"]),
        BOSS,
        tax,
        now=T0 + dt.timedelta(hours=2),
    )
    assert outbox.events[-1][1]["corrected"] is True and outbox.events[-1][1]["acute_danger"] is True
    versions = read(ended, domain.coding_history, "c1", KARI)
    assert [(v["changed_by"], v["changed_at"], v["correction"]) for v in versions] == [
        ("kari", iso(T0 + dt.timedelta(hours=1)), False),
        ("boss", iso(T0 + dt.timedelta(hours=2)), True),
    ]
    assert versions[1]["changed_fields"] == ["categories", "acute_danger"]
    assert versions[0]["coding"]["categories"] == ["violence.bullying"]
    assert read(ended, domain.uncoded, KARI) == []


def test_an_old_coding_keeps_its_taxonomy(ended, tax):
    run(ended, domain.save_coding, facts(), body(), KARI, tax)
    doc = tax.to_document()
    doc["version"] = "local-2"
    doc["categories"] = [c for c in doc["categories"] if c["code"] != "violence"]
    newer = taxonomy_from_dict(doc)
    coding = read(ended, domain.get_coding, facts(), KARI, newer)
    assert coding["taxonomy_version"] == tax.version
    assert coding["category_details"][0]["label"] == "Mobbing"
    assert read(ended, domain.taxonomy_view, tax.version, newer)["version"] == tax.version
    with pytest.raises(NotFound):
        read(ended, domain.taxonomy_view, "never-was", newer)


def test_re_reminders_until_coded_then_overdue(db, tax):
    run(db, domain.record_chat, facts("c1"))
    run(db, domain.record_chat, facts("c2"))
    end = T0 + dt.timedelta(minutes=32)
    assert run(db, domain.remind_uncoded, 600, 2, now=end + dt.timedelta(minutes=5))[0] == 0
    sent, outbox = run(db, domain.remind_uncoded, 600, 2, now=end + dt.timedelta(minutes=11))
    assert sent == 2 and [p["reminder"] for _, p in outbox.events] == [1, 1]
    assert all(p["uncoded"] == 2 and not p["overdue"] for _, p in outbox.events)
    run(db, domain.save_coding, facts("c2"), body(), KARI, tax)
    assert run(db, domain.remind_uncoded, 600, 2, now=end + dt.timedelta(minutes=15))[0] == 0
    sent, outbox = run(db, domain.remind_uncoded, 600, 2, now=end + dt.timedelta(minutes=22))
    assert sent == 1 and outbox.events[0][1] == {
        "chat_id": "c1",
        "counsellor_id": "kari",
        "uncoded": 1,
        "reminder": 2,
        "overdue": True,
    }
    assert run(db, domain.remind_uncoded, 600, 2, now=end + dt.timedelta(hours=5))[0] == 0


def test_stats_range_is_validated(db, tax):
    for args, field in (
        (("yesterday", None), "from"),
        ((None, "2024-13-01"), "to"),
        (("2024-05-02", "2024-05-01"), "to"),
    ):
        with pytest.raises(Invalid) as bad:
            read(db, domain.statistics, tax, *args)
        assert field in bad.value.fields


def test_stats_count_abandoned_at_risk_and_main_only(db, tax):
    run(db, domain.record_chat, facts("c1"))
    run(db, domain.record_chat, facts("c2", status="abandoned", counsellor=None))
    run(db, domain.mark_at_risk, "c1")
    run(db, domain.mark_at_risk, "c1")
    run(db, domain.save_coding, facts("c1"), body(categories=["violence"], acute_danger=True), KARI, tax)
    stats = read(db, domain.statistics, tax, "2024-05-06", "2024-05-06")
    assert (stats["total_chats"], stats["answered"], stats["abandoned"], stats["coded"]) == (2, 1, 1, 1)
    assert stats["main_only"]["violence"] == 1 and stats["acute_danger_share"] == 1.0
    assert stats["at_risk_answered_within_5min_share"] == 1.0 and stats["wait_s"]["p50"] == 120.0
    assert read(db, domain.statistics, tax, "2024-05-07", None)["total_chats"] == 0


# -- one source: chat_ended --------------------------------------------------------------


def test_the_chat_ended_event_is_the_one_source_of_a_records_facts(ended, tax):
    """The gateway's read of the chat (passed with every coding) disagrees on
    everything: first name only, other child, other times. The record keeps
    what chat_ended said, and the rule's time bounds are the event's."""
    read_by_gateway = facts(
        counsellor_name="Kari",
        gender="boy",
        age=15,
        started_at=iso(T0 - dt.timedelta(hours=1)),
        ended_at=iso(T0 + dt.timedelta(hours=2)),
        phases={},
    )
    form = read(ended, domain.get_coding, read_by_gateway, KARI, tax)
    assert form["counsellor"] == {"id": "kari", "name": "Kari Nordmann"}
    assert (form["gender"], form["age"]) == ("girl", 13)
    assert (form["time_in"], form["time_out"]) == (iso(T0), iso(T0 + dt.timedelta(minutes=32)))
    assert form["phase_seconds"]["opening"] == 180.0
    with pytest.raises(Invalid) as bad:  # inside the gateway's end, after the event's
        run(ended, domain.save_coding, read_by_gateway, body(time_out=iso(T0 + dt.timedelta(hours=1))), KARI, tax)
    assert "time_out" in bad.value.fields
    run(ended, domain.save_coding, read_by_gateway, body(), KARI, tax)
    assert read(ended, domain.get_coding, read_by_gateway, KARI, tax)["counsellor"]["name"] == "Kari Nordmann"
    # a redelivered chat_ended is the source still
    run(ended, domain.record_chat, facts(counsellor_name="Kari N."))
    assert read(ended, domain.get_coding, facts(), KARI, tax)["counsellor"]["name"] == "Kari N."


def test_a_chat_whose_end_is_not_recorded_yet_is_drawn_not_stored(db, tax):
    draft = read(db, domain.get_coding, facts(), KARI, tax)
    assert draft["coded"] is False and draft["time_out"] == iso(T0 + dt.timedelta(minutes=32))
    with pytest.raises(NotFound):
        read(db, domain.get_coding, facts(), OLA, tax)
    with pytest.raises(Conflict) as early:
        run(db, domain.save_coding, facts(), body(), KARI, tax, lang="en")
    assert "try again" in early.value.message
    assert read(db, domain.uncoded, BOSS) == []
    run(db, domain.record_chat, facts())
    assert run(db, domain.save_coding, facts(), body(), KARI, tax)[0]["coded"] is True
