"""GET /_matrix/client/v1/room_summary/{roomIdOrAlias} for local rooms."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase

SUMMARY = "/_matrix/client/v1/room_summary"


class RoomSummaryTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.public = self.create_room(self.alice_token, {
            "preset": "public_chat", "name": "Town square", "topic": "chat",
            "room_alias_name": "square"})
        self.private = self.create_room(self.alice_token, {"preset": "private_chat"})

    def get(self, room: str, token: str | None) -> Any:
        return self.make_request("GET", f"{SUMMARY}/{urllib.parse.quote(room)}",
                                 access_token=token)

    def test_public_room(self) -> None:
        """A public room is summarised for anyone, by ID or alias, with no membership."""
        for room in (self.public, "#square:test"):
            channel = self.get(room, self.bob_token)
            self.assertEqual(channel.code, 200, channel.result)
            body = channel.json_body
            self.assertEqual(body["room_id"], self.public)
            self.assertEqual(body["name"], "Town square")
            self.assertEqual(body["topic"], "chat")
            self.assertEqual(body["join_rule"], "public")
            self.assertEqual(body["num_joined_members"], 1)
            self.assertEqual(body["canonical_alias"], "#square:test")
            self.assertIs(body["world_readable"], False)
            self.assertIs(body["guest_can_join"], False)
            self.assertNotIn("membership", body)
            self.assertNotIn("children_state", body)

    def test_unauthenticated(self) -> None:
        """Without a token, public rooms are summarised and private ones are 404."""
        channel = self.get(self.public, None)
        self.assertEqual(channel.code, 200, channel.result)
        self.assert_error(self.get(self.private, None), 404, "M_NOT_FOUND")

    def test_private_room_needs_membership(self) -> None:
        """A private room: 404 for outsiders; members and invitees get it with membership."""
        self.assert_error(self.get(self.private, self.bob_token), 404, "M_NOT_FOUND")
        channel = self.get(self.private, self.alice_token)
        self.assertEqual(channel.json_body["membership"], "join")
        self.invite(self.alice, self.private, self.bob)
        channel = self.get(self.private, self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["membership"], "invite")

    def test_unstable_path(self) -> None:
        """MSC3266's unstable path answers the same."""
        channel = self.make_request(
            "GET", f"/_matrix/client/unstable/im.nheko.summary/summary/{self.public}",
            access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["room_id"], self.public)

    def test_bad_input(self) -> None:
        """Neither ID nor alias 400; unknown alias or room 404; bad token 401."""
        self.assert_error(self.get("square", self.bob_token), 400, "M_INVALID_PARAM")
        self.assert_error(self.get("#nope:test", self.bob_token), 404, "M_NOT_FOUND")
        self.assert_error(self.get("!nope:test", self.bob_token), 404, "M_NOT_FOUND")
        self.assert_error(self.get(self.public, "axo_bad"), 401, "M_UNKNOWN_TOKEN")
