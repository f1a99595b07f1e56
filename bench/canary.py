"""A process that only sleeps, 10 ms at a time, and notes when it woke late.

Beside a relay run it tells a stall of the whole machine (this process too
woke late: another tenant, the hypervisor, the two cores full) from a stall
of the stack alone (the relay's messages were slow while this woke on time).
It costs about a hundred wake-ups a second. Run by bench/scale.py's cpu_run;
it prints its findings as JSON when interrupted.
"""

import json
import signal
import sys
import time

INTERVAL_S = 0.01
LATE_MS = 25.0  # as the relay's "slow": the p99 goal at half load


def main():
    late = []  # [wall-clock time it woke, ms late]
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while not stop:
        before = time.perf_counter()
        time.sleep(INTERVAL_S)
        over_ms = (time.perf_counter() - before - INTERVAL_S) * 1000
        if over_ms > LATE_MS:
            late.append([time.time(), round(over_ms, 1)])
    json.dump(late, sys.stdout)


def by_second(late, started):
    """{second of the run: the longest late wake-up in it (ms)}, from main's list."""
    out = {}
    for woke, over_ms in late:
        second = int(woke - started)
        if second >= 0:
            out[second] = max(out.get(second, 0.0), over_ms)
    return dict(sorted(out.items()))


if __name__ == "__main__":
    main()
