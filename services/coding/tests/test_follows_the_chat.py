"""Issue 13, outcome 8: an uncoded chat's coding starts from its escalations
and risk flags, and validation messages come in the console's language."""

import pytest

from chatvakt.errors import Invalid
from chatvakt.testing import read, run
from services.coding import domain, messages
from services.coding.rules import RULE_MESSAGES, CodingInputSchema, check_coding

from .test_domain import KARI, body, ended, facts, tax  # noqa: F401 - fixtures

ACUTE = {"risk": True, "category": "acute_danger", "severity": "high", "acute_danger": True, "acute_danger_open": False}
SCREEN_HIGH = {
    "risk": True,
    "category": "suicide",
    "severity": "high",
    "acute_danger": False,
    "reason": "Selvmordsfare / suicide risk — matched: ønske om å dø",
}


def test_an_acute_danger_escalation_fills_assessed_and_present(ended, tax):  # noqa: F811
    coding = read(ended, domain.get_coding, facts(), KARI, tax, risk=ACUTE)
    assert coding["acute_danger_assessed"] is True and coding["acute_danger"] is True
    assert coding["prefilled"]["source"] == "escalation"
    # an open chat's draft form too
    draft = read(ended, domain.get_coding, facts("b", status="active"), KARI, tax, risk=ACUTE)
    assert draft["acute_danger"] is True and draft["acute_danger_assessed"] is True


def test_a_high_risk_flag_suggests_acute_danger_but_leaves_the_assessment(ended, tax):  # noqa: F811
    coding = read(ended, domain.get_coding, facts(), KARI, tax, risk=SCREEN_HIGH)
    assert coding["acute_danger"] is True and coding["acute_danger_assessed"] is None
    assert coding["prefilled"]["source"] == "risk_screen"


def test_no_risk_no_prefill_and_a_coded_chat_keeps_its_coding(ended, tax):  # noqa: F811
    plain = read(ended, domain.get_coding, facts(), KARI, tax, risk=None)
    assert plain["acute_danger"] is None and plain["prefilled"] is None
    run(ended, domain.save_coding, facts(), body(acute_danger=False), KARI, tax)
    coded = read(ended, domain.get_coding, facts(), KARI, tax, risk=ACUTE)
    assert coded["acute_danger"] is False and coded["prefilled"] is None


BAD_BODIES = [
    {},
    {"gender": "robot", "age": 99, "categories": "x", "acute_danger_assessed": "yes", "acute_danger": 1, "extra": True},
    {
        "gender": "girl",
        "age": "13",
        "categories": [""] * 21,
        "acute_danger_assessed": None,
        "acute_danger": None,
        "notes": "x" * 3000,
        "time_in": "not a time",
        "contact_type": "fax",
        "phase_seconds": {"bad": -1},
    },
]


@pytest.mark.parametrize("bad", BAD_BODIES)
def test_schema_messages_come_in_norwegian_and_english(bad):
    with pytest.raises(Exception) as caught:
        CodingInputSchema().load(bad)
    english = caught.value.messages
    norwegian = messages.localise(english, "nb")
    assert set(norwegian) == set(english)  # the same fields
    for field, texts in norwegian.items():
        for en, nb in zip(english[field], texts, strict=True):
            assert nb != en, f"no Norwegian for {field}: {en}"
    assert messages.localise(english, "en") == english


def test_the_rules_messages_in_both_languages(tax):  # noqa: F811
    coding = {
        "categories": ["violence", "violence.bullying", "nope", "nope"],
        "acute_danger_assessed": False,
        "acute_danger": True,
    }
    en = check_coding(tax, coding, None, "en")
    nb = check_coding(tax, coding, None, "nb")
    assert set(en) == set(nb) == {"categories", "acute_danger_assessed", "acute_danger"}
    assert "Bekreft at du har vurdert akutt fare" in nb["acute_danger_assessed"][0]
    assert "Confirm that you assessed acute danger" in en["acute_danger_assessed"][0]
    assert any("Hovedkategorien 'violence' (Vold)" in m and "(Mobbing)" in m for m in nb["categories"])
    assert any("(Bullying)" in m for m in en["categories"])
    assert set(RULE_MESSAGES["nb"]) == set(RULE_MESSAGES["en"])


def test_save_coding_answers_in_the_asked_language(ended, tax):  # noqa: F811
    for lang, word in (("nb", "Bekreft"), ("en", "Confirm")):
        with pytest.raises(Invalid) as caught:
            run(ended, domain.save_coding, facts(), body(acute_danger_assessed=False), KARI, tax, lang=lang)
        assert caught.value.code == "invalid"  # the code stays
        assert word in caught.value.fields["acute_danger_assessed"][0]
    with pytest.raises(Invalid) as caught:
        run(ended, domain.save_coding, facts(), {"gender": "girl"}, KARI, tax, lang="nb")
    assert caught.value.fields["categories"] == ["Må fylles ut."]
    assert caught.value.message == "Kodingen er ikke gyldig."
