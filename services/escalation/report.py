"""The bekymringsmelding (report of concern) as a PDF, made with fpdf2.

Norwegian text needs æøå and more: a Unicode TrueType font (DejaVu, Debian's
fonts-dejavu-core) when one is found, else fpdf2's core Helvetica, which covers
Latin-1 (æøå included) and gets anything beyond it replaced.
"""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fpdf import FPDF

from chatvakt import config
from chatvakt.clock import parse_iso

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu")
FONT_ENV = "CHATVAKT_PDF_FONT_DIR"
DEFAULT_TZ = "Europe/Oslo"
DEFAULT_CONTACT = "Alarmtelefonen for barn og unge, 116 111"

GENDER = {"girl": "jente", "boy": "gutt", "other": "annet", "unspecified": "ikke oppgitt"}
DURATION = {"once": "én gang", "over_time": "over tid", "unknown": "vet ikke"}
STATUS = {"draft": "utkast", "approved": "godkjent", "sent": "sendt", "acknowledged": "mottatt", "closed": "lukket"}
PERSON = (
    ("name", "Navn"),
    ("address", "Adresse"),
    ("school", "Skole/barnehage"),
    ("phone", "Telefon"),
    ("location", "Oppholdssted"),
    ("guardians", "Foresatte"),
    ("other", "Annet"),
)


def _font_dir():
    for folder in filter(None, (config.env(FONT_ENV), *FONT_DIRS)):
        if (Path(folder) / "DejaVuSans.ttf").exists() and (Path(folder) / "DejaVuSans-Bold.ttf").exists():
            return Path(folder)
    return None


def timezone():
    """The helpline's local time zone for every time in the report
    (CHATVAKT_TIMEZONE, default Europe/Oslo): child welfare reads local time."""
    name = config.env("CHATVAKT_TIMEZONE") or DEFAULT_TZ
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def helpline_contact():
    """Whom child welfare answers (CHATVAKT_HELPLINE_CONTACT)."""
    return config.env("CHATVAKT_HELPLINE_CONTACT") or DEFAULT_CONTACT


def _day(value, with_time=False):
    """A date (and time) in local time, or None: a missing time is left out
    or said in words by the caller, never shown as a placeholder."""
    if not value:
        return None
    parsed = parse_iso(value).astimezone(timezone())
    return parsed.strftime("%d.%m.%Y kl. %H:%M" if with_time else "%d.%m.%Y")


def _span(start, end):
    """'12.05.2026 kl. 23:40–23:58' in one line, local time."""
    first, last = _day(start, True), _day(end, True)
    if first and last:
        if first[:10] == last[:10]:
            return f"{first}–{last[-5:]}"
        return f"{first} – {last}"
    return first or last


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
        self.pdf.set_font(self.family, "B", 15)
        self.pdf.multi_cell(0, 7, self._clean(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def subtitle(self, text):
        self.pdf.set_font(self.family, "B", 10.5)
        self.pdf.multi_cell(0, 5.5, self._clean(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def line(self, text, size=9.5):
        self.pdf.set_font(self.family, "", size)
        self.pdf.multi_cell(0, 5, self._clean(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def heading(self, text):
        self.pdf.ln(2)
        self.pdf.set_font(self.family, "B", 11.5)
        self.pdf.multi_cell(0, 6.5, self._clean(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def field(self, label, value, missing=None):
        """A label and its value; a missing value is said in words
        (`missing`) or the field is left out: never a placeholder."""
        if value in (None, "", [], {}):
            if missing is None:
                return
            value = missing
        value = self._clean(value)
        label = self._clean(label)
        # short values beside their label, long ones below it: a short report fits one page
        if "\n" not in value and len(label) + len(value) < 80:
            self.pdf.set_font(self.family, "B", 10)
            self.pdf.cell(self.pdf.get_string_width(label + ": ") + 1, 5.5, label + ":")
            self.pdf.set_font(self.family, "", 10)
            self.pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT", align="L")
        else:
            self.pdf.set_font(self.family, "B", 10)
            self.pdf.multi_cell(0, 5.5, label, new_x="LMARGIN", new_y="NEXT", align="L")
            self.pdf.set_font(self.family, "", 10)
            self.pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT", align="L")
        self.pdf.ln(0.8)

    def bytes(self):
        return bytes(self.pdf.output())


def render(escalation, helpline="Alarmtelefonen", labels=None, contact=None):
    """The report as PDF bytes, ready to send. `escalation` is the
    supervisor's view of a report_of_concern (with identifying details);
    `labels` maps category codes to names; `contact` is whom child welfare
    answers (default CHATVAKT_HELPLINE_CONTACT). Times are local
    (CHATVAKT_TIMEZONE)."""
    details = escalation.get("details") or {}
    facts = escalation.get("facts") or {}
    labels = labels or {}
    contact = contact or helpline_contact()
    days = escalation.get("assessment_days") or 7
    reference = details.get("reference") or escalation.get("escalation_id")
    sent, deadline = _day(escalation.get("sent_at")), _day(escalation.get("deadline"))
    doc = _Doc()
    doc.title("Bekymringsmelding til barneverntjenesten")
    doc.subtitle(f"Vår referanse: {reference}")
    if sent and deadline:
        doc.subtitle(f"Sendt {sent}. Barneverntjenesten skal vurdere meldingen innen {days} dager: frist {deadline}.")
    else:
        doc.subtitle(f"Barneverntjenesten skal vurdere meldingen innen {days} dager etter at den er mottatt.")
    doc.line(f"Svar og spørsmål om meldingen: {contact}. Oppgi vår referanse.")
    doc.pdf.ln(1)
    doc.field("Til", details.get("recipient"))

    doc.heading("1. Hvem meldingen gjelder")
    person = details.get("person") or {}
    for key, label in PERSON:
        doc.field(label, person.get(key))
    child = details.get("child") or {}
    doc.field(
        "Kjønn og alder",
        " ".join(
            filter(
                None,
                (
                    GENDER.get(child.get("gender"), child.get("gender") or ""),
                    f"{child['age']} år" if child.get("age") is not None else "",
                ),
            )
        )
        or None,
    )
    doc.field("Andre det gjelder", details.get("concerns"))
    if not any(person.get(key) for key, _ in PERSON):
        doc.line("Barnet har ikke oppgitt navn eller adresse: Alarmtelefonen er anonym for barnet.")

    doc.heading("2. Hva som gir grunn til bekymring")
    doc.field("Beskrivelse", details.get("cause"), "Ikke beskrevet ennå.")
    examples = details.get("examples") or []
    doc.field("Konkrete eksempler", "\n".join(f"• {e}" for e in examples) if examples else None)
    categories = [labels.get(code, code) for code in facts.get("categories") or []]
    doc.field("Tema i samtalen", ", ".join(categories) if categories else None)
    if facts.get("acute_danger") is not None:
        doc.field(
            "Akutt fare vurdert i samtalen", "ja, akutt fare" if facts.get("acute_danger") else "ja, ikke akutt fare"
        )

    doc.heading("3. Når det er observert")
    doc.field("Tidspunkt", details.get("observed"))
    doc.field("Én gang eller over tid", DURATION.get(details.get("duration"), details.get("duration")))
    chat = facts.get("chat") or {}
    span = _span(chat.get("started_at"), chat.get("ended_at"))
    if span:
        doc.field("Samtalen", f"Chat med {helpline} {span}" + ("" if chat.get("ended_at") else " (pågår)"))

    if details.get("others_who_know"):
        doc.heading("4. Hvem andre kan vite noe")
        doc.field("Andre som kjenner til forholdene", details.get("others_who_know"))

    doc.heading("5. Melder" if details.get("others_who_know") else "4. Melder")
    reporter = details.get("reporter") or {}
    if reporter.get("anonymous"):
        doc.field("Melder", "Anonym")
    else:
        doc.field("Melder", ", ".join(filter(None, (reporter.get("name"), reporter.get("role")))))
        doc.field("Tjeneste", reporter.get("organisation") or helpline)
    doc.field("Kontakt for svar", ", ".join(filter(None, (reporter.get("phone"), reporter.get("email")))) or contact)
    history = escalation.get("history") or []
    approved = [h for h in history if h["status"] == "approved"]
    if approved:
        doc.field(
            "Godkjent av vakthavende",
            ", ".join(filter(None, (approved[-1].get("name") or approved[-1]["by"], _day(approved[-1]["at"], True)))),
        )
    doc.field("Referanse", reference)
    return doc.bytes()
