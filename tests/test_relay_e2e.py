"""Issue 4, the chat relay, through the real processes on the real broker:
two replicas of every service and two gateways (Stack(replicas=2))."""

import os
import secrets
import signal
import time
import urllib.parse

import eventlet
import pytest
import requests

from tests.client import Api, Socket, active_chat, staff, start_chat
from tests.stack import MANAGEMENT, RABBIT_AUTH, Stack

pytestmark = pytest.mark.e2e

PROMPT_S, END_S = 2, 8


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("relay")
    trigger = workdir / "crash-after-commit"
    running = Stack(
        workdir,
        replicas=2,
        env={
            "CHATVAKT_CHILD_MSGS_PER_MIN": "1000",
            "CHATVAKT_INACTIVITY_PROMPT_S": str(PROMPT_S),
            "CHATVAKT_INACTIVITY_END_S": str(END_S),
            "CHATVAKT_INACTIVITY_CHECK_S": "0.5",
            "CHATVAKT_RETENTION_DAYS": "0",
            "CHATVAKT_RETENTION_CHECK_S": "1",
            "CHATVAKT_TEST_CRASH_AFTER_COMMIT": str(trigger),
        },
    ).start()
    running.crash_trigger = trigger
    running.urls = [running.url, f"http://127.0.0.1:{running.port + 1}"]
    yield running
    running.stop()


def messages(client, chat_id, after=0):
    response = client.get(f"/api/v1/chats/{chat_id}/messages?after={after}")
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def send_until_stored(urls, token, chat_id, text, client_msg_id, deadline_s=60):
    """A client that retries with the same client_msg_id until it gets a 201."""
    deadline = time.monotonic() + deadline_s
    attempt = 0
    while time.monotonic() < deadline:
        url = urls[attempt % len(urls)]
        attempt += 1
        try:
            response = requests.post(
                f"{url}/api/v1/chats/{chat_id}/messages",
                json={"text": text, "client_msg_id": client_msg_id},
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            )
        except requests.RequestException:
            eventlet.sleep(0.2)
            continue
        if response.status_code == 201:
            return response.json()["seq"]
        assert response.status_code == 503, response.text  # only "not stored, retry" is expected
        eventlet.sleep(0.2)
    raise AssertionError("a message was never stored")


def chat_pids(stack):
    """The chat service's processes in THIS stack only (children of its launcher)."""
    children = []
    for task in os.listdir(f"/proc/{stack.proc.pid}/task"):
        try:
            children += open(f"/proc/{stack.proc.pid}/task/{task}/children").read().split()
        except OSError:
            pass
    found = []
    for pid in children:
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"services.chat.service:ChatService" in cmdline:
            found.append(int(pid))
    return found


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError(message)


def assert_exactly_once(history, texts):
    seqs = [m["seq"] for m in history]
    assert seqs == list(range(1, len(seqs) + 1)), "seqs are not gap-free and increasing"
    bodies = [m["text"] for m in history]
    for text in texts:
        assert bodies.count(text) == 1, f"{bodies.count(text)} copies of one message"


def test_order_and_idempotency_under_concurrency_through_two_gateways(relay):
    counsellor = staff(relay)
    chat_id, child = active_chat(relay, counsellor)
    listening = Socket(relay.urls[1], counsellor.token)  # the other gateway than most sends
    n = 60
    ids = [f"m-{i}" for i in range(n)]
    pool = eventlet.GreenPool(24)
    # Every message is sent twice at once, through different gateways.
    jobs = [(relay.urls[(i + k) % 2], i) for i in range(n) for k in (0, 1)]

    def send(job):
        url, i = job
        response = requests.post(
            f"{url}/api/v1/chats/{chat_id}/messages",
            json={"text": f"melding {i}", "client_msg_id": ids[i]},
            headers={"Authorization": f"Bearer {child.token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return i, response.json()["seq"]

    answers = {}
    for i, seq in pool.imap(send, jobs):
        answers.setdefault(i, set()).add(seq)
    assert all(len(seqs) == 1 for seqs in answers.values()), "a duplicate got another seq"
    history = messages(child, chat_id)
    assert_exactly_once(history, [f"melding {i}" for i in range(n)])
    by_seq = {m["seq"]: m["text"] for m in history}
    assert all(by_seq[seqs.pop()] == f"melding {i}" for i, seqs in answers.items())
    # Every stored message reaches the counsellor's socket, in order of seq once sorted.
    last = history[-1]["seq"]
    wait_until(
        lambda: (
            {
                f["data"]["seq"]
                for f in listening.events
                if f["event"] == "chat.message" and f["data"]["chat_id"] == chat_id
            }
            >= set(range(4, last + 1))
        ),
        15,
        "not every message reached the counsellor's socket",
    )
    # Exact resume: after=N gives exactly what came after N, from either gateway.
    for n_after in (0, 7, last - 1, last):
        tail = messages(Api(relay.urls[n_after % 2], child.token), chat_id, n_after)
        assert [m["seq"] for m in tail] == list(range(n_after + 1, last + 1))
    listening.close()


def test_no_201_is_lost_when_the_chat_service_is_killed(relay):
    # A waiting chat (no inactivity timer); a supervisor's socket is its other side.
    chat_id, child = start_chat(relay)
    supervisor = staff(relay, "supervisor")
    watching = Socket(relay.url, supervisor.token)
    before = chat_pids(relay)
    assert len(before) == 2
    n = 40
    stored = {}
    pool = eventlet.GreenPool(8)

    def sender(i):
        stored[i] = send_until_stored(relay.urls, child.token, chat_id, f"tekst {i}", f"k-{i}")

    for i in range(n):
        pool.spawn(sender, i)
    wait_until(lambda: len(stored) >= 8, 30, "no sends got through before the kill")
    for pid in before:
        os.kill(pid, signal.SIGKILL)  # both replicas, right after some 201s
    pool.waitall()
    assert len(stored) == n
    after = wait_until(
        lambda: (lambda p: p if len(p) == 2 and not set(p) & set(before) else None)(chat_pids(relay)),
        30,
        "the chat service did not come back",
    )
    assert len(after) == 2
    history = messages(child, chat_id)
    assert_exactly_once(history, [f"tekst {i}" for i in range(n)])
    by_seq = {m["seq"]: m["text"] for m in history}
    assert all(by_seq[seq] == f"tekst {i}" for i, seq in stored.items())
    # Events committed but not yet published when the process died come from the sweeper.
    wait_until(
        lambda: (
            {
                f["data"]["seq"]
                for f in watching.events
                if f["event"] == "chat.message" and f["data"]["chat_id"] == chat_id
            }
            >= set(stored.values())
        ),
        25,
        "a stored message never reached the socket",
    )
    watching.close()


def test_a_crash_between_commit_and_publish_is_healed_by_the_outbox(relay):
    chat_id, child = start_chat(relay)
    supervisor = staff(relay, "supervisor")
    watching = Socket(relay.url, supervisor.token)
    before = set(chat_pids(relay))
    relay.crash_trigger.write_text("once")
    seq = send_until_stored(relay.urls, child.token, chat_id, "etter krasj", "crash-1")
    assert not relay.crash_trigger.exists(), "the hook did not fire"
    assert "test hook: exiting after commit" in relay.logs()
    wait_until(lambda: set(chat_pids(relay)) != before, 20, "no chat process died")
    history = messages(child, chat_id)
    assert_exactly_once(history, ["etter krasj"])
    assert {m["seq"]: m["text"] for m in history}[seq] == "etter krasj"
    # Nobody published it (the writer died); the sweeper does once the claim runs out.
    pushed = watching.wait_for("chat.message", lambda d: d["chat_id"] == chat_id and d["seq"] == seq, timeout=25)
    assert pushed["text"] == "etter krasj"
    watching.close()


def test_notes_and_whispers_never_reach_the_child(relay):
    counsellor = staff(relay)
    supervisor = staff(relay, "supervisor")
    chat_id, child = active_chat(relay, counsellor)
    child_socket = Socket(relay.url, child.token)
    counsellor_socket = Socket(relay.urls[1], counsellor.token)
    supervisor_socket = Socket(relay.url, supervisor.token)

    note = counsellor.post(f"/api/v1/chats/{chat_id}/notes", {"text": "Mulig mobbing, følg opp"})
    assert note.status_code == 201 and note.json()["kind"] == "note", note.text
    whisper = supervisor.post(f"/api/v1/chats/{chat_id}/whisper", {"text": "Spør om hen er trygg nå"})
    assert whisper.status_code == 201, whisper.text
    assert counsellor.post(f"/api/v1/chats/{chat_id}/whisper", {"text": "x"}).status_code == 403
    assert staff(relay).post(f"/api/v1/chats/{chat_id}/notes", {"text": "x"}).status_code == 404
    assert child.post(f"/api/v1/chats/{chat_id}/notes", {"text": "x"}).status_code == 403
    said = counsellor.post(f"/api/v1/chats/{chat_id}/messages", {"text": "Er du trygg nå?"})
    assert said.status_code == 201

    child_socket.wait_for("chat.message", lambda d: d["seq"] == said.json()["seq"])
    counsellor_socket.wait_for("chat.message", lambda d: d.get("kind") == "whisper")
    supervisor_socket.wait_for("chat.message", lambda d: d.get("kind") == "note")
    secret = {"Mulig mobbing, følg opp", "Spør om hen er trygg nå"}
    assert not [f for f in child_socket.events if f["data"].get("text") in secret]
    child_view = messages(child, chat_id)
    assert not secret & {m["text"] for m in child_view}
    assert all("visibility" not in m for m in child_view)
    # Staff see the whole transcript, gap-free; the child a subsequence.
    for viewer in (counsellor, supervisor):
        texts = {m["text"] for m in messages(viewer, chat_id)}
        assert secret <= texts
    assert [m["seq"] for m in messages(supervisor, chat_id)] == list(range(1, said.json()["seq"] + 1))

    # The conversation model, and the console's list of active chats.
    phase = counsellor.put(f"/api/v1/chats/{chat_id}/phase", {"phase": "request_and_goal"})
    assert phase.status_code == 200 and set(phase.json()["phases"]) == {"opening", "request_and_goal"}
    assert counsellor.put(f"/api/v1/chats/{chat_id}/phase", {"phase": "later"}).status_code == 422
    mine = counsellor.get("/api/v1/chats?status=active").json()["chats"]
    assert [c["chat_id"] for c in mine] == [chat_id]
    assert chat_id in {c["chat_id"] for c in supervisor.get("/api/v1/chats").json()["chats"]}
    assert child.get("/api/v1/chats?status=active").status_code == 403
    ended = child.post(f"/api/v1/chats/{chat_id}/end", {"reason": "quick_exit"})
    assert {k: ended.json()[k] for k in ("status", "ended_by")} == {"status": "ended", "ended_by": "quick_exit"}
    for socket in (child_socket, counsellor_socket, supervisor_socket):
        socket.close()


def test_the_risk_screen_is_handed_only_the_childs_messages(relay):
    """Issue 16: a counsellor's message goes out under message_posted.staff,
    which the escalation service's queue is not bound to; both gateways, bound
    to message_posted.#, still push it. Two queues of the test's own, bound as
    the screen and a gateway are, show what each is handed."""
    from kombu import Connection, Exchange, Queue

    from chatvakt import events as ev

    counsellor = staff(relay)
    chat_id, child = active_chat(relay, counsellor)
    child_socket = Socket(relay.urls[1], child.token)
    counsellor_socket = Socket(relay.url, counsellor.token)
    exchange = Exchange(f"{ev.CHAT}.events", type="topic", durable=True, no_declare=True)
    with Connection(relay.amqp_uri) as connection:
        channel = connection.channel()
        tag = secrets.token_hex(4)
        as_screen = Queue(f"test-screen-{tag}", exchange, routing_key=ev.MESSAGE_POSTED, exclusive=True)(channel)
        as_gateway = Queue(f"test-gateway-{tag}", exchange, routing_key=ev.MESSAGE_POSTED_ANY, exclusive=True)(channel)
        as_screen.declare()
        as_gateway.declare()
        said = child.post(f"/api/v1/chats/{chat_id}/messages", {"text": "Jeg er redd"}).json()["seq"]
        answered = counsellor.post(f"/api/v1/chats/{chat_id}/messages", {"text": "Jeg er her"}).json()["seq"]
        counsellor_socket.wait_for("chat.message", lambda d: d["seq"] == said)
        child_socket.wait_for("chat.message", lambda d: d["seq"] == answered)

        def drain(queue):
            got = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(got) < 2:
                message = queue.get(no_ack=True)
                if message is None:
                    eventlet.sleep(0.05)
                    continue
                data = message.decode()
                if data["chat_id"] == chat_id:
                    got.append((data["seq"], data["sender"], message.delivery_info["routing_key"]))
            return got

        everything = drain(as_gateway)
        screened = drain(as_screen)
        channel.close()
    assert everything == [(said, "child", "message_posted"), (answered, "counsellor", "message_posted.staff")]
    assert screened == [(said, "child", "message_posted")]
    # The screen's own queue is bound to the child's key alone.
    bindings = requests.get(
        f"{MANAGEMENT}/api/queues/{urllib.parse.quote(relay.vhost, safe='')}/"
        "evt-chat-message_posted--escalation.on_message_posted/bindings",
        auth=RABBIT_AUTH,
        timeout=10,
    ).json()
    assert {b["routing_key"] for b in bindings if b["source"] == exchange.name} == {ev.MESSAGE_POSTED}
    child_socket.close()
    counsellor_socket.close()


def test_typing_is_throttled_across_gateways(relay):
    counsellor = staff(relay)
    chat_id, child = active_chat(relay, counsellor)
    listening = Socket(relay.url, counsellor.token)
    for i in range(10):
        response = Api(relay.urls[i % 2], child.token).post(f"/api/v1/chats/{chat_id}/typing")
        assert response.status_code == 202
    listening.wait_for("chat.typing", lambda d: d["chat_id"] == chat_id)
    eventlet.sleep(0.5)
    assert sum(1 for f in listening.events if f["event"] == "chat.typing") == 1
    eventlet.sleep(2.0)
    Api(relay.url, child.token).post(f"/api/v1/chats/{chat_id}/typing")
    wait_until(
        lambda: sum(1 for f in listening.events if f["event"] == "chat.typing") == 2,
        5,
        "typing after the interval was not let through",
    )
    listening.close()


def test_a_childs_limits_in_a_chat_hold_across_gateways(relay):
    # The chat service counts them on the chat's row: through two gateways a
    # child still gets the default 6 language switches a minute, not 6 each.
    counsellor = staff(relay)
    chat_id, child = active_chat(relay, counsellor)
    codes = []
    for i in range(7):
        page = Api(relay.urls[i % 2], child.token)
        codes.append(page.post(f"/api/v1/chats/{chat_id}/lang", {"lang": ("en", "nb")[i % 2]}).status_code)
    assert codes == [200] * 6 + [429], codes
    limited = Api(relay.urls[1], child.token).post(f"/api/v1/chats/{chat_id}/lang", {"lang": "en"})
    assert limited.json()["error"]["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 10


def test_silence_prompts_the_counsellor_then_times_out(relay):
    counsellor = staff(relay)
    chat_id, child = active_chat(relay, counsellor)
    child_socket = Socket(relay.url, child.token)
    counsellor_socket = Socket(relay.urls[1], counsellor.token)
    prompt = counsellor_socket.wait_for(
        "chat.message", lambda d: d["chat_id"] == chat_id and d.get("kind") == "inactivity_prompt", timeout=PROMPT_S + 5
    )
    assert prompt["sender"] == "system" and prompt["visibility"] == "counsellors"
    ended = child_socket.wait_for("chat.ended", lambda d: d["chat_id"] == chat_id, timeout=END_S + 5)
    # API.md's statuses stay waiting/active/ended/abandoned; the outcome says why.
    assert ended["status"] == "ended" and ended["outcome"] == "timed_out" and ended["ended_by"] == "timeout"
    # Prompted once (this stack's 0-day retention deletes the transcript at once,
    # so the socket is the record here; the domain test reads it back).
    assert (
        sum(
            1
            for f in counsellor_socket.events
            if f["data"].get("chat_id") == chat_id and f["data"].get("kind") == "inactivity_prompt"
        )
        == 1
    )
    assert not [f for f in child_socket.events if f["data"].get("kind") == "inactivity_prompt"]
    # The child's token ended with the chat (issue 12): the counsellor looks.
    state = counsellor.get(f"/api/v1/chats/{chat_id}").json()
    assert (state["status"], state["outcome"]) == ("ended", "timed_out")
    child_socket.close()
    counsellor_socket.close()


def test_retention_deletes_ended_transcripts_unless_escalated(relay):
    # This stack keeps transcripts for 0 days and looks every second.
    counsellor = staff(relay)
    supervisor = staff(relay, "supervisor")
    watching = Socket(relay.url, supervisor.token)
    held, _ = active_chat(relay, counsellor)
    plain, _ = active_chat(relay, counsellor)
    raised = counsellor.post(
        f"/api/v1/chats/{held}/escalations", {"kind": "report_of_concern", "details": {"note": "test"}}
    )
    assert raised.status_code == 201, raised.text
    watching.wait_for("escalation.raised", lambda d: d["chat_id"] == held)
    eventlet.sleep(1.0)  # the chat service learns the hold from the same event
    for chat_id in (held, plain):
        assert counsellor.post(f"/api/v1/chats/{chat_id}/end").status_code == 200
    wait_until(lambda: messages(supervisor, plain) == [], 10, "the transcript was not deleted")
    eventlet.sleep(1.5)
    assert [m["kind"] for m in messages(supervisor, held)][:1] == ["welcome"]
    watching.close()


def test_retention_follows_the_escalations_open_flag_referral_included(relay):
    """Issue 15: a referral is done when recorded, so a chat whose only
    escalation is a referral loses its transcript like any other; a chat with
    an open escalation keeps it until that escalation closes."""
    counsellor = staff(relay)
    supervisor = staff(relay, "supervisor")
    watching = Socket(relay.url, supervisor.token)
    referred, _ = active_chat(relay, counsellor)
    held, _ = active_chat(relay, counsellor)
    ids = {}
    for chat_id, kind, details in (
        (referred, "referral", {"services": ["ungno"]}),
        (held, "referral", {"services": ["ungno"]}),
        (held, "acute_danger", {}),
    ):
        raised = counsellor.post(f"/api/v1/chats/{chat_id}/escalations", {"kind": kind, "details": details})
        assert raised.status_code == 201, raised.text
        ids[(chat_id, kind)] = raised.json()["escalation_id"]
        watching.wait_for("escalation.raised", lambda d, e=ids[(chat_id, kind)]: d["escalation_id"] == e)
    eventlet.sleep(1.0)  # the chat service learns the holds from the same events
    for chat_id in (referred, held):
        assert counsellor.post(f"/api/v1/chats/{chat_id}/end").status_code == 200
    wait_until(
        lambda: messages(supervisor, referred) == [],
        10,
        "a chat whose only escalation is a referral kept its transcript",
    )
    eventlet.sleep(2.5)
    assert messages(supervisor, held), "an open escalation did not keep its chat's transcript"
    closed = supervisor.call("PATCH", f"/api/v1/escalations/{ids[(held, 'acute_danger')]}", {"status": "closed"})
    assert closed.status_code == 200, closed.text
    wait_until(
        lambda: messages(supervisor, held) == [], 10, "the transcript stayed after its last open escalation closed"
    )
    watching.close()


def test_limits_and_bad_bodies(relay):
    chat_id, child = start_chat(relay)
    path = f"/api/v1/chats/{chat_id}/messages"
    assert child.post(path, {"text": "x" * 4001}).status_code == 422
    assert child.post(path, {"text": "  " + "x" * 4000 + "  "}).status_code == 201
    assert child.post(path, {"text": " \n "}).status_code == 422
    assert child.post(path, {"text": 12}).status_code == 422
    assert child.post(path, {"text": "hei", "extra": 1}).status_code == 422
    raw = child.call("POST", path, data=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.status_code == 400
    assert child.call("POST", path, data=b"[1]").status_code == 400
    big = child.call("POST", path, data=b'{"text": "' + b"x" * 70000 + b'"}')
    assert big.status_code == 413
    assert child.get(f"/api/v1/chats/{chat_id}/messages?after=abc").status_code == 422
    ended = child.post(f"/api/v1/chats/{chat_id}/end", {"reason": "quick_exit"})
    assert ended.status_code == 200 and ended.json()["ended_by"] == "quick_exit"
    # 409, from the chat service or, once the token has died with the chat, the gateway.
    assert child.post(path, {"text": "etterpå"}).status_code == 409


def test_a_child_is_rate_limited(stack):
    # The session stack runs with the default of 30 messages a minute.
    response = Api(stack.url).post("/api/v1/chats", {})
    chat = response.json()
    child = Api(stack.url, chat["token"])
    path = f"/api/v1/chats/{chat['chat_id']}/messages"
    codes = [child.post(path, {"text": f"m{i}", "client_msg_id": f"r{i}"}).status_code for i in range(30)]
    assert codes == [201] * 30
    again = child.post(path, {"text": "m0", "client_msg_id": "r0"})  # a retry is not counted...
    limited = child.post(path, {"text": "en til"})
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"
    assert again.status_code in (201, 429)
