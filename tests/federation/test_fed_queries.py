"""Federation queries about users (devices, keys), OpenID tokens, and space hierarchies
(client and federation)."""

from __future__ import annotations

from typing import Any

from handlers.tokens import hash_token
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import RemoteServer, join_remote_user, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase

FED = "/_matrix/federation/v1"
CLIENT_V1 = "/_matrix/client/v1"


class QueryTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        hs._parts["federation_client"] = FakeFederationClient()
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="LAPTOP")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def fed(self, method: str, path: str, body: Any = None) -> Any:
        return signed_request(self, self.remote, method, f"{FED}{path}", body)


class UserDeviceQueryTests(QueryTestCase):
    def test_user_devices(self) -> None:
        self.login("alice", device_id="PHONE")
        channel = self.make_request("PUT", f"{CLIENT}/devices/PHONE",
                                    {"display_name": "Phone"}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.fed("GET", f"/user/devices/{self.alice}")
        self.assertEqual(channel.code, 200, channel.result)
        position = self.get_success(self.hs.get_datastores().device_lists
                                    .get_last_position_for_user(self.alice))
        self.assertGreater(position, 0)
        self.assertEqual(channel.json_body, {
            "user_id": self.alice, "stream_id": position,
            "devices": [{"device_id": "LAPTOP"},
                        {"device_id": "PHONE", "device_display_name": "Phone"}]})

    def test_user_devices_errors(self) -> None:
        self.assert_error(self.fed("GET", "/user/devices/@rita:remote.test"),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.fed("GET", "/user/devices/not-a-user"), 400, "M_INVALID_PARAM")
        self.assert_error(self.fed("GET", "/user/devices/@nobody:test"), 404, "M_NOT_FOUND")
        channel = self.make_request("GET", f"{FED}/user/devices/{self.alice}")
        self.assert_error(channel, 401, "M_UNAUTHORIZED")

    def test_keys_query_and_claim(self) -> None:
        """Local users without keys answer empty maps; other servers' users are left out."""
        channel = self.fed("POST", "/user/keys/query", {"device_keys": {
            self.alice: [], self.bob: ["X"], "@rita:remote.test": []}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"device_keys": {self.alice: {}, self.bob: {}},
                                             "master_keys": {}, "self_signing_keys": {}})
        channel = self.fed("POST", "/user/keys/claim", {"one_time_keys": {
            self.alice: {"LAPTOP": "signed_curve25519"}}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"one_time_keys": {}})

    def test_keys_bad_bodies(self) -> None:
        for path, good_key in (("/user/keys/query", "device_keys"),
                               ("/user/keys/claim", "one_time_keys")):
            self.assert_error(self.fed("POST", path, {}), 400, "M_MISSING_PARAM")
            self.assert_error(self.fed("POST", path, {good_key: []}), 400, "M_BAD_JSON")
            self.assert_error(self.fed("POST", path, {good_key: {self.alice: 3}}),
                              400, "M_BAD_JSON")
            self.assert_error(self.fed("POST", path, [1]), 400, "M_BAD_JSON")
            self.assert_error(self.make_request("POST", f"{FED}{path}", {good_key: {}}),
                              401, "M_UNAUTHORIZED")


class OpenIdTests(QueryTestCase):
    def request_token(self, user_id: str, token: str | None, body: Any = None) -> Any:
        return self.make_request("POST", f"{CLIENT}/user/{user_id}/openid/request_token",
                                 {} if body is None else body, access_token=token)

    def userinfo(self, token: str | None) -> Any:
        query = f"?access_token={token}" if token is not None else ""
        return self.make_request("GET", f"{FED}/openid/userinfo{query}")

    def test_token_round_trip_and_expiry(self) -> None:
        channel = self.request_token(self.alice, self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual({k: v for k, v in body.items() if k != "access_token"},
                         {"token_type": "Bearer", "matrix_server_name": "test",
                          "expires_in": 3600})
        token = body["access_token"]
        # Stored only as its hash.
        rows = self.get_success(self.hs.get_datastores().db.execute(
            "t", "SELECT token_hash, user_id FROM open_id_tokens"))
        self.assertEqual([tuple(r) for r in rows], [(hash_token(token), self.alice)])
        # No X-Matrix needed: the caller is a third party.
        channel = self.userinfo(token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"sub": self.alice})
        self.reactor.advance(3601)
        self.assert_error(self.userinfo(token), 401, "M_UNKNOWN_TOKEN")

    def test_request_token_errors(self) -> None:
        self.assert_error(self.request_token(self.bob, self.alice_token), 403, "M_FORBIDDEN")
        self.assert_error(self.request_token(self.alice, None), 401, "M_MISSING_TOKEN")
        self.assert_error(self.request_token(self.alice, self.alice_token, body=[1]),
                          400, "M_BAD_JSON")

    def test_userinfo_errors(self) -> None:
        self.assert_error(self.userinfo("nope"), 401, "M_UNKNOWN_TOKEN")
        self.assert_error(self.userinfo(None), 401, "M_MISSING_TOKEN")
        # An access token for the client API is not an OpenID token.
        self.assert_error(self.userinfo(self.alice_token), 401, "M_UNKNOWN_TOKEN")


class HierarchyTests(QueryTestCase):
    """A space with: a public room, a private room (alice only), a suggested public
    subspace holding a public grandchild, and a removed link (empty content)."""

    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        tok = self.alice_token
        self.space = self.create_room(tok, {"preset": "public_chat", "name": "Space",
                                            "creation_content": {"type": "m.space"}})
        self.public = self.create_room(tok, {"preset": "public_chat", "name": "Public"})
        self.private = self.create_room(tok, {"preset": "private_chat", "name": "Private"})
        self.sub = self.create_room(tok, {"preset": "public_chat", "name": "Sub",
                                          "creation_content": {"type": "m.space"}})
        self.grandchild = self.create_room(tok, {"preset": "public_chat"})
        self.removed = self.create_room(tok, {"preset": "public_chat"})
        # Children ordered by `order`: sub ("a") first, then public ("b"), then private
        # (no order).
        self.add_child(self.space, self.private, {})
        self.add_child(self.space, self.public, {"order": "b"})
        self.add_child(self.space, self.sub, {"order": "a", "suggested": True})
        self.add_child(self.sub, self.grandchild, {})
        self.send_state(tok, self.space, "m.space.child", {}, state_key=self.removed)

    def add_child(self, parent: str, child: str, extra: dict[str, Any]) -> None:
        self.send_state(self.alice_token, parent, "m.space.child",
                        {"via": ["test"], **extra}, state_key=child)

    def hierarchy(self, token: str, room_id: str, query: str = "") -> Any:
        return self.make_request("GET", f"{CLIENT_V1}/rooms/{room_id}/hierarchy{query}",
                                 access_token=token)

    def ids(self, channel: Any) -> list[str]:
        self.assertEqual(channel.code, 200, channel.result)
        return [r["room_id"] for r in channel.json_body["rooms"]]

    def test_walk_depth_first_in_order(self) -> None:
        channel = self.hierarchy(self.alice_token, self.space)
        self.assertEqual(self.ids(channel),
                         [self.space, self.sub, self.grandchild, self.public, self.private])
        self.assertNotIn("next_batch", channel.json_body)
        root = channel.json_body["rooms"][0]
        self.assertEqual(root["room_type"], "m.space")
        self.assertEqual(root["name"], "Space")
        self.assertEqual(root["join_rule"], "public")
        self.assertEqual(root["num_joined_members"], 1)
        self.assertEqual(root["world_readable"], False)
        self.assertEqual(root["guest_can_join"], False)
        self.assertIn("room_version", root)
        self.assertEqual([c["state_key"] for c in root["children_state"]],
                         [self.sub, self.public, self.private])
        child = root["children_state"][0]
        self.assertEqual(set(child), {"type", "state_key", "content", "sender",
                                      "origin_server_ts"})
        self.assertEqual(child["content"], {"via": ["test"], "order": "a", "suggested": True})

    def test_private_children_hidden_from_others(self) -> None:
        self.assertEqual(self.ids(self.hierarchy(self.bob_token, self.space)),
                         [self.space, self.sub, self.grandchild, self.public])
        # once invited, bob may see it
        self.invite(self.alice, self.private, self.bob)
        self.assertIn(self.private, self.ids(self.hierarchy(self.bob_token, self.space)))

    def test_max_depth_and_suggested_only(self) -> None:
        self.assertEqual(self.ids(self.hierarchy(self.alice_token, self.space,
                                                 "?max_depth=1")),
                         [self.space, self.sub, self.public, self.private])
        self.assertEqual(self.ids(self.hierarchy(self.alice_token, self.space,
                                                 "?max_depth=0")), [self.space])
        channel = self.hierarchy(self.alice_token, self.space, "?suggested_only=true")
        # (the grandchild's link is not suggested: every level is filtered)
        self.assertEqual(self.ids(channel), [self.space, self.sub])
        self.assertEqual([c["state_key"] for c in channel.json_body["rooms"][0]
                          ["children_state"]], [self.sub])

    def test_pagination(self) -> None:
        seen: list[str] = []
        query = "?limit=2"
        pages = 0
        while True:
            channel = self.hierarchy(self.alice_token, self.space, query)
            seen += self.ids(channel)
            pages += 1
            token = channel.json_body.get("next_batch")
            if token is None:
                break
            query = f"?limit=2&from={token}"
        self.assertEqual(pages, 3)
        self.assertEqual(seen,
                         [self.space, self.sub, self.grandchild, self.public, self.private])
        first = self.hierarchy(self.alice_token, self.space, "?limit=2")
        token = first.json_body["next_batch"]
        for changed in (f"?from={token}&suggested_only=true", f"?from={token}&max_depth=1"):
            self.assert_error(self.hierarchy(self.alice_token, self.space, changed),
                              400, "M_INVALID_PARAM")
        self.assert_error(self.hierarchy(self.alice_token, self.sub, f"?from={token}"),
                          400, "M_INVALID_PARAM")

    def test_bad_requests(self) -> None:
        for query in ("?limit=0", "?limit=-3", "?limit=x", "?max_depth=-1",
                      "?suggested_only=maybe", "?from=garbage!", "?from=WzFd"):
            self.assert_error(self.hierarchy(self.alice_token, self.space, query),
                              400, "M_INVALID_PARAM")
        self.assert_error(self.hierarchy(self.alice_token, "!unknown:test"),
                          403, "M_FORBIDDEN")
        self.assert_error(self.hierarchy(self.bob_token, self.private), 403, "M_FORBIDDEN")
        self.assert_error(self.hierarchy(None, self.space), 401, "M_MISSING_TOKEN")

    def test_federation_hierarchy(self) -> None:
        channel = self.fed("GET", f"/hierarchy/{self.space}")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["room"]["room_id"], self.space)
        self.assertEqual([c["state_key"] for c in body["room"]["children_state"]],
                         [self.sub, self.public, self.private])
        # direct children only, the private one inaccessible to remote.test
        self.assertEqual([c["room_id"] for c in body["children"]], [self.sub, self.public])
        self.assertEqual(body["children"][0]["children_state"][0]["state_key"],
                         self.grandchild)
        self.assertEqual(body["inaccessible_children"], [self.private])
        channel = self.fed("GET", f"/hierarchy/{self.space}?suggested_only=true")
        self.assertEqual([c["room_id"] for c in channel.json_body["children"]], [self.sub])
        self.assertEqual(channel.json_body["inaccessible_children"], [])

    def test_federation_hierarchy_access(self) -> None:
        self.assert_error(self.fed("GET", f"/hierarchy/{self.private}"), 404, "M_NOT_FOUND")
        self.assert_error(self.fed("GET", "/hierarchy/!unknown:test"), 404, "M_NOT_FOUND")
        self.assert_error(self.fed("GET", f"/hierarchy/{self.space}?suggested_only=1"),
                          400, "M_INVALID_PARAM")
        channel = self.make_request("GET", f"{FED}/hierarchy/{self.space}")
        self.assert_error(channel, 401, "M_UNAUTHORIZED")
        # A server with a member in the private room may see it.
        async def no_countersign(event: Any, state: Any) -> Any:
            return event

        self.hs.get_federation_membership_handler().send_invite = no_countersign
        self.invite(self.alice, self.private, "@rita:remote.test")
        join_remote_user(self, self.private, "@rita:remote.test")
        channel = self.fed("GET", f"/hierarchy/{self.private}")
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.fed("GET", f"/hierarchy/{self.space}")
        self.assertEqual(channel.json_body["inaccessible_children"], [])
        self.assertIn(self.private, [c["room_id"] for c in channel.json_body["children"]])
