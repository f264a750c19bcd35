"""Knocks and restricted joins across servers, in memory.

Server side: a fake remote server knocks (make_knock/send_knock) on our rooms and joins
our restricted rooms, where we vouch for the join through one of our users — and every
refusal. Client side: our users knock on, and join restricted rooms of, a fake remote
server whose answers stand in for the outbound federation client.
"""

from __future__ import annotations

import copy
import urllib.parse
from typing import Any

import signedjson.key

from handlers.event_creation import EventSpec
from homeserver.event_hashing import compute_event_id, sign_event, verify_event_signature
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.federation import test_membership as tm
from tests.federation.fed_helpers import RemoteServer, join_remote_user, signed_request

C, F1, F2, REMOTE = tm.C, tm.F1, tm.F2, tm.REMOTE
q, sign_pdu, refuse = tm.q, tm.sign_pdu, tm.refuse
ALL_VERSIONS = "?" + urllib.parse.urlencode({"ver": list(KNOWN_ROOM_VERSIONS)}, doseq=True)
AUTHORISER = "join_authorised_via_users_server"


class _ResidentBase(tm._Base):
    """We are the resident server; `self.remote` asks on behalf of Zoe."""

    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.user = f"@zoe:{REMOTE}"

        def countersign(query: Any, body: Any) -> Any:
            version = KNOWN_ROOM_VERSIONS[body["room_version"]]
            return {"event": sign_event(body["event"], REMOTE, self.remote.key, version)}

        self.fed.routes[(REMOTE, "PUT", f"{F2}/invite/*")] = countersign

    def new_room(self, join_rule: str, version: str | None = None,
                 **join_rules: Any) -> tuple[str, RoomVersion]:
        body: dict[str, Any] = {"preset": "public_chat", "initial_state": [{
            "type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": join_rule, **join_rules}}]}
        if version is not None:
            body["room_version"] = version
        room_id = self.ok(self.client("POST", "alice", "/createRoom", body))["room_id"]
        room_version = self.get_success(
            self.hs.get_datastores().events.get_room_version(room_id))
        return room_id, KNOWN_ROOM_VERSIONS[room_version.identifier]

    def make(self, kind: str, room_id: str, user: str | None = None,
             remote: RemoteServer | None = None, query: str = ALL_VERSIONS) -> Any:
        return signed_request(self, remote or self.remote, "GET",
                              f"{F1}/make_{kind}/{q(room_id)}/{q(user or self.user)}{query}")

    def template(self, kind: str, room_id: str) -> dict[str, Any]:
        event: dict[str, Any] = self.ok(self.make(kind, room_id))["event"]
        return event

    def send(self, kind: str, room_id: str, pdu: dict[str, Any], version: RoomVersion,
             event_id: str | None = None, remote: RemoteServer | None = None) -> Any:
        prefix = F1 if kind == "knock" else F2
        event_id = event_id or compute_event_id(pdu, version)
        return signed_request(self, remote or self.remote, "PUT",
                              f"{prefix}/send_{kind}/{q(room_id)}/{q(event_id)}", pdu)

    def membership_of(self, room_id: str, user: str) -> str | None:
        stores = self.hs.get_datastores()
        state = self.get_success(stores.state.get_current_state_ids(room_id))
        event_id = state.get(("m.room.member", user))
        if event_id is None:
            return None
        event = self.get_success(stores.events.get_event(event_id))
        return event.membership if event is not None else None

    def assert_signed_by_us(self, pdu: dict[str, Any], version: RoomVersion) -> None:
        key = self.hs.get_signing_key()
        verify_event_signature(pdu, "test", key.key.verify_key, f"ed25519:{key.version}",
                               version)


# -------------------------------------------------------------------------------------
# server side: knocks


class KnockServerSideTestCase(_ResidentBase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.room_id, self.version = self.new_room("knock")
        self.ok(self.client("PUT", "alice", f"/rooms/{self.room_id}/state/m.room.name",
                            {"name": "Knock here"}))

    def test_make_knock_template(self) -> None:
        """The template is Zoe's knock on our extremities, in our room version."""
        body = self.ok(self.make("knock", self.room_id))
        self.assertEqual(body["room_version"], self.version.identifier)
        event = body["event"]
        self.assertEqual((event["type"], event["state_key"], event["sender"], event["room_id"]),
                         ("m.room.member", self.user, self.user, self.room_id))
        self.assertEqual(event["content"], {"membership": "knock"})
        for key in ("hashes", "signatures", "event_id"):
            self.assertNotIn(key, event)

    def test_make_knock_refusals(self) -> None:
        """Unknown room, versions, users, join rules and bans are each refused."""
        self.assert_error(self.make("knock", "!nope:test"), 404, "M_NOT_FOUND")
        # `ver` is required: without it, or without our version, the versions mismatch.
        channel = self.make("knock", self.room_id, query="")
        self.assert_error(channel, 400, "M_INCOMPATIBLE_ROOM_VERSION")
        self.assertEqual(channel.json_body["room_version"], self.version.identifier)
        self.assert_error(self.make("knock", self.room_id, query="?ver=6&ver=7"), 400,
                          "M_INCOMPATIBLE_ROOM_VERSION")
        # A room version without knocks, even when the asker supports it.
        old_room, _ = self.new_room("invite", version="6")
        channel = self.make("knock", old_room)
        self.assert_error(channel, 400, "M_INCOMPATIBLE_ROOM_VERSION")
        self.assertEqual(channel.json_body["room_version"], "6")
        # Not a user of the asking server; not a user ID.
        self.assert_error(self.make("knock", self.room_id, user="@zoe:other.example"),
                          403, "M_FORBIDDEN")
        self.assert_error(self.make("knock", self.room_id, user="zoe"), 400,
                          "M_INVALID_PARAM")
        # A room that takes no knocks.
        public, _ = self.new_room("public")
        self.assert_error(self.make("knock", public), 403, "M_FORBIDDEN")
        # Unsigned.
        self.assert_error(self.make_request(
            "GET", f"{F1}/make_knock/{q(self.room_id)}/{q(self.user)}{ALL_VERSIONS}"),
            401, "M_UNAUTHORIZED")
        # Banned.
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/ban",
                            {"user_id": self.user}))
        self.assert_error(self.make("knock", self.room_id), 403, "M_FORBIDDEN")

    def test_send_knock(self) -> None:
        """The knock enters the room; the answer is the room's stripped state as PDUs."""
        template = self.template("knock", self.room_id)
        template["content"]["reason"] = "let me in"
        pdu = sign_pdu(self.remote, template, self.version)
        event_id = compute_event_id(pdu, self.version)
        since = self.sync("alice")["next_batch"]
        body = self.ok(self.send("knock", self.room_id, pdu, self.version))
        state = body["knock_room_state"]
        by_type = {e["type"]: e for e in state}
        self.assertEqual(set(by_type), {"m.room.create", "m.room.join_rules", "m.room.name"})
        self.assertEqual(by_type["m.room.name"]["content"], {"name": "Knock here"})
        for pdu_out in state:  # full PDUs, signed by us
            self.assertIn("signatures", pdu_out)
            self.assertIn("auth_events", pdu_out)
            self.assert_signed_by_us(pdu_out, self.version)
        self.assertEqual(self.membership_of(self.room_id, self.user), "knock")
        # Alice sees the knock in her timeline.
        later = self.ok(self.make_request("GET", f"{C}/sync?since={since}&timeout=0",
                                          access_token=self.tokens["alice"]))
        timeline = later["rooms"]["join"][self.room_id]["timeline"]["events"]
        knock = next(e for e in timeline if e["event_id"] == event_id)
        self.assertEqual(knock["content"], {"membership": "knock", "reason": "let me in"})
        # Alice lets Zoe in: an invite to her server.
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/invite",
                            {"user_id": self.user}))
        self.assertEqual(self.membership_of(self.room_id, self.user), "invite")

    def test_send_knock_refusals(self) -> None:
        """Each check of send_knock answers its status; none lets the knock in."""
        template = self.template("knock", self.room_id)
        pdu = sign_pdu(self.remote, template, self.version)
        event_id = compute_event_id(pdu, self.version)
        send = self.send
        # Sent by another server than the user's (spec: M_INVALID_PARAM).
        self.assert_error(send("knock", self.room_id, pdu, self.version, remote=self.other),
                          400, "M_INVALID_PARAM")
        # The event ID in the path is another.
        self.assert_error(send("knock", self.room_id, pdu, self.version, event_id="$other"),
                          400, "M_INVALID_PARAM")
        # Not a knock: a join, or not a member event.
        join = sign_pdu(self.remote, {**template, "content": {"membership": "join"}},
                        self.version)
        self.assert_error(send("knock", self.room_id, join, self.version), 400,
                          "M_INVALID_PARAM")
        message = {k: v for k, v in template.items() if k != "state_key"}
        message.update(type="m.room.message", content={"body": "hi"})
        self.assert_error(send("knock", self.room_id, sign_pdu(self.remote, message,
                                                                self.version), self.version),
                          400, "M_INVALID_PARAM")
        # Someone else's knock.
        other_user = sign_pdu(self.remote, {**template, "state_key": f"@yan:{REMOTE}"},
                              self.version)
        self.assert_error(send("knock", self.room_id, other_user, self.version), 400,
                          "M_INVALID_PARAM")
        # Signed with a key that is not the remote's.
        impostor = {k: v for k, v in pdu.items() if k != "signatures"}
        impostor = sign_event(impostor, REMOTE,
                              signedjson.key.generate_signing_key(self.remote.version),
                              self.version)
        self.assert_error(send("knock", self.room_id, impostor, self.version), 400,
                          "M_INVALID_PARAM")
        # Not a PDU at all.
        self.assert_error(send("knock", self.room_id, {"type": "m.room.member"},
                               self.version, event_id=event_id), 400, "M_INVALID_PARAM")
        # Unknown room; a room version without knocks.
        self.assert_error(send("knock", "!nope:test", pdu, self.version), 404, "M_NOT_FOUND")
        old_room, _ = self.new_room("invite", version="6")
        self.assert_error(send("knock", old_room, pdu, self.version), 400,
                          "M_INCOMPATIBLE_ROOM_VERSION")
        self.assertIsNone(self.membership_of(self.room_id, self.user))
        # The room stops taking knocks after make_knock: the auth rules refuse.
        self.ok(self.client("PUT", "alice", f"/rooms/{self.room_id}/state/m.room.join_rules",
                            {"join_rule": "invite"}))
        self.assert_error(send("knock", self.room_id, pdu, self.version), 403, "M_FORBIDDEN")
        self.assertIsNone(self.membership_of(self.room_id, self.user))


# -------------------------------------------------------------------------------------
# server side: restricted joins


class RestrictedServerSideTestCase(_ResidentBase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.space, _ = self.new_room("public")
        self.room_id, self.version = self.new_room(
            "restricted", allow=[{"type": "m.room_membership", "room_id": self.space}])
        join_remote_user(self, self.space, self.user)

    def signed_join(self, template: dict[str, Any]) -> dict[str, Any]:
        return sign_pdu(self.remote, template, self.version)

    def test_restricted_join(self) -> None:
        """make_join names our user who may invite; send_join signs it and Zoe is in."""
        template = self.template("join", self.room_id)
        self.assertEqual(template["content"],
                         {"membership": "join", AUTHORISER: "@alice:test"})
        body = self.ok(self.send("join", self.room_id, self.signed_join(template),
                                 self.version))
        self.assertEqual(body["event"]["content"][AUTHORISER], "@alice:test")
        self.assert_signed_by_us(body["event"], self.version)
        self.assertEqual(self.membership_of(self.room_id, self.user), "join")

    def test_authoriser_must_be_able_to_invite(self) -> None:
        """The authoriser is a joined user of ours with the invite level, else 400
        M_UNABLE_TO_GRANT_JOIN."""
        self.ok(self.client("PUT", "alice", f"/rooms/{self.room_id}/state/m.room.power_levels",
                            {"users": {}, "invite": 50}))
        # Bob, of the allowed room, joins locally: Alice vouches for him too.
        self.assert_error(self.client("POST", "bob", f"/rooms/{self.room_id}/join"), 403,
                          "M_FORBIDDEN")
        self.ok(self.client("POST", "bob", f"/rooms/{self.space}/join"))
        self.ok(self.client("POST", "bob", f"/rooms/{self.room_id}/join"))
        self.assertEqual(self.get_success(self.hs.get_datastores().events.get_event(
            self.get_success(self.hs.get_datastores().state.get_current_state_ids(
                self.room_id))[("m.room.member", "@bob:test")])).content[AUTHORISER],
            "@alice:test")
        # Alice is the v12 creator (above power levels); Bob is at 0.
        self.assertEqual(self.template("join", self.room_id)["content"][AUTHORISER],
                         "@alice:test")
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/leave"))
        self.assert_error(self.make("join", self.room_id), 400, "M_UNABLE_TO_GRANT_JOIN")

    def test_v10_knock_restricted(self) -> None:
        """`knock_restricted` (v10+) grants joins the same way; a higher power wins."""
        room_id, version = self.new_room(
            "knock_restricted", version="10",
            allow=[{"type": "m.room_membership", "room_id": self.space}])
        self.ok(self.client("POST", "bob", f"/rooms/{self.space}/join"))
        self.ok(self.client("POST", "bob", f"/rooms/{room_id}/join"))
        self.ok(self.client("PUT", "alice", f"/rooms/{room_id}/state/m.room.power_levels",
                            {"users": {"@alice:test": 10, "@bob:test": 60}, "invite": 5}))
        template = self.template("join", room_id)
        self.assertEqual(template["content"][AUTHORISER], "@bob:test")
        self.ok(self.send("join", room_id, sign_pdu(self.remote, template, version), version))
        self.assertEqual(self.membership_of(room_id, self.user), "join")

    def test_invited_needs_no_authoriser(self) -> None:
        self.ok(self.client("POST", "alice", f"/rooms/{self.room_id}/invite",
                            {"user_id": self.user}))
        self.assertEqual(self.template("join", self.room_id)["content"],
                         {"membership": "join"})

    def test_make_join_refusals(self) -> None:
        """Not in an allowed room: 403; allowed rooms we are not in: 400."""
        outsider = f"@yan:{REMOTE}"
        self.assert_error(self.make("join", self.room_id, user=outsider), 403, "M_FORBIDDEN")
        elsewhere, _ = self.new_room(
            "restricted", allow=[{"type": "m.room_membership", "room_id": "!far:remote.example"},
                                 {"type": "m.unknown", "room_id": self.space}])
        self.assert_error(self.make("join", elsewhere), 400, "M_UNABLE_TO_AUTHORISE_JOIN")
        # No conditions at all: nobody gets in without an invite.
        bare, _ = self.new_room("restricted")
        self.assert_error(self.make("join", bare), 403, "M_FORBIDDEN")
        # Restricted joins need v8+: in v7 `restricted` is an unknown rule.
        old, _ = self.new_room(
            "restricted", version="7",
            allow=[{"type": "m.room_membership", "room_id": self.space}])
        self.assert_error(self.make("join", old), 403, "M_FORBIDDEN")

    def test_send_join_refusals(self) -> None:
        """send_join checks the authoriser and the allowed rooms again."""
        template = self.template("join", self.room_id)
        # An authoriser of another server: not ours to vouch for.
        foreign = copy.deepcopy(template)
        foreign["content"][AUTHORISER] = f"@rita:{REMOTE}"
        self.assert_error(self.send("join", self.room_id, self.signed_join(foreign),
                                    self.version), 400, "M_INVALID_PARAM")
        # Without an authoriser the auth rules refuse.
        bare = copy.deepcopy(template)
        bare["content"].pop(AUTHORISER)
        self.assert_error(self.send("join", self.room_id, self.signed_join(bare),
                                    self.version), 403, "M_FORBIDDEN")
        # An authoriser of ours who is not in the room.
        bob = copy.deepcopy(template)
        bob["content"][AUTHORISER] = "@bob:test"
        self.assert_error(self.send("join", self.room_id, self.signed_join(bob),
                                    self.version), 403, "M_FORBIDDEN")
        # Zoe left the allowed room since make_join.
        pdu = self.signed_join(template)
        leave = self.get_success(self.hs.get_event_creation_handler().send(
            EventSpec(room_id=self.space, type="m.room.member", sender=self.user,
                         state_key=self.user, content={"membership": "leave"})))
        self.assertEqual(leave.event.membership, "leave")
        self.assert_error(self.send("join", self.room_id, pdu, self.version), 403,
                          "M_FORBIDDEN")
        self.assertIsNone(self.membership_of(self.room_id, self.user))


# -------------------------------------------------------------------------------------
# client side: a room on the fake remote server


class ClientSideTestCase(tm._Base):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.room = tm.RemoteRoom(self.remote, version="10", join_rule="knock")
        self.room.add("m.room.name", "", {"name": "Remote knock room"})
        self.rid = q(self.room.room_id)
        self.sent: list[Any] = []

    def serve_knock(self, room: tm.RemoteRoom, extra_state: list[Any] | None = None) -> None:
        def make_knock(query: Any, content: Any) -> Any:
            self.assertIn(room.version.identifier, query["ver"])
            return {"room_version": room.version.identifier,
                    "event": room.template("m.room.member", "@bob:test", "@bob:test",
                                           {"membership": "knock"})}

        def send_knock(query: Any, pdu: Any) -> Any:
            self.sent.append(pdu)
            room.accept(pdu)
            state = [room.events[room.state[(t, "")]] for t in
                     ("m.room.create", "m.room.join_rules", "m.room.name")]
            return {"knock_room_state": state + (extra_state or [])}

        self.fed.routes[(REMOTE, "GET", f"{F1}/make_knock/{q(room.room_id)}/"
                         f"{q('@bob:test')}")] = make_knock
        self.fed.routes[(REMOTE, "PUT", f"{F1}/send_knock/{q(room.room_id)}/*")] = send_knock

    def knock(self, path_query: str = "", body: Any = None) -> Any:
        return self.client("POST", "bob", f"/knock/{self.rid}{path_query}", body or {})

    def test_knock_remote_room(self) -> None:
        """The knock goes through the resident; /sync shows it with the room's state."""
        forged = copy.deepcopy(self.room.events[self.room.state[("m.room.name", "")]])
        forged["content"] = {"name": "forged"}
        self.serve_knock(self.room, extra_state=[forged, {"type": "m.room.topic"}])
        body = self.ok(self.knock("?via=" + REMOTE, {"reason": "knock knock"}))
        self.assertEqual(body, {"room_id": self.room.room_id})
        sent = self.sent[0]
        self.assertEqual(sent["content"], {"membership": "knock", "reason": "knock knock",
                                           "displayname": "bob"})
        key = self.hs.get_signing_key()
        verify_event_signature(sent, "test", key.key.verify_key, f"ed25519:{key.version}",
                               self.room.version)
        rooms = self.sync("bob")["rooms"]
        self.assertNotIn(self.room.room_id, rooms["join"])
        state = rooms["knock"][self.room.room_id]["knock_state"]["events"]
        self.assertIn({"type": "m.room.name", "state_key": "", "sender": self.room.creator,
                       "content": {"name": "Remote knock room"}}, state)
        self.assertEqual({e["type"] for e in state},
                         {"m.room.create", "m.room.join_rules", "m.room.name",
                          "m.room.member"})  # the forged and malformed entries dropped
        member = next(e for e in state if e["type"] == "m.room.member")
        self.assertEqual((member["state_key"], member["content"]["membership"]),
                         ("@bob:test", "knock"))
        self.assertEqual(self.sync("alice")["rooms"]["knock"], {})

    def test_retract_remote_knock(self) -> None:
        """Leaving a remote room one knocked on goes make_leave/send_leave."""
        self.serve_knock(self.room)
        self.ok(self.knock("?server_name=" + REMOTE))
        since = self.sync("bob")["next_batch"]
        left: list[Any] = []
        self.fed.routes[(REMOTE, "GET", f"{F1}/make_leave/{self.rid}/{q('@bob:test')}")] = \
            lambda query, content: {"room_version": "10", "event": self.room.template(
                "m.room.member", "@bob:test", "@bob:test", {"membership": "leave"})}
        self.fed.routes[(REMOTE, "PUT", f"{F2}/send_leave/{self.rid}/*")] = \
            lambda query, pdu: left.append(pdu) or {}
        self.ok(self.client("POST", "bob", f"/rooms/{self.rid}/leave"))
        self.assertEqual(left[0]["content"]["membership"], "leave")
        later = self.ok(self.make_request("GET", f"{C}/sync?since={since}&timeout=0",
                                          access_token=self.tokens["bob"]))
        self.assertIn(self.room.room_id, later["rooms"]["leave"])
        self.assertEqual(self.sync("bob")["rooms"]["knock"], {})

    def test_knock_refusals(self) -> None:
        """Refusals and broken residents leave no knock behind."""
        make_path = f"{F1}/make_knock/{self.rid}/{q('@bob:test')}"
        # Nobody answers: 502.
        self.assert_error(self.knock(), 502, "M_UNKNOWN")
        # A v12 room ID names no server: nothing to try without `via`.
        self.assert_error(self.client("POST", "bob", "/knock/!abcdef"), 404, "M_NOT_FOUND")
        # The resident refuses: its error is passed on.
        self.fed.routes[(REMOTE, "GET", make_path)] = refuse(403, "M_FORBIDDEN")
        self.assert_error(self.knock(), 403, "M_FORBIDDEN")
        self.fed.routes[(REMOTE, "GET", make_path)] = refuse(
            400, "M_INCOMPATIBLE_ROOM_VERSION")
        self.assert_error(self.knock(), 400, "M_INCOMPATIBLE_ROOM_VERSION")
        # The resident's room version has no knocks.
        old = tm.RemoteRoom(self.remote, version="6", join_rule="invite")
        self.fed.routes[(REMOTE, "GET", make_path)] = lambda query, content: {
            "room_version": "6", "event": old.template(
                "m.room.member", "@bob:test", "@bob:test", {"membership": "knock"})}
        self.assert_error(self.knock(), 400, "M_INCOMPATIBLE_ROOM_VERSION")
        # A template for another membership is malformed: 502.
        self.fed.routes[(REMOTE, "GET", make_path)] = lambda query, content: {
            "room_version": "10", "event": self.room.template(
                "m.room.member", "@bob:test", "@bob:test", {"membership": "join"})}
        self.assert_error(self.knock(), 502, "M_UNKNOWN")
        # send_knock refuses, or answers without knock_room_state.
        self.serve_knock(self.room)
        self.fed.routes[(REMOTE, "PUT", f"{F1}/send_knock/{self.rid}/*")] = \
            refuse(403, "M_FORBIDDEN")
        self.assert_error(self.knock(), 403, "M_FORBIDDEN")
        self.fed.routes[(REMOTE, "PUT", f"{F1}/send_knock/{self.rid}/*")] = \
            lambda query, pdu: {"state": []}
        self.assert_error(self.knock(), 502, "M_UNKNOWN")
        self.assertEqual(self.sync("bob")["rooms"]["knock"], {})
        membership = self.get_success(self.hs.get_datastores().room_members
                                      .get_local_membership("@bob:test", self.room.room_id))
        self.assertIsNone(membership)

    def test_restricted_join_keeps_authoriser(self) -> None:
        """Joining a restricted room: the resident's authoriser goes into our join."""
        room = tm.RemoteRoom(self.remote, version="10", join_rule="restricted")
        room.add("m.room.join_rules", "", {"join_rule": "restricted", "allow": [
            {"type": "m.room_membership", "room_id": f"!space:{REMOTE}"}]})
        rid = q(room.room_id)
        got: list[Any] = []

        def make_join(query: Any, content: Any) -> Any:
            return {"room_version": "10", "event": room.template(
                "m.room.member", "@bob:test", "@bob:test",
                {"membership": "join", AUTHORISER: room.creator})}

        def send_join(query: Any, pdu: Any) -> Any:
            got.append(pdu)
            signed = sign_event(pdu, REMOTE, self.remote.key, room.version)
            event_id = room.accept(signed)
            state = [room.events[e] for e in room.state.values() if e != event_id]
            return {"event": signed, "state": state,
                    "auth_chain": room.auth_chain([*room.state.values()]),
                    "origin": REMOTE, "members_omitted": False}

        self.fed.routes[(REMOTE, "GET", f"{F1}/make_join/{rid}/{q('@bob:test')}")] = make_join
        self.fed.routes[(REMOTE, "PUT", f"{F2}/send_join/{rid}/*")] = send_join
        self.ok(self.client("POST", "bob", f"/join/{rid}"))
        self.assertEqual(got[0]["content"], {"membership": "join", AUTHORISER: room.creator,
                                             "displayname": "bob"})
        stores = self.hs.get_datastores()
        state = self.get_success(stores.state.get_current_state_ids(room.room_id))
        join = self.get_success(stores.events.get_event(state[("m.room.member", "@bob:test")]))
        self.assertEqual(join.content[AUTHORISER], room.creator)
        self.assertEqual(set(join.pdu_json["signatures"]), {"test", REMOTE})
