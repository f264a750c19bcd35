"""A hostile server in a public room sends PDUs whose `auth_events` or `prev_events`
cite what they may not (another room's events, rejected events, duplicates, events the
event does not need): each is refused, stays out of the room, and nothing of another room
is ever served back over federation."""

from __future__ import annotations

import urllib.parse
from typing import Any

from homeserver.event_hashing import add_content_hash, compute_event_id, sign_event
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation import test_membership as tm
from tests.federation.fed_helpers import FEDERATION, RemoteServer, signed_request
from tests.federation.test_membership import FakeFederation
from tests.harness import HomeserverTestCase

RITA = "@rita:remote.test"
StateKey = tuple[str, str]


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class HostileBase(RoomHelpers, HomeserverTestCase):
    """Alice has a private room with a secret and a public room Rita (remote.test) is in."""

    #: the public room's version (None: the default, v12)
    room_version: str | None = None

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.fed = FakeFederation()
        hs.get_federation_client().request = self.fed.request
        self.remote = RemoteServer("remote.test")
        self.stores = hs.get_datastores()
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.secret_room = self.create_room(self.token, {"preset": "private_chat"})
        self.secret_msg = self.send_message(self.token, self.secret_room, "private text")
        self.room_id = self.create_room(self.token, {"preset": "public_chat", **(
            {"room_version": self.room_version} if self.room_version else {})})
        self.version: RoomVersion = KNOWN_ROOM_VERSIONS[self.get_success(
            self.stores.events.get_room_version(self.room_id)).identifier]
        self.txn = 0
        answer = self.send_txn([self.pdu("m.room.member", {"membership": "join"}, RITA)])
        self.assertEqual(list(answer["pdus"].values()), [{}])

    # -- helpers --

    def current(self, room_id: str | None = None) -> dict[StateKey, str]:
        return dict(self.get_success(
            self.stores.state.get_current_state_ids(room_id or self.room_id)))

    def selected(self, event_type: str, state_key: str | None) -> list[str]:
        """The auth events the selection algorithm picks from the current state."""
        current = self.current()
        keys: list[StateKey] = [("m.room.power_levels", ""), ("m.room.member", RITA)]
        if not self.version.room_id_from_create_event:
            keys.insert(0, ("m.room.create", ""))
        if event_type == "m.room.member" and state_key is not None:
            keys += [("m.room.member", state_key), ("m.room.join_rules", "")]
        return list(dict.fromkeys(current[k] for k in keys if k in current))

    def pdu(self, event_type: str, content: dict[str, Any], state_key: str | None = None,
            auth: list[str] | None = None, prev: list[str] | None = None,
            depth: int | None = None) -> dict[str, Any]:
        """A PDU by Rita, signed by remote.test; by default on the room's extremities with
        the auth events the spec selects."""
        extremities = self.get_success(self.stores.events.get_forward_extremities(
            self.room_id))
        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": event_type, "sender": RITA, "content": content,
            "origin_server_ts": self.hs.get_clock().time_msec(),
            "depth": depth or max(d for _, d in extremities) + 1,
            "prev_events": prev if prev is not None else [e for e, _ in extremities],
            "auth_events": auth if auth is not None else self.selected(event_type,
                                                                       state_key),
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        return sign_event(add_content_hash(pdu), self.remote.name, self.remote.key,
                          self.version)

    def message(self, body: str, auth: list[str] | None = None,
                prev: list[str] | None = None) -> dict[str, Any]:
        return self.pdu("m.room.message", {"msgtype": "m.text", "body": body}, auth=auth,
                        prev=prev)

    def event_id(self, pdu: dict[str, Any]) -> str:
        return compute_event_id(pdu, self.version)

    def send_txn(self, pdus: list[dict[str, Any]], remote: RemoteServer | None = None
                 ) -> Any:
        self.txn += 1
        remote = remote or self.remote
        channel = signed_request(self, remote, "PUT", f"{FEDERATION}/send/h{self.txn}",
                                 {"origin": remote.name, "origin_server_ts": 0,
                                  "pdus": pdus, "edus": []})
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def timeline(self) -> list[str]:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b"
                                    "&limit=50", access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return [e["event_id"] for e in channel.json_body["chunk"]]

    def synced(self) -> list[str]:
        channel = self.make_request("GET", f"{CLIENT}/sync", access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        room = channel.json_body["rooms"]["join"][self.room_id]
        return [e["event_id"] for e in room["timeline"]["events"]
                + room.get("state", {}).get("events", [])]

    def assert_refused(self, pdu: dict[str, Any], answer: Any) -> None:
        """Refused with a per-PDU error and nowhere in the room."""
        event_id = self.event_id(pdu)
        self.assertIn("error", answer["pdus"][event_id])
        self.assertNotIn(event_id, self.timeline())
        self.assertNotIn(event_id, self.synced())
        self.assertNotIn(event_id, self.current().values())
        extremities = self.get_success(self.stores.events.get_forward_extremities(
            self.room_id))
        self.assertNotIn(event_id, [e for e, _ in extremities])

    def fetches(self) -> list[str]:
        """The paths of the requests we made to other servers, our transactions aside."""
        return [path for _, method, path, _, _ in self.fed.calls
                if not (method == "PUT" and path.startswith(f"{FEDERATION}/send/"))]

    def latest(self) -> str:
        """A new accepted message of Rita's, to ask the endpoints about."""
        pdu = self.message("latest")
        self.assertEqual(self.send_txn([pdu])["pdus"][self.event_id(pdu)], {})
        return self.event_id(pdu)

    def secret_ids(self) -> set[str]:
        rows = self.get_success(self.stores.db.execute(
            "secret", "SELECT event_id FROM events WHERE room_id = ?", self.secret_room))
        return {r[0] for r in rows}

    def served_ids(self, at: str) -> set[str]:
        """Every event ID the federation endpoints serve about `at`, as Rita's server."""
        r, e = q(self.room_id), q(at)
        served: set[str] = set()
        for method, path, body in [
            ("GET", f"/state/{r}?event_id={e}", None),
            ("GET", f"/state_ids/{r}?event_id={e}", None),
            ("GET", f"/event_auth/{r}/{e}", None),
            ("GET", f"/backfill/{r}?v={e}&limit=100", None),
            ("POST", f"/get_missing_events/{r}",
             {"earliest_events": [], "latest_events": [at], "limit": 100}),
        ]:
            channel = signed_request(self, self.remote, method, FEDERATION + path, body)
            self.assertEqual(channel.code, 200, (path, channel.result))
            answer = channel.json_body
            for key in ("pdus", "auth_chain", "events"):
                served.update(self.event_id(p) for p in answer.get(key, []))
            for key in ("pdu_ids", "auth_chain_ids"):
                served.update(answer.get(key, []))
        return served


class AuthEventSelectionTestCase(HostileBase):
    def test_correct_auth_events_pass(self) -> None:
        """A message citing exactly the selected auth events enters the room."""
        pdu = self.message("hello")
        self.assertEqual(self.send_txn([pdu])["pdus"][self.event_id(pdu)], {})
        self.assertIn(self.event_id(pdu), self.timeline())

    def test_auth_events_of_another_room_are_refused(self) -> None:
        """Citing the private room's message, or its create / power levels / members
        instead of this room's, refuses the PDU and serves nothing of that room."""
        secret = self.current(self.secret_room)
        mine = self.selected("m.room.message", None)
        forged = [
            self.message("a", auth=[*mine, self.secret_msg]),
            self.message("b", auth=[secret[("m.room.power_levels", "")],
                                    *[a for a in mine if a != self.current()[
                                        ("m.room.power_levels", "")]]]),
            self.message("c", auth=[*mine, secret[("m.room.member", self.alice)]]),
        ]
        if not self.version.room_id_from_create_event:
            forged.append(self.message("d", auth=[
                secret[("m.room.create", "")],
                *[a for a in mine if a != self.current()[("m.room.create", "")]]]))
        for pdu in forged:
            with self.subTest(body=pdu["content"]["body"]):
                self.assert_refused(pdu, self.send_txn([pdu]))
        self.assertFalse(self.served_ids(self.latest()) & self.secret_ids())
        for pdu in forged:
            channel = signed_request(self, self.remote, "GET",
                                     f"{FEDERATION}/event/{q(self.event_id(pdu))}")
            self.assertEqual(channel.code, 404, channel.result)

    def test_rejected_auth_event_refuses(self) -> None:
        """A message citing a rejected power levels event is refused."""
        grab = self.pdu("m.room.power_levels", {"users": {RITA: 100}}, "")
        self.assert_refused(grab, self.send_txn([grab]))
        auth = [a for a in self.selected("m.room.message", None)
                if a != self.current()[("m.room.power_levels", "")]] + [self.event_id(grab)]
        pdu = self.message("on a rejected event", auth=auth)
        self.assert_refused(pdu, self.send_txn([pdu]))

    def test_duplicate_auth_events_refuse(self) -> None:
        """Two member events of the sender (old and new) in one auth_events list."""
        old_join = self.current()[("m.room.member", RITA)]
        rename = self.pdu("m.room.member", {"membership": "join", "displayname": "R"}, RITA)
        self.assertEqual(self.send_txn([rename])["pdus"][self.event_id(rename)], {})
        pdu = self.message("dup", auth=[*self.selected("m.room.message", None), old_join])
        self.assert_refused(pdu, self.send_txn([pdu]))

    def test_unneeded_auth_events_refuse(self) -> None:
        """A message citing another user's member event, or the join rules."""
        current = self.current()
        mine = self.selected("m.room.message", None)
        for extra in (current[("m.room.member", self.alice)], current[("m.room.join_rules", "")]):
            with self.subTest(extra=extra):
                pdu = self.message(f"needless {extra}", auth=[*mine, extra])
                self.assert_refused(pdu, self.send_txn([pdu]))

    def test_unknown_auth_event_refuses_without_storing(self) -> None:
        """A message citing an auth event we do not have is refused, not kept as rejected
        (it may pass once we hold that event)."""
        pdu = self.message("on air", auth=[*self.selected("m.room.message", None), "$nope"])
        self.assert_refused(pdu, self.send_txn([pdu]))
        self.assertIsNone(self.get_success(self.stores.events.get_event(self.event_id(pdu))))

    def test_unknown_auth_events_are_fetched_once(self) -> None:
        """A message citing a member event of the sender we never received: one
        /event_auth brings it (checked, as an outlier) and the message enters the room."""
        rename = self.pdu("m.room.member", {"membership": "join", "displayname": "R"}, RITA)
        auth = [a for a in self.selected("m.room.message", None)
                if a != self.current()[("m.room.member", RITA)]] + [self.event_id(rename)]
        pdu = self.message("after a rename", auth=auth)
        path = f"{FEDERATION}/event_auth/{self.room_id}/{self.event_id(pdu)}"
        chain = self.get_success(self.stores.events.get_events(rename["auth_events"]))
        self.fed.routes[("remote.test", "GET", path)] = lambda query, body: {
            "auth_chain": [rename, *[dict(e.pdu_json) for e in chain.values()]]}
        self.assertEqual(self.send_txn([pdu])["pdus"][self.event_id(pdu)], {})
        self.assertEqual(self.fetches(), [path])
        self.assertIn(self.event_id(pdu), self.timeline())
        self.assertNotIn(self.event_id(rename), self.timeline())

    def test_prev_event_of_another_room_refuses(self) -> None:
        """A PDU whose prev event is the private room's message: refused, nothing fetched."""
        pdu = self.message("grafted", prev=[self.secret_msg])
        self.assert_refused(pdu, self.send_txn([pdu]))
        self.assertEqual(self.fetches(), [])


class AuthEventSelectionV10TestCase(AuthEventSelectionTestCase):
    """The same in a v10 room, where the create event is listed in auth_events."""

    room_version = "10"


class ServingStaysInTheRoomTestCase(HostileBase):
    def poison(self) -> str:
        """An auth edge from this room's power levels to the private room's message, as
        bad data might hold; returns the power levels event ID."""
        power = self.current()[("m.room.power_levels", "")]
        self.get_success(self.stores.db.execute(
            "poison", "INSERT INTO event_auth (event_id, auth_id, room_id) VALUES (?, ?, ?)",
            power, self.secret_msg, self.room_id))
        return power

    def test_auth_chain_walk_stays_in_the_room(self) -> None:
        """/state, /state_ids, /event_auth, /backfill, /get_missing_events serve nothing of
        the private room even with a cross-room auth edge."""
        self.poison()
        served = self.served_ids(self.latest())
        self.assertIn(self.current()[("m.room.power_levels", "")], served)
        self.assertFalse(served & self.secret_ids())

    def test_send_join_answer_stays_in_the_room(self) -> None:
        """The send_join answer's state and auth chain hold nothing of another room."""
        self.poison()
        other = RemoteServer("other.example")
        zoe = "@zoe:other.example"
        channel = signed_request(self, other, "GET",
                                 f"{FEDERATION}/make_join/{q(self.room_id)}/{q(zoe)}"
                                 f"?ver={self.version.identifier}")
        self.assertEqual(channel.code, 200, channel.result)
        template = channel.json_body["event"]
        pdu = sign_event(add_content_hash(template), other.name, other.key, self.version)
        event_id = self.event_id(pdu)
        channel = signed_request(self, other, "PUT",
                                 f"/_matrix/federation/v2/send_join/{q(self.room_id)}/"
                                 f"{q(event_id)}", pdu)
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        served = {self.event_id(p) for p in body["state"] + body["auth_chain"]}
        self.assertIn(self.current()[("m.room.power_levels", "")], served)
        self.assertFalse(served & self.secret_ids())
        self.assertTrue(all(p["room_id"] == self.room_id for p in body["state"]
                            + body["auth_chain"] if "room_id" in p))

    def test_rejected_events_are_not_served(self) -> None:
        """A rejected event is neither served by /event nor in a state or chain answer."""
        grab = self.pdu("m.room.power_levels", {"users": {RITA: 100}}, "")
        self.send_txn([grab])
        channel = signed_request(self, self.remote, "GET",
                                 f"{FEDERATION}/event/{q(self.event_id(grab))}")
        self.assertEqual(channel.code, 404, channel.result)
        self.assertNotIn(self.event_id(grab), self.served_ids(self.latest()))


class RemoteJoinAuthEventsTestCase(tm._Base):
    def test_join_template_with_unneeded_auth_events_is_refused(self) -> None:
        """Joining a remote room whose make_join template cites an event the join does
        not need (another user's member event) fails; we do not end up in the room."""
        room = tm.RemoteRoom(self.remote)
        rid = q(room.room_id)
        creator_join = room.state[("m.room.member", room.creator)]

        def make_join(query: Any, content: Any) -> Any:
            template = room.template("m.room.member", "@bob:test", "@bob:test",
                                     {"membership": "join"})
            template["auth_events"] = [*template["auth_events"], creator_join]
            return {"room_version": room.version.identifier, "event": template}

        def send_join(query: Any, pdu: Any) -> Any:
            signed = sign_event(pdu, room.remote.name, room.remote.key, room.version)
            state = [room.events[e] for e in room.state.values()]
            return {"event": signed, "state": state,
                    "auth_chain": room.auth_chain(list(room.state.values())),
                    "origin": room.remote.name, "members_omitted": False}

        self.fed.routes[(room.remote.name, "GET",
                         f"{tm.F1}/make_join/{rid}/{q('@bob:test')}")] = make_join
        self.fed.routes[(room.remote.name, "PUT", f"{tm.F2}/send_join/{rid}/*")] = send_join
        channel = self.client("POST", "bob", f"/join/{rid}")
        self.assertNotEqual(channel.code, 200, channel.result)
        joined = self.ok(self.client("GET", "bob", "/joined_rooms"))["joined_rooms"]
        self.assertNotIn(room.room_id, joined)
