"""Two reads encrypting clients hit after key upload: `/members?at=` with a sync token,
and the inviter's own membership in an invite's stripped state."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class MembersAtTokenTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)

    def sync_token(self, token: str) -> str:
        channel = self.make_request("GET", f"{CLIENT}/sync?timeout=0", access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        next_batch: str = channel.json_body["next_batch"]
        return next_batch

    def members(self, query: str) -> Any:
        return self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/members{query}",
                                 access_token=self.alice_token)

    def test_at_sync_token(self) -> None:
        """`at` given a /sync token lists the members as of that token."""
        token = self.sync_token(self.alice_token)
        self.join(self.carol, self.room_id)
        now = self.members("")
        self.assertEqual(sorted(m["state_key"] for m in now.json_body["chunk"]),
                         [self.alice, self.bob, self.carol])
        then = self.members(f"?at={token}")
        self.assertEqual(then.code, 200, then.result)
        self.assertEqual(sorted(m["state_key"] for m in then.json_body["chunk"]),
                         [self.alice, self.bob])

    def test_at_messages_token(self) -> None:
        """A /messages pagination token works as `at` too."""
        self.send_message(self.alice_token, self.room_id)
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b",
                                    access_token=self.alice_token)
        start = channel.json_body["start"]
        self.join(self.carol, self.room_id)
        then = self.members(f"?at={start}")
        self.assertEqual(sorted(m["state_key"] for m in then.json_body["chunk"]),
                         [self.alice, self.bob])

    def test_at_garbage(self) -> None:
        """An `at` that is neither a token nor an event ID is 400 M_INVALID_PARAM."""
        self.assert_error(self.members("?at=nonsense"), 400, "M_INVALID_PARAM")

    def test_invite_state_has_inviter_membership(self) -> None:
        """An invite's stripped state carries the inviter's own m.room.member."""
        since = self.sync_token(self.bob_token)
        carol_token = self.login("carol")
        since = self.sync_token(carol_token)
        self.invite(self.alice, self.room_id, self.carol)
        channel = self.make_request("GET", f"{CLIENT}/sync?timeout=0&since={since}",
                                    access_token=carol_token)
        stripped = channel.json_body["rooms"]["invite"][self.room_id]["invite_state"]["events"]
        members = {e["state_key"]: e for e in stripped if e["type"] == "m.room.member"}
        self.assertEqual(members[self.alice]["content"]["membership"], "join")
        self.assertEqual(members[self.alice]["sender"], self.alice)
        self.assertEqual(members[self.carol]["content"]["membership"], "invite")
