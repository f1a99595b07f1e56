"""Issue 13, outcome 10: the report of concern is ready to send: local time,
the helpline's contact for the reply, reference and deadline in its heading,
no placeholders, and a short report on one page."""

import re
import shutil
import subprocess

import pytest

from services.escalation import report

SENT = {
    "escalation_id": "3f2a9c0d1e2b3c4d5e6f7a8b",
    "status": "sent",
    "sent_at": "2026-12-01T22:40:00+00:00",
    "deadline": "2026-12-08T22:40:00+00:00",
    "assessment_days": 7,
    "details": {
        "recipient": "Barneverntjenesten i Bergen",
        "cause": "Barnet forteller om slag hjemme.",
        "observed": "Fortalt av barnet i chat 01.12.2026.",
        "duration": "over_time",
        "child": {"gender": "girl", "age": 13},
        "reporter": {"anonymous": False, "organisation": "Alarmtelefonen", "name": "Siri Vakt", "role": "vakthavende"},
    },
    "facts": {
        "chat": {"started_at": "2026-12-01T21:40:00+00:00", "ended_at": "2026-12-01T22:05:00+00:00"},
        "categories": ["violence.physical"],
        "acute_danger": False,
    },
    "history": [{"status": "approved", "by": "sup-1", "name": "Siri Vakt", "at": "2026-12-01T22:30:00+00:00"}],
}
DRAFT = {"escalation_id": "abc123", "status": "draft", "details": {}, "facts": {}, "history": []}


def text_of(pdf, tmp_path):
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    # lines joined: a wrapped sentence is still one sentence
    return " ".join(out.split())


def pages_of(pdf):
    return pdf.count(b"/Type /Page\n") or pdf.count(b"/Type /Page>") or pdf.count(b"/Type /Page ")


def test_times_local_contact_and_heading(tmp_path, monkeypatch):
    monkeypatch.delenv("CHATVAKT_TIMEZONE", raising=False)
    monkeypatch.delenv("CHATVAKT_HELPLINE_CONTACT", raising=False)
    text = text_of(report.render(SENT, "Alarmtelefonen", {"violence.physical": "Vold: Fysisk vold"}), tmp_path)
    head = text.split("1. Hvem meldingen gjelder")[0]
    assert "Vår referanse: 3f2a9c0d1e2b3c4d5e6f7a8b" in head
    assert "frist 08.12.2026" in head and "innen 7 dager" in head
    assert "Alarmtelefonen for barn og unge, 116 111" in head
    # 21:40 UTC is 22:40 in Oslo in winter
    assert "01.12.2026 kl. 22:40–23:05" in text and "UTC" not in text
    assert "Godkjent av vakthavende: Siri Vakt, 01.12.2026 kl. 23:30" in text
    assert "—" not in text and "sendt —" not in text


def test_a_draft_without_values_has_no_placeholders(tmp_path):
    pdf = report.render(DRAFT)
    text = text_of(pdf, tmp_path)
    assert "—" not in text and "None" not in text
    assert "innen 7 dager etter at den er mottatt" in text
    assert "Ikke beskrevet ennå." in text


def test_contact_and_time_zone_are_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATVAKT_TIMEZONE", "UTC")
    monkeypatch.setenv("CHATVAKT_HELPLINE_CONTACT", "Testlinja, 22 22 22 22")
    text = text_of(report.render(SENT), tmp_path)
    assert "Testlinja, 22 22 22 22" in text and "01.12.2026 kl. 21:40–22:05" in text
    monkeypatch.setenv("CHATVAKT_TIMEZONE", "Not/AZone")  # a bad name falls back to Oslo
    assert "kl. 22:40" in text_of(report.render(SENT), tmp_path)


def test_a_short_report_fits_one_page(tmp_path):
    pdf = report.render(SENT)
    if shutil.which("pdfinfo"):
        path = tmp_path / "r.pdf"
        path.write_bytes(pdf)
        info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
        assert re.search(r"^Pages:\s+1$", info, re.M), info
    else:
        assert pages_of(pdf) == 1
