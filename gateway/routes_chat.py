"""HTTP routes of a chat: what the child and the chat's counsellor call."""

import secrets

from chatvakt import errors
from chatvakt.messages import client_message

from . import accounts, clientaddr, limits, metrics, ratelimit, schemas
from .base import STAFF, SUPERVISORS, _public_chat, public_status, with_risk
from .sockets import origin_allowed
from .web import api, read_json


class ChatRoutes:
    @api("POST", "/api/v1/chats")
    def start_chat(self, request):
        # A page on another site must not make its visitors' browsers open
        # chats: the same Origin allow-list as /ws (no Origin: not a browser).
        if not origin_allowed(request.headers):
            raise errors.Forbidden("Chats can only be opened from the helpline's own page.")
        body = read_json(request, schemas.StartChat)
        # Per source address, shared by every replica; the address itself is
        # only ever a keyed hash (limits.py). `source` and `suspect` let the
        # queue serve a flood after real children.
        try:
            seen = self._tx(limits.open_chat, clientaddr.from_environ(request.environ))
        except errors.RateLimited:
            metrics.ERRORS.labels(service="gateway", kind="chat_open_limited").inc()
            raise
        started = self.chat.start_chat(
            gender=body["gender"],
            age=body["age"],
            nickname=body["nickname"],
            message=body["message"],
            source=seen["source"],
            suspect=seen["suspect"],
            lang=body["lang"],
            # only when answered: a chat replica from before
            # issue 14 (rolling upgrade) still takes the call
            **({"in_danger": body["in_danger"]} if body["in_danger"] is not None else {}),
        )
        token = self._tx(accounts.issue_child_token, started["chat_id"])
        position = None
        try:
            # The chat_started event enqueues too; asking directly lets us tell
            # the child their place at once. Both paths are idempotent.
            position = self.queue.enqueue(
                started["chat_id"], started["started_at"], body["gender"], body["age"], seen["source"], seen["suspect"]
            )
        except errors.Unavailable:
            pass
        return 201, {
            "chat_id": started["chat_id"],
            "token": token,
            "status": "waiting",
            "position": position.get("position") if position else None,
            "estimated_wait_s": position.get("estimated_wait_s") if position else None,
            "welcome": started["welcome"],
            "notice": position.get("notice") if position else None,
            "started_at": started["started_at"],
        }

    @api("GET", "/api/v1/chats/<string:chat_id>")
    def get_chat(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        chat = self.chat.get_chat(chat_id, actor)
        position = self.queue.position(chat_id) if chat["status"] == "waiting" else None
        view = _public_chat(chat, position)
        if actor["role"] != "child":
            view["counsellor"] = chat["counsellor"]
            view["in_danger"] = chat.get("in_danger")
            view["lang"] = chat.get("lang")  # issue 13: the language the child's page is in
            # the card's risk marker, reason and flagged messages (by seq): staff only
            view = with_risk(view, self._chat_risk([chat_id]), flags=True)
        return view

    def _child_says(self, request, chat_id, schema, field, remote, refusal):
        """A child's page tells us one fact about its chat (in danger now, its
        language). Only the child may; the chat service counts each change in
        the chat's own limit (the same answer again costs nothing), so a script
        on one token cannot churn events, through any number of replicas."""
        actor = self._chat_actor(request, chat_id)
        if actor["role"] != "child":
            raise errors.Forbidden(refusal)
        body = read_json(request, schema)
        result = remote(chat_id, actor, body[field])
        return {"chat_id": chat_id, field: result[field], "changed": result["changed"]}

    @api("POST", "/api/v1/chats/<string:chat_id>/danger")
    def report_danger(self, request, chat_id):
        """issue 14: the child says later that they are in danger now."""
        return self._child_says(
            request,
            chat_id,
            schemas.Danger,
            "in_danger",
            self.chat.report_danger,
            "Only the child says this; mark risk with /risk.",
        )

    @api("POST", "/api/v1/chats/<string:chat_id>/lang")
    def set_lang(self, request, chat_id):
        """issue 13: the child's page switched language; the counsellor sees it."""
        return self._child_says(
            request,
            chat_id,
            schemas.Lang,
            "lang",
            self.chat.set_lang,
            "Only the child's page says which language it is in.",
        )

    @api("POST", "/api/v1/chats/<string:chat_id>/risk")
    def mark_risk(self, request, chat_id):
        """issue 14: staff mark a chat at risk or not, by hand, with a reason.
        Kept by the escalation service as a labelled example (reason sealed);
        a waiting chat also moves in or out of the queue's at-risk tier."""
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.RiskMark)
        waiting = self.queue.position(chat_id).get("status") == "waiting"
        if not (waiting and actor["role"] == "counsellor"):
            # Every counsellor sees the queue, so may mark a waiting chat; past
            # the queue only their own (404 otherwise), a supervisor any.
            self.chat.get_chat(chat_id, actor)
        mark = self.escalation.mark_risk(chat_id, body["at_risk"], body["reason"], actor, body["categories"])
        changed = waiting and bool(self.queue.mark_risk(chat_id, body["at_risk"]).get("changed"))
        return {**mark, "queue_changed": changed}

    @api("POST", "/api/v1/chats/<string:chat_id>/messages")
    def post_message(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        body = read_json(request, schemas.PostMessage)
        # Without a client id, one of ours still makes the RPC idempotent: a
        # request redelivered after the chat service died stores one copy.
        client_msg_id = body["client_msg_id"] or "gw:" + secrets.token_hex(12)
        # A child's messages per minute are the chat service's to count (on the
        # chat's row, across replicas): a 429 comes back from it with its wait.
        result = self.chat.post_message(chat_id, actor, body["text"], client_msg_id)
        return 201, {"seq": result["seq"], "sent_at": result["sent_at"]}

    @api("GET", "/api/v1/chats/<string:chat_id>/messages")
    def list_messages(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        raw = request.args.get("after", "0")
        try:
            after = int(raw)
        except ValueError:
            raise errors.Invalid("after must be a whole number.", {"after": ["Not an integer."]}) from None
        if after < 0 or after > 2**31:
            raise errors.Invalid("after is out of range.", {"after": ["Out of range."]})
        messages = self.chat.list_messages(chat_id, actor, after)
        return {"messages": [client_message(m, staff=actor["role"] != "child") for m in messages]}

    @api("POST", "/api/v1/chats/<string:chat_id>/end")
    def end_chat(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        body = read_json(request, schemas.EndChat)
        ended_by = body["reason"] if actor["role"] == "child" and body["reason"] == "quick_exit" else None
        chat = self.chat.end_chat(chat_id, actor, ended_by)
        return {"status": public_status(chat["status"]), "outcome": chat["status"], "ended_by": chat["ended_by"]}

    @api("POST", "/api/v1/chats/<string:chat_id>/typing")
    def typing_http(self, request, chat_id):
        actor = self._chat_actor(request, chat_id)
        if ratelimit.typing_throttle().allow((chat_id, actor["role"] == "child")):
            self.chat.typing(chat_id, actor)
        return 202, {"ok": True}

    @api("POST", "/api/v1/chats/<string:chat_id>/transfer")
    def transfer(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Transfer)
        target = self._tx(accounts.find, body["to"])
        if target is None or target["role"] not in STAFF:
            raise errors.Invalid("No such counsellor.", {"to": ["Unknown counsellor id."]})
        return self.chat.transfer(chat_id, actor, target["id"], target["name"], body["note"])

    @api("GET", "/api/v1/chats")
    def list_chats(self, request):
        actor = self._actor(request, STAFF)
        status = request.args.get("status", "active")
        chats = self.chat.list_chats(actor, status)
        summary = self._chat_risk([c["chat_id"] for c in chats])
        return {"chats": [with_risk(c, summary) for c in chats]}

    @api("POST", "/api/v1/chats/<string:chat_id>/notes")
    def add_note(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Note)
        return 201, self.chat.add_note(chat_id, actor, body["text"])

    @api("POST", "/api/v1/chats/<string:chat_id>/whisper")
    def whisper(self, request, chat_id):
        actor = self._actor(request, SUPERVISORS)
        body = read_json(request, schemas.Note)
        return 201, self.chat.whisper(chat_id, actor, body["text"])

    @api("PUT", "/api/v1/chats/<string:chat_id>/phase")
    def set_phase(self, request, chat_id):
        actor = self._actor(request, STAFF)
        body = read_json(request, schemas.Phase)
        chat = self.chat.set_phase(chat_id, actor, body["phase"])
        return {"chat_id": chat["chat_id"], "phase": chat["phase"], "phases": chat["phases"]}
