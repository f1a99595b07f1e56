"""One home each (issue 15): only chatvakt/config.py reads the environment,
and the time helpers live in chatvakt/clock.py. Broker-free: it reads the
source, it runs none of it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The product; tests/ and bench/ are harnesses with knobs of their own.
PACKAGES = ("chatvakt", "launcher", "services", "gateway")
CONFIG = ROOT / "chatvakt" / "config.py"
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations/versions" not in path.as_posix():
                yield path


def _env_uses(tree):
    """Lines that touch the process environment: os.environ, os.getenv and the
    like, or a name imported from os that does (a WSGI `environ` is no match)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENV_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            yield node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ENV_NAMES for alias in node.names):
                yield node.lineno


def test_only_config_reads_the_environment():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if path != CONFIG
        for line in _env_uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    ]
    assert offenders == [], "read the environment through chatvakt.config instead: " + ", ".join(offenders)


def test_the_check_sees_a_read():
    # the rule above passes trivially if _env_uses finds nothing at all
    found = sorted(_env_uses(ast.parse("import os\nx = os.environ.get('A')\nfrom os import getenv\n")))
    assert found == [2, 3]
    assert list(_env_uses(ast.parse("def app(environ):\n    return environ.get('PATH_INFO')\n"))) == []
    assert list(_env_uses(ast.parse(CONFIG.read_text(encoding="utf-8"))))


def test_time_helpers_have_one_home():
    defined = [
        f"{path.relative_to(ROOT)}:{node.name}"
        for path in _sources()
        if "tests" not in path.parts
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name in {"utcnow", "iso", "parse_iso"}
    ]
    assert defined == ["chatvakt/clock.py:utcnow", "chatvakt/clock.py:iso", "chatvakt/clock.py:parse_iso"]
