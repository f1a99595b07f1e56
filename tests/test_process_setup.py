"""launcher/nameko.py, what every service process sets before nameko runs it
(issue 16): what a service built to start is frozen out of later full
collections (a full collection of some 100,000 start-up objects stopped a
process for 60 to 130 ms, the p99 spike of `make bench`'s first run), and an
entrypoint's arguments are bound once per shape."""

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


def test_an_entrypoint_binds_each_shape_of_arguments_once(monkeypatch):
    import inspect

    import pytest
    from nameko.exceptions import IncorrectSignature
    from nameko.extensions import Entrypoint
    from nameko.rpc import Rpc

    from launcher.nameko import cache_signature_checks

    monkeypatch.setattr(Entrypoint, "check_signature", Entrypoint.check_signature)
    cache_signature_checks()
    calls = []
    real = inspect.getcallargs
    monkeypatch.setattr(inspect, "getcallargs", lambda *a, **k: calls.append(1) or real(*a, **k))

    class Service:
        name = "s"

        def say(self, text, lang="nb"):
            return text

    entrypoint = Rpc()
    entrypoint.method_name = "say"
    entrypoint.container = type("C", (), {"service_cls": Service})()
    for _ in range(3):
        entrypoint.check_signature(("hei",), {})
        entrypoint.check_signature(("hei",), {"lang": "en"})
    assert len(calls) == 2
    for _ in range(2):
        with pytest.raises(IncorrectSignature):
            entrypoint.check_signature((), {"nope": 1})
    assert len(calls) == 4
