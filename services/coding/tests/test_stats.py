import csv
import io
import json
import random
from datetime import date, datetime, timedelta, timezone

import pytest

from chatvakt.vocabulary import GENDERS
from services.coding.rules import CONTACT_TYPES
from services.coding.stats import age_band, compute_stats, stats_to_csv
from services.coding.taxonomy import load_taxonomy

UTC = timezone.utc


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


# -- a seeded month of synthetic chats: March 2024, which holds Norway's switch
# to summer time (2024-03-31 01:00 UTC) -------------------------------------------

MONTH_START_UTC = datetime(2024, 2, 29, 23, 0, tzinfo=UTC)  # 2024-03-01 00:00 in Oslo
MONTH_END_UTC = datetime(2024, 3, 31, 22, 0, tzinfo=UTC)  # 2024-04-01 00:00 in Oslo (summer time)
DST_SWITCH_UTC = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)


def oslo_local(t):
    """Oslo wall time without zoneinfo: UTC+1, UTC+2 from the switch."""
    return (t + timedelta(hours=2 if t >= DST_SWITCH_UTC else 1)).replace(tzinfo=None)


def make_month(tax, n=900, seed=116111):
    rnd = random.Random(seed)
    codes = tax.codes()
    mains = [c.code for c in tax.categories]
    span = (MONTH_END_UTC - MONTH_START_UTC).total_seconds()
    records = []
    for i in range(n):
        started = MONTH_START_UTC + timedelta(seconds=rnd.uniform(0, span - 1))
        roll = rnd.random()
        at_risk = rnd.random() < 0.15
        rec = {
            "chat_id": f"c{i}",
            "started_at": started,
            "assigned_at": None,
            "ended_at": None,
            "status": None,
            "at_risk": at_risk,
            "coded": False,
            "gender": rnd.choice([*GENDERS, None]),
            "age": rnd.choice([None, 3, 5, 9, 10, 12, 13, 14, 15, 16, 18, 19, 25, 30]),
            "contact_type": None,
            "categories": [],
            "acute_danger": None,
        }
        if roll < 0.70:  # answered and ended
            wait = rnd.choice([rnd.uniform(0, 300), rnd.uniform(300, 3600), 300.0, 0.0])
            rec["assigned_at"] = started + timedelta(seconds=wait)
            rec["ended_at"] = rec["assigned_at"] + timedelta(seconds=rnd.uniform(60, 5400))
            rec["status"] = rnd.choice(["ended", "ended", "timed_out"])
            if rnd.random() < 0.85:
                k = rnd.choice([1, 1, 2, 3])
                cats = []
                for _ in range(k):
                    cats.append(rnd.choice(mains) if rnd.random() < 0.15 else rnd.choice(codes))
                # keep the rule: drop a main category whose subcategory is also there
                cats = [
                    c for c in dict.fromkeys(cats) if not (tax.is_main(c) and any(tax.parent(o) == c for o in cats))
                ]
                rec.update(
                    coded=True,
                    categories=cats,
                    contact_type=rnd.choice(CONTACT_TYPES),
                    acute_danger=rnd.random() < 0.05,
                )
        elif roll < 0.75:  # answered, still active
            rec["assigned_at"] = started + timedelta(seconds=rnd.uniform(0, 900))
            rec["status"] = "active"
        elif roll < 0.95:  # left the queue unanswered
            rec["ended_at"] = started + timedelta(seconds=rnd.uniform(1, 1800))
            rec["status"] = rnd.choice(["abandoned", "timed_out"])
        else:  # still waiting
            rec["status"] = "waiting"
        records.append(rec)
    return records


def nearest_rank(values, p):
    """Independent definition: the smallest observed value v with at least p% of
    the observations <= v."""
    if not values:
        return None
    need = p / 100 * len(values)
    for v in sorted(set(values)):
        if sum(1 for x in values if x <= v) >= need - 1e-9:
            return v
    raise AssertionError


@pytest.fixture(scope="module")
def month(tax):
    records = make_month(tax)
    stats = compute_stats(records, tax, date(2024, 3, 1), date(2024, 3, 31))
    return records, stats


def test_month_is_json_ready_and_names_its_range(month):
    _, stats = month
    assert json.loads(json.dumps(stats)) == stats
    assert stats["from"] == "2024-03-01" and stats["to"] == "2024-03-31"
    assert stats["tz"] == "Europe/Oslo"


def test_month_totals(month):
    records, s = month
    answered = [r for r in records if r["assigned_at"] is not None]
    abandoned = [r for r in records if r["assigned_at"] is None and r["status"] in ("abandoned", "timed_out")]
    waiting = [r for r in records if r["status"] == "waiting"]
    assert s["total_chats"] == len(records) == 900
    assert s["answered"] == len(answered)
    assert s["abandoned"] == len(abandoned)
    assert s["waiting"] == len(waiting)
    assert s["answered"] + s["abandoned"] + s["waiting"] == s["total_chats"]
    assert s["abandoned_share"] == pytest.approx(len(abandoned) / (len(answered) + len(abandoned)))
    coded_answered = [r for r in answered if r["coded"]]
    assert s["coded"] == sum(1 for r in records if r["coded"])
    assert s["coded_share"] == pytest.approx(len(coded_answered) / len(answered))


def test_month_categories(month, tax):
    records, s = month
    coded = [r for r in records if r["coded"]]
    primary, anyc, main_only, primary_main = {}, {}, {}, {}
    for r in coded:
        p = r["categories"][0]
        primary[p] = primary.get(p, 0) + 1
        m = p.split(".")[0]
        primary_main[m] = primary_main.get(m, 0) + 1
        for c in r["categories"]:
            anyc[c] = anyc.get(c, 0) + 1
            if "." not in c and not any(o.startswith(c + ".") for o in r["categories"]):
                main_only[c] = main_only.get(c, 0) + 1
    assert {k: v for k, v in s["by_primary_category"].items() if v} == primary
    assert {k: v for k, v in s["by_any_category"].items() if v} == anyc
    assert {k: v for k, v in s["main_only"].items() if v} == main_only
    assert {k: v for k, v in s["by_primary_main_category"].items() if v} == primary_main
    assert sum(s["by_primary_category"].values()) == len(coded)
    assert main_only, "the seeded month should use some main categories alone"
    # every code of the taxonomy is listed, zero or not, in taxonomy order
    assert list(s["by_primary_category"]) == tax.codes()
    assert list(s["main_only"]) == [c.code for c in tax.categories]


def test_month_demographics(month):
    records, s = month

    def band(a):
        if a is None:
            return "unknown"
        for name, lo, hi in [("5-9", 5, 9), ("10-12", 10, 12), ("13-15", 13, 15), ("16-18", 16, 18), ("19-25", 19, 25)]:
            if lo <= a <= hi:
                return name
        return "unknown"

    genders = {g: 0 for g in [*GENDERS, "unknown"]}
    ages = {b: 0 for b in ["5-9", "10-12", "13-15", "16-18", "19-25", "unknown"]}
    cts = {c: 0 for c in [*CONTACT_TYPES, "unknown"]}
    for r in records:
        genders[r["gender"] or "unknown"] += 1
        ages[band(r["age"])] += 1
        cts[r["contact_type"] or "unknown"] += 1
    assert s["by_gender"] == genders
    assert s["by_age_band"] == ages
    assert s["by_contact_type"] == cts
    assert list(s["by_age_band"]) == ["5-9", "10-12", "13-15", "16-18", "19-25", "unknown"]


def test_month_time_buckets_in_oslo_time(month):
    records, s = month
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hours = [0] * 24
    grid = {d: [0] * 24 for d in names}
    days = {}
    for r in records:
        local = oslo_local(r["started_at"])
        hours[local.hour] += 1
        grid[names[local.weekday()]][local.hour] += 1
        days[local.date().isoformat()] = days.get(local.date().isoformat(), 0) + 1
    assert s["by_hour"] == hours
    assert s["hour_by_weekday"] == grid
    # every day of March is listed, zero or not, and no other day
    assert list(s["by_day"]) == [f"2024-03-{d:02d}" for d in range(1, 32)]
    assert {k: v for k, v in s["by_day"].items() if v} == days
    assert sum(s["by_day"].values()) == len(records)


def test_month_waits_and_durations(month):
    records, s = month
    waits = [(r["assigned_at"] - r["started_at"]).total_seconds() for r in records if r["assigned_at"]]
    ab_waits = [
        (r["ended_at"] - r["started_at"]).total_seconds()
        for r in records
        if r["assigned_at"] is None and r["status"] in ("abandoned", "timed_out")
    ]
    durations = [
        (r["ended_at"] - r["assigned_at"]).total_seconds() for r in records if r["assigned_at"] and r["ended_at"]
    ]
    for block, values in (("wait_s", waits), ("abandoned_wait_s", ab_waits), ("duration_s", durations)):
        got = s[block]
        assert got["n"] == len(values)
        assert got["max"] == max(values)
        for p in (50, 90, 99):
            assert got[f"p{p}"] == nearest_rank(values, p), (block, p)
            assert got[f"p{p}"] in values  # an observation, never an interpolation


def test_month_service_levels(month):
    records, s = month
    left_queue = [r for r in records if r["assigned_at"] is not None or r["status"] in ("abandoned", "timed_out")]
    fast = [
        r
        for r in left_queue
        if r["assigned_at"] is not None and (r["assigned_at"] - r["started_at"]).total_seconds() <= 300
    ]
    assert s["answered_within_5min_share"] == pytest.approx(len(fast) / len(left_queue))
    risky = [r for r in left_queue if r["at_risk"]]
    risky_fast = [r for r in fast if r["at_risk"]]
    assert s["at_risk_answered_within_5min_share"] == pytest.approx(len(risky_fast) / len(risky))
    assessed = [r for r in records if r["coded"] and r["acute_danger"] is not None]
    danger = [r for r in assessed if r["acute_danger"]]
    assert s["acute_danger_share"] == pytest.approx(len(danger) / len(assessed))


# -- small hand-made cases ---------------------------------------------------------


def rec(i, started, *, wait=None, dur=None, status="ended", abandoned_after=None, **over):
    r = {
        "chat_id": f"c{i}",
        "started_at": started,
        "assigned_at": started + timedelta(seconds=wait) if wait is not None else None,
        "ended_at": None,
        "status": status,
        "at_risk": False,
        "coded": False,
        "gender": None,
        "age": None,
        "contact_type": None,
        "categories": [],
        "acute_danger": None,
    }
    if wait is not None and dur is not None:
        r["ended_at"] = r["assigned_at"] + timedelta(seconds=dur)
    if abandoned_after is not None:
        r["ended_at"] = started + timedelta(seconds=abandoned_after)
        r["status"] = "abandoned"
    r.update(over)
    return r


T = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)  # a Monday, 13:00 in Oslo


def test_no_records_gives_none_not_made_up_numbers(tax):
    s = compute_stats([], tax, date(2024, 1, 1), date(2024, 1, 1))
    assert s["total_chats"] == 0 and s["answered"] == 0
    for key in (
        "abandoned_share",
        "coded_share",
        "answered_within_5min_share",
        "at_risk_answered_within_5min_share",
        "acute_danger_share",
    ):
        assert s[key] is None, key
    for block in ("wait_s", "abandoned_wait_s", "duration_s"):
        assert s[block] == {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    assert s["by_day"] == {"2024-01-01": 0}
    assert s["by_hour"] == [0] * 24
    assert set(s["hour_by_weekday"]) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    assert all(v == 0 for v in s["by_primary_category"].values())
    json.dumps(s)


def test_nearest_rank_on_ten_values(tax):
    records = [rec(i, T, wait=float(i + 1), dur=60.0 * (i + 1)) for i in range(10)]
    s = compute_stats(records, tax, T, T + timedelta(days=1))
    assert s["wait_s"] == {"p50": 5.0, "p90": 9.0, "p99": 10.0, "max": 10.0, "n": 10}
    assert s["duration_s"]["p50"] == 300.0
    assert s["answered_within_5min_share"] == 1.0


def test_age_band_helper():
    assert [age_band(a) for a in (None, 4, 5, 9, 10, 12, 13, 15, 16, 18, 19, 25, 26, True, "12")] == [
        "unknown",
        "unknown",
        "5-9",
        "5-9",
        "10-12",
        "10-12",
        "13-15",
        "13-15",
        "16-18",
        "16-18",
        "19-25",
        "19-25",
        "unknown",
        "unknown",
        "unknown",
    ]


def test_five_minute_target_edges_and_at_risk(tax):
    records = [
        rec(1, T, wait=300.0, dur=10, at_risk=True),  # exactly five minutes counts
        rec(2, T, wait=300.5, dur=10, at_risk=True),
        rec(3, T, abandoned_after=20, at_risk=True),  # left the queue: not answered in time
        rec(4, T, wait=10.0, dur=10),
        rec(5, T, status="waiting", at_risk=True),  # still waiting: in no denominator
    ]
    s = compute_stats(records, tax, T, T + timedelta(hours=1))
    assert s["answered"] == 3 and s["abandoned"] == 1 and s["waiting"] == 1
    assert s["answered_within_5min_share"] == pytest.approx(2 / 4)
    assert s["at_risk_answered_within_5min_share"] == pytest.approx(1 / 3)
    assert s["abandoned_share"] == pytest.approx(1 / 4)
    assert s["abandoned_wait_s"] == {"p50": 20.0, "p90": 20.0, "p99": 20.0, "max": 20.0, "n": 1}
    assert s["at_risk_answered_within_5min_share"] is not None


def test_no_at_risk_chats_gives_none(tax):
    s = compute_stats([rec(1, T, wait=1.0, dur=1)], tax, T, T)
    assert s["at_risk_answered_within_5min_share"] is None
    assert s["coded_share"] == 0.0
    assert s["acute_danger_share"] is None


def test_active_chat_has_a_wait_but_no_duration(tax):
    s = compute_stats([rec(1, T, wait=42.0, status="active")], tax, T, T)
    assert s["wait_s"]["n"] == 1 and s["duration_s"]["n"] == 0 and s["duration_s"]["p50"] is None


def test_coding_counts(tax):
    records = [
        rec(1, T, wait=1, dur=1, coded=True, categories=["violence.bullying", "mental_health"], acute_danger=False),
        rec(2, T, wait=1, dur=1, coded=True, categories=["violence"], acute_danger=True),
        rec(3, T, wait=1, dur=1, coded=True, categories=["old.code"], acute_danger=None),  # from an earlier taxonomy
        rec(4, T, wait=1, dur=1),
    ]
    s = compute_stats(records, tax, T, T)
    assert s["by_primary_category"]["violence.bullying"] == 1
    assert s["by_primary_category"]["violence"] == 1
    assert s["by_primary_category"]["old.code"] == 1
    assert s["by_any_category"]["mental_health"] == 1
    assert s["main_only"] == {**{c.code: 0 for c in tax.categories}, "violence": 1, "mental_health": 1}
    assert s["by_primary_main_category"]["violence"] == 2
    assert s["coded"] == 3 and s["coded_share"] == pytest.approx(3 / 4)
    assert s["acute_danger_share"] == pytest.approx(1 / 2)


def test_time_zone_parameter(tax):
    late = datetime(2024, 1, 14, 23, 30, tzinfo=UTC)  # Sunday 23:30 UTC = Monday 00:30 in Oslo
    records = [rec(1, late, wait=1, dur=1)]
    oslo = compute_stats(records, tax, date(2024, 1, 14), date(2024, 1, 15))
    assert oslo["hour_by_weekday"]["mon"][0] == 1 and oslo["by_hour"][0] == 1
    assert oslo["by_day"] == {"2024-01-14": 0, "2024-01-15": 1}
    utc = compute_stats(records, tax, date(2024, 1, 14), date(2024, 1, 15), tz="UTC")
    assert utc["tz"] == "UTC"
    assert utc["hour_by_weekday"]["sun"][23] == 1 and utc["by_hour"][23] == 1
    assert utc["by_day"] == {"2024-01-14": 1, "2024-01-15": 0}
    assert compute_stats(records, tax, None, None, tz=None)["tz"] == "UTC"
    with pytest.raises(ValueError):
        compute_stats(records, tax, None, None, tz="Mars/Olympus")


def test_datetime_range_end_is_exclusive_and_naive_is_utc(tax):
    s = compute_stats([], tax, datetime(2024, 1, 1, 0, 0), datetime(2024, 1, 3, 0, 0), tz="UTC")
    assert s["from"] == "2024-01-01T00:00:00Z" and s["to"] == "2024-01-03T00:00:00Z"
    assert list(s["by_day"]) == ["2024-01-01", "2024-01-02"]


def test_naive_record_times_are_utc(tax):
    naive = T.replace(tzinfo=None)
    r = rec(1, naive, wait=60.0, dur=60.0)
    s = compute_stats([r], tax, None, None, tz="UTC")
    assert s["by_hour"][12] == 1 and s["wait_s"]["p50"] == 60.0


# -- CSV -----------------------------------------------------------------------------


def parse(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", "value"]
    return {(a, b): c for a, b, c in rows[1:]}


def test_csv_suppresses_small_counts(tax):
    records = [
        rec(i, T, wait=1.0, dur=5.0, coded=True, categories=["violence.bullying"], gender="girl", acute_danger=False)
        for i in range(3)
    ]
    records += [
        rec(
            10 + i,
            T,
            wait=2.0,
            dur=5.0,
            coded=True,
            categories=["mental_health.self_harm"],
            gender="boy",
            acute_danger=False,
        )
        for i in range(5)
    ]
    s = compute_stats(records, tax, date(2024, 1, 15), date(2024, 1, 15))
    cells = parse(stats_to_csv(s))
    assert cells[("by_primary_category", "violence.bullying")] == "<5"
    assert cells[("by_primary_category", "mental_health.self_harm")] == "5"
    assert cells[("by_primary_category", "violence.neglect")] == "0"
    assert cells[("by_gender", "girl")] == "<5" and cells[("by_gender", "boy")] == "5"
    assert cells[("summary", "total_chats")] == "8"
    assert cells[("summary", "tz")] == "Europe/Oslo"
    assert cells[("summary", "from")] == "2024-01-15"
    # shares and percentiles as they are; only the count n of a block is suppressed
    assert cells[("summary", "coded_share")] == "1.0"
    assert cells[("summary", "abandoned_share")] == "0.0"
    assert cells[("summary", "at_risk_answered_within_5min_share")] == ""
    assert cells[("wait_s", "p50")] == "2.0" and cells[("wait_s", "n")] == "8"
    assert cells[("abandoned_wait_s", "n")] == "0" and cells[("abandoned_wait_s", "p50")] == ""
    assert cells[("by_hour", "13")] == "8" and cells[("by_hour", "00")] == "0"
    assert cells[("hour_by_weekday", "mon 13")] == "8"
    assert cells[("by_day", "2024-01-15")] == "8"
    # no count from 1 to 4 anywhere
    for (section, key), value in cells.items():
        assert value not in {"1", "2", "3", "4"}, (section, key)


def test_csv_suppression_threshold(tax):
    records = [rec(i, T, wait=1.0, dur=1.0) for i in range(7)]
    s = compute_stats(records, tax, None, None)
    assert parse(stats_to_csv(s, suppress_below=10))[("summary", "total_chats")] == "<10"
    assert parse(stats_to_csv(s, suppress_below=7))[("summary", "total_chats")] == "7"
    assert parse(stats_to_csv(s, suppress_below=0))[("summary", "answered")] == "7"
    one = compute_stats(records[:1], tax, None, None)
    assert parse(stats_to_csv(one, suppress_below=1))[("summary", "total_chats")] == "1"
    assert parse(stats_to_csv(one))[("wait_s", "n")] == "<5"
    assert parse(stats_to_csv(one))[("wait_s", "max")] == "1.0"


def test_csv_of_the_month_has_every_section(month):
    _, s = month
    cells = parse(stats_to_csv(s))
    sections = {sec for sec, _ in cells}
    assert {
        "summary",
        "by_primary_category",
        "by_any_category",
        "main_only",
        "by_gender",
        "by_age_band",
        "by_contact_type",
        "hour_by_weekday",
        "by_hour",
        "by_day",
        "wait_s",
        "abandoned_wait_s",
        "duration_s",
    } <= sections
    assert len([k for k in cells if k[0] == "hour_by_weekday"]) == 7 * 24
    assert cells[("summary", "total_chats")] == "900"


def test_csv_keeps_formulas_out():
    text = stats_to_csv({"by_primary_category": {"=cmd()": 7, "-x": 0}, "x_share": -0.5})
    cells = parse(text)
    assert ("by_primary_category", "'=cmd()") in cells
    assert ("by_primary_category", "'-x") in cells
    assert cells[("summary", "x_share")] == "-0.5"
