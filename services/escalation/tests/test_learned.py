"""The learned risk screen beside the lexicon: the shipped model file, the
combined screen, reasons without the child's text, timing, and the exported
scorer equal to the scikit-learn pipeline it came from. Broker-free."""

from __future__ import annotations

import json
import re
import time
import zipfile

import numpy as np
import pytest

from services.escalation import learned as L
from services.escalation.risk import RiskScreen, default_screen


@pytest.fixture(scope="module")
def model():
    return L.LearnedModel.load(L.SHIPPED_MODEL_PATH)


@pytest.fixture(scope="module")
def screen(model):
    return L.CombinedRiskScreen(model, default_screen())


# The issue's examples, and the category each must be found in.
ISSUE_EXAMPLES = [
    (["Det står en mann utenfor døra og banker, jeg er alene hjemme"], "acute_threat"),
    (["han sier han legger ut bildene hvis jeg ikke betaler i kveld"], "grooming_sextortion"),
    (["vi får ikke liv i kompisen min"], {"someone_else", "medical_danger"}),
    (["jeg har gitt bort tingene mine"], "suicide"),
]


def test_shipped_model_loads_fast_without_pickle(model):
    with zipfile.ZipFile(L.SHIPPED_MODEL_PATH) as z:
        for name in z.namelist():
            with z.open(name) as fh:
                header = fh.read(256)
            assert b"'descr': '|O'" not in header and b"'descr': 'O'" not in header, name
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        L.LearnedModel.load(L.SHIPPED_MODEL_PATH)
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0
    assert model.labels == L.LABELS
    assert 0 < model.thresholds["any"] < 1


def test_combined_is_a_risk_screen(screen):
    assert isinstance(screen, RiskScreen)
    assert screen.screen("") == []
    assert screen.screen(None) == []  # type: ignore[arg-type]
    assert screen.screen("hei, jeg lurer på noe om skolen") == []


@pytest.mark.parametrize("messages, category", ISSUE_EXAMPLES)
def test_issue_examples_found_in_their_category(screen, messages, category):
    found = {f.category for f in screen.screen_messages(messages)}
    wanted = {category} if isinstance(category, str) else category
    assert found & wanted, (messages, found)


def test_danger_in_a_later_message_is_read_together(screen):
    assert screen.screen_messages(["hei", "har et spørsmål", "jeg har gitt bort tingene mine"])


@pytest.mark.parametrize(
    "text",
    [
        "i fjor skadet jeg meg selv, men nå har jeg det bra og går til psykolog",
        "for to år siden kutta jeg meg, men det er lenge siden nå og jeg har det fint",
    ],
)
def test_calm_past_self_harm_is_not_at_risk(screen, text):
    assert screen.screen(text) == []


CHILD_TEXTS = [
    ["Jeg heter Sofie og bor i Tromsø", "pappa slår meg hver kveld 😢"],
    ["eg vil ikkje leve meir, ingen i klassen bryr seg om meg"],
    ["my name is Tom and my stepdad touches me at night, please help"],
    ["tok 30 ibux for en halvtime siden og er redd nå"],
    ["Det står en mann utenfor døra og banker, jeg er alene hjemme"],
]


@pytest.mark.parametrize("messages", CHILD_TEXTS)
def test_reasons_hold_only_vocabulary_features(screen, model, messages):
    vocab_terms = {L._feature_term(f) for f in model._vocab_list}
    lexicon_terms = {t for f in default_screen().screen(L.example_text(messages)) for t in f.terms}
    findings = screen.screen_messages(messages)
    assert findings
    for f in findings:
        assert set(f.terms) <= vocab_terms | lexicon_terms
        # "<nb> / <en> — matched: <topic or vocabulary>, ... (p=0.87)", never «quoted»
        m = re.fullmatch(r"(.+?) / (.+?) — matched: (.+) \(p=\d\.\d\d\)", f.reason)
        assert m, f.reason
        assert "«" not in f.reason and "»" not in f.reason
        topics = {t for lf in default_screen().screen(L.example_text(messages)) for t in lf.topics}
        assert set(m.group(3).split(", ")) <= vocab_terms | topics | {"modell"}
    text = " ".join(messages)
    for word in ("Sofie", "Tromsø", "Tom", "please help", "halvtime siden", "alene hjemme"):
        if word in text:
            assert all(word not in f.reason for f in findings)
    # never the whole message
    assert all(m not in f.reason for f in findings for m in messages if len(m) > 25)


def test_screening_is_fast(screen):
    messages = [m for m, _ in ISSUE_EXAMPLES] + CHILD_TEXTS
    for m in messages:
        screen.screen_messages(m)
    best = []
    for m in messages * 5:
        t0 = time.perf_counter()
        screen.screen_messages(m)
        best.append(time.perf_counter() - t0)
    best.sort()
    assert best[len(best) // 2] < 0.002  # median under 2 ms (typically ~0.3 ms)


TINY = [
    {"messages": ["jeg vil ikke leve lenger"], "labels": ["suicide"]},
    {"messages": ["hei", "har lyst til å dø"], "labels": ["suicide"]},
    {"messages": ["kutter meg igjen i kveld"], "labels": ["self_harm"]},
    {"messages": ["har lyst til å skade meg selv nå"], "labels": ["self_harm"]},
    {"messages": ["pappa slår meg når han er full"], "labels": ["violence_home"]},
    {"messages": ["mamma slo meg i går igjen"], "labels": ["violence_home"]},
    {"messages": ["en mann følger etter meg nå"], "labels": ["acute_threat"]},
    {"messages": ["noen banker på døra og jeg er alene"], "labels": ["acute_threat"]},
    {"messages": ["han vil ha flere bilder ellers sender han dem"], "labels": ["grooming_sextortion"]},
    {"messages": ["han sier han legger ut bildene mine"], "labels": ["grooming_sextortion"]},
    {"messages": ["hei", "lurer på noe om skolen"], "labels": []},
    {"messages": ["jeg døde av latter i dag"], "labels": []},
    {"messages": ["vi har om selvmord i norsk"], "labels": []},
    {"messages": ["skar meg på brødkniven"], "labels": []},
    {"messages": ["kjæresten slo opp med meg"], "labels": []},
    {"messages": ["gruer meg til prøven i morgen"], "labels": []},
    {"messages": ["mattelæreren dreper meg"], "labels": []},
    {"messages": ["ble drept i fortnite"], "labels": []},
] * 2


@pytest.mark.parametrize("opts, rule", [(L.FEATURES, "max"), (L.LEGACY_FEATURES, "any")])
def test_exported_scorer_equals_the_sklearn_pipeline(tmp_path, opts, rule):
    pytest.importorskip("sklearn")
    lexicon = default_screen()
    trained = L.train(TINY, lexicon=lexicon, folds=3, feature_opts=opts, rule=rule)
    path = L.export(trained, tmp_path / "m.npz")
    model = L.LearnedModel.load(path)
    assert model.feature_opts == opts and model.rule == rule
    texts = [L.example_text(r["messages"]) for r in TINY] + ["noe helt annet", "", "jeg vil dø"]
    expected = trained.decision(texts, lexicon)
    got = np.array([model.decision(t, lexicon) for t in texts])
    assert np.allclose(got, expected, atol=1e-4), np.abs(got - expected).max()
    assert json.loads(str(np.load(path, allow_pickle=False)["meta"]))["format"] == L.FORMAT


def test_split_is_deterministic_and_text_based():
    row = {"messages": ["Hei", "jeg har det fint"], "labels": []}
    same = {"messages": ["hei", "jeg har det fint"], "labels": ["suicide"]}
    assert L.split_of(row) == L.split_of(same) == L.split_of(dict(row))
    splits = [L.split_of({"messages": [f"melding nummer {i}"], "labels": []}) for i in range(1000)]
    assert 0.15 < splits.count("test") / 1000 < 0.25


def test_service_screen_modes(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATVAKT_DATA", str(tmp_path))
    monkeypatch.delenv(L.MODEL_ENV, raising=False)
    monkeypatch.delenv(L.SCREEN_ENV, raising=False)
    assert L.model_path() == L.SHIPPED_MODEL_PATH
    assert isinstance(L.service_screen(), L.CombinedRiskScreen)
    monkeypatch.setenv(L.SCREEN_ENV, "lexicon")
    assert L.service_screen() is default_screen()
    monkeypatch.delenv(L.SCREEN_ENV)
    # a retrained file in CHATVAKT_DATA is preferred over the shipped one
    local = tmp_path / L.MODEL_FILE
    local.write_bytes(L.SHIPPED_MODEL_PATH.read_bytes())
    assert L.model_path() == local
    assert isinstance(L.service_screen(), L.CombinedRiskScreen)
    # a broken file leaves the lexicon screening
    local.write_bytes(b"not a model")
    import os

    os.utime(local, ns=(1, 1))
    assert L.service_screen() is default_screen()


def test_shipped_model_reads_word_triples_and_the_last_message(model):
    assert model.feature_opts == L.FEATURES
    assert model.rule == "max"
    assert any(f.startswith("t:") for f in model._vocab_list)
    assert any(f.startswith("l:") for f in model._vocab_list)


def test_features_of_the_last_message_and_word_triples():
    text = L.example_text(["hei", "jeg vil dø"])
    feats = L.features(text, None, {"word_n": 3, "last": True})
    assert "t:jeg_vil_dø" in feats or "t:jeg_vil_do" in feats
    assert {f for f in feats if f.startswith("l:")} >= {"l:jeg", "l:vil"}
    assert "l:hei" not in feats
    # one message: nothing is "last"; word triples never cross messages
    assert not [f for f in L.features("jeg vil dø", None, {"word_n": 3, "last": True}) if f.startswith("l:")]
    assert not [f for f in feats if f.startswith("t:hei")]
    # the legacy options are the features of model files that do not name theirs
    assert L.features(text) == L.features(text, None, L.LEGACY_FEATURES)
    assert not [f for f in L.features(text) if f[0] in "tl"]


def test_a_model_file_without_options_scores_as_before():
    meta = {"labels": list(L.LABELS)}
    m = L.LearnedModel(
        ["w:a"], np.ones(1), np.zeros((1, len(L.LABELS))), np.zeros(len(L.LABELS)), {k: 0.5 for k in L.LABELS}, meta
    )
    assert m.feature_opts == L.LEGACY_FEATURES and m.rule == "any"


def test_max_rule_raises_on_a_sure_category():
    p = np.array([0.2, 0.9] + [0.0] * (len(L.LABELS) - 2))
    assert L.at_risk_score(p, "any") == 0.2
    assert L.at_risk_score(p, "max") == 0.9
