"""`python -m launcher.nameko run …`: nameko's own command, after the warning
filters in launcher/__init__.py (the package is imported first), with the
queue declarations of chatvakt/broker.py (CHATVAKT_QUEUE_TYPE) installed and
the garbage collector set for a long-lived service (`tune_gc`), and the
optional watch of the event loop's pauses (`watch_stalls`)."""

import functools
import gc

import nameko.cli.main

from chatvakt import broker


def tune_gc():
    """Never again scan, in a full collection, what the process built to start.

    A service starts with some 100,000 objects (modules, SQLAlchemy's tables,
    the risk screen's model). CPython scans them all in every full collection,
    and the first relay load after a start set one off: 60 to 130 ms in which
    a process relayed nothing, the p99 spike of `make bench`'s first run
    (issue 16). Once the container has started, they are collected once and
    frozen (gc.freeze: kept out of every later collection); what comes later
    is collected as before. (A larger young generation was tried and is
    worse: much of what a worker leaves is in reference cycles, so each young
    collection then freed some 18,000 objects in one pause of up to 15 ms.)
    """
    after_start(_collect_and_freeze)


def _collect_and_freeze():
    gc.collect()
    gc.freeze()


def after_start(step):
    """Run step() in a service process once its container has started."""
    from nameko.containers import ServiceContainer

    original = ServiceContainer.start

    @functools.wraps(original)
    def start(self):
        original(self)
        step()

    ServiceContainer.start = start


def cache_signature_checks():
    """Check an entrypoint's arguments once per shape, not on every call.

    nameko binds every call's arguments to the method with inspect.getcallargs
    before it spawns the worker (a wrong call is IncorrectSignature, 400 for
    HTTP): about 3 % of the chat service's and the gateway's CPU per relayed
    message (issue 16). Whether arguments bind depends only on how many are
    given by position and which names are given, so a shape that bound once
    binds again; a shape that failed is checked, and fails, every time.
    """
    from nameko.extensions import Entrypoint

    original = Entrypoint.check_signature

    @functools.wraps(original)
    def check_signature(self, args, kwargs):
        shape = (len(args), frozenset(kwargs))
        bound = self.__dict__.setdefault("_chatvakt_bound_shapes", set())
        if shape not in bound:
            original(self, args, kwargs)
            bound.add(shape)

    Entrypoint.check_signature = check_signature


def watch_stalls():
    """Once the container has started, chatvakt/stallwatch.py (if CHATVAKT_STALL_WATCH_MS is set)."""
    from chatvakt import stallwatch

    after_start(stallwatch.start)


if __name__ == "__main__":
    broker.install()
    tune_gc()
    cache_signature_checks()
    watch_stalls()
    nameko.cli.main.main()
