"""The child's language through the public route (issue 13, outcome 11): only
the child's page says it, a bad value is a 422, the same answer again changes
nothing, and an ended chat's token no longer works."""

import pytest

from tests.client import Api

pytestmark = pytest.mark.e2e


def test_the_childs_language_route(stack, counsellor):
    child = Api(stack.url)
    opened = child.post("/api/v1/chats", {"message": "hi", "lang": "en"})
    assert opened.status_code == 201, opened.text
    child.token, chat_id = opened.json()["token"], opened.json()["chat_id"]
    path = f"/api/v1/chats/{chat_id}/lang"

    switched = child.post(path, {"lang": "nb"})
    assert switched.status_code == 200, switched.text
    assert switched.json() == {"chat_id": chat_id, "lang": "nb", "changed": True}
    assert child.post(path, {"lang": "nb"}).json()["changed"] is False
    bad = child.post(path, {"lang": "klingon"})
    assert bad.status_code == 422 and "lang" in bad.json()["error"]["fields"]
    assert counsellor.post(path, {"lang": "en"}).status_code == 403

    assert child.post(f"/api/v1/chats/{chat_id}/end", {}).status_code == 200
    assert child.post(path, {"lang": "en"}).status_code in (401, 409)
