"""Redacted content never leaves the server: every read path serves the pruned form
(issue 9). Each test redacts a message, the room's name, topic and avatar, and a member's
display name, then reads through one path."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.api.room_helpers import CLIENT as C
from tests.api.room_helpers import RoomHelpers
from tests.federation.fed_helpers import RemoteServer, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase

SECRET = b"SECRET"


class RedactedReadsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.fed_client = FakeFederationClient()
        hs._parts["federation_client"] = self.fed_client
        self.remote = RemoteServer("remote.test")
        for name in ("alice", "bob", "carol"):
            self.register_user(name)
        self.alice, self.bob, self.carol = (self.login(n) for n in ("alice", "bob", "carol"))
        self.ok(self.make_request("PUT", f"{C}/profile/@bob:test/displayname",
                                  {"displayname": "SECRETDISPLAY"}, access_token=self.bob))
        self.room = self.create_room(self.alice, {
            "preset": "public_chat", "visibility": "public", "name": "SECRETNAME",
            "topic": "SECRETTOPIC"})
        self.avatar = self.send_state(self.alice, self.room, "m.room.avatar",
                                      {"url": "mxc://test/SECRETAVATAR"})
        self.ok(self.make_request("POST", f"{C}/join/{self.room}", {}, access_token=self.bob))
        self.message = self.send_message(self.alice, self.room, "SECRETMSG")
        self.bob_member = self.state_id("m.room.member", "@bob:test")
        for n, event_id in enumerate((self.message, self.state_id("m.room.name"),
                                      self.state_id("m.room.topic"), self.avatar,
                                      self.bob_member)):
            self.ok(self.make_request("PUT", f"{C}/rooms/{self.room}/redact/{event_id}/r{n}",
                                      {}, access_token=self.alice))
        self.after = self.send_message(self.alice, self.room, "after")

    def state_id(self, event_type: str, state_key: str = "") -> str:
        current = self.get_success(
            self.hs.get_datastores().state.get_current_state_ids(self.room))
        event_id: str = current[(event_type, state_key)]
        return event_id

    def ok(self, channel: Any) -> Any:
        self.assertEqual(channel.code, 200, channel.result)
        self.assertNotIn(SECRET, channel.result)
        return channel.json_body

    def get(self, path: str, token: str) -> Any:
        return self.ok(self.make_request("GET", C + path, access_token=token))

    def sync(self, token: str, event_format: str) -> Any:
        flt = urllib.parse.quote(json.dumps(
            {"event_format": event_format, "room": {"timeline": {"limit": 50}}}))
        return self.get(f"/sync?filter={flt}", token)

    def test_sync_both_formats(self) -> None:
        """/sync in client and federation format: redacted events arrive pruned."""
        for event_format in ("client", "federation"):
            body = self.sync(self.alice, event_format)
            room = body["rooms"]["join"][self.room]
            events = {e["event_id"]: e for e in room["timeline"]["events"]
                      if "event_id" in e}
            if event_format == "federation" and not events:
                # v3+ PDUs carry no event ID: find the message by its type.
                pdus = [e for e in room["timeline"]["events"]
                        if e["type"] == "m.room.message"]
                self.assertEqual(pdus[0]["content"], {})
                self.assertIn("redacted_because", pdus[0]["unsigned"])
                continue
            self.assertEqual(events[self.message]["content"], {})
            self.assertIn("redacted_because", events[self.message]["unsigned"])

    def test_messages_context_event_state(self) -> None:
        """/messages, /context, /event, /state and /state/{type} show pruned content."""
        chunk = self.get(f"/rooms/{self.room}/messages?dir=b&limit=50", self.alice)["chunk"]
        self.assertIn(self.message, [e["event_id"] for e in chunk])
        self.get(f"/rooms/{self.room}/context/{self.message}?limit=50", self.alice)
        self.get(f"/rooms/{self.room}/context/{self.after}?limit=50", self.alice)
        self.assertEqual(self.get(f"/rooms/{self.room}/event/{self.message}",
                                  self.alice)["content"], {})
        self.get(f"/rooms/{self.room}/state", self.alice)
        self.assertEqual(self.get(f"/rooms/{self.room}/state/m.room.name/", self.alice), {})

    def test_member_lists(self) -> None:
        """/members and /joined_members show no redacted display name."""
        chunk = self.get(f"/rooms/{self.room}/members", self.alice)["chunk"]
        bob = [e for e in chunk if e["state_key"] == "@bob:test"]
        self.assertEqual(bob[0]["content"], {"membership": "join"})
        joined = self.get(f"/rooms/{self.room}/joined_members", self.alice)["joined"]
        self.assertEqual(joined["@bob:test"], {})

    def test_invite_stripped_state(self) -> None:
        """An invitee's invite_state (sync) and a remote invitee's invite_room_state
        (federation) carry the pruned name, topic and avatar."""
        self.ok(self.make_request("POST", f"{C}/rooms/{self.room}/invite",
                                  {"user_id": "@carol:test"}, access_token=self.alice))
        body = self.sync(self.carol, "client")
        stripped = body["rooms"]["invite"][self.room]["invite_state"]["events"]
        name = [e for e in stripped if e["type"] == "m.room.name"]
        self.assertEqual(name[0]["content"], {})
        # The remote server does not countersign (the fake answers nonsense): 502, but
        # the request went out.
        channel = self.make_request("POST", f"{C}/rooms/{self.room}/invite",
                                    {"user_id": "@zed:remote.test"}, access_token=self.alice)
        self.assertEqual(channel.code, 502, channel.result)
        invites = [t for t in self.fed_client.to("remote.test") if "/invite/" in t.path]
        room_state = invites[0].body["invite_room_state"]
        self.assertIn("m.room.topic", [e["type"] for e in room_state])
        self.assertNotIn(SECRET, json.dumps(room_state).encode())

    def test_directory_and_hierarchy(self) -> None:
        """/publicRooms and /hierarchy (client and federation) list the room without the
        redacted name, topic or avatar."""
        entry = self.get("/publicRooms", self.bob)["chunk"][0]
        self.assertEqual(entry["room_id"], self.room)
        self.assertFalse({"name", "topic", "avatar_url"} & set(entry))
        self.ok(self.make_request("POST", f"{C}/publicRooms",
                                  {"filter": {"generic_search_term": ""}},
                                  access_token=self.bob))
        rooms = self.ok(self.make_request(
            "GET", f"/_matrix/client/v1/rooms/{self.room}/hierarchy",
            access_token=self.bob))["rooms"]
        self.assertEqual(rooms[0]["room_id"], self.room)
        self.assertFalse({"name", "topic", "avatar_url"} & set(rooms[0]))
        body = self.ok(signed_request(self, self.remote, "GET",
                                      f"/_matrix/federation/v1/hierarchy/{self.room}"))
        self.assertFalse({"name", "topic", "avatar_url"} & set(body["room"]))

    def test_alias_removal_keeps_canonical_alias_redacted(self) -> None:
        """Deleting an alias does not re-send a redacted m.room.canonical_alias with the
        aliases it used to list."""
        for name in ("SECRETA", "SECRETB"):
            self.ok(self.make_request("PUT", f"{C}/directory/room/%23{name}:test",
                                      {"room_id": self.room}, access_token=self.alice))
        canonical = self.send_state(self.alice, self.room, "m.room.canonical_alias",
                                    {"alias": "#SECRETA:test",
                                     "alt_aliases": ["#SECRETB:test"]})
        self.ok(self.make_request("PUT", f"{C}/rooms/{self.room}/redact/{canonical}/ca",
                                  {}, access_token=self.alice))
        self.ok(self.make_request("DELETE", f"{C}/directory/room/%23SECRETB:test",
                                  access_token=self.alice))
        self.assertEqual(self.get(f"/rooms/{self.room}/state/m.room.canonical_alias/",
                                  self.alice), {})
