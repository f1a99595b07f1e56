"""The child's first messages read together, and hand marks kept as labelled
examples (escalation domain on SQLite; no broker)."""

import datetime as dt
import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from chatvakt.clock import utcnow
from chatvakt.errors import Forbidden, Invalid
from chatvakt.testing import read, run
from services.escalation import domain
from services.escalation.models import metadata, risk_corrections, screen_context
from services.escalation.vault import Vault

from .test_domain import COUNSELLOR, Finding

CHILD = {"role": "child", "id": "x"}


class ReadsTogether:
    """Finds risk only when 'gitt bort' and 'tingene' come in messages read together."""

    def __init__(self):
        self.seen = []

    def screen(self, text):
        return self.screen_messages([text])

    def screen_messages(self, messages):
        self.seen.append(list(messages))
        text = " ".join(messages)
        if "gitt bort" in text and "tingene" in text:
            return [Finding("suicide", "high", ("gitt bort",), "selvmord: matched: gitt bort")]
        return []


def test_first_messages_are_screened_together_and_sealed(db, vault):
    screen = ReadsTogether()
    assert run(db, domain.screen_message, screen, "chat-1", 1, "hei", None, None, vault)[0] is None
    assert run(db, domain.screen_message, screen, "chat-1", 2, "jeg har gitt bort", None, None, vault)[0] is None
    payload, outbox = run(db, domain.screen_message, screen, "chat-1", 3, "alle tingene mine", None, None, vault)
    assert payload["category"] == "suicide" and payload["seq"] == 3
    assert screen.seen[-1] == ["hei", "jeg har gitt bort", "alle tingene mine"]
    # a later message is screened alone, and not kept
    run(db, domain.screen_message, screen, "chat-1", 4, "tingene", None, None, vault)
    assert screen.seen[-1] == ["tingene"]
    with db() as s:
        rows = s.execute(select(screen_context).order_by(screen_context.c.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert all("hei" not in r.sealed and "tingene" not in r.sealed for r in rows)
    # redelivery adds nothing
    assert run(db, domain.screen_message, screen, "chat-1", 3, "alle tingene mine", None, None, vault)[0] is None
    with db() as s:
        assert len(s.execute(select(screen_context)).all()) == 3


def test_without_a_vault_each_message_alone(db):
    screen = ReadsTogether()
    run(db, domain.screen_message, screen, "chat-2", 1, "jeg har gitt bort", None)
    assert run(db, domain.screen_message, screen, "chat-2", 2, "tingene", None)[0] is None


def test_screen_context_is_purged_after_retention(db, vault):
    old = utcnow() - dt.timedelta(days=40)
    run(db, domain.screen_message, ReadsTogether(), "chat-3", 1, "hei", None, old, vault)
    run(db, domain.screen_message, ReadsTogether(), "chat-4", 1, "hei", None, None, vault)
    assert run(db, domain.purge_screen_context, 30)[0] == 1
    with db() as s:
        assert [r.chat_id for r in s.execute(select(screen_context))] == ["chat-4"]


def test_a_hand_mark_is_kept_as_a_sealed_labelled_example(db, vault):
    screen = ReadsTogether()
    for seq, text in enumerate(["hei", "det står en mann utenfor døra", "jeg er alene"], 1):
        run(db, domain.screen_message, screen, "chat-5", seq, text, None, None, vault)
    result, outbox = run(
        db, domain.record_correction, vault, "chat-5", True, "mann ved døra nå", COUNSELLOR, ["acute_threat"]
    )
    assert result["kept_as_example"] and result["categories"] == ["acute_threat"]
    assert not outbox.events  # nothing sent on
    run(db, domain.record_correction, vault, "chat-6", False, "ingen tekst igjen", COUNSELLOR)
    with db() as s:
        rows = s.execute(select(risk_corrections).order_by(risk_corrections.c.id)).all()
    assert [(r.chat_id, r.at_risk, r.has_messages) for r in rows] == [("chat-5", True, True), ("chat-6", False, False)]
    assert "døra" not in rows[0].sealed and json.loads(rows[0].categories) == ["acute_threat"]
    examples = read(db, domain.correction_examples, vault)
    assert examples == [
        {
            "messages": ["hei", "det står en mann utenfor døra", "jeg er alene"],
            "labels": ["acute_threat"],
            "at_risk": True,
            "lang": None,
            "author": "correction",
        }
    ]
    # the latest mark of a chat wins
    run(db, domain.record_correction, vault, "chat-5", False, "det var naboen", COUNSELLOR)
    assert [e["at_risk"] for e in read(db, domain.correction_examples, vault)] == [False]


def test_a_hand_mark_is_validated(db, vault):
    with pytest.raises(Forbidden):
        run(db, domain.record_correction, vault, "chat-7", True, "x", CHILD)
    with pytest.raises(Invalid):
        run(db, domain.record_correction, vault, "chat-7", True, "  ", COUNSELLOR)
    with pytest.raises(Invalid):
        run(db, domain.record_correction, vault, "chat-7", "yes", "x", COUNSELLOR)
    with pytest.raises(Invalid):
        run(db, domain.record_correction, vault, "chat-7", True, "x", COUNSELLOR, ["nonsense"])
    with pytest.raises(Invalid):
        run(db, domain.record_correction, vault, "chat-7", False, "x", COUNSELLOR, ["suicide"])


def test_corrections_train_with_unknown_categories():
    from services.escalation.learned import LABELS, label_matrix

    y = label_matrix(
        [
            {"messages": ["a"], "labels": [], "at_risk": True},
            {"messages": ["b"], "labels": [], "at_risk": False},
            {"messages": ["c"], "labels": ["suicide"]},
        ]
    )
    assert y[0, 0] == 1 and (y[0, 1:] == -1).all()
    assert (y[1] == 0).all()
    assert y[2, 0] == 1 and y[2, LABELS.index("suicide")] == 1


def test_retrain_uses_the_corrections(tmp_path, monkeypatch):
    """`chatvakt risk retrain` reads the hand marks from the escalation database
    and writes CHATVAKT_DATA/risk_model.npz, which the service then prefers."""
    pytest.importorskip("sklearn")
    import numpy as np
    from sqlalchemy.orm import sessionmaker

    from chatvakt.db import setup_database
    from launcher.cli import main
    from services.escalation import learned
    from services.escalation.tests.test_learned import TINY

    data = tmp_path / "data"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a1.jsonl").write_text("\n".join(json.dumps(r) for r in TINY), encoding="utf-8")
    monkeypatch.setenv("CHATVAKT_DATA", str(data))
    monkeypatch.setenv("CHATVAKT_ESCALATION_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("CHATVAKT_DB_URL", raising=False)
    monkeypatch.delenv(learned.MODEL_ENV, raising=False)
    monkeypatch.setattr(learned, "OLD_TRAINING", ())
    vault = Vault.from_env()
    engine = setup_database("escalation", metadata)
    sessions = sessionmaker(bind=engine)
    run(sessions, domain.screen_message, ReadsTogether(), "chat-9", 1, "han står i gangen med kniv", None, None, vault)
    run(sessions, domain.record_correction, vault, "chat-9", True, "kniv", COUNSELLOR, ["acute_threat"])
    engine.dispose()
    assert main(["risk", "retrain", "--corpus", str(corpus)]) == 0
    out = data / learned.MODEL_FILE
    meta = json.loads(str(np.load(out, allow_pickle=False)["meta"]))
    in_train = sum(1 for r in TINY if learned.split_of(r) == "train")
    assert meta["corrections"] == 1 and meta["training"]["n"] == in_train + 1
    assert learned.model_path() == out
