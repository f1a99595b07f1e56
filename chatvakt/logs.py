"""Logs: one JSON object per line (LOG_FORMAT=json, the containers' default),
or one readable line (the local stack's terminal).

What goes in a log line is chosen by the code that logs, and no code logs a
child's text, a nickname, a token or a password. As a second line of defence
the formatter drops exception *values* (which could quote input) and keeps
only their type and the traceback's code locations.
"""

import json
import logging
import time
import traceback

from chatvakt import config

SERVICE = config.process_name()


class JsonFormatter(logging.Formatter):
    def format(self, record):
        message = record.getMessage()
        if "error handling worker" in str(record.msg) and record.args:
            # nameko writes "error handling worker <ctx>: <exception text>", and an
            # exception's text may quote what a client sent: keep the worker only.
            message = f"error handling worker {record.args[0]}"
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": SERVICE,
            "logger": record.name,
            "msg": message,
        }
        from chatvakt.observability import current_request_id

        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _value, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["where"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)][-5:]
        return json.dumps(entry, ensure_ascii=False)

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return time.strftime(datefmt, time.gmtime(record.created))


class TextFormatter(logging.Formatter):
    """One readable line: time, level, process, message. The same care as the
    JSON lines: exception values are dropped, only their type is kept."""

    def format(self, record):
        message = record.getMessage()
        if "error handling worker" in str(record.msg) and record.args:
            message = f"error handling worker {record.args[0]}"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname.lower():7} {SERVICE or record.name}: {message}"
        if record.exc_info and record.exc_info[0] is not None:
            line += f" ({record.exc_info[0].__name__})"
        return line


def formatter():
    """The formatter deploy/nameko.yaml names: JSON when LOG_FORMAT=json."""
    # Neither form writes where a line was logged from, nor its thread or
    # process, and finding the caller walks the stack for every record: with a
    # line per unit of work that was a few per cent of a relayed message's CPU.
    # (The logging HOWTO's "Optimization" switches.)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if config.log_json():
        return JsonFormatter()
    return TextFormatter()
