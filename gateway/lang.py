"""The language a staff endpoint answers in (issue 13): nb or en."""

import re

DEFAULT_LANG = "nb"


def pick(lang=None, accept_language=None):
    """The language to answer in: an explicit `lang`, else the best of an
    Accept-Language header's nb/no/nn/en, else Norwegian."""
    for raw in (lang, *_accepted(accept_language)):
        if not raw:
            continue
        tag = raw.strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.split("-")[0] in ("nb", "no", "nn"):
            return "nb"
    return DEFAULT_LANG


def _accepted(header):
    """Accept-Language's tags, best first (q=0 left out)."""
    tags = []
    for index, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        if tag and q > 0:
            tags.append((-q, index, tag))
    return [tag for _q, _i, tag in sorted(tags)]
