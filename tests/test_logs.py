"""The log formatter's second line of defence (no broker needed)."""

import json
import logging
import sys

from chatvakt.logs import JsonFormatter


def _record(name, msg, args, exc_info=None):
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def test_worker_errors_keep_the_worker_and_drop_the_exception_text():
    try:
        raise ValueError("hemmelig barnetekst")
    except ValueError as exc:
        info = sys.exc_info()
        line = JsonFormatter().format(
            _record(
                "nameko.containers", "error handling worker %s: %s", ("<WorkerContext [chat.post_message]>", exc), info
            )
        )
    entry = json.loads(line)
    assert "barnetekst" not in line
    assert entry["msg"] == "error handling worker <WorkerContext [chat.post_message]>"
    assert entry["exc_type"] == "ValueError" and entry["where"]


def test_lines_are_json_with_level_and_logger():
    entry = json.loads(JsonFormatter().format(_record("x.y", "hello %s", ("world",))))
    assert entry["msg"] == "hello world" and entry["level"] == "error" and entry["logger"] == "x.y"
