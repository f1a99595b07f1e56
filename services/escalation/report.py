"""The bekymringsmelding (report of concern) as a PDF, made with fpdf2.

Norwegian text needs æøå and more: a Unicode TrueType font (DejaVu, Debian's
fonts-dejavu-core) when one is found, else fpdf2's core Helvetica, which covers
Latin-1 (æøå included) and gets anything beyond it replaced.
"""
import os
from pathlib import Path

from fpdf import FPDF

from chatvakt.db import parse_iso

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu",
             "/usr/local/share/fonts/dejavu")
FONT_ENV = "CHATVAKT_PDF_FONT_DIR"

GENDER = {"girl": "jente", "boy": "gutt", "other": "annet", "unspecified": "ikke oppgitt"}
DURATION = {"once": "én gang", "over_time": "over tid", "unknown": "vet ikke"}
STATUS = {"draft": "utkast", "approved": "godkjent", "sent": "sendt", "acknowledged": "mottatt",
          "closed": "lukket"}
PERSON = (("name", "Navn"), ("address", "Adresse"), ("school", "Skole/barnehage"),
          ("phone", "Telefon"), ("location", "Oppholdssted"), ("guardians", "Foresatte"),
          ("other", "Annet"))


def _font_dir():
    for folder in filter(None, (os.environ.get(FONT_ENV), *FONT_DIRS)):
        if (Path(folder) / "DejaVuSans.ttf").exists() and (Path(folder) / "DejaVuSans-Bold.ttf").exists():
            return Path(folder)
    return None


def _day(value, with_time=False):
    if not value:
        return "—"
    parsed = parse_iso(value)
    return parsed.strftime("%d.%m.%Y %H:%M UTC" if with_time else "%d.%m.%Y")


class _Doc:
    def __init__(self):
        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(True, margin=18)
        self.pdf.set_margins(18, 18, 18)
        folder = _font_dir()
        if folder:
            self.pdf.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
            self.pdf.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
            self.family, self.unicode = "DejaVu", True
        else:
            self.family, self.unicode = "Helvetica", False
        self.pdf.add_page()

    def _clean(self, text):
        text = str(text)
        if self.unicode:
            return text
        text = text.replace("—", "-").replace("–", "-").replace("’", "'").replace("•", "-")
        return text.encode("latin-1", "replace").decode("latin-1")

    def title(self, text):
        self.pdf.set_font(self.family, "B", 16)
        self.pdf.multi_cell(0, 8, self._clean(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(2)

    def heading(self, text):
        self.pdf.ln(3)
        self.pdf.set_font(self.family, "B", 12)
        self.pdf.multi_cell(0, 7, self._clean(text), new_x="LMARGIN", new_y="NEXT")

    def field(self, label, value):
        if value in (None, "", [], {}):
            value = "—"
        self.pdf.set_font(self.family, "B", 10)
        self.pdf.multi_cell(0, 5.5, self._clean(label), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(self.family, "", 10)
        self.pdf.multi_cell(0, 5.5, self._clean(value), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def bytes(self):
        return bytes(self.pdf.output())


def render(escalation, helpline="Alarmtelefonen", labels=None):
    """The report as PDF bytes. `escalation` is the supervisor's view of a
    report_of_concern (with identifying details); `labels` maps category codes
    to names."""
    details = escalation.get("details") or {}
    facts = escalation.get("facts") or {}
    labels = labels or {}
    doc = _Doc()
    doc.title("Bekymringsmelding til barneverntjenesten")
    doc.field("Status", f"{STATUS.get(escalation['status'], escalation['status'])}"
              f" (sendt {_day(escalation.get('sent_at'))}; barneverntjenesten skal vurdere meldingen"
              f" innen en uke: frist {_day(escalation.get('deadline'))})")
    doc.field("Til", details.get("recipient"))

    doc.heading("1. Hvem meldingen gjelder")
    person = details.get("person") or {}
    for key, label in PERSON:
        if person.get(key):
            doc.field(label, person[key])
    child = details.get("child") or {}
    doc.field("Kjønn og alder", " ".join(filter(None, (
        GENDER.get(child.get("gender"), child.get("gender") or ""),
        f"{child['age']} år" if child.get("age") is not None else ""))) or None)
    doc.field("Andre det gjelder", details.get("concerns"))

    doc.heading("2. Hva som gir grunn til bekymring")
    doc.field("Beskrivelse", details.get("cause"))
    examples = details.get("examples") or []
    doc.field("Konkrete eksempler", "\n".join(f"• {e}" for e in examples) if examples else None)
    categories = [labels.get(code, code) for code in facts.get("categories") or []]
    doc.field("Tema i samtalen (koding)", ", ".join(categories) if categories else None)
    if facts.get("acute_danger") is not None:
        doc.field("Akutt fare vurdert i samtalen", "ja" if facts.get("acute_danger") else "nei")

    doc.heading("3. Når det er observert")
    doc.field("Tidspunkt", details.get("observed"))
    doc.field("Én gang eller over tid", DURATION.get(details.get("duration"), details.get("duration")))
    chat = facts.get("chat") or {}
    doc.field("Samtalen", f"Chat {_day(chat.get('started_at'), True)} – {_day(chat.get('ended_at'), True)}")

    doc.heading("4. Hvem andre kan vite noe")
    doc.field("Andre som kjenner til forholdene", details.get("others_who_know"))

    doc.heading("5. Melder")
    reporter = details.get("reporter") or {}
    if reporter.get("anonymous"):
        doc.field("Melder", "Anonym")
    else:
        doc.field("Melder", ", ".join(filter(None, (reporter.get("name"), reporter.get("role")))) or None)
        doc.field("Tjeneste", reporter.get("organisation") or helpline)
        doc.field("Kontakt", ", ".join(filter(None, (reporter.get("phone"), reporter.get("email")))) or None)
    history = escalation.get("history") or []
    approved = [h for h in history if h["status"] == "approved"]
    if approved:
        doc.field("Godkjent av vakthavende", f"{approved[-1].get('name') or approved[-1]['by']}, {_day(approved[-1]['at'], True)}")
    doc.field("Referanse", details.get("reference") or escalation.get("escalation_id"))
    return doc.bytes()
