"""launcher/nameko.py's garbage collector setting: what a service built to
start is frozen out of later full collections (issue 16: a full collection
of some 100,000 start-up objects stopped a process for 60 to 130 ms, the
p99 spike of `make bench`'s first run)."""

import gc

from nameko.containers import ServiceContainer

from launcher.nameko import tune_gc


class Idle:
    name = "idle"


def test_a_started_container_freezes_what_the_process_holds(monkeypatch):
    monkeypatch.setattr(ServiceContainer, "start", ServiceContainer.start)
    gc.unfreeze()
    try:
        tune_gc()
        container = ServiceContainer(Idle, {})
        container.start()
        assert gc.get_freeze_count() > 10_000
        container.stop()
    finally:
        gc.unfreeze()
