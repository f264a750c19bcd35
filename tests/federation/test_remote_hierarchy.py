"""The space hierarchy and /room_summary for rooms this server is not in: asked of a
server in the child's `via` (a fake remote), checked, and filtered for the user."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tests.api.room_helpers import RoomHelpers
from tests.federation.test_membership import FakeFederation
from tests.harness import HomeserverTestCase

F1 = "/_matrix/federation/v1"
C1 = "/_matrix/client/v1"
REMOTE = "remote.example"
REMOTE_ROOM = f"!child:{REMOTE}"
GRANDCHILD = f"!grand:{REMOTE}"
PRIVATE = f"!private:{REMOTE}"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def summary(room_id: str, join_rule: str = "public", **extra: Any) -> dict[str, Any]:
    return {"room_id": room_id, "num_joined_members": 3, "world_readable": False,
            "guest_can_join": False, "join_rule": join_rule, "room_version": "10",
            **extra}


def link(child: str) -> dict[str, Any]:
    return {"type": "m.space.child", "state_key": child, "content": {"via": [REMOTE]},
            "sender": f"@rita:{REMOTE}", "origin_server_ts": 5}


class RemoteHierarchyTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.fed = FakeFederation()
        hs.get_federation_client().request = self.fed.request
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.space = self.create_room(self.token, {"preset": "public_chat",
                                                   "creation_content": {"type": "m.space"}})
        for child in (REMOTE_ROOM, PRIVATE):
            self.send_state(self.token, self.space, "m.space.child", {"via": [REMOTE]},
                            state_key=child)
        self.answers: dict[str, Any] = {
            REMOTE_ROOM: {"room": summary(REMOTE_ROOM, name="Remote",
                                          children_state=[link(GRANDCHILD)]),
                          "children": [summary(GRANDCHILD, name="Grand")],
                          "inaccessible_children": []},
            PRIVATE: {"room": summary(PRIVATE, "invite"), "children": []},
        }
        for room_id in (REMOTE_ROOM, PRIVATE):
            self.fed.routes[(REMOTE, "GET", f"{F1}/hierarchy/{q(room_id)}")] = \
                lambda query, content, room_id=room_id: self.answers[room_id]

    def hierarchy_ids(self) -> list[str]:
        channel = self.make_request("GET", f"{C1}/rooms/{self.space}/hierarchy",
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return [r["room_id"] for r in channel.json_body["rooms"]]

    def hierarchy_calls(self) -> list[str]:
        return [c[2] for c in self.fed.calls if "/hierarchy/" in c[2]]

    def test_walk_through_remote_child(self) -> None:
        """A child we are not in is asked of its via server; the grandchild it summarised
        is used without asking again; a private remote child is left out."""
        self.assertEqual(self.hierarchy_ids(), [self.space, REMOTE_ROOM, GRANDCHILD])
        self.assertEqual(sorted(self.hierarchy_calls()),
                         sorted([f"{F1}/hierarchy/{q(REMOTE_ROOM)}",
                                 f"{F1}/hierarchy/{q(PRIVATE)}"]))

    def test_malformed_remote_answer_skipped(self) -> None:
        """A remote answer that breaks the model is ignored (the walk still answers)."""
        self.answers[REMOTE_ROOM] = {"room": {"room_id": REMOTE_ROOM,
                                              "num_joined_members": "many"}}
        self.assertEqual(self.hierarchy_ids(), [self.space])

    def test_private_remote_room_summary_hidden(self) -> None:
        """/room_summary of a remote invite-only room the user has no membership in: 404."""
        channel = self.make_request("GET", f"{C1}/room_summary/{q(PRIVATE)}?via={REMOTE}",
                                    access_token=self.token)
        self.assert_error(channel, 404, "M_NOT_FOUND")

    def test_room_summary_of_remote_room(self) -> None:
        """/room_summary of a public room we are not in comes from a `via` server."""
        channel = self.make_request(
            "GET", f"{C1}/room_summary/{q(REMOTE_ROOM)}?via={REMOTE}",
            access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["room_id"], REMOTE_ROOM)
        self.assertEqual(body["name"], "Remote")
        self.assertEqual(body["join_rule"], "public")
        self.assertNotIn("children_state", body)
        self.assertNotIn("membership", body)

    def test_room_summary_unreachable_remote(self) -> None:
        """A room nobody answers about is 404 M_NOT_FOUND."""
        channel = self.make_request(
            "GET", f"{C1}/room_summary/{q('!gone:nowhere.example')}?via=nowhere.example",
            access_token=self.token)
        self.assert_error(channel, 404, "M_NOT_FOUND")
