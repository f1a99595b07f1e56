"""The category taxonomy chats are coded with.

Pure domain: no broker, no database. The default taxonomy follows Child Helpline
International's data framework (main categories with subcategories, each main
category with an "unspecified/other" subcategory) and lives in
``data/taxonomy.json``; a helpline can replace it with its own file through the
``CHATVAKT_TAXONOMY`` environment variable.

File format::

    {"version": "chi-1", "name": "...",
     "categories": [{"code": "violence", "label_nb": "Vold", "label_en": "Violence",
                     "subcategories": [{"code": "violence.bullying", "label_nb": "Mobbing",
                                        "label_en": "Bullying"}, ...]}, ...]}

Replacing it: write the helpline's own file in this format with a NEW
``version`` (never reuse one), point ``CHATVAKT_TAXONOMY`` at it on every coding
replica and restart them. Each coding keeps the version it was made with; the
service stores every version it codes with in its database (table
``taxonomies``), so old codings keep their labels after the file is replaced
(``GET /api/v1/taxonomy?version=...``). Versions shipped with the service can
also be kept beside the default as ``data/taxonomy-<version>.json``.

Codes are stable lowercase ASCII identifiers: a main category is one segment
(``violence``), a subcategory is its main category's code, a dot and one more
segment (``violence.bullying``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chatvakt import config

__all__ = [
    "Subcategory",
    "Category",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
    "taxonomy_from_dict",
    "bundled_taxonomy",
    "DEFAULT_TAXONOMY_PATH",
    "TAXONOMY_ENV",
]

TAXONOMY_ENV = "CHATVAKT_TAXONOMY"
DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parent / "data" / "taxonomy.json"

_SEGMENT = r"[a-z][a-z0-9_]*"
_MAIN_RE = re.compile(rf"^{_SEGMENT}$")
_SUB_RE = re.compile(rf"^{_SEGMENT}\.{_SEGMENT}$")
_MAX_CODE_LEN = 100
_MAX_LABEL_LEN = 200


class TaxonomyError(ValueError):
    """The taxonomy file is missing, unreadable or breaks a rule."""


@dataclass(frozen=True)
class Subcategory:
    code: str
    label_nb: str
    label_en: str


@dataclass(frozen=True)
class Category:
    code: str
    label_nb: str
    label_en: str
    subcategories: tuple[Subcategory, ...] = ()


def _lang_key(lang: str | None) -> str:
    """'en', 'en-GB', 'EN' -> 'en'; anything else (nb, no, nn, None) -> 'nb'."""
    if lang and str(lang).strip().lower().startswith("en"):
        return "en"
    return "nb"


@dataclass(frozen=True)
class Taxonomy:
    version: str
    categories: tuple[Category, ...]
    name: str = ""
    # code -> Category | Subcategory, and sub code -> main code; built once.
    _by_code: dict = field(default=None, init=False, repr=False, compare=False, hash=False)
    _parent: dict = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_code: dict[str, Category | Subcategory] = {}
        parent: dict[str, str] = {}
        for cat in self.categories:
            by_code[cat.code] = cat
            for sub in cat.subcategories:
                by_code[sub.code] = sub
                parent[sub.code] = cat.code
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "_parent", parent)

    # -- questions about a code -------------------------------------------
    def knows(self, code: Any) -> bool:
        return isinstance(code, str) and code in self._by_code

    def is_main(self, code: Any) -> bool:
        return self.knows(code) and isinstance(self._by_code[code], Category)

    def is_sub(self, code: Any) -> bool:
        return isinstance(code, str) and code in self._parent

    def parent(self, code: Any) -> str | None:
        """The main category of a subcategory; None for a main or unknown code."""
        if not isinstance(code, str):
            return None
        return self._parent.get(code)

    def main_of(self, code: Any) -> str | None:
        """The main category a known code belongs to (a main code is its own)."""
        if self.is_main(code):
            return code
        return self.parent(code)

    def get(self, code: Any) -> Category | Subcategory | None:
        return self._by_code.get(code) if isinstance(code, str) else None

    def label(self, code: Any, lang: str = "nb") -> str | None:
        entry = self.get(code)
        if entry is None:
            return None
        return entry.label_en if _lang_key(lang) == "en" else entry.label_nb

    def codes(self) -> list[str]:
        """Every code, main categories each followed by their subcategories."""
        out: list[str] = []
        for cat in self.categories:
            out.append(cat.code)
            out.extend(sub.code for sub in cat.subcategories)
        return out

    def main_codes(self) -> list[str]:
        return [cat.code for cat in self.categories]

    def subcategory_codes(self, main_code: str) -> list[str]:
        entry = self.get(main_code)
        if not isinstance(entry, Category):
            return []
        return [sub.code for sub in entry.subcategories]

    # -- the public shape ---------------------------------------------------
    def to_api(self, lang: str = "nb") -> dict:
        key = _lang_key(lang)

        def one(entry: Category | Subcategory) -> dict:
            return {
                "code": entry.code,
                "label": entry.label_en if key == "en" else entry.label_nb,
                "label_nb": entry.label_nb,
                "label_en": entry.label_en,
            }

        categories = []
        for cat in self.categories:
            item = one(cat)
            item["subcategories"] = [one(sub) for sub in cat.subcategories]
            categories.append(item)
        return {"version": self.version, "name": self.name, "categories": categories}

    def to_document(self) -> dict:
        """The file format again (what ``taxonomy_from_dict`` reads)."""

        def one(entry: Category | Subcategory) -> dict:
            return {"code": entry.code, "label_nb": entry.label_nb, "label_en": entry.label_en}

        return {
            "version": self.version,
            "name": self.name,
            "categories": [
                {**one(cat), "subcategories": [one(sub) for sub in cat.subcategories]} for cat in self.categories
            ],
        }


# -- loading and validation -------------------------------------------------


def _label(entry: Mapping, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(f"{where}: '{key}' must be a non-empty string")
    if len(value) > _MAX_LABEL_LEN:
        raise TaxonomyError(f"{where}: '{key}' is longer than {_MAX_LABEL_LEN} characters")
    return value.strip()


def _code(entry: Any, where: str, kind: str, pattern: re.Pattern, rule: str) -> str:
    """The code of a main category or subcategory entry; `rule` says what a code must be."""
    if not isinstance(entry, Mapping):
        raise TaxonomyError(f"{where} must be an object")
    code = entry.get("code")
    if not isinstance(code, str) or len(code) > _MAX_CODE_LEN or not pattern.match(code):
        raise TaxonomyError(f"{where}: {kind} code {code!r} must {rule}")
    return code


def taxonomy_from_dict(doc: Any, source: str = "taxonomy") -> Taxonomy:
    """Validate a parsed taxonomy document and build a Taxonomy.

    Raises TaxonomyError naming the first problem found.
    """
    if not isinstance(doc, Mapping):
        raise TaxonomyError(f"{source}: the top level must be a JSON object")
    version = doc.get("version")
    if not isinstance(version, str) or not version.strip():
        raise TaxonomyError(f"{source}: 'version' must be a non-empty string")
    name = doc.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise TaxonomyError(f"{source}: 'name' must be a string")
    raw_categories = doc.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise TaxonomyError(f"{source}: 'categories' must be a non-empty list")

    seen: dict[str, str] = {}

    def claim(code: str, where: str) -> None:
        if code in seen:
            raise TaxonomyError(f"{where}: code '{code}' is used more than once (also at {seen[code]})")
        seen[code] = where

    categories: list[Category] = []
    for i, raw in enumerate(raw_categories):
        code = _code(
            raw,
            f"{source}: categories[{i}]",
            "main category",
            _MAIN_RE,
            "be lowercase ASCII letters, digits and underscores, starting with a letter, without a dot",
        )
        where = f"{source}: category '{code}'"
        claim(code, where)
        label_nb = _label(raw, "label_nb", where)
        label_en = _label(raw, "label_en", where)
        raw_subs = raw.get("subcategories", [])
        if not isinstance(raw_subs, list):
            raise TaxonomyError(f"{where}: 'subcategories' must be a list")
        subs: list[Subcategory] = []
        for j, raw_sub in enumerate(raw_subs):
            swhere = f"{where}: subcategories[{j}]"
            scode = _code(
                raw_sub,
                swhere,
                "subcategory",
                _SUB_RE,
                f"be the main category's code, a dot and a lowercase ASCII name (e.g. '{code}.other')",
            )
            if not scode.startswith(code + "."):
                raise TaxonomyError(
                    f"{swhere}: subcategory code '{scode}' must start with its main category's code '{code}.'"
                )
            swhere = f"{where}: subcategory '{scode}'"
            claim(scode, swhere)
            subs.append(Subcategory(scode, _label(raw_sub, "label_nb", swhere), _label(raw_sub, "label_en", swhere)))
        categories.append(Category(code, label_nb, label_en, tuple(subs)))
    return Taxonomy(version=version.strip(), categories=tuple(categories), name=name.strip())


def load_taxonomy(path: str | os.PathLike | None = None) -> Taxonomy:
    """Load and validate a taxonomy file.

    ``path`` defaults to the environment variable CHATVAKT_TAXONOMY, else the
    bundled ``data/taxonomy.json``. Raises TaxonomyError with a clear message
    when the file is missing, is not JSON, or breaks a rule.
    """
    if path is None:
        path = config.env(TAXONOMY_ENV) or DEFAULT_TAXONOMY_PATH
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaxonomyError(f"taxonomy file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"taxonomy file {str(p)!r} cannot be read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaxonomyError(
            f"taxonomy file {str(p)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    return taxonomy_from_dict(doc, source=str(p))


def bundled_taxonomy(version: str) -> Taxonomy | None:
    """A taxonomy shipped with the service (``data/taxonomy*.json``) by version.

    Older versions are kept there as ``taxonomy-<version>.json`` so codings made
    with them keep their labels even on a database that never stored them.
    """
    folder = DEFAULT_TAXONOMY_PATH.parent
    for path in sorted(folder.glob("taxonomy*.json")):
        try:
            taxonomy = load_taxonomy(path)
        except TaxonomyError:
            continue
        if taxonomy.version == version:
            return taxonomy
    return None
