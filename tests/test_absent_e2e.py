"""issue 12, outcome 3, on the real stack: a waiting child is present while its
page is there (a socket, or requests with its token); absent past the grace,
its chat leaves the queue as abandoned with outcome `left`, and the others
move up. A phone that drops for a few seconds keeps its place."""

import time

import eventlet
import pytest

from tests.client import Api, Socket
from tests.stack import Stack

pytestmark = pytest.mark.e2e

GRACE_S = 8


@pytest.fixture(scope="module")
def short_grace_stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("absent"), env={"CHATVAKT_ABSENT_GRACE_S": str(GRACE_S), "CHATVAKT_SEEN_REPORT_S": "2"}
    ).start()
    yield running
    running.stop()


def new_chat(stack, message="hei"):
    child = Api(stack.url)
    response = child.post("/api/v1/chats", {"message": message})
    assert response.status_code == 201, response.text
    child.token, child.chat_id = response.json()["token"], response.json()["chat_id"]
    return child


def poll(child, stop, every=3.0, pause=None):
    """A page that polls its chat; `pause` = (after_s, for_s) is a train tunnel."""
    started = time.monotonic()
    while not stop["now"]:
        elapsed = time.monotonic() - started
        if not (pause and pause[0] <= elapsed < pause[0] + pause[1]):
            child.get(f"/api/v1/chats/{child.chat_id}")
        eventlet.sleep(every)


def test_an_absent_child_leaves_and_present_children_keep_their_place(short_grace_stack):
    stack = short_grace_stack
    supervisor = Api(stack.url)
    supervisor.login("demo-supervisor")
    watch = Socket(stack.url, supervisor.token)
    gone = new_chat(stack)  # the page closed: no socket, no request
    socket_child = new_chat(stack)  # keeps a socket open, never polls
    poller = new_chat(stack)  # polls every 3 s
    train = new_chat(stack)  # polls, then 5 s in a tunnel, then polls again
    child_socket = Socket(stack.url, socket_child.token)
    stop = {"now": False}
    threads = [eventlet.spawn(poll, poller, stop), eventlet.spawn(poll, train, stop, 2.0, (4, 5))]
    try:
        ids = [c.chat_id for c in (gone, socket_child, poller, train)]
        queue = supervisor.get("/api/v1/queue").json()["waiting"]
        assert [w["chat_id"] for w in queue] == ids
        started = time.monotonic()
        ended = watch.wait_for("chat.ended", lambda d: d["chat_id"] == gone.chat_id, timeout=40)
        left_after = time.monotonic() - started
        assert ended["status"] == "abandoned" and ended["outcome"] == "left"
        view = supervisor.get(f"/api/v1/chats/{gone.chat_id}").json()
        assert view["status"] == "abandoned" and view["outcome"] == "left"
        # the others moved up, and the child on the socket was told
        child_socket.wait_for("queue.position", lambda d: d["position"] == 1, timeout=10)
        # well past the grace (and the tunnel), the present children are still there
        eventlet.sleep(2 * GRACE_S)
        queue = supervisor.get("/api/v1/queue").json()["waiting"]
        assert [w["chat_id"] for w in queue] == ids[1:]
        assert poller.get(f"/api/v1/chats/{poller.chat_id}").json()["position"] == 2
        print(
            f"\nabsent child left the queue {left_after:.1f} s after it was last seen "
            f"(grace {GRACE_S} s); socket, polling and train children kept places 1-3"
        )
        # counsellors' pushes carry counts
        changed = [f["data"] for f in watch.events if f["event"] == "queue.changed"]
        assert changed and all("waiting_count" in d and "truncated" in d for d in changed)
    finally:
        stop["now"] = True
        for thread in threads:
            thread.wait()
        child_socket.close()
        watch.close()
        for child in (socket_child, poller, train):
            child.post(f"/api/v1/chats/{child.chat_id}/end", {})


def test_an_old_outcome_stays_as_it_was(short_grace_stack):
    child = new_chat(short_grace_stack)
    ended = child.post(f"/api/v1/chats/{child.chat_id}/end", {}).json()
    assert ended["status"] == "abandoned" and ended["outcome"] == "abandoned"
