"""A client cannot name its own restricted-join authoriser (issue 9)."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT as C
from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase

AUTHORISER = "join_authorised_via_users_server"


class ForgedJoinAuthorisationTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.register_user("mallory")
        self.alice = self.login("alice")
        self.mallory = self.login("mallory")
        self.space = self.create_room(self.alice, {"preset": "private_chat"})
        self.room = self.create_room(self.alice, {"preset": "private_chat", "initial_state": [{
            "type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": "restricted",
                        "allow": [{"type": "m.room_membership", "room_id": self.space}]}}]})

    def membership(self, user_id: str) -> str | None:
        content = self.state_content(self.room, "m.room.member", user_id)
        return content.get("membership") if content is not None else None

    def test_state_endpoint_forgery_refused(self) -> None:
        """PUT /state/m.room.member/{self} naming a member as authoriser does not join."""
        channel = self.make_request(
            "PUT", f"{C}/rooms/{self.room}/state/m.room.member/@mallory:test",
            {"membership": "join", AUTHORISER: "@alice:test"}, access_token=self.mallory)
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership("@mallory:test"))

    def test_join_endpoints_forgery_refused(self) -> None:
        """/rooms/{id}/join and /join/{id} ignore a forged authoriser in the body."""
        for path in (f"/rooms/{self.room}/join", f"/join/{self.room}"):
            channel = self.make_request("POST", C + path,
                                        {AUTHORISER: "@alice:test"},
                                        access_token=self.mallory)
            self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership("@mallory:test"))

    def test_allowed_join_gets_server_chosen_authoriser(self) -> None:
        """A user of an allowed room joins through the state endpoint; the server names
        the authoriser, whatever the client sent."""
        self.invite("@alice:test", self.space, "@mallory:test")
        self.join("@mallory:test", self.space)
        self.send_state(self.mallory, self.room, "m.room.member",
                        {"membership": "join", AUTHORISER: "@nobody:test"},
                        state_key="@mallory:test")
        content = self.state_content(self.room, "m.room.member", "@mallory:test")
        assert content is not None
        self.assertEqual(content["membership"], "join")
        self.assertEqual(content[AUTHORISER], "@alice:test")

    def test_invite_content_is_stripped(self) -> None:
        """A member event for someone else never carries a client-chosen authoriser."""
        self.send_state(self.alice, self.room, "m.room.member",
                        {"membership": "invite", AUTHORISER: "@alice:test"},
                        state_key="@mallory:test")
        content = self.state_content(self.room, "m.room.member", "@mallory:test")
        assert content is not None
        self.assertNotIn(AUTHORISER, content)
