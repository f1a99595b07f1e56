"""The words every service and the gateway share, written once.

Part of the contract beside `events.py`: roles, genders, phases, chat
statuses and outcomes, escalation kinds with their statuses, and which of
those statuses keep an escalation open (and so keep its chat's transcript
from retention). A service may add words of its own; it must not write
these out again.
"""

# -- people ---------------------------------------------------------------------

# A staff account's role; children have no account (their role is "child").
ROLES = ("counsellor", "supervisor", "admin")
STAFF = ROLES
SUPERVISORS = ("supervisor", "admin")
CHILD = "child"
# Who wrote a message in a chat.
SENDERS = (CHILD, "counsellor", "system")
GENDERS = ("girl", "boy", "other", "unspecified")

# -- a chat ---------------------------------------------------------------------

# The conversation model's phases, in order (DESIGN.md: the counsellor is the architect).
PHASES = ("opening", "request_and_goal", "options_for_action", "summary_and_close")
# A chat is open while it waits or has a counsellor ...
OPEN_CHAT_STATUSES = ("waiting", "active")
# ... and ends in one of these outcomes: ended by either side, left before a
# counsellor took it, or ended for silence.
END_STATUSES = ("ended", "abandoned", "timed_out")
CHAT_STATUSES = OPEN_CHAT_STATUSES + END_STATUSES

# -- escalations ----------------------------------------------------------------

ESCALATION_KINDS = ("acute_danger", "report_of_concern", "network_contact", "referral")
# Every status of each kind, and those of them in which the escalation is
# still open. The escalation service's status machines must agree (tested
# there); the events it sends carry the answer as their `open` flag.
ESCALATION_STATUSES = {
    "acute_danger": ("open", "emergency_contacted", "closed"),
    "report_of_concern": ("draft", "approved", "sent", "acknowledged", "closed"),
    "network_contact": ("open", "contacted", "closed"),
    # A referral is a record of what the child was told: done when written.
    "referral": ("recorded",),
}
OPEN_ESCALATION_STATUSES = {
    "acute_danger": ("open", "emergency_contacted"),
    "report_of_concern": ("draft", "approved", "sent", "acknowledged"),
    "network_contact": ("open", "contacted"),
    "referral": (),
}


def escalation_open(kind, status):
    """Whether an escalation of this kind in this status is still open.
    An unknown kind or status counts as open: when in doubt, keep evidence."""
    known = ESCALATION_STATUSES.get(kind, ())
    if status not in known:
        return True
    return status in OPEN_ESCALATION_STATUSES[kind]


def holds_transcript(open_flag, kind, status):
    """The retention rule: an escalation keeps its chat's transcript while it
    is open. The escalation's own `open` flag decides; an event from before
    the flag existed (None) is judged by its kind and status."""
    if open_flag is None:
        return escalation_open(kind, status)
    return bool(open_flag)
