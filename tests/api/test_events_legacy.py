"""The deprecated r0 GET /events, GET /initialSync and GET /rooms/{roomId}/initialSync."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class LegacyEventsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.token, {"preset": "public_chat",
                                                     "name": "Lobby"})
        self.message = self.send_message(self.token, self.room_id, "hello")

    def get(self, path: str, token: str | None = None) -> Any:
        channel = self.make_request("GET", f"{CLIENT}{path}", access_token=token or self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def test_initial_sync_shape(self) -> None:
        """initialSync lists each room with messages {chunk,start,end}, full state,
        membership and visibility; `end` is a token /events continues from."""
        body = self.get("/initialSync?limit=5")
        self.assertEqual(set(body), {"rooms", "presence", "account_data", "receipts", "end"})
        (room,) = body["rooms"]
        self.assertEqual(room["room_id"], self.room_id)
        self.assertEqual(room["membership"], "join")
        self.assertEqual(room["visibility"], "private")
        chunk = room["messages"]["chunk"]
        self.assertLessEqual(len(chunk), 5)
        self.assertEqual(chunk[-1]["event_id"], self.message)
        self.assertEqual(chunk[-1]["room_id"], self.room_id)
        self.assertEqual(room["messages"]["end"], body["end"])
        self.assertIn("start", room["messages"])
        state_types = {e["type"] for e in room["state"]}
        self.assertTrue({"m.room.create", "m.room.name", "m.room.member"} <= state_types)

    def test_initial_sync_invites_and_archived(self) -> None:
        """Invites carry the invite event and inviter; left rooms only with archived."""
        private = self.create_room(self.token)
        self.invite(self.alice, private, self.bob)
        left = self.create_room(self.token, {"preset": "public_chat"})
        self.join(self.bob, left)
        self.leave(self.bob, left)
        rooms = {r["room_id"]: r for r in self.get("/initialSync", self.bob_token)["rooms"]}
        self.assertEqual(rooms[private]["membership"], "invite")
        self.assertEqual(rooms[private]["inviter"], self.alice)
        self.assertEqual(rooms[private]["invite"]["content"]["membership"], "invite")
        self.assertNotIn(left, rooms)
        rooms = {r["room_id"]: r for r in self.get("/initialSync?archived=true",
                                                   self.bob_token)["rooms"]}
        self.assertEqual(rooms[left]["membership"], "leave")

    def test_events_stream(self) -> None:
        """/events from a token returns what came after it, flat with room IDs; its
        `end` continues from there."""
        end = self.get("/initialSync")["end"]
        second = self.send_message(self.token, self.room_id, "again")
        body = self.get(f"/events?from={urllib.parse.quote(end)}&timeout=0")
        self.assertEqual(body["start"], end)
        ids = [e["event_id"] for e in body["chunk"] if "event_id" in e]
        self.assertEqual(ids, [second])
        self.assertEqual(body["chunk"][0]["room_id"], self.room_id)
        body = self.get(f"/events?from={urllib.parse.quote(body['end'])}&timeout=0")
        self.assertEqual([e for e in body["chunk"] if "event_id" in e], [])

    def test_events_long_poll_wakes(self) -> None:
        """/events without events waits and answers when a message arrives."""
        end = self.get("/initialSync")["end"]
        channel = self.make_request(
            "GET", f"{CLIENT}/events?from={urllib.parse.quote(end)}&timeout=10000",
            access_token=self.token, await_result=False)
        self.reactor.advance(1)
        self.assertIsNone(channel.response)
        message = self.send_message(self.token, self.room_id, "wake")
        self.reactor.advance(0.1)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual([e["event_id"] for e in channel.json_body["chunk"]
                          if "event_id" in e], [message])

    def test_room_initial_sync(self) -> None:
        """rooms/{id}/initialSync gives the room's messages and state to a member, 403 to
        an outsider of a private room."""
        body = self.get(f"/rooms/{self.room_id}/initialSync")
        self.assertEqual(body["room_id"], self.room_id)
        self.assertEqual(body["membership"], "join")
        self.assertEqual(body["messages"]["chunk"][-1]["event_id"], self.message)
        self.assertTrue(any(e["type"] == "m.room.create" for e in body["state"]))
        private = self.create_room(self.token)
        channel = self.make_request("GET", f"{CLIENT}/rooms/{private}/initialSync",
                                    access_token=self.bob_token)
        self.assert_error(channel, 403, "M_FORBIDDEN")

    def test_bad_input(self) -> None:
        """A bad `from` token, negative timeout or limit are 400, never 500."""
        for path in ("/events?from=garbage", "/events?timeout=-1", "/initialSync?limit=-1",
                     "/initialSync?limit=x"):
            channel = self.make_request("GET", f"{CLIENT}{path}", access_token=self.token)
            self.assertEqual(channel.code, 400, (path, channel.result))
