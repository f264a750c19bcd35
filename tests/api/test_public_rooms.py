"""The published room directory: /publicRooms (GET, POST) and /directory/list/room."""

from __future__ import annotations

from typing import Any

from federation.client import FederationRequestError
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase

PUBLIC_ROOMS = f"{CLIENT}/publicRooms"


class PublicRoomsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def public_room(self, members: int = 0, **body: Any) -> str:
        """A published public_chat room with `members` extra joined users."""
        room_id = self.create_room(self.alice_token, {"visibility": "public", **body})
        for _ in range(members):
            self._member_n = getattr(self, "_member_n", 0) + 1
            self.join(self.register_user(f"member{self._member_n}"), room_id)
        return room_id

    def get_rooms(self, query: str = "", token: str | None = None) -> Any:
        channel = self.make_request("GET", f"{PUBLIC_ROOMS}{query}",
                                    access_token=token or self.alice_token)
        return channel

    def post_rooms(self, body: Any, query: str = "") -> Any:
        return self.make_request("POST", f"{PUBLIC_ROOMS}{query}", body,
                                 access_token=self.alice_token)

    # -- GET/POST /publicRooms --

    def test_needs_token(self) -> None:
        """Both GET and POST need an access token (Synapse's default)."""
        self.assert_error(self.make_request("GET", PUBLIC_ROOMS), 401, "M_MISSING_TOKEN")
        self.assert_error(self.make_request("POST", PUBLIC_ROOMS, {}), 401, "M_MISSING_TOKEN")

    def test_empty_directory(self) -> None:
        """With nothing published: an empty chunk, a zero estimate and no tokens."""
        self.create_room(self.alice_token, {"preset": "public_chat"})  # not published
        channel = self.get_rooms()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"chunk": [], "total_room_count_estimate": 0})

    def test_chunk_fields(self) -> None:
        """A published room's entry carries its state; absent fields are left out."""
        room_id = self.public_room(name="Cheese", topic="Tasty", room_alias_name="cheese")
        self.send_state(self.alice_token, room_id, "m.room.avatar", {"url": "mxc://test/a"})
        bare = self.public_room()
        chunk = self.get_rooms().json_body["chunk"]
        by_id = {e["room_id"]: e for e in chunk}
        self.assertEqual(by_id[room_id], {
            "room_id": room_id, "name": "Cheese", "topic": "Tasty",
            "canonical_alias": "#cheese:test", "num_joined_members": 1,
            "world_readable": False, "guest_can_join": False, "avatar_url": "mxc://test/a",
            "join_rule": "public"})
        self.assertEqual(by_id[bare], {
            "room_id": bare, "num_joined_members": 1, "world_readable": False,
            "guest_can_join": False, "join_rule": "public"})

    def test_room_type_world_readable_and_guests(self) -> None:
        """room_type comes from the create event; world_readable and guest_can_join from
        history visibility and guest access."""
        room_id = self.public_room(creation_content={"type": "m.space"})
        self.send_state(self.alice_token, room_id, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        self.send_state(self.alice_token, room_id, "m.room.guest_access",
                        {"guest_access": "can_join"})
        entry = self.get_rooms().json_body["chunk"][0]
        self.assertEqual(entry["room_type"], "m.space")
        self.assertTrue(entry["world_readable"])
        self.assertTrue(entry["guest_can_join"])

    def test_unlisted_rooms(self) -> None:
        """Published rooms that are invite-only (and not world-readable) or empty are not
        listed; a world-readable invite-only room is."""
        invite_only = self.public_room()
        self.send_state(self.alice_token, invite_only, "m.room.join_rules",
                        {"join_rule": "invite"})
        readable = self.public_room()
        self.send_state(self.alice_token, readable, "m.room.join_rules",
                        {"join_rule": "invite"})
        self.send_state(self.alice_token, readable, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        empty = self.public_room()
        self.leave(self.alice, empty)
        ids = [e["room_id"] for e in self.get_rooms().json_body["chunk"]]
        self.assertEqual(ids, [readable])

    def test_order_and_pagination(self) -> None:
        """Rooms come largest first (then room ID descending); next_batch and prev_batch
        walk the pages both ways and are absent at the ends."""
        rooms = [self.public_room(members=n) for n in (0, 2, 1, 1, 3)]
        expected = sorted(rooms, key=lambda r: (len(self.members(r)), r), reverse=True)
        page1 = self.get_rooms("?limit=2").json_body
        self.assertEqual([e["room_id"] for e in page1["chunk"]], expected[:2])
        self.assertEqual(page1["total_room_count_estimate"], 5)
        self.assertNotIn("prev_batch", page1)
        page2 = self.get_rooms(f"?limit=2&since={page1['next_batch']}").json_body
        self.assertEqual([e["room_id"] for e in page2["chunk"]], expected[2:4])
        page3 = self.get_rooms(f"?limit=2&since={page2['next_batch']}").json_body
        self.assertEqual([e["room_id"] for e in page3["chunk"]], expected[4:])
        self.assertNotIn("next_batch", page3)
        back = self.get_rooms(f"?limit=2&since={page3['prev_batch']}").json_body
        self.assertEqual([e["room_id"] for e in back["chunk"]], expected[2:4])
        first = self.get_rooms(f"?limit=2&since={back['prev_batch']}").json_body
        self.assertEqual([e["room_id"] for e in first["chunk"]], expected[:2])
        self.assertNotIn("prev_batch", first)
        everything = self.get_rooms("?limit=0").json_body
        self.assertEqual([e["room_id"] for e in everything["chunk"]], expected)
        self.assertNotIn("next_batch", everything)

    def members(self, room_id: str) -> list[str]:
        users: list[str] = self.get_success(
            self.hs.get_datastores().room_members.get_users_in_room(room_id))
        return users

    def test_post_search_term(self) -> None:
        """generic_search_term matches name, topic or canonical alias, ignoring case."""
        by_name = self.public_room(name="Gardening Club")
        by_topic = self.public_room(topic="all about GARDENS")
        by_alias = self.public_room(room_alias_name="gardenparty")
        self.public_room(name="Cooking")
        channel = self.post_rooms({"filter": {"generic_search_term": "garden"}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual({e["room_id"] for e in channel.json_body["chunk"]},
                         {by_name, by_topic, by_alias})
        self.assertEqual(channel.json_body["total_room_count_estimate"], 3)
        all_rooms = self.post_rooms({"filter": {"generic_search_term": ""}}).json_body
        self.assertEqual(len(all_rooms["chunk"]), 4)

    def test_post_room_types_and_paging(self) -> None:
        """room_types selects by create-event type (null: untyped); limit/since work."""
        space = self.public_room(creation_content={"type": "m.space"})
        plain = [self.public_room(), self.public_room()]
        spaces = self.post_rooms({"filter": {"room_types": ["m.space"]}}).json_body
        self.assertEqual([e["room_id"] for e in spaces["chunk"]], [space])
        untyped = self.post_rooms({"filter": {"room_types": [None]}}).json_body
        self.assertEqual({e["room_id"] for e in untyped["chunk"]}, set(plain))
        page = self.post_rooms({"limit": 1, "include_all_networks": True}).json_body
        self.assertEqual(len(page["chunk"]), 1)
        rest = self.post_rooms({"limit": 5, "since": page["next_batch"]}).json_body
        self.assertEqual(len(rest["chunk"]), 2)
        self.assertIn("prev_batch", rest)

    def test_post_bad_bodies(self) -> None:
        """Wrong types are M_BAD_JSON, a non-JSON body M_NOT_JSON."""
        cases = [({"limit": "5"}, "M_BAD_JSON"), ({"limit": -1}, "M_BAD_JSON"),
                 ({"filter": "x"}, "M_BAD_JSON"),
                 ({"filter": {"generic_search_term": 5}}, "M_BAD_JSON"),
                 ({"filter": {"room_types": "m.space"}}, "M_BAD_JSON"),
                 ({"include_all_networks": "yes"}, "M_BAD_JSON"),
                 (b"", "M_NOT_JSON"), (b"[]", "M_BAD_JSON")]
        for body, errcode in cases:
            with self.subTest(body=body):
                self.assert_error(self.post_rooms(body), 400, errcode)

    def test_bad_query_and_tokens(self) -> None:
        """A bad limit or since token is 400 M_INVALID_PARAM."""
        for query in ("?limit=abc", "?limit=-2", "?since=garbage!", "?since=bjEy"):
            with self.subTest(query=query):
                self.assert_error(self.get_rooms(query), 400, "M_INVALID_PARAM")
        self.assert_error(self.post_rooms({"since": "xx"}), 400, "M_INVALID_PARAM")

    def test_server_parameter(self) -> None:
        """Our own server name is the local list; another server's directory is asked
        over federation (502 when it cannot be reached); bad names 400."""
        self.public_room()
        self.assertEqual(len(self.get_rooms("?server=test").json_body["chunk"]), 1)
        asked: list[tuple[str, Any]] = []

        class RemoteDirectory:
            async def post_json(self, destination: str, path: str, content: Any,
                                timeout: float = 60) -> Any:
                asked.append((destination, content))
                if destination == "down.example":
                    raise FederationRequestError(destination, "connection refused")
                return {"chunk": [{"room_id": "!r:elsewhere.org", "num_joined_members": 3,
                                   "world_readable": False, "guest_can_join": False}],
                        "total_room_count_estimate": 1}

        self.hs._parts["federation_client"] = RemoteDirectory()
        channel = self.post_rooms({"limit": 5, "filter": {"generic_search_term": "fun"}},
                                  "?server=elsewhere.org")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["chunk"][0]["room_id"], "!r:elsewhere.org")
        self.assertEqual(asked[-1], ("elsewhere.org", {
            "include_all_networks": False, "limit": 5,
            "filter": {"generic_search_term": "fun"}}))
        self.assert_error(self.get_rooms("?server=down.example"), 502, "M_UNKNOWN")
        self.assert_error(self.get_rooms("?server=bad%20name"), 400, "M_INVALID_PARAM")

    def test_federation_public_rooms(self) -> None:
        """Other servers read our directory through signed federation requests."""
        from tests.federation.fed_helpers import RemoteServer, signed_request

        room_id = self.public_room()
        remote = RemoteServer("remote.test")
        channel = signed_request(self, remote, "GET",
                                 "/_matrix/federation/v1/publicRooms?limit=5")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual([r["room_id"] for r in channel.json_body["chunk"]], [room_id])
        channel = signed_request(self, remote, "POST", "/_matrix/federation/v1/publicRooms",
                                 {"filter": {"generic_search_term": "no such room"}})
        self.assertEqual(channel.json_body["chunk"], [])
        channel = self.make_request("GET", "/_matrix/federation/v1/publicRooms")
        self.assert_error(channel, 401, "M_UNAUTHORIZED")

    def test_third_party_networks(self) -> None:
        """An explicit network lists nothing; combining it with include_all_networks is 400."""
        self.public_room()
        channel = self.post_rooms({"third_party_instance_id": "irc"})
        self.assertEqual(channel.json_body, {"chunk": [], "total_room_count_estimate": 0})
        self.assert_error(self.post_rooms({"third_party_instance_id": "irc",
                                           "include_all_networks": True}),
                          400, "M_INVALID_PARAM")

    # -- /directory/list/room/{roomId} --

    def visibility_path(self, room_id: str) -> str:
        return f"{CLIENT}/directory/list/room/{room_id}"

    def test_get_visibility(self) -> None:
        """GET needs no token and says public or private; unknown rooms are 404."""
        public = self.public_room()
        private = self.create_room(self.alice_token)
        self.assertEqual(self.make_request("GET", self.visibility_path(public)).json_body,
                         {"visibility": "public"})
        self.assertEqual(self.make_request("GET", self.visibility_path(private)).json_body,
                         {"visibility": "private"})
        self.assert_error(self.make_request("GET", self.visibility_path("!no:test")), 404,
                          "M_NOT_FOUND")

    def test_publish_and_unpublish(self) -> None:
        """A room admin publishes (visibility defaults to public) and unpublishes a room."""
        room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        path = self.visibility_path(room_id)
        channel = self.make_request("PUT", path, {}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual([e["room_id"] for e in self.get_rooms().json_body["chunk"]],
                         [room_id])
        self.make_request("PUT", path, {"visibility": "private"},
                          access_token=self.alice_token)
        self.assertEqual(self.make_request("GET", path).json_body, {"visibility": "private"})
        self.assertEqual(self.get_rooms().json_body["chunk"], [])

    def test_publish_permissions(self) -> None:
        """Members without power and non-members get 403; a server admin may publish."""
        room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        path = self.visibility_path(room_id)
        self.assert_error(self.make_request("PUT", path, {"visibility": "public"},
                                            access_token=self.bob_token), 403, "M_FORBIDDEN")
        self.join(self.bob, room_id)
        self.assert_error(self.make_request("PUT", path, {"visibility": "public"},
                                            access_token=self.bob_token), 403, "M_FORBIDDEN")
        self.register_user("root", admin=True)
        channel = self.make_request("PUT", path, {"visibility": "public"},
                                    access_token=self.login("root"))
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.make_request("GET", path).json_body, {"visibility": "public"})

    def test_publish_errors(self) -> None:
        """Unknown room 404, bad value 400 M_INVALID_PARAM, bad type M_BAD_JSON, no token 401."""
        room_id = self.create_room(self.alice_token)
        path = self.visibility_path(room_id)
        self.assert_error(self.make_request("PUT", self.visibility_path("!no:test"),
                                            {"visibility": "public"},
                                            access_token=self.alice_token), 404, "M_NOT_FOUND")
        self.assert_error(self.make_request("PUT", path, {"visibility": "secret"},
                                            access_token=self.alice_token),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.make_request("PUT", path, {"visibility": 1},
                                            access_token=self.alice_token), 400, "M_BAD_JSON")
        self.assert_error(self.make_request("PUT", path, b"nope",
                                            access_token=self.alice_token), 400, "M_NOT_JSON")
        self.assert_error(self.make_request("PUT", path, {"visibility": "public"}), 401,
                          "M_MISSING_TOKEN")
