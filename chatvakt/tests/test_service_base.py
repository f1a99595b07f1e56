"""chatvakt.service: the metrics timer every service inherits, without a broker."""

from chatvakt.service import ServiceBase


class Gauge:
    def __init__(self):
        self.value = None

    def set(self, value):
        self.value = value


def test_the_gauges_follow_the_domains_snapshot():
    waiting, oldest = Gauge(), Gauge()

    class Service(ServiceBase):
        gauges = (
            lambda session: {"waiting": 3, "oldest_wait_s": 41.5, "other": 1},
            {"waiting": waiting, "oldest_wait_s": oldest},
        )

        def read(self, fn, *args):
            return fn(None, *args)

    Service().report_metrics()
    assert (waiting.value, oldest.value) == (3, 41.5)


def test_a_service_without_gauges_reads_nothing():
    class Service(ServiceBase):
        def read(self, fn, *args):
            raise AssertionError("no snapshot to read")

    Service().report_metrics()
