"""Risk screen for child messages: pure domain code (no broker, no nameko).

The escalation service runs :func:`default_screen` on every child message and
turns the returned :class:`RiskFinding` objects into ``risk_detected`` events.
:class:`RiskScreen` is the seam: today it is backed by a lexicon
(:class:`LexiconRiskScreen`, configured by ``data/risk_lexicon.yaml``); a trained
classifier can later stand behind the same protocol, as long as it returns the
same findings (category, severity, the ids/canonical forms of what it matched,
and a short reason built from its own vocabulary, never from the child's text).

How the lexicon screen decides, in order (all of it configurable in the YAML):

1. *Normalise* the text: lowercase, fold æ/ø/å (and ä/ö/é/...) to ASCII
   (``æ``→``ae``, ``ø``→``o``, ``å``→``a``), drop apostrophes (``don't``→``dont``),
   turn clause punctuation into a ``.`` token and everything else into spaces,
   and collapse runs of a repeated letter to one (``dææææ``→``dae``,
   ``ikke``→``ike``, ``kutta``/``kuta`` alike). Lexicon patterns are put through
   the same folding and collapsing when loaded, so they are written in ordinary
   spelling.
2. *Match* every entry's patterns (regular expressions over the normalised
   text, with ``{MACROS}``) and raw tokens (``kms``, matched before letters are
   collapsed so ``kys`` is not confused with ``kyss``).
3. Drop a match that overlaps an *idiom* (``døde av latter``, ``killing me``),
   or whose entry has an ``unless_message`` cue anywhere in the message
   (``blør mye`` with ``mensen``).
4. Drop a *negated* match: a negation cue (``ikke``, ``not``, ``aldri``...)
   right before the match, allowing only a few bridge words in between
   (``vil``, ``going to``, ``har lyst til å``). A negation inside the matched
   phrase is part of its meaning: ``vil ikke leve lenger`` is an entry of its own
   and stays at risk.
5. Decide *whose* risk it is (categories with ``third_person_scan``): the
   matched words themselves (``livet sitt``/``herself`` vs ``livet mitt``/``myself``),
   else the nearest subject before the match in the same clause
   (``venninna mi sier hun vil dø``). Risk of a third person is kept, at the
   category's ``third_person_severity`` (a friend at risk is still worth a
   counsellor's attention; a friend who took an overdose is still acute).
   Generic subjects (``folk``, ``people``) and fiction/school topics
   (``en bok om``, ``film``) drop the match: that is talk about a subject, not a
   person.
6. A joke cue in the message (``jk``, ``tuller``) lowers severity to medium but
   keeps the finding: masking with a joke is common.

The screen is tuned for recall: a false alarm costs a counsellor a glance, a
miss can cost a life. It only raises priority and alerts; the counsellor
always assesses acute danger in every chat regardless of what it says.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

import yaml

from chatvakt import config

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "RiskFinding",
    "RiskScreen",
    "LexiconRiskScreen",
    "LexiconError",
    "default_screen",
    "normalise",
    "DEFAULT_LEXICON_PATH",
    "LEXICON_ENV",
]

CATEGORIES = ("suicide", "self_harm", "violence_home", "sexual_abuse", "medical_danger")
SEVERITIES = ("high", "medium")  # ordered: most severe first

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent / "data" / "risk_lexicon.yaml"
LEXICON_ENV = "CHATVAKT_RISK_LEXICON"


@dataclass(frozen=True)
class RiskFinding:
    category: str  # one of CATEGORIES
    severity: str  # "high" or "medium"
    terms: tuple[str, ...]  # canonical forms of the lexicon entries that matched
    reason: str  # short explanation for a counsellor, built from lexicon topics only
    topics: tuple[str, ...] = ()  # what the matched entries are about, as the reason shows them


@runtime_checkable
class RiskScreen(Protocol):
    def screen(self, text: str) -> list[RiskFinding]:
        """Return the findings for one message; an empty list means nothing found."""
        ...


class LexiconError(ValueError):
    """The lexicon file is malformed (raised at load time, never while screening)."""


# --------------------------------------------------------------------------- normalising

_DEFAULT_FOLD = {"æ": "ae", "ø": "o", "å": "a", "ä": "ae", "ö": "o", "ü": "u", "ß": "ss"}
_APOSTROPHES = re.compile(r"['’`´‘]")
_CLAUSE = re.compile(r"[.!?;:,\n\r…]+")
_NON_WORD = re.compile(r"[^a-z0-9. ]+")
_REPEAT = re.compile(r"([a-z])\1+")
_REPEAT_ANY = re.compile(r"([^\W\d_])\1+")  # any letter, before folding: "dææææ"
_SPACES = re.compile(r" +")


def _fold(text: str, fold: dict[str, str]) -> str:
    text = text.lower()
    for src, dst in fold.items():
        if src in text:
            text = text.replace(src, dst)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text


_DOTS = re.compile(r"\.(?: \.)+")


def _folded_tokens(text: str, fold: dict[str, str], collapse: bool = False) -> str:
    """Lowercased, folded, punctuation → ' . ' / ' ', framed by '. ' and ' .'.

    With ``collapse`` repeated letters are squeezed (the matching form); without
    it the tokens keep their spelling (for raw tokens: "kys" is not "kyss").
    Both forms have the same tokens in the same places.
    """
    if collapse:
        text = _REPEAT_ANY.sub(r"\1", text.lower())
    text = _fold(text, fold)
    text = _APOSTROPHES.sub("", text)
    text = _CLAUSE.sub(" . ", text)
    text = _NON_WORD.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _DOTS.sub(".", text).strip(". ")
    if collapse:
        text = _REPEAT.sub(r"\1", text)
    return f". {text} ." if text else ". ."


def normalise(text: str, fold: dict[str, str] | None = None) -> str:
    """The form the lexicon patterns are matched against (see module docstring)."""
    return _folded_tokens(text, fold or _DEFAULT_FOLD, collapse=True)


# --------------------------------------------------------------------------- loading

_MACRO = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
# Every token of the normalised text is preceded by exactly one space, so a
# pattern starts by consuming that space: a literal prefix lets `re` skip ahead
# quickly (about 4x faster than a look-behind word boundary).
_WB_R = r"(?![a-z0-9])"


@dataclass(frozen=True)
class _Entry:
    id: str
    categories: tuple[str, ...]
    severity: str
    term: str
    topic: str
    regex: re.Pattern | None
    source: str | None
    raw_tokens: frozenset[str]
    person: str  # "auto" | "first" | "third"
    scan: str | None  # overrides the category's third_person_scan
    negatable: bool
    unless: re.Pattern | None


def _as_list(value: Any, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise LexiconError(f"{what}: expected a list, got {type(value).__name__}")


class _Compiler:
    """Turns lexicon pattern source into regexes over normalised text."""

    def __init__(self, fold: dict[str, str], macros: dict[str, str]):
        self.fold = fold
        self.raw_macros = {k: str(v) for k, v in macros.items()}
        self.macros: dict[str, str] = {}
        for name in self.raw_macros:
            self.macros[name] = self._expand(name, ())

    def _expand(self, name: str, stack: tuple[str, ...]) -> str:
        if name in self.macros:
            return self.macros[name]
        if name in stack:
            raise LexiconError(f"macro cycle: {' -> '.join(stack + (name,))}")
        if name not in self.raw_macros:
            raise LexiconError(f"unknown macro {{{name}}}")
        body = self.prep(self.raw_macros[name], stack + (name,))
        return f"(?:{body})"

    def prep(self, source: str, stack: tuple[str, ...] = ()) -> str:
        """Fold/collapse the literal spelling and expand ``{MACROS}``."""
        parts = _MACRO.split(str(source))
        out = []
        for i, part in enumerate(parts):
            if i % 2:  # a macro name
                out.append(self._expand(part, stack))
            else:
                out.append(_REPEAT.sub(r"\1", _fold(part, self.fold)))
        return "".join(out)

    def pattern(self, source: str, where: str) -> str:
        """One whole-word pattern, without its leading space (see :meth:`union`)."""
        body = self.prep(source)
        try:
            re.compile(body)
        except re.error as exc:
            raise LexiconError(f"{where}: bad pattern {source!r}: {exc}") from None
        return f"(?:{body}){_WB_R}"

    def union_source(self, sources: Iterable[str], where: str) -> str | None:
        parts = [self.pattern(s, where) for s in sources]
        return "|".join(parts) if parts else None

    def union(self, sources: Iterable[str], where: str) -> re.Pattern | None:
        """Whole-word patterns; a match starts at the space before its first word."""
        src = self.union_source(sources, where)
        return re.compile(f" (?:{src})") if src else None

    def token(self, word: str) -> str:
        """A cue word in normalised (collapsed) form; may contain spaces."""
        return normalise(str(word), self.fold).strip(" .")


# --------------------------------------------------------------------------- the screen


@dataclass
class _Hit:
    entry: _Entry
    start_tok: int
    end_tok: int  # exclusive
    third: bool
    joke: bool


class LexiconRiskScreen:
    """A :class:`RiskScreen` driven by a lexicon dict (the parsed YAML file)."""

    def __init__(self, lexicon: dict):
        if not isinstance(lexicon, dict):
            raise LexiconError("lexicon must be a mapping")
        self.version = lexicon.get("version")
        fold = dict(_DEFAULT_FOLD)
        fold.update({str(k): str(v) for k, v in (lexicon.get("fold") or {}).items()})
        self._fold = fold
        comp = _Compiler(fold, lexicon.get("macros") or {})

        self._categories(lexicon)
        cats = lexicon["categories"]
        entries = []
        seen: set[str] = set()
        for i, raw in enumerate(_as_list(lexicon.get("entries"), "entries")):
            if not isinstance(raw, dict):
                raise LexiconError(f"entries[{i}]: expected a mapping")
            eid = str(raw.get("id") or "")
            where = f"entries[{i}] ({eid or '?'})"
            if not eid or eid in seen:
                raise LexiconError(f"{where}: missing or duplicate id")
            seen.add(eid)
            entries.append(self._entry(raw, eid, where, cats, fold, comp))
        if not entries:
            raise LexiconError("entries: at least one entry is required")
        self._entries = tuple(entries)
        self._raw_token_entries = tuple(e for e in entries if e.raw_tokens)
        self._all_raw_tokens = frozenset().union(*(e.raw_tokens for e in entries))
        # one union of every entry pattern: most messages match none of them and
        # leave after a single regex scan
        bodies = [e.source for e in entries if e.source is not None]
        self._prefilter = re.compile(" (?:" + "|".join(bodies) + ")")

        self._context(lexicon, comp)

    def _categories(self, lexicon: dict) -> None:
        cats = lexicon.get("categories") or {}
        if not isinstance(cats, dict) or not cats:
            raise LexiconError("categories: a non-empty mapping is required")
        self._cat_label: dict[str, str] = {}
        self._cat_scan: dict[str, str] = {}
        self._cat_third_sev: dict[str, str] = {}
        for name, conf in cats.items():
            conf = conf or {}
            self._cat_label[name] = str(conf.get("label", name))
            scan = conf.get("third_person_scan", False)
            if scan is True:
                scan = "context"
            if scan not in (False, None, "context", "span"):
                raise LexiconError(f"categories.{name}.third_person_scan: true, false or span")
            self._cat_scan[name] = scan or "off"
            sev = conf.get("third_person_severity", "medium")
            if sev not in SEVERITIES:
                raise LexiconError(f"categories.{name}.third_person_severity: {sev!r}")
            self._cat_third_sev[name] = sev
        self.categories = tuple(cats)

    @staticmethod
    def _entry(raw: dict, eid: str, where: str, cats: dict, fold: dict[str, str], comp: "_Compiler") -> "_Entry":
        """One lexicon entry, checked and compiled."""
        ecats = tuple(_as_list(raw.get("category"), where) + _as_list(raw.get("also"), where))
        if not ecats or any(c not in cats for c in ecats):
            raise LexiconError(f"{where}: unknown category in {ecats!r}")
        sev = raw.get("severity", "high")
        if sev not in SEVERITIES:
            raise LexiconError(f"{where}: severity must be one of {SEVERITIES}")
        person = raw.get("person", "auto")
        if person not in ("auto", "first", "third"):
            raise LexiconError(f"{where}: person must be auto, first or third")
        scan = raw.get("person_scan")
        if scan is True:
            scan = "context"
        if scan is False:
            scan = "off"
        if scan not in (None, "context", "span", "off"):
            raise LexiconError(f"{where}: person_scan must be true, false or span")
        pats = _as_list(raw.get("patterns"), where)
        toks = frozenset(_fold(str(t), fold).strip() for t in _as_list(raw.get("raw_tokens"), where))
        if not pats and not toks:
            raise LexiconError(f"{where}: needs patterns or raw_tokens")
        source = comp.union_source(pats, where)
        return _Entry(
            id=eid,
            categories=ecats,
            severity=sev,
            term=str(raw.get("term") or eid),
            topic=str(raw.get("topic") or raw.get("term") or eid),
            regex=re.compile(f" (?:{source})") if source else None,
            source=source,
            raw_tokens=toks,
            person=person,
            scan=scan,
            negatable=bool(raw.get("negatable", True)),
            unless=comp.union(_as_list(raw.get("unless_message"), where), where),
        )

    def _context(self, lexicon: dict, comp: "_Compiler") -> None:
        """Idioms, negation, person and topic cues around a match."""
        self._idioms = comp.union(_as_list(lexicon.get("idioms"), "idioms"), "idioms")
        neg = lexicon.get("negation") or {}
        self._neg_cues = frozenset(comp.token(w) for w in _as_list(neg.get("cues"), "negation.cues"))
        self._neg_bridges = frozenset(comp.token(w) for w in _as_list(neg.get("bridges"), "negation.bridges"))
        self._neg_max = int(neg.get("max_bridges", 4))
        per = lexicon.get("person") or {}
        self._first = frozenset(comp.token(w) for w in _as_list(per.get("first_person"), "person.first_person"))
        self._third = frozenset(comp.token(w) for w in _as_list(per.get("third_person"), "person.third_person"))
        self._generic = frozenset(comp.token(w) for w in _as_list(per.get("generic"), "person.generic"))
        self._span_first = frozenset(comp.token(w) for w in _as_list(per.get("span_first"), "person.span_first"))
        self._span_third = frozenset(comp.token(w) for w in _as_list(per.get("span_third"), "person.span_third"))
        self._lookback = int(per.get("max_lookback", 8))
        self._boundaries = frozenset(comp.token(w) for w in _as_list(per.get("clause_words"), "person.clause_words"))
        self._topic = frozenset(comp.token(w) for w in _as_list(lexicon.get("topic_cues"), "topic_cues"))
        self._joke = comp.union(_as_list(lexicon.get("joke_cues"), "joke_cues"), "joke_cues")
        self._third_label = str(per.get("third_person_reason", "gjelder en annen person"))
        self._joke_label = str(lexicon.get("joke_reason", "skrevet som spøk?"))

    # ------------------------------------------------------------------ public

    @classmethod
    def from_file(cls, path) -> "LexiconRiskScreen":
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        return cls(data)

    def screen(self, text: str) -> list[RiskFinding]:
        if not text or not isinstance(text, str):
            return []
        folded = _folded_tokens(text, self._fold)
        norm = _folded_tokens(text, self._fold, collapse=True)
        raw_hit = bool(self._all_raw_tokens) and not self._all_raw_tokens.isdisjoint(folded.split(" "))
        if not raw_hit and self._prefilter.search(norm) is None:
            return []
        return self._analyse(folded, norm)

    # ------------------------------------------------------------------ internals

    def _analyse(self, folded: str, norm: str) -> list[RiskFinding]:
        tokens = norm.split(" ")
        starts = []
        pos = 0
        for tok in tokens:
            starts.append(pos)
            pos += len(tok) + 1
        idiom_spans = [(m.start() + 1, m.end()) for m in self._idioms.finditer(norm)] if self._idioms else []
        joke = bool(self._joke and self._joke.search(norm))

        spans: list[tuple[_Entry, int, int]] = []
        for entry in self._entries:
            if entry.regex is None:
                continue
            for m in entry.regex.finditer(norm):
                s, e = m.span()
                s += 1  # the leading space
                if any(s < ie and is_ < e for is_, ie in idiom_spans):
                    continue
                first = bisect.bisect_right(starts, s) - 1
                last = bisect.bisect_left(starts, e)
                spans.append((entry, first, last))
        if self._raw_token_entries:
            raw_tokens = folded.split(" ")  # aligned 1:1 with `tokens`
            for entry in self._raw_token_entries:
                for i, tok in enumerate(raw_tokens):
                    if tok in entry.raw_tokens:
                        s = starts[i]
                        if any(s < ie and is_ < s + len(tok) for is_, ie in idiom_spans):
                            continue
                        spans.append((entry, i, i + 1))

        hits: list[_Hit] = []
        for entry, first, last in spans:
            if entry.unless is not None and entry.unless.search(norm):
                continue
            if entry.negatable and self._negated(tokens, first):
                continue
            if entry.scan is not None:
                mode = entry.scan
            else:
                modes = {self._cat_scan[c] for c in entry.categories}
                mode = "context" if "context" in modes else "span" if "span" in modes else "off"
            who = self._whose(tokens, first, last, mode, entry.person)
            if who == "drop":
                continue
            third = who == "third"
            hits.append(_Hit(entry, first, last, third, joke))
        return self._findings(hits)

    def _negated(self, tokens: list[str], first: int) -> bool:
        j = first - 1
        skipped = 0
        while j >= 0 and tokens[j] in self._neg_bridges and skipped < self._neg_max:
            j -= 1
            skipped += 1
        return j >= 0 and tokens[j] in self._neg_cues

    def _whose(self, tokens: list[str], first: int, last: int, mode: str, person: str) -> str:
        """'first', 'third' or 'drop' (generic talk, or a book/film/school topic).

        The matched words settle it when they can ("livet sitt", "myself"); an
        entry may fix it (person: first/third). Otherwise, in mode 'context',
        the nearest subject before the match in the same clause decides
        ("venninna mi sier hun vil dø"); mode 'span' (used where the subject
        before the match is the perpetrator: "pappa truer med å slå") and mode
        'off' assume the child. Topic cues always drop the match, generic
        subjects ("folk", "people") drop it unless the match names the child.
        """
        span = tokens[first:last]
        if person in ("first", "third"):
            settled: str | None = person
        elif mode == "off":
            settled = "first"
        elif any(t in self._span_first for t in span):
            settled = "first"
        elif any(t in self._span_third for t in span):
            settled = "third"
        else:
            settled = None
        explicit_first = person == "first" or (
            person == "auto" and mode != "off" and any(t in self._span_first for t in span)
        )
        third = settled == "third"
        j = first - 1
        steps = 0
        while j >= 0 and tokens[j] != "." and steps < self._lookback:
            tok = tokens[j]
            pair = f"{tokens[j - 1]} {tok}" if j > 0 else tok
            if tok in self._first or pair in self._first or tok in self._boundaries:
                break
            if tok in self._topic or pair in self._topic:
                return "drop"
            if not explicit_first and (tok in self._generic or pair in self._generic):
                return "drop"
            if settled is None and mode == "context" and (tok in self._third or pair in self._third):
                third = True
            j -= 1
            steps += 1
        return "third" if third else "first"

    def _findings(self, hits: list[_Hit]) -> list[RiskFinding]:
        by_cat: dict[str, list[_Hit]] = {}
        for hit in hits:
            for cat in hit.entry.categories:
                by_cat.setdefault(cat, []).append(hit)
        findings = []
        for cat in self.categories:
            group = by_cat.get(cat)
            if not group:
                continue
            sevs = []
            for h in group:
                sev = h.entry.severity
                if h.third:
                    sev = _min_sev(sev, self._cat_third_sev[cat])
                if h.joke:
                    sev = _min_sev(sev, "medium")
                sevs.append(sev)
            severity = "high" if "high" in sevs else "medium"
            terms = tuple(dict.fromkeys(h.entry.term for h in group))
            topics = tuple(dict.fromkeys(h.entry.topic for h in group))
            reason = reason_text(cat, topics, self._cat_label.get(cat))
            notes = []
            if all(h.third for h in group):
                notes.append(self._third_label)
            if group[0].joke:
                notes.append(self._joke_label)
            if notes:
                reason += " (" + "; ".join(notes) + ")"
            findings.append(RiskFinding(category=cat, severity=severity, terms=terms, reason=reason, topics=topics))
        return findings


# A category in words, Norwegian and English (the console speaks both). The
# learned screen's extra categories are here too, so every reason reads alike.
CATEGORY_WORDS = {
    "suicide": ("Selvmordsfare", "suicide risk"),
    "self_harm": ("Selvskading", "self-harm"),
    "violence_home": ("Vold eller omsorgssvikt hjemme", "violence or neglect at home"),
    "sexual_abuse": ("Seksuelle overgrep", "sexual abuse"),
    "medical_danger": ("Akutt medisinsk fare", "acute medical danger"),
    "grooming_sextortion": ("Grooming eller sextortion", "grooming or sextortion"),
    "acute_threat": ("Akutt trussel nå", "acute threat now"),
    "someone_else": ("En annen i fare", "someone else at risk"),
    "acute_danger": ("Akutt fare meldt av chatvert", "acute danger reported by counsellor"),
}


def category_words(category: str, fallback: str | None = None) -> str:
    """'Selvmordsfare / suicide risk': what a reason starts with."""
    nb, en = CATEGORY_WORDS.get(category, (fallback or category, None))
    return f"{nb} / {en}" if en else nb


def reason_text(category: str, matched: Iterable[str], fallback: str | None = None) -> str:
    """The category in words and what the screen matched, as the screen's own
    topics: never «quoted» and never the child's words, so that it does not
    read as something the child wrote (the confirmation trap)."""
    matched = [m for m in matched if m]
    words = category_words(category, fallback)
    return f"{words} — matched: {', '.join(matched)}" if matched else words


def _min_sev(a: str, b: str) -> str:
    """The less severe of two severities."""
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


@functools.lru_cache(maxsize=4)
def _load(path: str) -> LexiconRiskScreen:
    return LexiconRiskScreen.from_file(path)


def default_screen() -> RiskScreen:
    """The screen from ``$CHATVAKT_RISK_LEXICON`` or the bundled lexicon (cached per path)."""
    path = config.env(LEXICON_ENV) or str(DEFAULT_LEXICON_PATH)
    return _load(str(Path(path).resolve()))
