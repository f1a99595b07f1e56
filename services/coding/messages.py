"""Validation messages of the coding endpoints in the console's language.

The rule (rules.py) and marshmallow write English; a counsellor reading the
console in Norwegian gets Norwegian (issue 13). Only the words change: the
error `code`s and field names the console keys on stay the same. A message
with no translation is left in English rather than dropped.
"""

import re

# The coding service's own sentences (top-level error messages).
SENTENCES = {
    "The coding must be an object.": "Kodingen må være et objekt.",
    "The coding is not valid.": "Kodingen er ikke gyldig.",
    "The coding breaks the helpline's rule.": "Kodingen bryter med kodingsregelen.",
    "A chat is coded when it has ended.": "En samtale kodes når den er avsluttet.",
    "The chat's end is still being recorded; try again in a moment.": (
        "Samtalens slutt blir registrert nå; prøv igjen om et øyeblikk."
    ),
    "Must be an object.": "Må være et objekt.",
}

# marshmallow's messages and the rule's, as patterns: (English, Norwegian).
PATTERNS = [
    (re.compile(f"^{en}$"), nb)
    for en, nb in (
        (r"Missing data for required field\.", "Må fylles ut."),
        (r"Field may not be null\.", "Må fylles ut."),
        (r"Unknown field\.", "Ukjent felt."),
        (r"Not a valid boolean\.", "Må være ja eller nei (true eller false)."),
        (r"Not a valid integer\.", "Må være et heltall."),
        (r"Not a valid number\.", "Må være et tall."),
        (r"Not a valid string\.", "Må være tekst."),
        (r"Not a valid list\.", "Må være en liste."),
        (r"Not a valid mapping type\.", "Må være et objekt."),
        (r"Not a valid (?:aware )?datetime\.", "Ikke et gyldig tidspunkt (ISO 8601)."),
        (r"Invalid input type\.", "Feil type."),
        (r"Not a valid (?:aware )?datetime\. Must be .*", "Ikke et gyldig tidspunkt (ISO 8601)."),
        (r"Must be one of: (.+)\.", r"Må være en av: \1."),
        (r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.", r"Må være fra \1 til \2."),
        (r"Must be greater than or equal to (\S+)\.", r"Må være minst \1."),
        (r"Must be less than or equal to (\S+)\.", r"Må være høyst \1."),
        (r"Longer than maximum length (\d+)\.", r"For lang: høyst \1."),
        (r"Shorter than minimum length (\d+)\.", r"For kort: minst \1."),
        (r"Length must be between (\d+) and (\d+)\.", r"Lengden må være fra \1 til \2."),
    )
]


def sentence(text, lang):
    return SENTENCES.get(text, text) if lang == "nb" else text


# flatten_errors (rules.py) puts where in a list or mapping before a message.
PREFIX = re.compile(r"^((?:(?:Item \d+|Key|Value|'[^']*'): )*)(.*)$", re.S)
PREFIX_WORDS = (
    (re.compile(r"Item (\d+)"), r"Element \1"),
    (re.compile(r"\bKey\b"), "Nøkkel"),
    (re.compile(r"\bValue\b"), "Verdi"),
)


def message(text, lang):
    if lang != "nb":
        return text
    if text in SENTENCES:
        return SENTENCES[text]
    prefix, rest = PREFIX.match(text).groups()
    for pattern, words in PREFIX_WORDS:
        prefix = pattern.sub(words, prefix)
    for pattern, nb in PATTERNS:
        if pattern.match(rest):
            return prefix + pattern.sub(nb, rest)
    return text


def localise(fields, lang):
    """{field: [message, ...]} in `lang`."""
    return {
        name: [message(str(m), lang) for m in (msgs if isinstance(msgs, list) else [msgs])]
        for name, msgs in (fields or {}).items()
    }
