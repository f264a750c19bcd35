"""Serving room data and queries to other servers: /event, /state, /state_ids,
/event_auth, /backfill, /get_missing_events, /query/profile, /query/directory."""

from __future__ import annotations

import unittest
import urllib.parse
from typing import Any

from federation.server_visibility import is_visible_to_server, server_of
from federation.serving import federation_pdu
from handlers.event_creation import EventSpec
from homeserver.events import Event
from homeserver.room_versions import get_room_version
from homeserver.server_acl import is_server_allowed, server_host
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import (
    FEDERATION,
    RemoteServer,
    join_remote_user,
    signed_request,
)
from tests.harness import FakeChannel, HomeserverTestCase

REMOTE = "remote.example"
BOB = f"@bob:{REMOTE}"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class ServingTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.remote = RemoteServer(REMOTE)
        self.outsider = RemoteServer("other.example")
        self.room_id = self.create_room(self.token, {"preset": "public_chat"})
        self.bob_join = join_remote_user(self, self.room_id, BOB)
        self.stores = hs.get_datastores()

    # -- helpers --

    def get(self, path: str, remote: RemoteServer | None = None) -> FakeChannel:
        return signed_request(self, remote or self.remote, "GET", FEDERATION + path)

    def event(self, event_id: str) -> Event:
        event = self.get_success(self.stores.events.get_event(event_id))
        assert event is not None
        return event

    def state_after(self, event_id: str) -> dict[tuple[str, str], str]:
        return dict(self.get_success(self.stores.state.get_state_after_event(event_id)))

    def auth_chain(self, event_ids: list[str]) -> set[str]:
        """The auth chain computed in Python from the events' `auth_events`."""
        chain: set[str] = set()
        todo = [a for e in event_ids for a in self.event(e).auth_event_ids]
        while todo:
            event_id = todo.pop()
            if event_id not in chain:
                chain.add(event_id)
                todo.extend(self.event(event_id).auth_event_ids)
        return chain

    def set_acl(self, deny: list[str], allow: list[str] | None = None) -> None:
        self.send_state(self.token, self.room_id, "m.room.server_acl",
                        {"allow": allow if allow is not None else ["*"], "deny": deny})

    def room_paths(self, event_id: str) -> list[tuple[str, str, Any]]:
        """(method, path, body) of every room endpoint, about `event_id`."""
        r, e = q(self.room_id), q(event_id)
        return [
            ("GET", f"/event/{e}", None),
            ("GET", f"/state/{r}?event_id={e}", None),
            ("GET", f"/state_ids/{r}?event_id={e}", None),
            ("GET", f"/event_auth/{r}/{e}", None),
            ("GET", f"/backfill/{r}?v={e}&limit=5", None),
            ("POST", f"/get_missing_events/{r}",
             {"earliest_events": [], "latest_events": [event_id]}),
        ]

    def assert_all_refused(self, event_id: str, remote: RemoteServer, code: int,
                           errcode: str) -> None:
        for method, path, body in self.room_paths(event_id):
            with self.subTest(path=path):
                channel = signed_request(self, remote, method, FEDERATION + path, body)
                self.assert_error(channel, code, errcode)

    # -- authentication --

    def test_unauthenticated_requests_refused(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        for method, path, body in self.room_paths(event_id):
            with self.subTest(path=path):
                channel = self.make_request(method, FEDERATION + path, body)
                self.assert_error(channel, 401, "M_UNAUTHORIZED")
                channel = self.make_request(method, FEDERATION + path, body,
                                            headers={"Authorization": "X-Matrix garbage"})
                self.assert_error(channel, 401, "M_UNAUTHORIZED")
                channel = signed_request(self, self.remote, method, FEDERATION + path, body,
                                         destination="elsewhere.example")
                self.assert_error(channel, 401, "M_UNAUTHORIZED")
                # Signed for another request: the signature does not verify.
                forged = self.remote.auth_header(method, FEDERATION + "/event/x", body,
                                                 self.hs.hostname)
                channel = self.make_request(method, FEDERATION + path, body,
                                            headers={"Authorization": forged})
                self.assert_error(channel, 401, "M_UNAUTHORIZED")
                # Signed by a key that is not the one the server publishes.
                impostor = RemoteServer(REMOTE)
                channel = self.make_request(method, FEDERATION + path, body, headers={
                    "Authorization": impostor.auth_header(method, FEDERATION + path, body,
                                                          self.hs.hostname)})
                self.assert_error(channel, 401, "M_UNAUTHORIZED")

    def test_query_endpoints_need_authentication(self) -> None:
        for path in (f"/query/profile?user_id={q(self.alice)}",
                     f"/query/directory?room_alias={q('#a:test')}"):
            self.assert_error(self.make_request("GET", FEDERATION + path), 401,
                              "M_UNAUTHORIZED")

    # -- /event --

    def test_get_event(self) -> None:
        event_id = self.send_message(self.token, self.room_id, "hello")
        channel = self.get(f"/event/{q(event_id)}")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["origin"], self.hs.hostname)
        self.assertEqual(body["origin_server_ts"], self.hs.get_clock().time_msec())
        self.assertEqual(body["pdus"], [dict(self.event(event_id).pdu_json)])
        self.assertEqual(body["pdus"][0]["content"]["body"], "hello")
        self.assertIn("signatures", body["pdus"][0])
        self.assertIn("hashes", body["pdus"][0])

    def test_get_event_errors(self) -> None:
        self.assert_error(self.get(f"/event/{q('$unknown:test')}"), 404, "M_NOT_FOUND")
        self.assert_error(self.get(f"/event/{q('not-an-event-id')}"), 400, "M_INVALID_PARAM")
        event_id = self.send_message(self.token, self.room_id)
        self.assert_error(self.get(f"/event/{q(event_id)}", self.outsider), 403,
                          "M_FORBIDDEN")

    def test_redacted_event_served_pruned(self) -> None:
        event_id = self.send_message(self.token, self.room_id, "secret")
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{event_id}/r1", {},
            access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        pdu = self.get(f"/event/{q(event_id)}").json_body["pdus"][0]
        self.assertEqual(pdu["content"], {})
        self.assertEqual(pdu["hashes"], self.event(event_id).pdu_json["hashes"])

    def test_federation_pdu_strips_local_unsigned(self) -> None:
        rv = get_room_version("10")
        assert rv is not None
        pdu = {"type": "m.room.member", "room_id": "!r:test", "sender": "@a:test",
               "state_key": "@a:test", "content": {"membership": "invite"}, "depth": 3,
               "origin_server_ts": 1, "prev_events": [], "auth_events": [],
               "unsigned": {"transaction_id": "t", "age_ts": 5, "redacted_because": {},
                            "invite_room_state": [{"type": "m.room.name"}]}}
        out = federation_pdu(Event.from_pdu(pdu, rv, event_id="$e"))
        self.assertEqual(out["unsigned"], {"invite_room_state": [{"type": "m.room.name"}]})
        pdu["unsigned"] = {"transaction_id": "t"}
        self.assertNotIn("unsigned", federation_pdu(Event.from_pdu(pdu, rv, event_id="$e")))

    # -- history visibility for servers --

    def test_joined_history_hidden_from_servers_that_were_not_there(self) -> None:
        room_id = self.create_room(self.token, {"preset": "public_chat"})
        self.send_state(self.token, room_id, "m.room.history_visibility",
                        {"history_visibility": "joined"})
        before = self.send_message(self.token, room_id, "before bob")
        join_remote_user(self, room_id, BOB)
        after = self.send_message(self.token, room_id, "after bob")

        pdu = self.get(f"/event/{q(before)}").json_body["pdus"][0]
        self.assertEqual(pdu["content"], {})  # redacted: bob's server was not there
        self.assertEqual(pdu["prev_events"], list(self.event(before).prev_event_ids))
        pdu = self.get(f"/event/{q(after)}").json_body["pdus"][0]
        self.assertEqual(pdu["content"]["body"], "after bob")

        channel = self.get(f"/backfill/{q(room_id)}?v={q(after)}&limit=4")
        self.assertEqual(channel.code, 200, channel.result)
        contents = {p["type"]: p["content"] for p in channel.json_body["pdus"]}
        self.assertEqual(contents["m.room.message"], {})  # `before`, redacted
        self.assertEqual(channel.json_body["pdus"][0]["content"]["body"], "after bob")

        # The state endpoints refuse an event the server may not see.
        self.assert_error(self.get(f"/state_ids/{q(room_id)}?event_id={q(before)}"), 403,
                          "M_FORBIDDEN")
        self.assert_error(self.get(f"/event_auth/{q(room_id)}/{q(before)}"), 403,
                          "M_FORBIDDEN")
        self.assertEqual(
            self.get(f"/state_ids/{q(room_id)}?event_id={q(after)}").code, 200)

    def test_shared_history_visible_to_resident_servers(self) -> None:
        room_id = self.create_room(self.token, {"preset": "public_chat"})
        self.send_state(self.token, room_id, "m.room.history_visibility",
                        {"history_visibility": "shared"})
        before = self.send_message(self.token, room_id, "before bob")
        join_remote_user(self, room_id, BOB)
        pdu = self.get(f"/event/{q(before)}").json_body["pdus"][0]
        self.assertEqual(pdu["content"]["body"], "before bob")
        self.assertEqual(
            self.get(f"/state_ids/{q(room_id)}?event_id={q(before)}").code, 200)

    def test_server_that_left_is_refused(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        self.get_success(self.hs.get_event_creation_handler().send(EventSpec(
            room_id=self.room_id, type="m.room.member", sender=BOB, state_key=BOB,
            content={"membership": "leave"})))
        self.assert_all_refused(event_id, self.remote, 403, "M_FORBIDDEN")

    # -- ACLs and residency --

    def test_non_participating_server_refused(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        self.assert_all_refused(event_id, self.outsider, 403, "M_FORBIDDEN")

    def test_acl_denied_server_refused(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        self.assertEqual(self.get(f"/event/{q(event_id)}").code, 200)
        self.set_acl(deny=["*.example"])
        self.assert_all_refused(event_id, self.remote, 403, "M_FORBIDDEN")
        # Allowed again: everything works.
        self.set_acl(deny=["evil.org"])
        self.assertEqual(self.get(f"/event/{q(event_id)}").code, 200)

    def test_acl_without_allow_denies_everyone(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        self.set_acl(deny=[], allow=["test"])
        self.assert_error(self.get(f"/state_ids/{q(self.room_id)}?event_id={q(event_id)}"),
                          403, "M_FORBIDDEN")

    # -- /state_ids, /state --

    def test_state_ids_at_message(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        channel = self.get(f"/state_ids/{q(self.room_id)}?event_id={q(event_id)}")
        self.assertEqual(channel.code, 200, channel.result)
        state = self.state_after(event_id)
        self.assertCountEqual(channel.json_body["pdu_ids"], state.values())
        self.assertIn(self.bob_join, channel.json_body["pdu_ids"])
        self.assertCountEqual(channel.json_body["auth_chain_ids"],
                              self.auth_chain(list(state.values())))

    def test_state_is_before_a_state_event(self) -> None:
        first = self.send_state(self.token, self.room_id, "m.room.topic", {"topic": "one"})
        second = self.send_state(self.token, self.room_id, "m.room.topic", {"topic": "two"})
        channel = self.get(f"/state_ids/{q(self.room_id)}?event_id={q(second)}")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertIn(first, channel.json_body["pdu_ids"])
        self.assertNotIn(second, channel.json_body["pdu_ids"])
        # At the create event, the state before is empty.
        create = self.state_after(second)[("m.room.create", "")]
        channel = self.get(f"/state_ids/{q(self.room_id)}?event_id={q(create)}")
        self.assertEqual(channel.json_body, {"pdu_ids": [], "auth_chain_ids": []})

    def test_state_full_events(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        ids = self.get(f"/state_ids/{q(self.room_id)}?event_id={q(event_id)}").json_body
        channel = self.get(f"/state/{q(self.room_id)}?event_id={q(event_id)}")
        self.assertEqual(channel.code, 200, channel.result)
        pdus = channel.json_body["pdus"]
        self.assertCountEqual([p["content"] for p in pdus],
                              [self.event(e).content for e in ids["pdu_ids"]])
        self.assertEqual(pdus[0], dict(self.event(ids["pdu_ids"][0]).pdu_json))
        self.assertEqual(len(channel.json_body["auth_chain"]), len(ids["auth_chain_ids"]))
        self.assertEqual(channel.json_body["auth_chain"][0],
                         dict(self.event(ids["auth_chain_ids"][0]).pdu_json))

    def test_state_errors(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        other_room = self.create_room(self.token, {"preset": "public_chat"})
        join_remote_user(self, other_room, BOB)
        for endpoint in ("state", "state_ids"):
            with self.subTest(endpoint=endpoint):
                base = f"/{endpoint}/{q(self.room_id)}"
                self.assert_error(self.get(base), 400, "M_MISSING_PARAM")
                self.assert_error(self.get(f"{base}?event_id=nope"), 400, "M_INVALID_PARAM")
                self.assert_error(self.get(f"{base}?event_id={q('$unknown:test')}"), 404,
                                  "M_NOT_FOUND")
                self.assert_error(
                    self.get(f"/{endpoint}/{q('!unknown:test')}?event_id={q(event_id)}"),
                    404, "M_NOT_FOUND")
                self.assert_error(
                    self.get(f"/{endpoint}/{q('bad')}?event_id={q(event_id)}"),
                    400, "M_INVALID_PARAM")
                # An event of another room.
                self.assert_error(
                    self.get(f"/{endpoint}/{q(other_room)}?event_id={q(event_id)}"),
                    404, "M_NOT_FOUND")

    # -- /event_auth --

    def test_event_auth(self) -> None:
        event_id = self.send_message(self.token, self.room_id)
        channel = self.get(f"/event_auth/{q(self.room_id)}/{q(event_id)}")
        self.assertEqual(channel.code, 200, channel.result)
        chain = channel.json_body["auth_chain"]
        expected = self.auth_chain([event_id])
        self.assertEqual(len(chain), len(expected))
        self.assertCountEqual([p["type"] for p in chain],
                              [self.event(e).type for e in expected])
        self.assertNotIn(event_id, [p.get("event_id") for p in chain])
        for pdu in chain:
            self.assertIn("signatures", pdu)

    def test_event_auth_errors(self) -> None:
        r = q(self.room_id)
        self.assert_error(self.get(f"/event_auth/{r}/{q('$unknown:test')}"), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.get(f"/event_auth/{r}/bad"), 400, "M_INVALID_PARAM")
        self.assert_error(self.get(f"/event_auth/{q('!nope:test')}/{q('$x:test')}"), 404,
                          "M_NOT_FOUND")

    # -- /backfill --

    def send_messages(self, n: int) -> list[str]:
        return [self.send_message(self.token, self.room_id, f"m{i}") for i in range(n)]

    def test_backfill(self) -> None:
        ids = self.send_messages(5)
        channel = self.get(f"/backfill/{q(self.room_id)}?v={q(ids[-1])}&limit=3")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["origin"], self.hs.hostname)
        self.assertEqual([p["content"]["body"] for p in body["pdus"]], ["m4", "m3", "m2"])
        self.assertEqual(body["pdus"][0], dict(self.event(ids[-1]).pdu_json))
        # Walks back to the create event, deepest first, and stops there.
        channel = self.get(f"/backfill/{q(self.room_id)}?v={q(ids[1])}&limit=100")
        pdus = channel.json_body["pdus"]
        self.assertEqual(pdus[0]["content"]["body"], "m1")
        self.assertEqual(pdus[-1]["type"], "m.room.create")
        depths = [p["depth"] for p in pdus]
        self.assertEqual(depths, sorted(depths, reverse=True))
        self.assertNotIn("m2", [p["content"].get("body") for p in pdus])

    def test_backfill_several_starting_points(self) -> None:
        ids = self.send_messages(4)
        channel = self.get(
            f"/backfill/{q(self.room_id)}?v={q(ids[1])}&v={q(ids[3])}&limit=3")
        self.assertEqual([p["content"]["body"] for p in channel.json_body["pdus"]],
                         ["m3", "m2", "m1"])

    def test_backfill_errors(self) -> None:
        ids = self.send_messages(1)
        r = q(self.room_id)
        self.assert_error(self.get(f"/backfill/{r}?limit=3"), 400, "M_MISSING_PARAM")
        self.assert_error(self.get(f"/backfill/{r}?v={q(ids[0])}"), 400, "M_MISSING_PARAM")
        self.assert_error(self.get(f"/backfill/{r}?v={q(ids[0])}&limit=x"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.get(f"/backfill/{r}?v={q(ids[0])}&limit=0"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.get(f"/backfill/{r}?v=bad&limit=3"), 400, "M_INVALID_PARAM")
        self.assert_error(self.get(f"/backfill/{r}?v={q('$unknown:test')}&limit=3"), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.get(f"/backfill/{q('!nope:test')}?v={q(ids[0])}&limit=3"),
                          404, "M_NOT_FOUND")

    # -- /get_missing_events --

    def missing(self, body: Any, room_id: str | None = None) -> FakeChannel:
        return signed_request(self, self.remote, "POST",
                              f"{FEDERATION}/get_missing_events/{q(room_id or self.room_id)}",
                              body)

    def test_get_missing_events(self) -> None:
        ids = self.send_messages(5)
        channel = self.missing({"earliest_events": [ids[0]], "latest_events": [ids[4]]})
        self.assertEqual(channel.code, 200, channel.result)
        events = channel.json_body["events"]
        self.assertEqual([p["content"]["body"] for p in events], ["m1", "m2", "m3"])
        self.assertEqual(events[0], dict(self.event(ids[1]).pdu_json))
        # The limit keeps the events nearest to latest_events.
        channel = self.missing({"earliest_events": [ids[0]], "latest_events": [ids[4]],
                                "limit": 2})
        self.assertEqual([p["content"]["body"] for p in channel.json_body["events"]],
                         ["m2", "m3"])
        # min_depth stops the walk.
        channel = self.missing({"earliest_events": [], "latest_events": [ids[4]],
                                "min_depth": self.event(ids[2]).depth})
        self.assertEqual([p["content"]["body"] for p in channel.json_body["events"]],
                         ["m2", "m3"])
        # Default limit: 10.
        channel = self.missing({"earliest_events": [], "latest_events": [ids[4]]})
        self.assertEqual(len(channel.json_body["events"]), 10)

    def test_get_missing_events_errors(self) -> None:
        ids = self.send_messages(1)
        self.assert_error(self.missing({"earliest_events": []}), 400, "M_MISSING_PARAM")
        self.assert_error(self.missing({"latest_events": ids}), 400, "M_MISSING_PARAM")
        self.assert_error(self.missing({"earliest_events": [], "latest_events": ids[0]}),
                          400, "M_BAD_JSON")
        self.assert_error(self.missing({"earliest_events": [], "latest_events": ids,
                                        "limit": "5"}), 400, "M_BAD_JSON")
        self.assert_error(self.missing({"earliest_events": [], "latest_events": ids,
                                        "limit": -1}), 400, "M_BAD_JSON")
        self.assert_error(self.missing([1]), 400, "M_BAD_JSON")
        self.assert_error(self.missing({"earliest_events": [],
                                        "latest_events": ["$unknown:test"]}),
                          404, "M_NOT_FOUND")
        self.assert_error(self.missing({"earliest_events": [], "latest_events": ids},
                                       room_id="!nope:test"), 404, "M_NOT_FOUND")
        channel = signed_request(self, self.remote, "POST",
                                 f"{FEDERATION}/get_missing_events/{q(self.room_id)}")
        self.assert_error(channel, 400, "M_NOT_JSON")

    # -- /query/profile --

    def profile(self, query: str) -> FakeChannel:
        return self.get(f"/query/profile?{query}")

    def test_query_profile(self) -> None:
        channel = self.make_request("PUT", f"{CLIENT}/profile/{self.alice}/displayname",
                                    {"displayname": "Alice"}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.profile(f"user_id={q(self.alice)}")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"displayname": "Alice", "avatar_url": None})
        channel = self.profile(f"user_id={q(self.alice)}&field=displayname")
        self.assertEqual(channel.json_body, {"displayname": "Alice"})
        channel = self.profile(f"user_id={q(self.alice)}&field=avatar_url")
        self.assertEqual(channel.json_body, {"avatar_url": None})

    def test_query_profile_errors(self) -> None:
        self.assert_error(self.profile(""), 400, "M_MISSING_PARAM")
        self.assert_error(self.profile("user_id=alice"), 400, "M_INVALID_PARAM")
        self.assert_error(self.profile(f"user_id={q(self.alice)}&field=Bad%20Field"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.profile(f"user_id={q('@nobody:test')}"), 404, "M_NOT_FOUND")
        self.assert_error(self.profile(f"user_id={q(BOB)}"), 404, "M_NOT_FOUND")

    # -- /query/directory --

    def test_query_directory(self) -> None:
        channel = self.make_request("PUT", f"{CLIENT}/directory/room/{q('#room:test')}",
                                    {"room_id": self.room_id}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.get(f"/query/directory?room_alias={q('#room:test')}")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"room_id": self.room_id,
                                             "servers": ["test", REMOTE]})

    def test_query_directory_errors(self) -> None:
        self.assert_error(self.get("/query/directory"), 400, "M_MISSING_PARAM")
        self.assert_error(self.get("/query/directory?room_alias=nope"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.get(f"/query/directory?room_alias={q('#unknown:test')}"),
                          404, "M_NOT_FOUND")
        self.assert_error(self.get(f"/query/directory?room_alias={q('#room:' + REMOTE)}"),
                          404, "M_NOT_FOUND")


class ServerAclTestCase(unittest.TestCase):
    def test_no_acl_allows(self) -> None:
        self.assertTrue(is_server_allowed("evil.org", None))

    def test_order_and_globs(self) -> None:
        acl = {"allow": ["*.example.org", "good?.net"], "deny": ["bad.example.org"]}
        self.assertTrue(is_server_allowed("a.example.org", acl))
        self.assertTrue(is_server_allowed("A.Example.ORG:8448", acl))  # case, port ignored
        self.assertFalse(is_server_allowed("bad.example.org:443", acl))
        self.assertTrue(is_server_allowed("good1.net", acl))
        self.assertFalse(is_server_allowed("good12.net", acl))
        self.assertFalse(is_server_allowed("example.org", acl))

    def test_missing_allow_denies_everyone(self) -> None:
        self.assertFalse(is_server_allowed("a.org", {"deny": []}))
        self.assertFalse(is_server_allowed("a.org", {"allow": "*"}))  # not a list

    def test_ip_literals(self) -> None:
        acl: dict[str, Any] = {"allow": ["*"], "allow_ip_literals": False}
        self.assertFalse(is_server_allowed("1.2.3.4:8448", acl))
        self.assertFalse(is_server_allowed("[::1]:8448", acl))
        self.assertTrue(is_server_allowed("a.org", acl))
        acl["allow_ip_literals"] = "no"  # not a boolean: the default, true
        self.assertTrue(is_server_allowed("1.2.3.4", acl))

    def test_server_host(self) -> None:
        self.assertEqual(server_host("[::1]:8448"), "[::1]")
        self.assertEqual(server_host("a.org:1"), "a.org")
        self.assertEqual(server_host("a.org"), "a.org")


class ServerVisibilityRuleTestCase(unittest.TestCase):
    """The per-event rule (remote invites need the invitee's server, so `invited` is
    checked here rather than through the API)."""

    def test_rules(self) -> None:
        for visibility in ("world_readable", "shared"):
            self.assertTrue(is_visible_to_server(visibility, []))
        self.assertTrue(is_visible_to_server("joined", ["leave", "join"]))
        self.assertFalse(is_visible_to_server("joined", ["invite", "leave"]))
        self.assertTrue(is_visible_to_server("invited", ["invite"]))
        self.assertFalse(is_visible_to_server("invited", ["leave", "ban"]))

    def test_server_of(self) -> None:
        self.assertEqual(server_of("@a:b.org:8448"), "b.org:8448")
        self.assertEqual(server_of("@a:[::1]:80"), "[::1]:80")
