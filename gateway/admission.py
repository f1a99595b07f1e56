"""Bounded admission: how many RPC-backed requests one gateway process serves at once.

Past saturation, a request that waits for a worker slot and then for the chat
service's write lock only makes every other request slower: the delivered rate
falls and latency grows without bound. So a process takes at most `limit` such
requests at a time. The next one waits for a slot, first come first served,
for at most CHATVAKT_ADMISSION_WAIT_S (0.25 s), and no more of them wait than
there are slots; past either bound it is answered 503 `overloaded` with
Retry-After, before it costs an RPC, and the child's page keeps the message and
sends it again. Accepted messages stay quick; the excess learns fast to come back.

Why wait at all: the slots fill up in a burst, not only in a flood. A pause of
a tenth of a second in the chat service (a checkpoint of its database, a
collection, another process on the core) fills 75 slots at 600 messages a
second, and answering the 76th child 503 at once sent it away for a second
when a slot came free a few milliseconds later (the bench saw 13-47 of 3,700
messages so refused at a rate the relay carried). A wait at the gate costs no
RPC and no worker, only the request's open connection, which the gateway's
connection caps bound already; a sustained overload still sheds, a quarter
of a second later. A quarter, not a tenth: the line may be as long as the
slots, and 75 waiters take 0.13-0.19 s to be served at 400-600 messages a
second; a tenth refused the back of a line the relay was about to serve, and
a refusal costs the child its Retry-After second (in turns at 400 offered a
second on a 2-core machine, six 8 s runs of each: with 0.1 s 2 runs of 6 lost
no message, with 0.25 s 4 of 6, 2,597-3,200 against 2,962-3,200 of 3,200 relayed).

Three quarters of nameko's worker slots is the default (75 of 100): the rest
stay free for the gateway's event handlers, which push every relayed message to
the sockets (were requests to hold every slot, the pushes would queue behind
them). Measured past saturation on a 2-core machine, 50 in flight cut the relay
more than it shortened the tail, and 90 (no room left for pushes) did as well
as any: the pushes are short and need few slots.

A small reserve serves only staff reads of the waiting list and the alerts
(the routes in RESERVED): during a flood of children's messages a counsellor
must still see who waits and who is at risk, or no child gets taken at all.
The reserve never serves a child's message, so it cannot starve the children;
it only keeps the people who answer them from being shut out.

Probes, pages and static files take no slot: they make no RPC (readiness pings
are ours to answer even when overloaded), and sockets never come through here.
"""

import collections
import logging
import time

from eventlet.event import Event

from chatvakt import config

from . import metrics

log = logging.getLogger(__name__)

# Routes that take a slot: the API. Its description (openapi) makes no RPC.
ADMITTED_PREFIX = "/api/"
EXEMPT = frozenset({"/api/v1/openapi.json"})
RESERVED = frozenset({("GET", "/api/v1/queue"), ("GET", "/api/v1/alerts")})

RETRY_AFTER_S = 1
# While shedding, one warning this often says how much, instead of one line per 503
# (thousands a second, just when the process has no time to spare).
WARN_EVERY_S = 10.0


class Gate:
    """Slots in use, and the requests waiting for one in arrival order.

    One process's green threads share it; nothing yields between look and
    count. A slot given back goes straight to the first waiter, so a request
    that arrives while others wait queues behind them instead of taking it."""

    def __init__(self, limit, reserve=0, wait_s=0.0, max_waiting=None):
        self.limit = max(1, int(limit))
        self.reserve = max(0, int(reserve))
        self.wait_s = max(0.0, float(wait_s))
        self.max_waiting = self.limit if max_waiting is None else max(0, int(max_waiting))
        self.in_use = 0
        self.reserve_in_use = 0
        self.waiting = collections.deque()  # an Event per waiting request
        self.shed_count = 0
        self.warned_at = None

    def take(self, reserved=False):
        """A slot ("main" or "reserve"), or None when the request must be shed.
        Waits (yields) only when every slot is in use and wait_s allows it."""
        if self.in_use < self.limit:
            self.in_use += 1
            return "main"
        if reserved and self.reserve_in_use < self.reserve:
            self.reserve_in_use += 1
            return "reserve"
        if self.wait_s <= 0 or len(self.waiting) >= self.max_waiting:
            return None
        return self._wait()

    def _wait(self):
        handed = Event()
        self.waiting.append(handed)
        try:
            slot = handed.wait(self.wait_s)  # None when the time ran out
        except BaseException:
            # Killed while it waited (the client went away): a slot handed
            # to it in the meantime goes on to the next one.
            slot = self._withdraw(handed)
            if slot is not None:
                self.give(slot)
            raise
        if slot is None:
            slot = self._withdraw(handed)
        metrics.ADMISSION_WAITS.labels(outcome="admitted" if slot else "timed_out").inc()
        return slot

    def _withdraw(self, handed):
        """Leave the line; the slot handed over just as the time ran out, if any."""
        if handed.ready():
            return handed.wait()
        self.waiting.remove(handed)
        return None

    def shed(self, now=None):
        """Count one request answered 503 overloaded; warn now and then."""
        now = time.monotonic() if now is None else now
        self.shed_count += 1
        if self.warned_at is None or now - self.warned_at >= WARN_EVERY_S:
            log.warning(
                "overloaded: %d requests answered 503 since the last warning (%d in flight, limit %d)",
                self.shed_count,
                self.in_use,
                self.limit,
            )
            self.shed_count, self.warned_at = 0, now

    def give(self, slot):
        if slot == "main":
            if self.waiting:
                self.waiting.popleft().send("main")  # handed on: still in use
                return
            self.in_use -= 1
        elif slot == "reserve":
            self.reserve_in_use -= 1


def admitted(method, route):
    return route.startswith(ADMITTED_PREFIX) and route not in EXEMPT


def reserved(method, route):
    return (method, route) in RESERVED


def gate_for(max_workers):
    """The process's gate: CHATVAKT_MAX_INFLIGHT, else three quarters of the worker slots."""
    limit = config.max_inflight() or max(1, max_workers * 3 // 4)
    return Gate(limit, reserve=max(2, limit // 8), wait_s=config.admission_wait_s())
