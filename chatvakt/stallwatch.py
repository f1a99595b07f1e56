"""Where a process's event loop was when it stopped turning (CHATVAKT_STALL_WATCH_MS).

An eventlet process serves nobody while one green thread runs without
yielding, or while the process waits for a core or for the disk: every
request and message in flight waits with it, and the relay's p99 is made of
such pauses (issue 16). This says where they happen. A green thread marks
the time every 10 ms; an OS thread (not green: it runs while the loop is
stuck) looks every 10 ms, and when the mark is older than the threshold it
takes the loop thread's stack once. The green thread logs it when the loop
turns again, so nothing is logged from outside the loop (logging's locks are
green in these processes).

The line names files, lines and functions only, never a value: a frame's
locals may hold a child's words. Off unless set; a few hundred wake-ups a
second when on.
"""

import logging
import re
import sys
import traceback
from pathlib import Path

from chatvakt import config

log = logging.getLogger(__name__)

TICK_S = 0.01
FRAMES = 12


def threshold_s():
    """The pause worth a warning, from CHATVAKT_STALL_WATCH_MS (0 or unset: no watch)."""
    return max(0.0, config.env_float("CHATVAKT_STALL_WATCH_MS", 0.0)) / 1000


def where(frame, limit=FRAMES):
    """The innermost `limit` frames of a stack as "file:line function", innermost first."""
    stack = traceback.extract_stack(frame, limit=limit)
    return [f"{_short(f.filename)}:{f.lineno} {f.name}" for f in reversed(stack)]


_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_PACKAGE = re.compile(r"/site-packages/(.*)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/(.*)$")


def _short(path):
    """A path in a package, this repository or the standard library, without the machine's part
    (a virtualenv may lie inside the repository: packages first)."""
    found = _PACKAGE.search(path)
    if found:
        return found.group(1)
    if path.startswith(_ROOT):
        return path[len(_ROOT) :]
    found = _STDLIB.search(path)
    return found.group(1) if found else path


class Watch:
    def __init__(self, threshold, clock, loop_ident):
        self.threshold = threshold
        self.clock = clock
        self.loop_ident = loop_ident
        self.mark = clock()
        self.caught = []  # (how long it had been stuck, where): the OS thread appends, the loop pops
        self._taken_for = None
        self.stopped = False

    def stop(self):
        self.stopped = True

    def beat(self):
        """On the loop: mark the time, and log what the watcher caught meanwhile."""
        now = self.clock()
        while self.caught:
            stuck_s, frames = self.caught.pop(0)
            paused_s = now - self.mark
            log.warning(
                "event loop stopped for %.0f ms (over %.0f ms when caught) at %s",
                max(paused_s, stuck_s) * 1000,
                stuck_s * 1000,
                " <- ".join(frames),
            )
        self.mark = now

    def look(self):
        """From the OS thread: take the loop's stack once per pause."""
        mark = self.mark
        stuck_s = self.clock() - mark
        if stuck_s > self.threshold and self._taken_for != mark:
            self._taken_for = mark
            frame = sys._current_frames().get(self.loop_ident)
            self.caught.append((stuck_s, where(frame) if frame is not None else ["?"]))


def start():
    """In a service process, after its container started: watch, if configured."""
    threshold = threshold_s()
    if not threshold:
        return None
    import eventlet
    from eventlet import patcher

    real_threading = patcher.original("threading")
    real_time = patcher.original("time")
    watch = Watch(threshold, real_time.monotonic, real_threading.get_ident())

    def loop_side():
        while not watch.stopped:
            watch.beat()
            eventlet.sleep(TICK_S)

    def os_side():
        while not watch.stopped:
            real_time.sleep(TICK_S)
            watch.look()

    eventlet.spawn_n(loop_side)
    real_threading.Thread(target=os_side, name="chatvakt-stall-watch", daemon=True).start()
    log.info("stall watch on: the loop's stack is logged after a pause over %.0f ms", threshold * 1000)
    return watch
