"""Membership endpoints and member lists, with each forbidden case."""

from __future__ import annotations

from typing import Any

from tests.harness import HomeserverTestCase

C = "/_matrix/client/v3"


class MembershipTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.tokens = {}
        for name in ("alice", "bob", "carol"):
            self.register_user(name)
            self.tokens[name] = self.login(name)

    def post(self, who: str, path: str, body: Any = None) -> Any:
        return self.make_request("POST", C + path, body if body is not None else {},
                                 access_token=self.tokens[who])

    def room(self, **body: Any) -> str:
        self.reactor.advance(0.01)
        channel = self.post("alice", "/createRoom", body)
        self.assertEqual(channel.code, 200, channel.result)
        return str(channel.json_body["room_id"])

    def send(self, who: str, room_id: str, txn: str) -> Any:
        return self.make_request("PUT", f"{C}/rooms/{room_id}/send/m.room.message/{txn}",
                                 {"msgtype": "m.text", "body": "x"},
                                 access_token=self.tokens[who])

    def ok(self, channel: Any) -> Any:
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def test_invite_join_leave(self) -> None:
        """Invite, join by room ID, appear in joined_rooms, leave, disappear."""
        room = self.room()
        self.ok(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}))
        self.assertEqual(self.ok(self.post("bob", f"/rooms/{room}/join"))["room_id"], room)
        rooms = self.ok(self.make_request("GET", f"{C}/joined_rooms",
                                          access_token=self.tokens["bob"]))
        self.assertEqual(rooms["joined_rooms"], [room])
        self.assertEqual(self.send("bob", room, "1").code, 200)
        self.ok(self.post("bob", f"/rooms/{room}/leave", {"reason": "bye"}))
        rooms = self.ok(self.make_request("GET", f"{C}/joined_rooms",
                                          access_token=self.tokens["bob"]))
        self.assertEqual(rooms["joined_rooms"], [])
        self.assert_error(self.send("bob", room, "2"), 403, "M_FORBIDDEN")
        # Leaving again is a no-op.
        self.ok(self.post("bob", f"/rooms/{room}/leave"))

    def test_join_is_idempotent(self) -> None:
        """Joining a room one is in returns 200 and sends no new event."""
        room = self.room(preset="public_chat")
        self.ok(self.post("bob", f"/join/{room}"))
        store = self.hs.get_datastores().events
        before = store.get_room_max_stream_ordering()
        self.ok(self.post("bob", f"/join/{room}"))
        self.assertEqual(store.get_room_max_stream_ordering(), before)

    def test_invite_only_and_ban(self) -> None:
        """Uninvited joins, banned joins, non-member invites and re-inviting members are 403."""
        room = self.room()
        self.assert_error(self.post("bob", f"/rooms/{room}/join"), 403, "M_FORBIDDEN")
        self.assert_error(self.post("bob", f"/rooms/{room}/invite", {"user_id": "@carol:test"}),
                          403, "M_FORBIDDEN")
        self.ok(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}))
        self.ok(self.post("bob", f"/rooms/{room}/join"))
        self.assert_error(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}),
                          403, "M_FORBIDDEN")
        self.ok(self.post("alice", f"/rooms/{room}/ban", {"user_id": "@bob:test",
                                                          "reason": "spam"}))
        self.assert_error(self.post("bob", f"/rooms/{room}/join"), 403, "M_FORBIDDEN")
        self.assert_error(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}),
                          403, "M_FORBIDDEN")
        self.ok(self.post("alice", f"/rooms/{room}/unban", {"user_id": "@bob:test"}))
        self.ok(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}))
        self.ok(self.post("bob", f"/rooms/{room}/join"))

    def test_kick_and_power(self) -> None:
        """A kicked user cannot send; a member without power cannot kick or ban."""
        room = self.room(preset="public_chat")
        self.ok(self.post("bob", f"/join/{room}"))
        self.ok(self.post("carol", f"/join/{room}"))
        self.assert_error(self.post("bob", f"/rooms/{room}/kick", {"user_id": "@carol:test"}),
                          403, "M_FORBIDDEN")
        self.assert_error(self.post("bob", f"/rooms/{room}/ban", {"user_id": "@carol:test"}),
                          403, "M_FORBIDDEN")
        self.ok(self.post("alice", f"/rooms/{room}/kick", {"user_id": "@carol:test"}))
        self.assert_error(self.send("carol", room, "k"), 403, "M_FORBIDDEN")
        # Kicking someone not in the room is refused.
        self.assert_error(self.post("alice", f"/rooms/{room}/kick", {"user_id": "@carol:test"}),
                          403, "M_FORBIDDEN")
        # A creator cannot be kicked by a lower member either.
        self.assert_error(self.post("bob", f"/rooms/{room}/kick", {"user_id": "@alice:test"}),
                          403, "M_FORBIDDEN")

    def test_knock_then_invite(self) -> None:
        """Knocking works only with the knock join rule; the knocker is then invited in."""
        plain = self.room()
        self.assert_error(self.post("bob", f"/knock/{plain}", {"reason": "let me in"}),
                          403, "M_FORBIDDEN")
        room = self.room(initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                         "content": {"join_rule": "knock"}}])
        self.assertEqual(self.ok(self.post("bob", f"/knock/{room}", {"reason": "hi"}))
                         ["room_id"], room)
        members = self.ok(self.make_request("GET", f"{C}/rooms/{room}/members?membership=knock",
                                            access_token=self.tokens["alice"]))
        self.assertEqual([m["state_key"] for m in members["chunk"]], ["@bob:test"])
        self.ok(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@bob:test"}))
        self.ok(self.post("bob", f"/rooms/{room}/join"))

    def test_join_by_alias(self) -> None:
        """A public room is joined through its local alias; unknown aliases are 404."""
        room = self.room(preset="public_chat", room_alias_name="lobby")
        self.assertEqual(self.ok(self.post("bob", "/join/%23lobby:test"))["room_id"], room)
        self.assert_error(self.post("bob", "/join/%23nope:test"), 404, "M_NOT_FOUND")
        # (a room on another server is joined over federation: tests/federation/)
        self.assert_error(self.post("bob", "/join/!unknown:test"), 404, "M_NOT_FOUND")

    def test_members_lists(self) -> None:
        """/members filters by membership and `at`; joined_members is for members only."""
        room = self.room(preset="public_chat")
        self.ok(self.post("bob", f"/join/{room}"))
        mark = self.send("alice", room, "m").json_body["event_id"]
        self.ok(self.post("alice", f"/rooms/{room}/invite", {"user_id": "@carol:test"}))
        get = lambda q: self.ok(self.make_request(  # noqa: E731
            "GET", f"{C}/rooms/{room}/members{q}", access_token=self.tokens["alice"]))
        everyone = [m["state_key"] for m in get("")["chunk"]]
        self.assertEqual(everyone, ["@alice:test", "@bob:test", "@carol:test"])
        self.assertEqual([m["state_key"] for m in get("?membership=invite")["chunk"]],
                         ["@carol:test"])
        self.assertEqual([m["state_key"] for m in get("?not_membership=invite")["chunk"]],
                         ["@alice:test", "@bob:test"])
        self.assertEqual([m["state_key"] for m in get(f"?at={mark}")["chunk"]],
                         ["@alice:test", "@bob:test"])
        joined = self.ok(self.make_request("GET", f"{C}/rooms/{room}/joined_members",
                                           access_token=self.tokens["bob"]))["joined"]
        self.assertEqual(sorted(joined), ["@alice:test", "@bob:test"])
        self.assertEqual(joined["@bob:test"]["display_name"], "bob")
        self.assert_error(self.make_request("GET", f"{C}/rooms/{room}/joined_members",
                                            access_token=self.tokens["carol"]),
                          403, "M_FORBIDDEN")
        self.assert_error(self.make_request("GET", f"{C}/rooms/{room}/members?membership=x",
                                            access_token=self.tokens["alice"]),
                          400, "M_INVALID_PARAM")

    def test_left_user_sees_members_as_of_leaving(self) -> None:
        """A user who left gets the member list as it was when they left."""
        room = self.room(preset="public_chat")
        self.ok(self.post("bob", f"/join/{room}"))
        self.ok(self.post("bob", f"/rooms/{room}/leave"))
        self.ok(self.post("carol", f"/join/{room}"))
        chunk = self.ok(self.make_request("GET", f"{C}/rooms/{room}/members",
                                          access_token=self.tokens["bob"]))["chunk"]
        self.assertNotIn("@carol:test", [m["state_key"] for m in chunk])
        self.assert_error(self.make_request("GET", f"{C}/rooms/{room}/members",
                                            access_token=self.register_and_login("dave")),
                          403, "M_FORBIDDEN")

    def register_and_login(self, name: str) -> str:
        self.register_user(name)
        return self.login(name)

    def test_forget(self) -> None:
        """A room can be forgotten only after leaving it."""
        room = self.room(preset="public_chat")
        self.ok(self.post("bob", f"/join/{room}"))
        self.assert_error(self.post("bob", f"/rooms/{room}/forget"), 400, "M_UNKNOWN")
        self.ok(self.post("bob", f"/rooms/{room}/leave"))
        self.ok(self.post("bob", f"/rooms/{room}/forget"))
        self.assert_error(self.make_request("GET", f"{C}/rooms/{room}/members",
                                            access_token=self.tokens["bob"]),
                          403, "M_FORBIDDEN")

    def test_bad_input(self) -> None:
        """Missing, mistyped and malformed user IDs, unknown rooms and no token."""
        room = self.room()
        self.assert_error(self.post("alice", f"/rooms/{room}/invite", {}), 400,
                          "M_MISSING_PARAM")
        self.assert_error(self.post("alice", f"/rooms/{room}/invite", {"user_id": 5}), 400,
                          "M_BAD_JSON")
        self.assert_error(self.post("alice", f"/rooms/{room}/kick", {"user_id": "bob"}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.post("alice", "/rooms/!nope:test/invite",
                                    {"user_id": "@bob:test"}), 404, "M_NOT_FOUND")
        self.assert_error(self.post("alice", "/rooms/!nope:test/leave"), 404, "M_NOT_FOUND")
        self.assert_error(self.post("bob", f"/rooms/{room}/leave"), 403, "M_FORBIDDEN")
        self.assert_error(self.make_request("POST", f"{C}/rooms/{room}/leave", {}), 401,
                          "M_MISSING_TOKEN")
