"""Tests for the escalation service's risk screen (pure domain code)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest
import yaml

from services.escalation import risk
from services.escalation.evaluate import DEFAULT_DATA, load, run
from services.escalation.risk import (
    CATEGORIES,
    CATEGORY_WORDS,
    DEFAULT_LEXICON_PATH,
    LexiconError,
    LexiconRiskScreen,
    RiskFinding,
    RiskScreen,
    default_screen,
    normalise,
)


@pytest.fixture(scope="module")
def screen() -> LexiconRiskScreen:
    return LexiconRiskScreen.from_file(DEFAULT_LEXICON_PATH)


def cats(screen, text):
    return {f.category for f in screen.screen(text)}


def finding(screen, text, category):
    found = [f for f in screen.screen(text) if f.category == category]
    assert found, f"no {category} finding for {text!r}: {screen.screen(text)}"
    return found[0]


# --------------------------------------------------------------------- interface


def test_public_interface(screen):
    assert CATEGORIES == ("suicide", "self_harm", "violence_home", "sexual_abuse", "medical_danger")
    assert isinstance(screen, RiskScreen)
    assert dataclasses.is_dataclass(RiskFinding)
    f = RiskFinding("suicide", "high", ("vil dø",), "selvmord: «vil dø»")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.severity = "medium"  # type: ignore[misc]


def test_every_finding_is_well_formed(screen):
    for row in load():
        for f in screen.screen(row["text"]):
            assert f.category in CATEGORIES
            assert f.severity in ("high", "medium")
            assert f.terms and all(isinstance(t, str) for t in f.terms)
            assert isinstance(f.reason, str) and f.reason


def test_nothing_found_is_an_empty_list(screen):
    assert screen.screen("hei, jeg lurer på noe om skolen") == []
    assert screen.screen("") == []
    assert screen.screen("   ") == []
    assert screen.screen("😂😂😂") == []
    assert screen.screen(None) == []  # type: ignore[arg-type]


def test_default_screen_is_cached_and_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv(risk.LEXICON_ENV, raising=False)
    a = default_screen()
    assert a is default_screen()
    assert a.screen("jeg vil dø")

    tiny = {
        "categories": {"suicide": {"label": "selvmord"}},
        "entries": [{"id": "s.x", "category": "suicide", "term": "blåbær", "patterns": ["blåbær"]}],
    }
    path = tmp_path / "lex.yaml"
    path.write_text(yaml.safe_dump(tiny, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv(risk.LEXICON_ENV, str(path))
    b = default_screen()
    assert b is not a
    assert b.screen("jeg vil dø") == []
    assert [f.terms for f in b.screen("BLAABÆR!")] == [("blåbær",)]


def test_bad_lexicon_fails_at_load_not_at_screening():
    base = {"categories": {"suicide": {}}}
    with pytest.raises(LexiconError):
        LexiconRiskScreen({**base, "entries": [{"id": "a", "category": "nope", "patterns": ["x"]}]})
    with pytest.raises(LexiconError):
        LexiconRiskScreen({**base, "entries": [{"id": "a", "category": "suicide", "patterns": ["(unclosed"]}]})
    with pytest.raises(LexiconError):
        LexiconRiskScreen({**base, "entries": [{"id": "a", "category": "suicide", "patterns": ["{NOMACRO}"]}]})
    with pytest.raises(LexiconError):
        LexiconRiskScreen(
            {
                **base,
                "entries": [
                    {"id": "a", "category": "suicide", "patterns": ["x"]},
                    {"id": "a", "category": "suicide", "patterns": ["y"]},
                ],
            }
        )
    with pytest.raises(LexiconError):
        LexiconRiskScreen(
            {**base, "entries": [{"id": "a", "category": "suicide", "severity": "low", "patterns": ["x"]}]}
        )


# --------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    "a, b",
    [
        ("Jeg vil DØØØØ!!!", "jeg vil dø"),
        ("jeg vil do", "jeg vil dø"),
        ("ønsker å dø", "onsker aa do"),
        ("kutta meg", "kuta meg"),
        ("I'm not", "im not"),
    ],
)
def test_normalise_folds_spelling_variants(a, b):
    assert normalise(a) == normalise(b)


def test_normalise_marks_clauses():
    assert normalise("Hei, jeg er 13. 😂 Mamma?") == ". hei . jeg er 13 . mama ."


# --------------------------------------------------------------------- categories × languages

DETECT = {
    "suicide": {
        "nb": [
            "jeg vil dø",
            "har lyst til å ta livet mitt",
            "tar livet mitt",
            "jeg vil ikke leve lenger",
            "onsker å do",
            "vil dææææ",
            "drep meg",
            "alle hadde hatt det bedre uten meg",
            "har skrevet avskjedsbrev",
            "jeg orker ikke mer, vil bare dø",
        ],
        "nn": [
            "eg vil ikkje leve meir",
            "æ vil ikkje leve meir",
            "eg har lyst å døy",
            "vil drepe mæ sjøl",
            "eg tenkjer på sjølvmord",
        ],
        "en": [
            "i want to kill myself",
            "kms",
            "i want to unalive myself",
            "i want to die",
            "everyone would be better off without me",
        ],
    },
    "self_harm": {
        "nb": ["jeg kutter meg", "har lyst å skade meg sjøl", "kutta meg igjen i går", "driver med selvskading"],
        "nn": ["eg kuttar meg", "eg skadar meg sjølv", "æ kutte mæ"],
        "en": ["i cut myself", "i've been self harming", "i hurt myself on purpose"],
    },
    "violence_home": {
        "nb": [
            "pappa slår meg",
            "mamma slo meg",
            "stefaren min banker meg",
            "jeg blir slått hjemme",
            "jeg tør ikke gå hjem",
        ],
        "nn": ["pappa slår mæ", "faren min bankar meg", "eg vart slått av mora mi"],
        "en": ["he hits me", "my dad beats me", "my mom slapped me"],
    },
    "sexual_abuse": {
        "nb": [
            "han tar på meg",
            "jeg ble voldtatt",
            "onkelen min tvinger meg til å gjøre seksuelle ting",
            "han truer med å dele nakenbildene mine",
        ],
        "nn": ["han tek på meg", "eg vart valdteken"],
        "en": ["he touched me", "i was raped", "he keeps asking me to send nudes"],
    },
    "medical_danger": {
        "nb": ["tok overdose", "har spist masse piller", "blør mye", "jeg har tatt 20 paracet"],
        "nn": ["eg har tatt altfor mange tablettar", "æ har tatt masse pilla"],
        "en": ["took an overdose", "i swallowed a bunch of pills", "i'm bleeding a lot"],
    },
}


@pytest.mark.parametrize(
    "category, lang, text",
    [(c, lang, t) for c, by in DETECT.items() for lang, texts in by.items() for t in texts],
)
def test_each_category_detected_in_each_language(screen, category, lang, text):
    assert category in cats(screen, text)


def test_overdose_is_medical_and_suicide(screen):
    assert {"medical_danger", "suicide"} <= cats(screen, "tok en overdose for en time siden")


# --------------------------------------------------------------------- idioms, topics, ordinary worries


@pytest.mark.parametrize(
    "text",
    [
        "jeg døde av latter",
        "drepte den testen!",
        "this homework is killing me",
        "jeg dør av kjedsomhet",
        "mamma dreper meg hvis jeg kommer sent hjem",
        "mamma drep meg viss eg kjem seint heim",
        "I could kill for a pizza",
        "my mom will kill me if i'm late",
        "vi lærte om selvmord i norsken",
        "we watched a documentary about suicide in class",
        "broren min slår meg i fifa hele tiden",
        "jeg tar på meg jakka og går",
        "overdose av lekser i dag",
        "tok en paracet mot hodepine",
        "jeg kutta håret mitt selv",
        "jeg kutta meg på et papirark",
        "jeg har mensen og blør mye, er det normalt?",
        "kjæresten min slo opp med meg",
        "foreldrene mine skal skilles",
        "jeg blir mobbet på skolen",
        "kyss meg",
        "this is sh*t",
        "that's odd",
    ],
)
def test_idioms_and_ordinary_worries_not_matched(screen, text):
    assert screen.screen(text) == []


# --------------------------------------------------------------------- negation


@pytest.mark.parametrize(
    "text",
    [
        "jeg vil ikke dø",
        "jeg har ikke lyst til å dø",
        "eg vil ikkje døy",
        "I'm not going to kill myself",
        "i would never kill myself",
        "jeg skal ikke ta livet mitt, jeg trenger bare å snakke",
        "jeg har aldri kuttet meg",
        "i'm not suicidal, just stressed",
        "han har ikke tatt på meg",
    ],
)
def test_negation_cancels(screen, text):
    assert screen.screen(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "jeg vil ikke leve lenger",
        "jeg vil ikke leve mer",
        "eg vil ikkje leve meir",
        "i don't want to live anymore",
        "ser ingen grunn til å leve",
        "jeg orker ikke mer, vil bare dø",
        "jeg vet ikke, jeg vil bare dø",
        "jeg vil ikke være her lenger",
    ],
)
def test_negated_living_is_still_risk(screen, text):
    f = finding(screen, text, "suicide")
    assert f.severity == "high"


# --------------------------------------------------------------------- whose risk


@pytest.mark.parametrize(
    "text, category",
    [
        ("venninna mi sier hun vil ta livet sitt", "suicide"),
        ("my friend says she wants to end her life", "suicide"),
        ("bestevennen min kutter seg", "self_harm"),
        ("venninna mi har selvmordstanker", "suicide"),
        ("broren min snakker om å drepe seg selv", "suicide"),
        ("pappa banker mamma", "violence_home"),
        ("kusinen min ble voldtatt", "sexual_abuse"),
    ],
)
def test_someone_else_at_risk_is_kept_at_medium(screen, text, category):
    f = finding(screen, text, category)
    assert f.severity == "medium"
    assert "annen person" in f.reason


def test_friend_in_medical_danger_stays_high(screen):
    f = finding(screen, "vennen min har tatt masse piller og er bevisstløs", "medical_danger")
    assert f.severity == "high"


@pytest.mark.parametrize(
    "text, category",
    [
        ("jeg vil ta livet mitt", "suicide"),
        ("pappa slår meg", "violence_home"),  # "pappa" is the perpetrator, the child is at risk
        ("pappa truer med å slå meg", "violence_home"),
        ("han tar på meg", "sexual_abuse"),
        ("venninna mi sier at jeg burde ta livet mitt", "suicide"),
    ],
)
def test_child_at_risk_is_high(screen, text, category):
    f = finding(screen, text, category)
    assert f.severity == "high"
    assert "annen person" not in f.reason


@pytest.mark.parametrize(
    "text",
    [
        "hvorfor tar folk livet sitt",
        "vi leste en bok om en jente som tok livet sitt",
        "filmen handler om en som prøver å ta livet sitt",
        "jeg har lest om folk som kutter seg",
    ],
)
def test_generic_talk_and_topics_dropped(screen, text):
    assert screen.screen(text) == []


def test_joke_cue_lowers_but_keeps(screen):
    f = finding(screen, "vil dø jk", "suicide")
    assert f.severity == "medium"


# --------------------------------------------------------------------- explainability


CHILD_TEXTS = [
    "Jeg heter Sofie og bor i Tromsø, pappa slår meg hver kveld 😢",
    "eg vil ikkje leve meir, ingen i klassen bryr seg om meg",
    "my name is Tom and my stepdad touches me at night, please help",
    "tok 30 ibux for en halvtime siden og er redd nå",
    "har kutta meg med barberblad på armen igjen",
]


@pytest.mark.parametrize("text", CHILD_TEXTS)
def test_reasons_contain_only_lexicon_terms(screen, text):
    lexicon = yaml.safe_load(Path(DEFAULT_LEXICON_PATH).read_text(encoding="utf-8"))
    canonical = {str(e.get("term") or e["id"]) for e in lexicon["entries"]}
    topics = {str(e.get("topic") or e.get("term") or e["id"]) for e in lexicon["entries"]}
    findings = screen.screen(text)
    assert findings
    for f in findings:
        assert set(f.terms) <= canonical
        # "<nb> / <en> — matched: topic, topic (note)": the category in words and
        # the lexicon's topics, never «quoted» as if the child had written them
        m = re.fullmatch(r"(.+?) / (.+?) — matched: ([^()]+?)(?: \(([^)]*)\))?", f.reason)
        assert m, f.reason
        assert (m.group(1), m.group(2)) == CATEGORY_WORDS[f.category]
        assert "«" not in f.reason and "»" not in f.reason
        assert m.group(3).split(", ") == list(f.topics)
        assert set(f.topics) <= topics
        if m.group(4):
            assert set(m.group(4).split("; ")) <= {lexicon["person"]["third_person_reason"], lexicon["joke_reason"]}
    # and the child's own words never leak through
    for word in ("Sofie", "Tromsø", "Tom", "klassen", "barberblad", "halvtime", "please"):
        assert all(word not in f.reason and word not in f.terms for f in findings)


# --------------------------------------------------------------------- eval set guard


@pytest.fixture(scope="module")
def eval_rows():
    return load(DEFAULT_DATA)


def test_eval_set_shape(eval_rows):
    assert len(eval_rows) >= 350
    for r in eval_rows:
        assert set(r["labels"]) <= set(CATEGORIES)
        assert r["lang"] in ("nb", "nn", "en")
        assert r["split"] in ("dev", "test")
    at_risk = sum(1 for r in eval_rows if r["labels"]) / len(eval_rows)
    test_share = sum(1 for r in eval_rows if r["split"] == "test") / len(eval_rows)
    assert 0.35 <= at_risk <= 0.55
    assert 0.3 <= test_share <= 0.5
    assert len({r["text"] for r in eval_rows}) == len(eval_rows)


def test_test_split_recall_and_fpr_guard(screen, eval_rows):
    """A regression guard, not the goal (goal: recall >= 0.95 at FPR <= 0.05)."""
    res = run(screen, [r for r in eval_rows if r["split"] == "test"])
    assert res["recall"] >= 0.90, res["recall"]
    assert res["fpr"] <= 0.10, res["fpr"]


def test_fast_enough(screen, eval_rows):
    texts = [r["text"] for r in eval_rows]
    for t in texts[:50]:
        screen.screen(t)
    best = []
    for t in texts:
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            screen.screen(t)
            samples.append(time.perf_counter() - t0)
        best.append(min(samples))
    best.sort()
    assert best[len(best) // 2] < 0.001  # median well under 1 ms (typically ~0.1 ms)


def test_topics_never_read_as_the_child_speaking():
    """A topic is what the counsellor reads in the reason: a neutral phrase,
    never a first-person sentence that looks like a quote of the child."""
    lexicon = yaml.safe_load(Path(DEFAULT_LEXICON_PATH).read_text(encoding="utf-8"))
    # ("i" is Norwegian for "in": English topics are not used)
    first_person = {"jeg", "meg", "min", "mitt", "mine", "me", "my", "myself"}
    for entry in lexicon["entries"]:
        topic = str(entry.get("topic") or "")
        assert topic, entry["id"]
        assert not set(re.findall(r"\w+", topic.lower())) & first_person, (entry["id"], topic)


def test_reason_is_the_category_in_words_and_what_matched():
    screen = default_screen()
    text = "han gjør ting med meg som jeg ikke vil og jeg vil dø"
    findings = screen.screen(text)
    assert findings
    for f in findings:
        assert f.reason.startswith(" / ".join(CATEGORY_WORDS[f.category]) + " — matched: ")
        assert "«" not in f.reason and text not in f.reason
        assert "gjør ting med meg som jeg ikke vil" not in f.reason
