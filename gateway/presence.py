"""Counsellor sockets per gateway process, reported to the queue service.

The queue marks a counsellor offline when all their sockets, on every
gateway replica, have been gone for longer than CHATVAKT_PRESENCE_GRACE_S.
Each process counts its own authenticated staff sockets from the hub (nameko
drops a connection from the hub when its socket closes) and sends the whole
count to the queue when it changed, and at least every
CHATVAKT_PRESENCE_HEARTBEAT_S so that the queue can tell a process that died
from one that is merely quiet.
"""

import os
import secrets
import time

from chatvakt import config

# Timer intervals are fixed when the class is built, so they are read at import.
REPORT_S = config.env_float("CHATVAKT_PRESENCE_REPORT_S", 1.0)
# One name per process start: a restarted process must not inherit the counts
# its predecessor reported (those go stale and count as closed).
PROCESS = f"{config.env('CHATVAKT_PROCESS', 'gateway')}:{os.getpid()}:{secrets.token_hex(3)}"


def heartbeat_s():
    return config.env_float("CHATVAKT_PRESENCE_HEARTBEAT_S", 15.0)


# issue 12: how often this process tells the queue which waiting children it saw.
SEEN_REPORT_S = config.seen_report_s()


def child_chats(hub):
    """Chats whose child has an authenticated socket on this process."""
    out = set()
    for connection in list(hub.connections.values()):
        actor = connection.context_data.get("actor")
        if actor and actor.get("role") == "child" and actor.get("chat_id"):
            out.add(actor["chat_id"])
    return out


def staff_counts(hub):
    counts = {}
    for connection in list(hub.connections.values()):
        actor = connection.context_data.get("actor")
        if actor and actor.get("role") != "child" and actor.get("id"):
            counts[actor["id"]] = counts.get(actor["id"], 0) + 1
    return counts


class Reporter:
    """What this process last told the queue, so it tells only what changed."""

    def __init__(self):
        self.last = None
        self.sent_at = 0.0
        self.joined = set()

    def joined_socket(self, counsellor_id):
        self.joined.add(counsellor_id)

    def counts(self, hub):
        """The counts to report: a socket that opened and closed between two
        reports (or while the queue did not answer) is reported as none left,
        so its counsellor goes offline after the grace instead of never.
        Someone last reported with sockets is reported once more with none."""
        counts = staff_counts(hub)
        gone = self.joined | {cid for cid, n in (self.last or {}).items() if n}
        for counsellor_id in gone:
            counts.setdefault(counsellor_id, 0)
        return counts

    def due(self, counts):
        return counts != self.last or time.monotonic() - self.sent_at >= heartbeat_s()

    def sent(self, counts):
        self.last = counts
        self.sent_at = time.monotonic()
        # Only what this report carried: a socket may have joined while it was sent.
        self.joined -= set(counts)


reporter = Reporter()
