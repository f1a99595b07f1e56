import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from services.coding.rules import (
    BOUNDS_TOLERANCE,
    CONTACT_TYPES,
    GENDERS,
    PHASES,
    CodingInputSchema,
    check_coding,
    flatten_errors,
    main_only_codes,
    primary_code,
)
from services.coding.taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    Category,
    Subcategory,
    TaxonomyError,
    load_taxonomy,
    taxonomy_from_dict,
)

UTC = timezone.utc

MAINS = [
    "missing_children",
    "violence",
    "mental_health",
    "physical_health",
    "access_to_services",
    "discrimination_and_exclusion",
    "family_relationships",
    "peer_relationships",
    "education_and_occupation",
    "sexuality",
]


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy(DEFAULT_TAXONOMY_PATH)


def good(**over):
    coding = {
        "gender": "girl",
        "age": 13,
        "categories": ["violence.bullying"],
        "acute_danger_assessed": True,
        "acute_danger": False,
        "contact_type": "child_about_self",
        "time_in": None,
        "time_out": None,
        "notes": None,
        "phase_seconds": None,
    }
    coding.update(over)
    return coding


# -- the default taxonomy -----------------------------------------------------


def test_default_taxonomy_has_the_chi_main_categories_in_order(tax):
    assert tax.version == "chi-1"
    assert [c.code for c in tax.categories] == MAINS
    assert tax.name


def test_every_main_category_has_other_and_well_formed_codes(tax):
    codes = tax.codes()
    assert len(codes) == len(set(codes))
    for cat in tax.categories:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cat.code)
        assert cat.label_nb and cat.label_en
        sub_codes = [s.code for s in cat.subcategories]
        assert f"{cat.code}.other" in sub_codes
        assert len(sub_codes) >= 4
        for sub in cat.subcategories:
            assert re.fullmatch(rf"{cat.code}\.[a-z][a-z0-9_]*", sub.code)
            assert sub.label_nb and sub.label_en


@pytest.mark.parametrize(
    "code",
    [
        "violence.bullying",
        "violence.cyberbullying",
        "violence.neglect",
        "violence.physical_violence",
        "violence.psychological_violence",
        "violence.sexual_violence",
        "violence.online_sexual_abuse",
        "violence.forced_marriage",
        "violence.domestic_violence_witnessed",
        "mental_health.self_harm",
        "mental_health.suicidal_thoughts",
        "mental_health.suicide_attempt",
        "mental_health.anxiety",
        "mental_health.depression",
        "mental_health.eating",
        "mental_health.substance_use",
        "mental_health.loneliness",
    ],
)
def test_named_subcategories_exist(tax, code):
    assert tax.is_sub(code) and tax.knows(code) and not tax.is_main(code)


def test_norwegian_labels(tax):
    assert tax.label("violence", "nb") == "Vold"
    assert tax.label("violence.bullying", "nb") == "Mobbing"
    assert tax.label("violence.bullying", "en") == "Bullying"
    assert tax.label("nope") is None


def test_questions_about_codes(tax):
    assert tax.is_main("violence") and not tax.is_sub("violence")
    assert tax.parent("violence.bullying") == "violence"
    assert tax.parent("violence") is None
    assert tax.parent("nope.x") is None
    assert not tax.knows("nope") and not tax.is_main("nope") and not tax.is_sub("nope")
    assert not tax.knows(None) and not tax.knows(3) and tax.parent(None) is None
    assert tax.main_of("violence.bullying") == "violence"
    assert tax.main_of("violence") == "violence"
    assert tax.main_of("nope") is None
    assert "violence.bullying" in tax.subcategory_codes("violence")
    assert tax.subcategory_codes("violence.bullying") == []


def test_to_api_shape_and_language(tax):
    nb = tax.to_api()
    assert nb["version"] == "chi-1"
    first = nb["categories"][0]
    assert set(first) == {"code", "label", "label_nb", "label_en", "subcategories"}
    assert set(first["subcategories"][0]) == {"code", "label", "label_nb", "label_en"}
    v_nb = next(c for c in nb["categories"] if c["code"] == "violence")
    assert v_nb["label"] == "Vold"
    en = tax.to_api("en")
    v_en = next(c for c in en["categories"] if c["code"] == "violence")
    assert v_en["label"] == "Violence"
    assert v_en["subcategories"][0]["label"] == v_en["subcategories"][0]["label_en"]
    assert tax.to_api("en-GB")["categories"][0]["label"] == en["categories"][0]["label"]
    assert tax.to_api("xx")["categories"][0]["label"] == nb["categories"][0]["label"]
    json.dumps(nb)  # JSON-ready


# -- loading and validation ---------------------------------------------------


def write(tmp_path, doc, name="tax.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return p


def small_doc():
    return {
        "version": "test-1",
        "name": "Test",
        "categories": [
            {
                "code": "a",
                "label_nb": "A nb",
                "label_en": "A en",
                "subcategories": [
                    {"code": "a.x", "label_nb": "AX", "label_en": "AX"},
                    {"code": "a.other", "label_nb": "Annet", "label_en": "Other"},
                ],
            },
            {"code": "b", "label_nb": "B", "label_en": "B", "subcategories": []},
        ],
    }


def test_load_from_path_and_env(tmp_path, monkeypatch):
    p = write(tmp_path, small_doc())
    t = load_taxonomy(p)
    assert t.version == "test-1" and t.name == "Test"
    assert t.categories[0] == Category(
        "a", "A nb", "A en", (Subcategory("a.x", "AX", "AX"), Subcategory("a.other", "Annet", "Other"))
    )
    monkeypatch.setenv("CHATVAKT_TAXONOMY", str(p))
    assert load_taxonomy().version == "test-1"
    monkeypatch.delenv("CHATVAKT_TAXONOMY")
    assert load_taxonomy().version == "chi-1"


def test_taxonomy_is_immutable_and_comparable(tmp_path):
    t1 = load_taxonomy(write(tmp_path, small_doc()))
    t2 = taxonomy_from_dict(small_doc())
    assert t1 == t2
    with pytest.raises(AttributeError):  # a frozen dataclass
        t1.version = "x"


def test_missing_file(tmp_path):
    with pytest.raises(TaxonomyError, match="does not exist"):
        load_taxonomy(tmp_path / "nope.json")


def test_missing_file_named_by_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATVAKT_TAXONOMY", str(tmp_path / "nope.json"))
    with pytest.raises(TaxonomyError, match="does not exist"):
        load_taxonomy()


def test_not_json(tmp_path):
    with pytest.raises(TaxonomyError, match="not valid JSON.*line 1"):
        load_taxonomy(write(tmp_path, "{not json"))


def test_not_utf8(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b'{"version": "\xff"}')
    with pytest.raises(TaxonomyError, match="cannot be read"):
        load_taxonomy(p)


def _broken(mutate):
    doc = small_doc()
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.clear() or d.update({"x": 1}), "'version'"),
        (lambda d: d.update(version=""), "'version'"),
        (lambda d: d.update(name=5), "'name'"),
        (lambda d: d.update(categories=[]), "'categories'"),
        (lambda d: d.update(categories={"a": 1}), "'categories'"),
        (lambda d: d["categories"].append("x"), "must be an object"),
        (lambda d: d["categories"][1].update(code="B"), "main category code 'B'"),
        (lambda d: d["categories"][1].update(code="b.c"), "without a dot"),
        (lambda d: d["categories"][1].update(code="a"), "code 'a' is used more than once"),
        (lambda d: d["categories"][1].update(label_nb=""), "'label_nb'"),
        (lambda d: d["categories"][1].pop("label_en"), "'label_en'"),
        (lambda d: d["categories"][1].update(subcategories="x"), "'subcategories' must be a list"),
        (lambda d: d["categories"][0]["subcategories"].append(3), "must be an object"),
        (
            lambda d: d["categories"][0]["subcategories"][0].update(code="b.x"),
            "must start with its main category's code 'a.'",
        ),
        (lambda d: d["categories"][0]["subcategories"][0].update(code="a.X"), "subcategory code 'a.X'"),
        (lambda d: d["categories"][0]["subcategories"][0].update(code="a"), "subcategory code 'a'"),
        (lambda d: d["categories"][0]["subcategories"][0].update(code="a.x.y"), "subcategory code 'a.x.y'"),
        (lambda d: d["categories"][0]["subcategories"][1].update(code="a.x"), "code 'a.x' is used more than once"),
        (lambda d: d["categories"][0]["subcategories"][0].update(label_en=None), "'label_en'"),
        (lambda d: d["categories"][0]["subcategories"][0].update(label_en="x" * 201), "longer than"),
    ],
)
def test_broken_file_gives_taxonomy_error(tmp_path, mutate, message):
    p = write(tmp_path, _broken(mutate))
    with pytest.raises(TaxonomyError, match=re.escape(message)):
        load_taxonomy(p)


def test_top_level_not_an_object(tmp_path):
    with pytest.raises(TaxonomyError, match="top level"):
        load_taxonomy(write(tmp_path, "[1, 2]"))


def test_taxonomy_error_is_a_value_error():
    assert issubclass(TaxonomyError, ValueError)


# -- the input schema ----------------------------------------------------------


def body(**over):
    b = {"gender": "girl", "categories": ["violence.bullying"], "acute_danger_assessed": True, "acute_danger": False}
    b.update(over)
    return b


def test_schema_minimal_body_fills_defaults():
    data = CodingInputSchema().load(body())
    assert data == good(age=None)


def test_schema_full_body():
    data = CodingInputSchema().load(
        body(
            age=12,
            contact_type="about_a_child",
            time_in="2024-03-01T10:00:00+02:00",
            time_out="2024-03-01T08:30:00",
            notes="ok",
            phase_seconds={p: 1 for p in PHASES},
        )
    )
    assert data["time_in"] == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert data["time_in"].utcoffset() == timedelta(0)
    assert data["time_out"] == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)  # naive = UTC
    assert data["phase_seconds"] == {p: 1.0 for p in PHASES}
    assert data["contact_type"] == "about_a_child" and data["age"] == 12 and data["notes"] == "ok"


@pytest.mark.parametrize("gender", GENDERS)
def test_schema_accepts_every_gender(gender):
    assert CodingInputSchema().load(body(gender=gender))["gender"] == gender


@pytest.mark.parametrize("ct", CONTACT_TYPES)
def test_schema_accepts_every_contact_type(ct):
    assert CodingInputSchema().load(body(contact_type=ct))["contact_type"] == ct


@pytest.mark.parametrize(
    "over, field",
    [
        ({"gender": "girlish"}, "gender"),
        ({"gender": None}, "gender"),
        ({"age": 4}, "age"),
        ({"age": 26}, "age"),
        ({"age": 12.5}, "age"),
        ({"age": "12"}, "age"),
        ({"categories": "violence"}, "categories"),
        ({"categories": [1]}, "categories"),
        ({"categories": [""]}, "categories"),
        ({"categories": ["violence.other"] * 21}, "categories"),
        ({"acute_danger_assessed": "true"}, "acute_danger_assessed"),
        ({"acute_danger_assessed": 1}, "acute_danger_assessed"),
        ({"acute_danger": None}, "acute_danger"),
        ({"contact_type": "prank"}, "contact_type"),
        ({"time_in": "yesterday"}, "time_in"),
        ({"time_in": 1700000000}, "time_in"),
        ({"time_out": "2024-13-01T00:00:00Z"}, "time_out"),
        ({"notes": "x" * 2001}, "notes"),
        ({"phase_seconds": {"chatting": 3}}, "phase_seconds"),
        ({"phase_seconds": {"opening": -1}}, "phase_seconds"),
        ({"phase_seconds": {"opening": "NaN"}}, "phase_seconds"),
        ({"phase_seconds": [1]}, "phase_seconds"),
        ({"counsellor": "me"}, "counsellor"),
    ],
)
def test_schema_refuses(over, field):
    with pytest.raises(ValidationError) as err:
        CodingInputSchema().load(body(**over))
    messages = err.value.messages
    assert field in messages
    # flat: field -> list of strings, as the gateway's error shape wants
    assert all(isinstance(m, str) for m in messages[field]), messages


@pytest.mark.parametrize("field", ["gender", "categories", "acute_danger_assessed", "acute_danger"])
def test_schema_required_fields(field):
    b = body()
    del b[field]
    with pytest.raises(ValidationError) as err:
        CodingInputSchema().load(b)
    assert field in err.value.messages


def test_schema_allows_nulls_for_optional_fields():
    data = CodingInputSchema().load(body(age=None, time_in=None, time_out=None, notes=None, phase_seconds=None))
    assert data["age"] is None and data["time_in"] is None and data["notes"] is None


def test_schema_not_an_object():
    with pytest.raises(ValidationError) as err:
        CodingInputSchema().load([1])
    assert err.value.messages == {"_schema": ["Invalid input type."]}


def test_flatten_errors_nested():
    assert flatten_errors({"categories": {0: ["Bad."]}, "x": ["Y."]}) == {"categories": ["Item 1: Bad."], "x": ["Y."]}
    assert flatten_errors({"p": {"k": {"key": ["K."], "value": ["V."]}}}) == {"p": ["'k': Key: K.", "'k': Value: V."]}
    assert flatten_errors(["Whole."]) == {"_schema": ["Whole."]}


# -- the rule --------------------------------------------------------------------


def test_a_good_coding_passes(tax):
    assert check_coding(tax, good()) == {}


def test_a_subcategory_with_another_main_category_is_fine(tax):
    # a main category is allowed when none of ITS subcategories is given
    assert check_coding(tax, good(categories=["violence.bullying", "mental_health"])) == {}


def test_subcategories_of_different_mains_are_fine(tax):
    assert (
        check_coding(
            tax, good(categories=["mental_health.self_harm", "violence.bullying", "family_relationships.divorce"])
        )
        == {}
    )


def test_main_category_alone_is_accepted_and_counted_as_no_subcategory_fits(tax):
    c = good(categories=["violence"])
    assert check_coding(tax, c) == {}
    assert main_only_codes(tax, c["categories"]) == ["violence"]


@pytest.mark.parametrize("cats", [[], None])
def test_no_category(tax, cats):
    problems = check_coding(tax, good(categories=cats))
    assert list(problems) == ["categories"]
    assert "at least one category" in problems["categories"][0]


def test_missing_categories_key(tax):
    c = good()
    del c["categories"]
    assert "categories" in check_coding(tax, c)


def test_unknown_code(tax):
    problems = check_coding(tax, good(categories=["violence.bullying", "violence.nope"]))
    assert problems == {"categories": ["Unknown category code 'violence.nope': choose a category from the list."]}


def test_duplicate_code_reported_once(tax):
    problems = check_coding(tax, good(categories=["violence.bullying", "violence.bullying", "violence.bullying"]))
    assert problems == {"categories": ["Category 'violence.bullying' is given more than once."]}


@pytest.mark.parametrize(
    "cats",
    [
        ["violence", "violence.bullying"],
        ["violence.bullying", "violence"],
        ["mental_health.eating", "violence.bullying", "violence"],
    ],
)
def test_main_with_its_own_subcategory_is_refused_naming_both(tax, cats):
    problems = check_coding(tax, good(categories=cats))
    assert list(problems) == ["categories"]
    (msg,) = problems["categories"]
    assert "'violence'" in msg and "'violence.bullying'" in msg
    assert "only when no subcategory fits" in msg


def test_main_with_two_own_subcategories_gives_two_problems(tax):
    problems = check_coding(tax, good(categories=["violence", "violence.bullying", "violence.neglect"]))
    assert len(problems["categories"]) == 2
    assert "'violence.neglect'" in problems["categories"][1]


def test_acute_danger_must_be_assessed(tax):
    problems = check_coding(tax, good(acute_danger_assessed=False))
    assert list(problems) == ["acute_danger_assessed"]
    assert "always assesses" in problems["acute_danger_assessed"][0]
    assert "acute_danger_assessed" in check_coding(tax, good(acute_danger_assessed=None))


def test_acute_danger_without_assessment(tax):
    problems = check_coding(tax, good(acute_danger_assessed=False, acute_danger=True))
    assert set(problems) == {"acute_danger_assessed", "acute_danger"}
    assert "mark acute danger as assessed" in problems["acute_danger"][0]


def test_acute_danger_assessed_and_present_is_fine(tax):
    assert check_coding(tax, good(acute_danger=True)) == {}


T0 = datetime(2024, 3, 10, 22, 0, tzinfo=UTC)


def test_time_out_before_time_in(tax):
    problems = check_coding(tax, good(time_in=T0, time_out=T0 - timedelta(seconds=1)))
    assert list(problems) == ["time_out"]
    assert "before time in" in problems["time_out"][0]


def test_time_in_equal_time_out_is_fine(tax):
    assert check_coding(tax, good(time_in=T0, time_out=T0)) == {}


def test_only_one_time_given_is_fine(tax):
    assert check_coding(tax, good(time_in=T0)) == {}
    assert check_coding(tax, good(time_out=T0)) == {}


def test_naive_datetimes_are_utc(tax):
    naive = T0.replace(tzinfo=None)
    assert check_coding(tax, good(time_in=naive, time_out=T0 + timedelta(minutes=1)), (T0, None)) == {}
    problems = check_coding(tax, good(time_in=naive, time_out=naive - timedelta(minutes=1)))
    assert "time_out" in problems


def test_times_within_bounds(tax):
    bounds = (T0, T0 + timedelta(minutes=30))
    assert check_coding(tax, good(time_in=T0, time_out=T0 + timedelta(minutes=30)), bounds) == {}
    # the tolerance either side
    tol = BOUNDS_TOLERANCE
    assert tol >= timedelta(seconds=1)
    assert check_coding(tax, good(time_in=T0 - tol, time_out=bounds[1] + tol), bounds) == {}


def test_time_in_before_the_chat_started(tax):
    bounds = (T0, T0 + timedelta(minutes=30))
    problems = check_coding(
        tax, good(time_in=T0 - BOUNDS_TOLERANCE - timedelta(seconds=1), time_out=T0 + timedelta(minutes=5)), bounds
    )
    assert list(problems) == ["time_in"]
    assert "before the chat started" in problems["time_in"][0]


def test_time_out_after_the_chat_ended(tax):
    bounds = (T0, T0 + timedelta(minutes=30))
    problems = check_coding(tax, good(time_in=T0, time_out=bounds[1] + timedelta(minutes=1)), bounds)
    assert list(problems) == ["time_out"]
    assert "after the chat ended" in problems["time_out"][0]


def test_time_in_after_the_chat_ended_and_time_out_before_it_started(tax):
    bounds = (T0, T0 + timedelta(minutes=30))
    problems = check_coding(tax, good(time_in=bounds[1] + timedelta(hours=1), time_out=T0 - timedelta(hours=1)), bounds)
    assert any("after the chat ended" in m for m in problems["time_in"])
    assert any("before the chat started" in m for m in problems["time_out"])
    assert any("before time in" in m for m in problems["time_out"])


def test_open_bounds(tax):
    # a chat that has not ended: only the start bounds the times
    assert check_coding(tax, good(time_in=T0, time_out=T0 + timedelta(days=1)), (T0, None)) == {}
    assert "time_in" in check_coding(tax, good(time_in=T0 - timedelta(hours=1)), (T0, None))
    assert check_coding(tax, good(time_in=T0 - timedelta(hours=1)), (None, None)) == {}
    assert "time_out" in check_coding(tax, good(time_out=T0 + timedelta(hours=1)), (None, T0))


def test_aware_non_utc_bounds(tax):
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    bounds = (T0.astimezone(oslo), (T0 + timedelta(minutes=30)).astimezone(oslo))
    assert check_coding(tax, good(time_in=T0, time_out=T0 + timedelta(minutes=30)), bounds) == {}


def test_several_problems_at_once(tax):
    problems = check_coding(
        tax,
        good(
            categories=["violence", "violence.bullying", "x"],
            acute_danger_assessed=False,
            acute_danger=True,
            time_in=T0,
            time_out=T0 - timedelta(hours=1),
        ),
    )
    assert set(problems) == {"categories", "acute_danger_assessed", "acute_danger", "time_out"}
    assert len(problems["categories"]) == 2


def test_schema_then_rule_end_to_end(tax):
    data = CodingInputSchema().load(body(categories=["violence", "violence.bullying"]))
    assert "categories" in check_coding(tax, data)


# -- helpers ---------------------------------------------------------------------------


def test_primary_code():
    assert primary_code({"categories": ["violence.bullying", "mental_health"]}) == "violence.bullying"
    with pytest.raises(ValueError):
        primary_code({"categories": []})
    with pytest.raises(ValueError):
        primary_code({})


def test_main_only_codes(tax):
    assert main_only_codes(tax, ["violence.bullying", "mental_health", "violence", "mental_health"]) == [
        "mental_health"
    ]
    assert main_only_codes(tax, ["sexuality", "peer_relationships"]) == ["sexuality", "peer_relationships"]
    assert main_only_codes(tax, ["violence.bullying", "nope"]) == []
    assert main_only_codes(tax, []) == []
    assert main_only_codes(tax, None) == []
