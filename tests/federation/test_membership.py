"""Membership across servers, in memory.

Server side: a fake remote server (its own key, signed requests) joins, leaves and
invites through make_join/send_join, make_leave/send_leave and invite — and every refusal.
Client side: our users join, are invited to and reject invites to a room held by a fake
remote server, whose answers stand in for the outbound federation client.
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Callable
from typing import Any

import signedjson.key

from federation.client import FederationRequestError
from homeserver.event_hashing import (
    add_content_hash,
    compute_event_id,
    sign_event,
    verify_event_signature,
)
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.federation.fed_helpers import RemoteServer, install_remote, signed_request
from tests.harness import HomeserverTestCase

C = "/_matrix/client/v3"
F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"
REMOTE = "remote.example"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def sign_pdu(remote: RemoteServer, pdu: dict[str, Any], room_version: RoomVersion
             ) -> dict[str, Any]:
    """The PDU with its content hash and `remote`'s signature."""
    return sign_event(add_content_hash(pdu), remote.name, remote.key, room_version)


Route = Callable[[dict[str, Any] | None, Any], Any]


class FakeFederation:
    """Stands in for the outbound client: answers `(destination, method, path)` routes,
    records every request; anything else fails like an unreachable server."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str, str], Route] = {}
        self.calls: list[tuple[str, str, str, Any, Any]] = []

    async def request(self, destination: str, method: str, path: str,
                      query: dict[str, Any] | None = None, content: Any = None,
                      timeout: float = 60.0, sign: bool = True) -> Any:
        self.calls.append((destination, method, path, query, copy.deepcopy(content)))
        route = self.routes.get((destination, method, path))
        for (dest, verb, pattern), candidate in self.routes.items():
            # "/*" ends a route whose last segment is the caller's (an event ID).
            if route is None and pattern.endswith("/*") and (dest, verb) == (
                    destination, method) and path.startswith(pattern[:-1]):
                route = candidate
        if route is None:
            raise FederationRequestError(destination, f"{method} {path}: unreachable")
        return route(query, copy.deepcopy(content))

    def paths(self) -> list[str]:
        return [path for _, _, path, _, _ in self.calls]


def refuse(code: int, errcode: str) -> Route:
    def route(query: Any, content: Any) -> Any:
        raise FederationRequestError(REMOTE, "refused", code,
                                     {"errcode": errcode, "error": "no"})
    return route


class _Base(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = RemoteServer(REMOTE)
        self.other = RemoteServer("other.example")
        install_remote(self, self.remote)
        install_remote(self, self.other)
        self.fed = FakeFederation()
        hs.get_federation_client().request = self.fed.request
        self.tokens: dict[str, str] = {}
        for name in ("alice", "bob"):
            self.register_user(name)
            self.tokens[name] = self.login(name)

    def client(self, method: str, who: str, path: str, body: Any = None) -> Any:
        return self.make_request(method, C + path, body if body is not None else {}
                                 if method != "GET" else None,
                                 access_token=self.tokens[who])

    def ok(self, channel: Any) -> Any:
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def sync(self, who: str) -> Any:
        return self.ok(self.make_request("GET", f"{C}/sync", access_token=self.tokens[who]))


# -------------------------------------------------------------------------------------
# server side


class ServerSideTestCase(_Base):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.room_id = self.ok(self.client("POST", "alice", "/createRoom",
                                           {"preset": "public_chat"}))["room_id"]
        self.version = KNOWN_ROOM_VERSIONS[self.get_success(
            hs.get_datastores().events.get_room_version(self.room_id)).identifier]
        self.user = f"@zoe:{REMOTE}"

        def countersign(query: Any, body: Any) -> Any:
            return {"event": sign_event(body["event"], REMOTE, self.remote.key,
                                        self.version)}

        self.fed.routes[(REMOTE, "PUT", f"{F2}/invite/*")] = countersign

    def make(self, kind: str, user: str | None = None, room: str | None = None,
             remote: RemoteServer | None = None, ver: str | None = "all") -> Any:
        path = f"{F1}/make_{kind}/{q(room or self.room_id)}/{q(user or self.user)}"
        if kind == "join" and ver == "all":
            path += "?" + urllib.parse.urlencode({"ver": list(KNOWN_ROOM_VERSIONS)},
                                                 doseq=True)
        elif ver is not None and ver != "all":
            path += "?ver=" + ver
        return signed_request(self, remote or self.remote, "GET", path)

    def signed_from_template(self, kind: str, **content: Any) -> dict[str, Any]:
        template = self.ok(self.make(kind))["event"]
        template["content"] = {"membership": kind, **content}
        return sign_pdu(self.remote, template, self.version)

    def send(self, kind: str, pdu: dict[str, Any], event_id: str | None = None,
             remote: RemoteServer | None = None, room: str | None = None) -> Any:
        event_id = event_id or compute_event_id(pdu, self.version)
        return signed_request(self, remote or self.remote, "PUT",
                              f"{F2}/send_{kind}/{q(room or self.room_id)}/{q(event_id)}",
                              pdu)

    def membership_of(self, user: str) -> str | None:
        state = self.get_success(
            self.hs.get_datastores().state.get_current_state_ids(self.room_id))
        event_id = state.get(("m.room.member", user))
        if event_id is None:
            return None
        event = self.get_success(self.hs.get_datastores().events.get_event(event_id))
        return event.membership if event is not None else None

    # -- make_join --

    def test_make_join_template(self) -> None:
        """The template builds on our extremities and state, ready to sign."""
        body = self.ok(self.make("join"))
        self.assertEqual(body["room_version"], self.version.identifier)
        event = body["event"]
        self.assertEqual((event["type"], event["state_key"], event["sender"]),
                         ("m.room.member", self.user, self.user))
        self.assertEqual(event["content"], {"membership": "join"})
        self.assertEqual(event["room_id"], self.room_id)
        extremities = self.get_success(
            self.hs.get_datastores().events.get_forward_extremities(self.room_id))
        self.assertEqual(event["prev_events"], [e for e, _ in extremities])
        self.assertEqual(event["depth"], extremities[0][1] + 1)
        state = self.get_success(
            self.hs.get_datastores().state.get_current_state_ids(self.room_id))
        self.assertIn(state[("m.room.power_levels", "")], event["auth_events"])
        self.assertIn(state[("m.room.join_rules", "")], event["auth_events"])
        for key in ("hashes", "signatures", "event_id"):
            self.assertNotIn(key, event)

    def test_make_join_refusals(self) -> None:
        self.assert_error(self.make("join", room="!nope:test"), 404, "M_NOT_FOUND")
        channel = self.make("join", ver="1")
        self.assert_error(channel, 400, "M_INCOMPATIBLE_ROOM_VERSION")
        self.assertEqual(channel.json_body["room_version"], self.version.identifier)
        # Without `ver` the asker supports only version 1.
        self.assert_error(self.make("join", ver=None), 400, "M_INCOMPATIBLE_ROOM_VERSION")
        # A user of another server than the one asking.
        self.assert_error(self.make("join", user="@zoe:other.example"), 403, "M_FORBIDDEN")
        self.assert_error(self.make("join", user="not-a-user"), 400, "M_INVALID_PARAM")
        # Unsigned.
        self.assert_error(self.make_request(
            "GET", f"{F1}/make_join/{q(self.room_id)}/{q(self.user)}?ver=12"),
            401, "M_UNAUTHORIZED")

    def test_make_join_invite_only_and_banned(self) -> None:
        private = self.ok(self.client("POST", "alice", "/createRoom",
                                      {"preset": "private_chat"}))["room_id"]
        self.assert_error(self.make("join", room=private), 403, "M_FORBIDDEN")
        self.ok(self.client("POST", "alice", f"/rooms/{private}/invite",
                            {"user_id": self.user}))
        self.ok(self.make("join", room=private))
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/ban",
                            {"user_id": self.user}))
        self.assert_error(self.make("join"), 403, "M_FORBIDDEN")

    def test_server_acl(self) -> None:
        """A server the room's ACL denies can neither make nor send a join."""
        pdu = self.signed_from_template("join")
        self.ok(self.client("PUT", "alice", f"/rooms/{self.room_id}/state/m.room.server_acl",
                            {"allow": ["*"], "deny": [REMOTE]}))
        self.assert_error(self.make("join"), 403, "M_FORBIDDEN")
        self.assert_error(self.send("join", pdu), 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership_of(self.user))

    # -- send_join --

    def test_send_join(self) -> None:
        """The join enters the room, countersigned; the answer has the state before it
        and its auth chain."""
        pdu = self.signed_from_template("join", displayname="Zoe")
        event_id = compute_event_id(pdu, self.version)
        body = self.ok(self.send("join", pdu))
        self.assertEqual(body["origin"], "test")
        self.assertIs(body["members_omitted"], False)
        signed = body["event"]
        self.assertEqual(compute_event_id(signed, self.version), event_id)
        key = self.hs.get_signing_key()
        verify_event_signature(signed, "test", key.key.verify_key, f"ed25519:{key.version}",
                               self.version)
        verify_event_signature(signed, REMOTE, self.remote.key.verify_key,
                               self.remote.key_id, self.version)
        state_types = {(e["type"], e["state_key"]) for e in body["state"]}
        self.assertIn(("m.room.create", ""), state_types)
        self.assertIn(("m.room.member", "@alice:test"), state_types)
        self.assertNotIn(("m.room.member", self.user), state_types)
        chain_ids = {compute_event_id(e, self.version) for e in body["auth_chain"]}
        state_ids = {compute_event_id(e, self.version) for e in body["state"]}
        create_id = next(compute_event_id(e, self.version) for e in body["state"]
                         if e["type"] == "m.room.create")
        self.assertIn(create_id, chain_ids | state_ids)
        self.assertEqual(self.membership_of(self.user), "join")
        # Alice's /sync shows Zoe's join.
        timeline = self.sync("alice")["rooms"]["join"][self.room_id]["timeline"]["events"]
        self.assertIn(event_id, [e["event_id"] for e in timeline])
        # Sending it again is harmless.
        self.ok(self.send("join", pdu))
        # The v1 endpoint answers [200, body].
        legacy = self.ok(signed_request(
            self, self.remote, "PUT", f"{F1}/send_join/{q(self.room_id)}/{q(event_id)}", pdu))
        self.assertEqual(legacy[0], 200)

    def test_send_join_refusals(self) -> None:
        pdu = self.signed_from_template("join")
        event_id = compute_event_id(pdu, self.version)
        # Sent by another server than the user's.
        self.assert_error(self.send("join", pdu, remote=self.other), 403, "M_FORBIDDEN")
        # The event ID in the path is another.
        self.assert_error(self.send("join", pdu, event_id="$other"), 400, "M_INVALID_PARAM")
        # Another room in the path.
        other_room = self.ok(self.client("POST", "alice", "/createRoom",
                                         {"preset": "public_chat"}))["room_id"]
        self.assert_error(self.send("join", pdu, room=other_room), 400, "M_INVALID_PARAM")
        # Unknown room.
        self.assert_error(self.send("join", pdu, room="!nope:test"), 404, "M_NOT_FOUND")
        # Not a join: a leave, or not a member event at all.
        self.assert_error(self.send("join", self.signed_from_template("join",
                                                                     membership="leave")),
                          400, "M_BAD_JSON")
        message = dict(self.ok(self.make("join"))["event"])
        message.update(type="m.room.message", content={"body": "hi"})
        message.pop("state_key")
        self.assert_error(self.send("join", sign_pdu(self.remote, message, self.version)),
                          400, "M_BAD_JSON")
        # Someone else's membership.
        template = self.ok(self.make("join"))["event"]
        template["state_key"] = f"@yan:{REMOTE}"
        self.assert_error(self.send("join", sign_pdu(self.remote, template, self.version)),
                          400, "M_BAD_JSON")
        # Not a PDU.
        self.assert_error(self.send("join", {"type": "m.room.member"}, event_id=event_id),
                          400, "M_BAD_JSON")
        # Bad signature: signed by a key that is not the remote's.
        impostor = copy.deepcopy(pdu)
        impostor.pop("signatures")
        impostor = sign_event(impostor, REMOTE,
                              signedjson.key.generate_signing_key(self.remote.version),
                              self.version)
        self.assert_error(self.send("join", impostor), 403, "M_FORBIDDEN")
        # Unsigned.
        unsigned = {k: v for k, v in pdu.items() if k != "signatures"}
        self.assert_error(self.send("join", unsigned), 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership_of(self.user))
        # The genuine event still goes through.
        self.ok(self.send("join", pdu))
        self.assertEqual(self.membership_of(self.user), "join")

    def test_send_join_banned(self) -> None:
        """A join the room's auth rules refuse (the user was banned after make_join)."""
        pdu = self.signed_from_template("join")
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/ban",
                            {"user_id": self.user}))
        self.assert_error(self.send("join", pdu), 403, "M_FORBIDDEN")
        self.assertEqual(self.membership_of(self.user), "ban")

    # -- make_leave / send_leave --

    def test_leave(self) -> None:
        self.assert_error(self.make("leave"), 403, "M_FORBIDDEN")  # not in the room
        self.ok(self.send("join", self.signed_from_template("join")))
        body = self.ok(self.make("leave"))
        self.assertEqual(body["event"]["content"], {"membership": "leave"})
        pdu = self.signed_from_template("leave")
        self.assert_error(self.send("leave", self.signed_from_template("join")), 400,
                          "M_BAD_JSON")
        self.assert_error(self.send("leave", pdu, remote=self.other), 403, "M_FORBIDDEN")
        self.assertEqual(self.ok(self.send("leave", pdu)), {})
        self.assertEqual(self.membership_of(self.user), "leave")
        self.assert_error(self.make("leave", room="!nope:test"), 404, "M_NOT_FOUND")
        self.assert_error(self.make("leave", user="@zoe:other.example"), 403, "M_FORBIDDEN")


# -------------------------------------------------------------------------------------
# a room held by the fake remote server


class RemoteRoom:
    """A room on `remote`: create, its creator's join, power levels, join rules."""

    def __init__(self, remote: RemoteServer, version: str = "10",
                 join_rule: str = "public", now: int = 1_000) -> None:
        self.remote = remote
        self.version = KNOWN_ROOM_VERSIONS[version]
        self.creator = f"@rita:{remote.name}"
        self.room_id = f"!room:{remote.name}"
        self.events: dict[str, dict[str, Any]] = {}
        self.state: dict[tuple[str, str], str] = {}
        self.depth = 0
        self.prev: list[str] = []
        self.now = now
        create = self.add("m.room.create", "", {"creator": self.creator,
                                                "room_version": version})
        self.create_id = create
        self.add("m.room.member", self.creator, {"membership": "join"})
        self.add("m.room.power_levels", "", {"users": {self.creator: 100}})
        self.add("m.room.join_rules", "", {"join_rule": join_rule})

    def auth_for(self, etype: str, state_key: str | None, sender: str) -> list[str]:
        keys = [("m.room.create", ""), ("m.room.power_levels", ""),
                ("m.room.member", sender)]
        if etype == "m.room.member":
            keys += [("m.room.join_rules", ""), ("m.room.member", state_key or "")]
        return list(dict.fromkeys(self.state[k] for k in keys if k in self.state))

    def template(self, etype: str, state_key: str | None, sender: str,
                 content: dict[str, Any]) -> dict[str, Any]:
        self.now += 1
        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": etype, "sender": sender,
            "content": content, "depth": self.depth + 1, "prev_events": list(self.prev),
            "auth_events": self.auth_for(etype, state_key, sender),
            "origin_server_ts": self.now, "origin": self.remote.name,
        }
        via = content.get("join_authorised_via_users_server")
        if etype == "m.room.member" and isinstance(via, str) \
                and ("m.room.member", via) in self.state:
            # The auth events selection picks the authorising user's member event too.
            pdu["auth_events"] = list(dict.fromkeys(
                [*pdu["auth_events"], self.state[("m.room.member", via)]]))
        if state_key is not None:
            pdu["state_key"] = state_key
        return pdu

    def add(self, etype: str, state_key: str | None, content: dict[str, Any],
            sender: str | None = None) -> str:
        pdu = sign_pdu(self.remote, self.template(etype, state_key, sender or self.creator,
                                                  content), self.version)
        return self.accept(pdu)

    def accept(self, pdu: dict[str, Any]) -> str:
        event_id = compute_event_id(pdu, self.version)
        self.events[event_id] = pdu
        if "state_key" in pdu:
            self.state[(pdu["type"], pdu["state_key"])] = event_id
        self.depth = max(self.depth, pdu["depth"])
        self.prev = [event_id]
        return event_id

    def auth_chain(self, event_ids: list[str]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        todo = list(event_ids)
        while todo:
            for auth in self.events[todo.pop()]["auth_events"]:
                if auth not in seen:
                    seen.add(auth)
                    todo.append(auth)
        return [self.events[e] for e in sorted(seen)]


class ClientSideTestCase(_Base):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.room = RemoteRoom(self.remote)

    def serve_join(self, room: RemoteRoom) -> None:
        """make_join and send_join for `room` on its server."""
        rid = q(room.room_id)

        def make_join(query: Any, content: Any) -> Any:
            self.assertIn(room.version.identifier, query["ver"])
            return {"room_version": room.version.identifier,
                    "event": room.template("m.room.member", "@bob:test", "@bob:test",
                                           {"membership": "join"})}

        def send_join(query: Any, pdu: Any) -> Any:
            state = [room.events[e] for e in room.state.values()]
            signed = sign_event(pdu, room.remote.name, room.remote.key, room.version)
            event_id = room.accept(signed)
            return {"event": signed, "state": state,
                    "auth_chain": room.auth_chain([*room.state.values(), event_id]),
                    "origin": room.remote.name, "members_omitted": False}

        self.fed.routes[(room.remote.name, "GET", f"{F1}/make_join/{rid}/{q('@bob:test')}")] \
            = make_join
        self.fed.routes[(room.remote.name, "PUT", f"{F2}/send_join/{rid}/*")] = send_join

    def joined_rooms(self, who: str) -> list[str]:
        return list(self.ok(self.client("GET", who, "/joined_rooms"))["joined_rooms"])

    # -- joining --

    def test_join_remote_room(self) -> None:
        self.serve_join(self.room)
        body = self.ok(self.client("POST", "bob", f"/join/{q(self.room.room_id)}"))
        self.assertEqual(body["room_id"], self.room.room_id)
        self.assertEqual(self.joined_rooms("bob"), [self.room.room_id])
        # What we sent: our join, signed by us, with Bob's profile.
        sent = next(c for c in self.fed.calls if "/send_join/" in c[2])[4]
        self.assertEqual(sent["content"]["membership"], "join")
        self.assertEqual(sent["origin"], "test")
        key = self.hs.get_signing_key()
        verify_event_signature(sent, "test", key.key.verify_key, f"ed25519:{key.version}",
                               self.room.version)
        # The room's state is ours now; the stored join carries both signatures.
        stores = self.hs.get_datastores()
        state = self.get_success(stores.state.get_current_state_ids(self.room.room_id))
        self.assertEqual(state[("m.room.create", "")], self.room.create_id)
        join = self.get_success(stores.events.get_event(state[("m.room.member", "@bob:test")]))
        self.assertEqual(set(join.pdu_json["signatures"]), {"test", REMOTE})
        rooms = self.sync("bob")["rooms"]["join"]
        self.assertIn(self.room.room_id, rooms)
        # Joining again does not ask the remote server.
        before = len(self.fed.calls)
        self.ok(self.client("POST", "bob", f"/rooms/{q(self.room.room_id)}/join"))
        self.assertEqual(len(self.fed.calls), before)

    def test_first_sync_after_remote_join_has_the_room_state(self) -> None:
        """The first /sync after joining over federation carries the room's state (our
        join is the room's first event in our stream), so clients see encryption etc."""
        self.room.add("m.room.encryption", "", {"algorithm": "m.megolm.v1.aes-sha2"})
        self.serve_join(self.room)
        self.ok(self.client("POST", "bob", f"/join/{q(self.room.room_id)}"))
        room = self.sync("bob")["rooms"]["join"][self.room.room_id]
        state = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
        self.assertLessEqual({("m.room.create", ""), ("m.room.encryption", ""),
                              ("m.room.power_levels", ""), ("m.room.join_rules", ""),
                              ("m.room.member", self.room.creator)}, state)

    def test_join_through_remote_alias_and_via(self) -> None:
        """A v12 room (no server in its ID) found through a remote alias."""
        room = _v12_room(self.remote)
        self.serve_join(room)
        alias = f"#lobby:{self.other.name}"
        self.fed.routes[(self.other.name, "GET", f"{F1}/query/directory")] = \
            lambda query, content: {"room_id": room.room_id, "servers": [REMOTE]}
        body = self.ok(self.client("POST", "bob", f"/join/{q(alias)}"))
        self.assertEqual(body["room_id"], room.room_id)
        self.assertEqual(self.joined_rooms("bob"), [room.room_id])
        query = next(c for c in self.fed.calls if c[2].endswith("/query/directory"))[3]
        self.assertEqual(query, {"room_alias": alias})

    def test_join_refused_or_unreachable(self) -> None:
        rid, user = q(self.room.room_id), q("@bob:test")
        # No server answers: 502.
        self.assert_error(self.client("POST", "bob", f"/join/{rid}"), 502, "M_UNKNOWN")
        # The resident refuses: its error is passed on.
        self.fed.routes[(REMOTE, "GET", f"{F1}/make_join/{rid}/{user}")] = \
            refuse(403, "M_FORBIDDEN")
        self.assert_error(self.client("POST", "bob", f"/join/{rid}"), 403, "M_FORBIDDEN")
        self.fed.routes[(REMOTE, "GET", f"{F1}/make_join/{rid}/{user}")] = \
            lambda query, content: {"room_version": "999", "event": {}}
        self.assert_error(self.client("POST", "bob", f"/join/{rid}"), 400,
                          "M_INCOMPATIBLE_ROOM_VERSION")
        # `via` servers are tried first.
        self.fed.calls.clear()
        self.client("POST", "bob", f"/join/{rid}?via=other.example&server_name=third.example")
        self.assertEqual([c[0] for c in self.fed.calls][:3],
                         ["other.example", "third.example", REMOTE])
        # A v12 room ID names no server: without `via` there is nothing to try.
        self.assert_error(self.client("POST", "bob", "/join/!abcdef"), 404, "M_NOT_FOUND")
        # An unknown remote alias.
        self.assert_error(self.client("POST", "bob", f"/join/{q('#x:' + REMOTE)}"), 404,
                          "M_NOT_FOUND")
        self.assertEqual(self.joined_rooms("bob"), [])

    # -- invites from the remote server --

    def invite_bob(self, room: RemoteRoom) -> tuple[str, Any]:
        pdu = sign_pdu(self.remote, room.template(
            "m.room.member", "@bob:test", room.creator, {"membership": "invite"}),
            room.version)
        event_id = compute_event_id(pdu, room.version)
        stripped = [{"type": "m.room.create", "state_key": "", "sender": room.creator,
                     "content": {"room_version": room.version.identifier}},
                    {"type": "m.room.name", "state_key": "", "sender": room.creator,
                     "content": {"name": "Remote room"}}]
        channel = signed_request(self, self.remote, "PUT",
                                 f"{F2}/invite/{q(room.room_id)}/{q(event_id)}",
                                 {"room_version": room.version.identifier, "event": pdu,
                                  "invite_room_state": stripped})
        return event_id, channel

    def test_receive_invite(self) -> None:
        event_id, channel = self.invite_bob(self.room)
        signed = self.ok(channel)["event"]
        self.assertEqual(compute_event_id(signed, self.room.version), event_id)
        key = self.hs.get_signing_key()
        verify_event_signature(signed, "test", key.key.verify_key, f"ed25519:{key.version}",
                               self.room.version)
        invites = self.sync("bob")["rooms"]["invite"]
        state = invites[self.room.room_id]["invite_state"]["events"]
        self.assertIn({"type": "m.room.name", "state_key": "", "sender": self.room.creator,
                       "content": {"name": "Remote room"}}, state)
        member = [e for e in state if e["type"] == "m.room.member"]
        self.assertEqual(member[0]["content"]["membership"], "invite")
        self.assertEqual(member[0]["sender"], self.room.creator)
        self.assertNotIn(self.room.room_id, self.sync("alice")["rooms"]["invite"])
        # Accepting: joins through the inviter's server.
        self.serve_join(self.room)
        self.ok(self.client("POST", "bob", f"/rooms/{q(self.room.room_id)}/join"))
        self.assertEqual(self.joined_rooms("bob"), [self.room.room_id])

    def test_receive_invite_blocked(self) -> None:
        """An invitee whose m.invite_permission_config blocks invites: 403 M_INVITE_BLOCKED,
        and nothing reaches their /sync."""
        self.ok(self.client("PUT", "bob", "/user/@bob:test/account_data/"
                            "m.invite_permission_config", {"default_action": "block"}))
        _, channel = self.invite_bob(self.room)
        self.assert_error(channel, 403, "M_INVITE_BLOCKED")
        self.assertEqual(self.sync("bob")["rooms"]["invite"], {})

    def test_receive_invite_refusals(self) -> None:
        room = self.room
        base = room.template("m.room.member", "@bob:test", room.creator,
                             {"membership": "invite"})

        def put(pdu: dict[str, Any], remote: RemoteServer | None = None,
                version: str = "10", event_id: str | None = None, sign: bool = True,
                state: list[Any] | None = None) -> Any:
            if sign:
                pdu = sign_pdu(self.remote, pdu, room.version)
            eid = event_id or compute_event_id(pdu, room.version)
            body: dict[str, Any] = {"room_version": version, "event": pdu}
            if state is not None:
                body["invite_room_state"] = state
            return signed_request(self, remote or self.remote, "PUT",
                                  f"{F2}/invite/{q(room.room_id)}/{q(eid)}", body)

        # The invitee is not ours.
        self.assert_error(put({**base, "state_key": f"@x:{REMOTE}"}), 400, "M_INVALID_PARAM")
        # The inviter is not on the requesting server.
        self.assert_error(put(base, remote=self.other), 400, "M_INVALID_PARAM")
        # Not an invite.
        self.assert_error(put({**base, "content": {"membership": "join"}}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(put({**base, "type": "m.room.name"}), 400, "M_INVALID_PARAM")
        # The event ID in the path is another.
        self.assert_error(put(base, event_id="$elsewhere"), 400, "M_INVALID_PARAM")
        # Not signed by the inviter's server.
        self.assert_error(put(add_content_hash(base), sign=False), 400, "M_INVALID_PARAM")
        # A room version we do not know.
        self.assert_error(put(base, version="999"), 400, "M_INCOMPATIBLE_ROOM_VERSION")
        # Malformed bodies.
        base_id = compute_event_id(base, room.version)
        self.assert_error(signed_request(self, self.remote, "PUT",
                                         f"{F2}/invite/{q(room.room_id)}/{q(base_id)}", {"event": 1}),
                          400, "M_BAD_JSON")
        self.assert_error(signed_request(self, self.remote, "PUT",
                                         f"{F2}/invite/{q(room.room_id)}/{q(base_id)}",
                                         {"event": base}), 400, "M_MISSING_PARAM")
        self.assertEqual(self.sync("bob")["rooms"]["invite"], {})

    def test_v12_invite_needs_create_event(self) -> None:
        room = _v12_room(self.remote)
        pdu = sign_pdu(self.remote, room.template(
            "m.room.member", "@bob:test", room.creator, {"membership": "invite"}),
            room.version)
        event_id = compute_event_id(pdu, room.version)
        channel = signed_request(self, self.remote, "PUT",
                                 f"{F2}/invite/{q(room.room_id)}/{q(event_id)}",
                                 {"room_version": "12", "event": pdu,
                                  "invite_room_state": []})
        self.assert_error(channel, 400, "M_INVALID_PARAM")

    def test_reject_remote_invite(self) -> None:
        event_id, channel = self.invite_bob(self.room)
        self.ok(channel)
        rid, user = q(self.room.room_id), q("@bob:test")
        # The inviter's server cannot be reached: the invite stays.
        self.assert_error(self.client("POST", "bob", f"/rooms/{rid}/leave"), 502, "M_UNKNOWN")
        self.assertIn(self.room.room_id, self.sync("bob")["rooms"]["invite"])
        sent: list[Any] = []
        self.fed.routes[(REMOTE, "GET", f"{F1}/make_leave/{rid}/{user}")] = \
            lambda query, content: {"room_version": "10", "event": self.room.template(
                "m.room.member", "@bob:test", "@bob:test", {"membership": "leave"})}

        def send_leave(query: Any, pdu: Any) -> Any:
            sent.append(pdu)
            return {}

        self.fed.routes[(REMOTE, "PUT", f"{F2}/send_leave/{rid}/*")] = send_leave
        since = self.sync("bob")["next_batch"]
        self.ok(self.client("POST", "bob", f"/rooms/{rid}/leave", {"reason": "no thanks"}))
        # An incremental sync moves the room from invites to left rooms.
        later = self.ok(self.make_request("GET", f"{C}/sync?since={since}&timeout=0",
                                          access_token=self.tokens["bob"]))
        self.assertIn(self.room.room_id, later["rooms"]["leave"])
        self.assertEqual(sent[0]["content"], {"membership": "leave", "reason": "no thanks"})
        self.assertEqual(sent[0]["sender"], "@bob:test")
        membership = self.get_success(self.hs.get_datastores().room_members
                                      .get_local_membership("@bob:test", self.room.room_id))
        self.assertEqual(membership.membership, "leave")
        self.assertEqual(self.sync("bob")["rooms"]["invite"], {})

    # -- inviting remote users --

    def test_invite_remote_user(self) -> None:
        room_id = self.ok(self.client("POST", "alice", "/createRoom",
                                      {"preset": "private_chat"}))["room_id"]
        version = KNOWN_ROOM_VERSIONS[self.get_success(
            self.hs.get_datastores().events.get_room_version(room_id)).identifier]
        invitee = f"@zoe:{REMOTE}"
        received: list[Any] = []

        def invite(query: Any, body: Any) -> Any:
            received.append(body)
            return {"event": sign_event(body["event"], REMOTE, self.remote.key, version)}

        self.fed.routes[(REMOTE, "PUT", f"{F2}/invite/{q(room_id)}/*")] = invite
        self.ok(self.client("POST", "alice", f"/rooms/{room_id}/invite", {"user_id": invitee}))
        body = received[0]
        self.assertEqual(body["room_version"], version.identifier)
        self.assertEqual(body["event"]["state_key"], invitee)
        types = {e["type"] for e in body["invite_room_state"]}
        self.assertIn("m.room.create", types)
        self.assertIn("m.room.join_rules", types)
        # Persisted with both signatures.
        stores = self.hs.get_datastores()
        state = self.get_success(stores.state.get_current_state_ids(room_id))
        event = self.get_success(stores.events.get_event(state[("m.room.member", invitee)]))
        self.assertEqual(event.membership, "invite")
        self.assertEqual(set(event.pdu_json["signatures"]), {"test", REMOTE})

    def test_invite_remote_user_refused(self) -> None:
        room_id = self.ok(self.client("POST", "alice", "/createRoom",
                                      {"preset": "private_chat"}))["room_id"]
        invitee = f"@zoe:{REMOTE}"
        self.fed.routes[(REMOTE, "PUT", f"{F2}/invite/{q(room_id)}/*")] = \
            refuse(403, "M_FORBIDDEN")
        self.assert_error(self.client("POST", "alice", f"/rooms/{room_id}/invite",
                                      {"user_id": invitee}), 403, "M_FORBIDDEN")
        # Unreachable: 502; an answer not signed by the invitee's server: 502.
        self.fed.routes.clear()
        self.assert_error(self.client("POST", "alice", f"/rooms/{room_id}/invite",
                                      {"user_id": invitee}), 502, "M_UNKNOWN")
        self.fed.routes[(REMOTE, "PUT", f"{F2}/invite/{q(room_id)}/*")] = \
            lambda query, body: {"event": body["event"]}
        self.assert_error(self.client("POST", "alice", f"/rooms/{room_id}/invite",
                                      {"user_id": invitee}), 502, "M_UNKNOWN")
        state = self.get_success(
            self.hs.get_datastores().state.get_current_state_ids(room_id))
        self.assertNotIn(("m.room.member", invitee), state)


def _v12_room(remote: RemoteServer) -> RemoteRoom:
    """A v12 room: its ID derives from the create event, which auth_events never list."""

    class V12Room(RemoteRoom):
        def auth_for(self, etype: str, state_key: str | None, sender: str) -> list[str]:
            return [e for e in super().auth_for(etype, state_key, sender)
                    if e != self.state.get(("m.room.create", ""))]

        def template(self, etype: str, state_key: str | None, sender: str,
                     content: dict[str, Any]) -> dict[str, Any]:
            pdu = super().template(etype, state_key, sender, content)
            pdu.pop("origin", None)
            if etype == "m.room.create":
                pdu.pop("room_id")
                pdu["content"] = {"room_version": "12"}
            return pdu

        def accept(self, pdu: dict[str, Any]) -> str:
            event_id = super().accept(pdu)
            if pdu["type"] == "m.room.create":
                self.room_id = "!" + event_id[1:]
            return event_id

    room = V12Room.__new__(V12Room)
    room.remote = remote
    room.version = KNOWN_ROOM_VERSIONS["12"]
    room.creator = f"@rita:{remote.name}"
    room.room_id = ""
    room.events, room.state, room.depth, room.prev, room.now = {}, {}, 0, [], 1_000
    room.create_id = room.add("m.room.create", "", {})
    room.add("m.room.member", room.creator, {"membership": "join"})
    room.add("m.room.power_levels", "", {"users": {}})  # creators are above them
    room.add("m.room.join_rules", "", {"join_rule": "public"})
    return room

