"""Issue 15, outcome 7: the README's tables say what the code reads and sends.

Every CHATVAKT_* variable read through chatvakt/config.py's helpers appears in
a table row of the README's Configuration or Abuse and limits sections, and
every event in chatvakt/events.py appears in the services table's `emits`
column, in the row of the service that sends it.
"""

import re
from pathlib import Path

from chatvakt import events

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chatvakt", "services", "gateway", "launcher")
READ = re.compile(r"\benv(?:_int|_float)?\(\s*\"(CHATVAKT_[A-Z0-9_]+)\"")


def _section(text, title):
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _table_rows(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def variables_read():
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "tests" in path.parts:
                continue
            for name in READ.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_variable_read_is_in_a_readme_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = "\n".join(_table_rows(_section(readme, "Configuration")) + _table_rows(_section(readme, "Abuse and limits")))
    documented = set(re.findall(r"`(CHATVAKT_[A-Z0-9_]+)`", rows))
    read = variables_read()
    assert len(read) > 40  # the pattern still finds what the code reads
    missing = {name: where for name, where in read.items() if name not in documented}
    assert sorted(missing.items()) == []


def test_every_event_is_in_the_services_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    emits = {}
    for row in _table_rows(_section(readme, "How it is cut")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        match = re.match(r"`(?:services/)?(\w+)/`", cells[0])
        if match and len(cells) >= 3:
            emits[match.group(1)] = {e.strip() for e in cells[2].split(",")}
    missing = sorted(f"{source}.{name}" for source, name in events.SCHEMAS if name not in emits.get(source, set()))
    assert missing == []
