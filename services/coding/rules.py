"""The coding rule: what a counsellor must record about every chat.

The helpline codes every chat with name (the counsellor), gender, in and out
(times) and categories. "The subcategory is the primary code; a main category
is used ONLY when no subcategory fits." The counsellor also records the
acute-danger assessment, which the helpline makes in every chat.

Two steps, both pure:

* ``CodingInputSchema().load(body)`` turns the PUT body into Python values
  (raises ``marshmallow.ValidationError`` with ``.messages`` field -> problems);
* ``check_coding(taxonomy, coding, chat_bounds)`` applies the helpline's rule and
  returns ``{}`` or field -> list of problems, written for a counsellor.

Works with marshmallow 3.23+ and 4.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from chatvakt.vocabulary import GENDERS, PHASES

from .taxonomy import Taxonomy

__all__ = [
    "CONTACT_TYPES",
    "AGE_MIN",
    "AGE_MAX",
    "NOTES_MAX",
    "MAX_CATEGORIES",
    "BOUNDS_TOLERANCE",
    "CodingInputSchema",
    "flatten_errors",
    "check_coding",
    "primary_code",
    "main_only_codes",
]

CONTACT_TYPES = (
    "child_about_self",
    "about_a_child",
    "silent",
    "hung_up",
    "abusive",
    "testing",
    "thanks",
    "information_only",
)

AGE_MIN, AGE_MAX = 5, 25
NOTES_MAX = 2000
MAX_CATEGORIES = 20
CODE_MAX = 100
# How far time in/out may lie outside the chat's own start and end (clock skew
# between services, rounding in the console).
BOUNDS_TOLERANCE = timedelta(seconds=5)


class _StrictBoolean(fields.Boolean):
    """Only JSON true/false; no "yes", 1 or "on" for a safety-relevant answer."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class _UTCDateTime(fields.AwareDateTime):
    """ISO 8601; naive means UTC; always returned as an aware UTC datetime."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", default_timezone=timezone.utc, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        result = super()._deserialize(value, attr, data, **kwargs)
        return result.astimezone(timezone.utc)


class CodingInputSchema(Schema):
    """The PUT body of /api/v1/chats/{id}/coding.

    Optional fields that are absent load as None (``contact_type`` as
    "child_about_self"), so a loaded coding always has every key.
    """

    class Meta:
        unknown = RAISE

    gender = fields.String(required=True, validate=validate.OneOf(GENDERS))
    age = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=AGE_MIN, max=AGE_MAX)
    )
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=CODE_MAX)),
        required=True,
        validate=validate.Length(max=MAX_CATEGORIES),
    )
    acute_danger_assessed = _StrictBoolean(required=True)
    acute_danger = _StrictBoolean(required=True)
    contact_type = fields.String(load_default="child_about_self", validate=validate.OneOf(CONTACT_TYPES))
    time_in = _UTCDateTime(allow_none=True, load_default=None)
    time_out = _UTCDateTime(allow_none=True, load_default=None)
    notes = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=NOTES_MAX))
    phase_seconds = fields.Dict(
        keys=fields.String(validate=validate.OneOf(PHASES)),
        values=fields.Float(allow_nan=False, validate=validate.Range(min=0)),
        allow_none=True,
        load_default=None,
    )

    def handle_error(self, error, data, *, many, **kwargs):
        # The gateway answers {"fields": {field: [problem, ...]}}: flatten the
        # nested messages of list items and dict keys/values into that shape.
        raise ValidationError(flatten_errors(error.messages), valid_data=error.valid_data)

    @post_load
    def _strip(self, data, **kwargs):
        if "categories" in data:
            data["categories"] = [c.strip() for c in data["categories"]]
        return data


def flatten_errors(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested messages -> field -> flat list of sentences.

    ``{"categories": {0: ["Not a valid string."]}}`` becomes
    ``{"categories": ["Item 1: Not a valid string."]}``.
    """

    def walk(value: Any, prefix: str) -> list[str]:
        if isinstance(value, Mapping):
            out: list[str] = []
            for key, inner in value.items():
                if isinstance(key, int):
                    label = f"Item {key + 1}"
                elif key == "key":
                    label = "Key"
                elif key == "value":
                    label = "Value"
                else:
                    label = f"'{key}'"
                out.extend(walk(inner, f"{prefix}{label}: "))
            return out
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                out.extend(walk(item, prefix))
            return out
        return [f"{prefix}{value}"]

    if not isinstance(messages, Mapping):
        return {"_schema": walk(messages, "")}
    return {str(field_name): walk(inner, "") for field_name, inner in messages.items()}


# -- the rule ---------------------------------------------------------------


def _as_utc(value: Any) -> datetime | None:
    """Aware datetimes to UTC; naive ones (e.g. read back from SQLite) are UTC."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _fmt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _name(taxonomy: Taxonomy, code: str, lang: str = "en") -> str:
    label = taxonomy.label(code, lang)
    return f"'{code}' ({label})" if label else f"'{code}'"


# The rule's messages, English and Norwegian (the console's two languages).
RULE_MESSAGES = {
    "en": {
        "no_category": "Choose at least one category. Use a subcategory; use a main category only when no "
        "subcategory fits.",
        "duplicate": "Category '{code}' is given more than once.",
        "unknown": "Unknown category code '{code}': choose a category from the list.",
        "main_with_sub": "Main category {main} cannot be used together with its own subcategory {sub}: keep "
        "the subcategory and remove the main category (a main category is used only when no "
        "subcategory fits).",
        "not_assessed": "Confirm that you assessed acute danger: the helpline always assesses whether the child "
        "is in an acute situation with danger to life or health.",
        "danger_unassessed": "Acute danger is marked, but the assessment is not: mark acute danger as assessed.",
        "out_before_in": "Time out ({out}) is before time in ({in_}).",
        "before_start": "{label} ({value}) is before the chat started ({start}).",
        "after_end": "{label} ({value}) is after the chat ended ({end}).",
        "time_in": "Time in",
        "time_out": "Time out",
    },
    "nb": {
        "no_category": "Velg minst én kategori. Bruk en underkategori; en hovedkategori brukes bare når ingen "
        "underkategori passer.",
        "duplicate": "Kategorien '{code}' er valgt mer enn én gang.",
        "unknown": "Ukjent kategorikode '{code}': velg en kategori fra listen.",
        "main_with_sub": "Hovedkategorien {main} kan ikke brukes sammen med sin egen underkategori {sub}: "
        "behold underkategorien og fjern hovedkategorien (en hovedkategori brukes bare når "
        "ingen underkategori passer).",
        "not_assessed": "Bekreft at du har vurdert akutt fare: Alarmtelefonen vurderer alltid om barnet er i en "
        "akutt situasjon med fare for liv eller helse.",
        "danger_unassessed": "Akutt fare er markert, men ikke at du har vurdert det: kryss av for at akutt fare "
        "er vurdert.",
        "out_before_in": "Tid ut ({out}) er før tid inn ({in_}).",
        "before_start": "{label} ({value}) er før samtalen startet ({start}).",
        "after_end": "{label} ({value}) er etter at samtalen sluttet ({end}).",
        "time_in": "Tid inn",
        "time_out": "Tid ut",
    },
}


def check_coding(
    taxonomy: Taxonomy,
    coding: Mapping[str, Any],
    chat_bounds: tuple[datetime | None, datetime | None] | None = None,
    lang: str = "en",
) -> dict[str, list[str]]:
    """Apply the helpline's coding rule to an already-deserialised coding.

    Returns ``{}`` when the coding may be saved, else field -> list of problems.
    ``chat_bounds`` is (chat start, chat end) as the chat service knows them;
    either may be None. Time in and out must lie within them, give or take
    BOUNDS_TOLERANCE.
    """
    problems: dict[str, list[str]] = {}
    words = RULE_MESSAGES.get(lang, RULE_MESSAGES["en"])

    def add(fieldname: str, message: str) -> None:
        problems.setdefault(fieldname, []).append(message)

    # -- categories ------------------------------------------------------------
    categories = coding.get("categories") or []
    if isinstance(categories, str):
        categories = [categories]
    if not categories:
        add("categories", words["no_category"])
    seen: set = set()
    reported_dupes: set = set()
    for code in categories:
        if code in seen:
            if code not in reported_dupes:
                add("categories", words["duplicate"].format(code=code))
                reported_dupes.add(code)
            continue
        seen.add(code)
        if not taxonomy.knows(code):
            add("categories", words["unknown"].format(code=code))
    for code in dict.fromkeys(categories):  # in order, once each
        if not taxonomy.is_main(code):
            continue
        own_subs = [c for c in dict.fromkeys(categories) if taxonomy.parent(c) == code]
        for sub in own_subs:
            add(
                "categories",
                words["main_with_sub"].format(main=_name(taxonomy, code, lang), sub=_name(taxonomy, sub, lang)),
            )

    # -- acute danger ------------------------------------------------------------
    assessed = coding.get("acute_danger_assessed")
    danger = coding.get("acute_danger")
    if assessed is not True:
        add("acute_danger_assessed", words["not_assessed"])
        if danger is True:
            add("acute_danger", words["danger_unassessed"])

    # -- time in and out ------------------------------------------------------------
    time_in = _as_utc(coding.get("time_in"))
    time_out = _as_utc(coding.get("time_out"))
    if time_in is not None and time_out is not None and time_in > time_out:
        add("time_out", words["out_before_in"].format(out=_fmt(time_out), in_=_fmt(time_in)))
    if chat_bounds is not None:
        start, end = (_as_utc(b) for b in chat_bounds)
        for fieldname, value in (("time_in", time_in), ("time_out", time_out)):
            if value is None:
                continue
            label = words[fieldname]
            if start is not None and value < start - BOUNDS_TOLERANCE:
                add(fieldname, words["before_start"].format(label=label, value=_fmt(value), start=_fmt(start)))
            if end is not None and value > end + BOUNDS_TOLERANCE:
                add(fieldname, words["after_end"].format(label=label, value=_fmt(value), end=_fmt(end)))
    return problems


def primary_code(coding: Mapping[str, Any]) -> str:
    """The primary code: the first category. ValueError when there is none."""
    categories = coding.get("categories") or []
    if not categories:
        raise ValueError("the coding has no category, so it has no primary code")
    return categories[0]


def main_only_codes(taxonomy: Taxonomy, categories: Iterable[str]) -> list[str]:
    """Main categories used without any of their subcategories ("no subcategory fits").

    In the order given, each once.
    """
    categories = list(categories or [])
    parents_used = {taxonomy.parent(c) for c in categories}
    out: list[str] = []
    for code in categories:
        if taxonomy.is_main(code) and code not in parents_used and code not in out:
            out.append(code)
    return out
