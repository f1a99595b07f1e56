"""Statistics over chats and their codings. Pure: the service builds the records.

One record per chat that started in the range::

    {"chat_id": str, "started_at": datetime (UTC), "assigned_at": datetime | None,
     "ended_at": datetime | None,
     "status": "ended" | "abandoned" | "timed_out" | "waiting" | "active",
     "at_risk": bool, "coded": bool, "gender": str | None, "age": int | None,
     "contact_type": str | None, "categories": [code, ...] (empty if uncoded),
     "acute_danger": bool | None}

Definitions (also in the README of the output, see ``compute_stats``):

* answered: the chat was assigned to a counsellor (``assigned_at`` is set);
* abandoned: never assigned and no longer waiting (the child left, or the chat
  timed out in the queue); a chat still waiting counts as neither;
* wait: ``assigned_at - started_at`` for answered chats; for abandoned chats
  ``ended_at - started_at``, reported apart as ``abandoned_wait_s``;
* duration: ``ended_at - assigned_at`` for answered chats that have ended;
* percentiles by the nearest-rank method of chatvakt.numbers (always an observed
  value), None when there is no observation; shares are None when their
  denominator is 0;
* time buckets (hour, weekday, day) in local time of ``tz`` (default Europe/Oslo).

Records are taken as given: the caller chooses the chats (those that started in
[date_from, date_to)); they are not filtered here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatvakt.numbers import percentile
from chatvakt.vocabulary import GENDERS

from .rules import CONTACT_TYPES
from .taxonomy import Taxonomy

__all__ = [
    "AGE_BANDS",
    "WEEKDAYS",
    "ANSWER_TARGET_S",
    "DEFAULT_TZ",
    "compute_stats",
    "stats_to_csv",
    "age_band",
    "range_bounds",
]

DEFAULT_TZ = "Europe/Oslo"
UTC = timezone.utc
ANSWER_TARGET_S = 300  # "answered within five minutes"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AGE_BANDS = (("5-9", 5, 9), ("10-12", 10, 12), ("13-15", 13, 15), ("16-18", 16, 18), ("19-25", 19, 25))
UNKNOWN = "unknown"
_MAX_DAYS_FILLED = 3700  # never zero-fill more than ~10 years of days


def age_band(age: Any) -> str:
    if isinstance(age, bool) or not isinstance(age, int):
        return UNKNOWN
    for name, low, high in AGE_BANDS:
        if low <= age <= high:
            return name
    return UNKNOWN


def _summary(values: list[float]) -> dict:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values, default=None),
        "n": len(values),
    }


def _share(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def _bound(value: Any, zone: ZoneInfo, end: bool) -> datetime | None:
    """A range bound as an aware datetime: a date is local midnight (the end
    bound of a date is the next local midnight, so a date range includes its
    last day); a naive datetime is UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    raise TypeError(f"expected a date or datetime, got {type(value).__name__}")


def range_bounds(date_from: Any, date_to: Any, tz: str | None = DEFAULT_TZ) -> tuple:
    """[start, end) in UTC of a range as ``compute_stats`` reads it (a date is a
    whole local day, both ends included), so the caller selects the same chats."""
    zone = _zone(tz)
    return _bound(date_from, zone, end=False), _bound(date_to, zone, end=True)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _zone(tz: str | None) -> ZoneInfo:
    name = tz or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


class _Tally:
    """The running counts of compute_stats, one method per section of the
    result, so each section's rule reads on its own."""

    def __init__(self, taxonomy: Taxonomy, zone: ZoneInfo) -> None:
        self.taxonomy = taxonomy
        self.zone = zone
        self.total = self.answered = self.abandoned = self.waiting = self.coded = 0
        self.coded_among_answered = 0
        self.wait_s: list[float] = []
        self.abandoned_wait_s: list[float] = []
        self.duration_s: list[float] = []
        self.within = self.within_den = 0
        self.risk_within = self.risk_den = 0
        self.acute_yes = self.acute_den = 0
        all_codes = taxonomy.codes()
        self.by_primary: dict[str, int] = dict.fromkeys(all_codes, 0)
        self.by_any: dict[str, int] = dict.fromkeys(all_codes, 0)
        self.by_primary_main: dict[str, int] = dict.fromkeys(taxonomy.main_codes(), 0)
        self.main_only: dict[str, int] = dict.fromkeys(taxonomy.main_codes(), 0)
        self.by_gender: dict[str, int] = dict.fromkeys((*GENDERS, UNKNOWN), 0)
        self.by_age: dict[str, int] = dict.fromkeys((*(b[0] for b in AGE_BANDS), UNKNOWN), 0)
        self.by_contact: dict[str, int] = dict.fromkeys((*CONTACT_TYPES, UNKNOWN), 0)
        self.by_status: Counter = Counter()
        self.hour_by_weekday = {d: [0] * 24 for d in WEEKDAYS}
        self.by_hour = [0] * 24
        self.by_day: Counter = Counter()

    def add(self, rec: Mapping[str, Any]) -> None:
        self.total += 1
        self.by_status[str(rec.get("status"))] += 1
        started = _utc(rec.get("started_at"))
        self._times(started)
        is_answered = self._queue(rec, started)
        self._demographics(rec)
        self._coding(rec, is_answered)

    def _times(self, started: datetime | None) -> None:
        """Time buckets, in local time."""
        if started is None:
            return
        local = started.astimezone(self.zone)
        self.hour_by_weekday[WEEKDAYS[local.weekday()]][local.hour] += 1
        self.by_hour[local.hour] += 1
        self.by_day[local.date().isoformat()] += 1

    def _queue(self, rec: Mapping[str, Any], started: datetime | None) -> bool:
        """Answered, abandoned or still waiting, and the waits."""
        assigned = _utc(rec.get("assigned_at"))
        ended = _utc(rec.get("ended_at"))
        at_risk = bool(rec.get("at_risk"))
        is_answered = assigned is not None
        # never assigned and not still in the queue ("active" without an
        # assignment should not happen; it is counted as still waiting)
        is_abandoned = not is_answered and rec.get("status") not in ("waiting", "active")
        if is_answered:
            self.answered += 1
            w = _seconds(assigned, started)
            if w is not None:
                self.wait_s.append(w)
            d = _seconds(ended, assigned)
            if d is not None:
                self.duration_s.append(d)
            self.within_den += 1
            self.risk_den += at_risk
            if w is not None and w <= ANSWER_TARGET_S:
                self.within += 1
                self.risk_within += at_risk
        elif is_abandoned:
            self.abandoned += 1
            w = _seconds(ended, started)
            if w is not None:
                self.abandoned_wait_s.append(w)
            self.within_den += 1
            self.risk_den += at_risk
        else:
            self.waiting += 1
        return is_answered

    def _demographics(self, rec: Mapping[str, Any]) -> None:
        """Every chat; unknown when not given."""
        gender = rec.get("gender")
        g_key = gender if isinstance(gender, str) and gender else UNKNOWN
        self.by_gender[g_key] = self.by_gender.get(g_key, 0) + 1
        self.by_age[age_band(rec.get("age"))] += 1
        ct = rec.get("contact_type")
        ct_key = ct if isinstance(ct, str) and ct else UNKNOWN
        self.by_contact[ct_key] = self.by_contact.get(ct_key, 0) + 1

    def _coding(self, rec: Mapping[str, Any], is_answered: bool) -> None:
        categories = list(dict.fromkeys(rec.get("categories") or []))
        if not (bool(rec.get("coded")) and bool(categories)):
            return
        taxonomy = self.taxonomy
        self.coded += 1
        self.coded_among_answered += is_answered
        primary = categories[0]
        self.by_primary[primary] = self.by_primary.get(primary, 0) + 1
        primary_main = taxonomy.main_of(primary)
        if primary_main is not None:
            self.by_primary_main[primary_main] += 1
        for code in categories:
            self.by_any[code] = self.by_any.get(code, 0) + 1
        parents = {taxonomy.parent(c) for c in categories}
        for code in categories:
            if taxonomy.is_main(code) and code not in parents:
                self.main_only[code] += 1
        acute = rec.get("acute_danger")
        if isinstance(acute, bool):
            self.acute_den += 1
            self.acute_yes += acute

    def days(self, date_from: date | datetime | None, date_to: date | datetime | None) -> dict[str, int]:
        """Every local day of the range, with the days that have chats."""
        zone = self.zone
        start_bound = _bound(date_from, zone, end=False)
        end_bound = _bound(date_to, zone, end=True)
        by_day: dict[str, int] = {}
        if start_bound is not None and end_bound is not None and end_bound > start_bound:
            first = start_bound.astimezone(zone).date()
            last = (end_bound - timedelta(microseconds=1)).astimezone(zone).date()
            day = first
            while day <= last and len(by_day) < _MAX_DAYS_FILLED:
                by_day[day.isoformat()] = 0
                day += timedelta(days=1)
        for key, n in self.by_day.items():
            by_day[key] = by_day.get(key, 0) + n
        return dict(sorted(by_day.items()))


def compute_stats(
    records: Iterable[Mapping[str, Any]],
    taxonomy: Taxonomy,
    date_from: date | datetime | None,
    date_to: date | datetime | None,
    tz: str | None = DEFAULT_TZ,
) -> dict:
    """Counts, shares and percentiles over ``records`` (see the module doc).

    JSON-ready: strings, numbers, None, lists and dicts only.
    """
    zone = _zone(tz)
    t = _Tally(taxonomy, zone)
    for rec in records:
        t.add(rec)
    return {
        "from": _iso(date_from),
        "to": _iso(date_to),
        "tz": zone.key,
        "total_chats": t.total,
        "answered": t.answered,
        "abandoned": t.abandoned,
        "waiting": t.waiting,
        "coded": t.coded,
        "by_status": dict(sorted(t.by_status.items())),
        # abandoned among the chats that left the queue (answered + abandoned)
        "abandoned_share": _share(t.abandoned, t.answered + t.abandoned),
        # coded among the answered chats
        "coded_share": _share(t.coded_among_answered, t.answered),
        "by_primary_category": t.by_primary,
        "by_primary_main_category": t.by_primary_main,
        "by_any_category": t.by_any,
        "main_only": t.main_only,
        "by_gender": t.by_gender,
        "by_age_band": t.by_age,
        "by_contact_type": t.by_contact,
        "hour_by_weekday": t.hour_by_weekday,
        "by_hour": t.by_hour,
        "by_day": t.days(date_from, date_to),
        "wait_s": _summary(t.wait_s),
        "abandoned_wait_s": _summary(t.abandoned_wait_s),
        "duration_s": _summary(t.duration_s),
        # answered within 5 minutes among the chats that left the queue
        "answered_within_5min_share": _share(t.within, t.within_den),
        "at_risk_answered_within_5min_share": _share(t.risk_within, t.risk_den),
        # acute danger among coded chats with an assessment
        "acute_danger_share": _share(t.acute_yes, t.acute_den),
    }


# -- CSV ---------------------------------------------------------------------

_PERCENTILE_SECTIONS = ("wait_s", "abandoned_wait_s", "duration_s")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    text = str(value)
    # keep spreadsheets from evaluating a cell as a formula
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stats_to_csv(stats: Mapping[str, Any], suppress_below: int = 5) -> str:
    """A spreadsheet-friendly CSV of ``compute_stats`` output: ``section,key,value``.

    Counts from 1 to ``suppress_below - 1`` are written as "<N" (N =
    suppress_below): small cells could single out a child. Zero stays 0. Shares
    and percentiles are written as they are; None is an empty cell. Scalars are
    in section "summary".
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])

    def count(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < suppress_below:
            return f"<{suppress_below}"
        return _cell(value)

    def row(section: str, key: str, value: Any, is_count: bool) -> None:
        writer.writerow([_cell(section), _cell(key), count(value) if is_count else _cell(value)])

    for section, value in stats.items():
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if isinstance(inner, (list, tuple)):  # hour_by_weekday
                    for hour, n in enumerate(inner):
                        row(section, f"{key} {hour:02d}", n, True)
                elif section in _PERCENTILE_SECTIONS:
                    row(section, str(key), inner, key == "n")
                else:
                    row(section, str(key), inner, not str(section).endswith("_share"))
        elif isinstance(value, (list, tuple)):  # by_hour
            for hour, n in enumerate(value):
                row(section, f"{hour:02d}", n, True)
        else:
            is_count = not str(section).endswith("_share") and section not in ("from", "to", "tz")
            row("summary", section, value, is_count)
    return out.getvalue()
