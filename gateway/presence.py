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

    def due(self, counts, now):
        """Whether the report taken at `now` (a tick's monotonic time) goes out.

        The heartbeat is counted from the tick that took the last report, with
        half a tick of slack: counted from the end of its RPC, the tick one
        heartbeat later always found it a little short, so every heartbeat
        came a tick late (every 2 s for a heartbeat of 1 s, against the
        queue's 3 s before a quiet process counts as dead: a report slowed
        by a second then took a counsellor with an open socket offline)."""
        return counts != self.last or now - self.sent_at >= heartbeat_s() - REPORT_S / 2

    def sent(self, counts, at):
        """The report taken at `at` reached the queue."""
        self.last = counts
        self.sent_at = at
        # Only what this report carried: a socket may have joined while it was sent.
        self.joined -= set(counts)


reporter = Reporter()
