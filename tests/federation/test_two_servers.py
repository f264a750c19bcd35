"""Two Axon processes federating over loopback TLS, driven only through their client APIs."""

from __future__ import annotations

import time
import unittest
from typing import Any

from tests.integration.federation_pair import Client, ServerPairScenarios, q


def timeline_bodies(answer: dict[str, Any], room_id: str) -> list[str]:
    room = answer["rooms"]["join"].get(room_id)
    if not room:
        return []
    return [e["content"].get("body", "") for e in room["timeline"]["events"]
            if e["type"] == "m.room.message"]


class TwoServerScenarios(ServerPairScenarios):
    """The scenarios, run by a TestCase whose `make_b()` gives the second server: another
    Axon here, a real Synapse in tests/interop/test_synapse_federation.py. `a` (alice) is
    always Axon."""

    #: the second server is Axon (some checks are about our own behaviour)
    b_is_axon = True

    def test_remote_profile(self) -> None:
        self.alice.ok("PUT", f"/profile/{q(self.alice.user_id)}/displayname",
                      {"displayname": "Alice A"})
        code, body = self.bob.call("GET", f"/profile/{q(self.alice.user_id)}/displayname")
        self.assertEqual((code, body), (200, {"displayname": "Alice A"}), self.logs())
        code, body = self.bob.call("GET", f"/profile/{q('@nobody:' + self.a.server_name)}")
        self.assertEqual(code, 404, body)

    def test_join_and_messages_both_ways(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "public_chat",
                                                   "name": "across"})["room_id"]
        alice.sync()
        code, body = bob.call("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}",
                              {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        # Alice sees Bob's join arrive.
        alice.wait_for(lambda a: any(
            e["type"] == "m.room.member" and e["state_key"] == bob.user_id
            for e in a["rooms"]["join"].get(room_id, {}).get("timeline", {}).get("events", [])))
        # Bob has the room with its name.
        state = bob.ok("GET", f"/rooms/{q(room_id)}/state/m.room.name/")
        self.assertEqual(state, {"name": "across"})

        bob.sync()
        sent = time.monotonic()
        alice.send(room_id, "hello from A")
        bob.wait_for(lambda a: "hello from A" in timeline_bodies(a, room_id))
        a_to_b = time.monotonic() - sent

        sent = time.monotonic()
        bob.send(room_id, "hello from B")
        alice.wait_for(lambda a: "hello from B" in timeline_bodies(a, room_id))
        b_to_a = time.monotonic() - sent
        self.assertLess(max(a_to_b, b_to_a), 5.0)

        # Both servers end with the same room state.
        state_a = {(e["type"], e["state_key"]): e["event_id"]
                   for e in alice.ok("GET", f"/rooms/{q(room_id)}/state")}
        state_b = {(e["type"], e["state_key"]): e["event_id"]
                   for e in bob.ok("GET", f"/rooms/{q(room_id)}/state")}
        self.assertEqual(state_a, state_b)

    # -- scenarios (issue 5) --

    def _public_room_with_bob(self, **extra: Any) -> str:
        """A public room on A that Bob (on B) has joined; both sides have seen the join."""
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "public_chat", **extra})["room_id"]
        code, body = bob.call("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}",
                              {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        alice.wait_for(lambda a: _member_in_timeline(a, room_id, bob.user_id, "join"))
        return room_id

    def _timed_wait(self, client: Client, predicate: Any) -> dict[str, Any]:
        """`client.wait_for(predicate)`, asserting it took under the latency bound."""
        started = time.monotonic()
        answer = client.wait_for(predicate, timeout=LATENCY_BOUND + 5)
        self.assertLess(time.monotonic() - started, LATENCY_BOUND, self.logs())
        return answer

    def test_invite_then_join(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "private_chat",
                                                   "name": "invite only"})["room_id"]
        bob.sync()
        alice.ok("POST", f"/rooms/{q(room_id)}/invite", {"user_id": bob.user_id})
        answer = self._timed_wait(bob, lambda a: room_id in a["rooms"]["invite"])
        stripped = answer["rooms"]["invite"][room_id]["invite_state"]["events"]
        self.assertIn(("m.room.name", "invite only"),
                      [(e["type"], e["content"].get("name")) for e in stripped])
        # Joining an invite needs no server name: the inviter's server is used.
        code, body = bob.call("POST", f"/join/{q(room_id)}", {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        self._timed_wait(alice, lambda a: _member_in_timeline(a, room_id, bob.user_id, "join"))
        self.assertEqual(bob.ok("GET", f"/rooms/{q(room_id)}/state/m.room.name/"),
                         {"name": "invite only"})

    def test_typing_and_receipts_cross(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = self._public_room_with_bob()
        bob.sync()
        alice.sync()
        alice.ok("PUT", f"/rooms/{q(room_id)}/typing/{q(alice.user_id)}",
                 {"typing": True, "timeout": 30000})
        self._timed_wait(bob, lambda a: alice.user_id in _typing(a, room_id))
        bob.ok("PUT", f"/rooms/{q(room_id)}/typing/{q(bob.user_id)}",
               {"typing": True, "timeout": 30000})
        self._timed_wait(alice, lambda a: bob.user_id in _typing(a, room_id))

        event_id = bob.send(room_id, "read me")
        alice.wait_for(lambda a: "read me" in timeline_bodies(a, room_id))
        alice.ok("POST", f"/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {})
        self._timed_wait(bob, lambda a: alice.user_id in _receipts(a, room_id, event_id))
        bob.ok("POST", f"/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {})
        self._timed_wait(alice, lambda a: bob.user_id in _receipts(a, room_id, event_id))

    def test_kick_and_ban_take_effect_on_b(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = self._public_room_with_bob()
        bob.sync()
        alice.ok("POST", f"/rooms/{q(room_id)}/kick", {"user_id": bob.user_id,
                                                      "reason": "out"})
        answer = self._timed_wait(bob, lambda a: room_id in a["rooms"]["leave"])
        kicks = [e for e in answer["rooms"]["leave"][room_id]["timeline"]["events"]
                 if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
        self.assertEqual((kicks[-1]["content"]["membership"], kicks[-1]["sender"]),
                         ("leave", alice.user_id))
        code, _ = bob.call("PUT", f"/rooms/{q(room_id)}/send/m.room.message/k1",
                           {"msgtype": "m.text", "body": "still here?"})
        self.assertEqual(code, 403)

        # A kicked user may rejoin a public room; a banned one may not.
        bob.ok("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        alice.wait_for(lambda a: _member_in_timeline(a, room_id, bob.user_id, "join"))
        bob.sync()
        alice.ok("POST", f"/rooms/{q(room_id)}/ban", {"user_id": bob.user_id})
        self._timed_wait(bob, lambda a: _member_in_timeline(a, room_id, bob.user_id, "ban",
                                                            section="leave"))
        code, _ = bob.call("PUT", f"/rooms/{q(room_id)}/send/m.room.message/b1",
                           {"msgtype": "m.text", "body": "banned?"})
        self.assertEqual(code, 403)
        code, body = bob.call("POST",
                              f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        self.assertEqual(code, 403, body)
        member = alice.ok("GET", f"/rooms/{q(room_id)}/state/m.room.member/{q(bob.user_id)}")
        self.assertEqual(member["membership"], "ban")

    def test_power_levels_let_b_change_topic(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = self._public_room_with_bob()
        code, body = bob.call("PUT", f"/rooms/{q(room_id)}/state/m.room.topic/",
                              {"topic": "too early"})
        self.assertEqual(code, 403, body)
        levels = alice.ok("GET", f"/rooms/{q(room_id)}/state/m.room.power_levels/")
        levels["users"][bob.user_id] = 50
        bob.sync()
        alice.ok("PUT", f"/rooms/{q(room_id)}/state/m.room.power_levels/", levels)
        self._timed_wait(bob, lambda a: any(
            e["type"] == "m.room.power_levels"
            and e["content"].get("users", {}).get(bob.user_id) == 50
            for e in _timeline(a, room_id)))
        alice.sync()
        bob.ok("PUT", f"/rooms/{q(room_id)}/state/m.room.topic/", {"topic": "set on B"})
        self._timed_wait(alice, lambda a: any(
            e["type"] == "m.room.topic" and e["content"].get("topic") == "set on B"
            for e in _timeline(a, room_id)))
        self.assertEqual(alice.ok("GET", f"/rooms/{q(room_id)}/state/m.room.topic/"),
                         {"topic": "set on B"})

    def test_leave_and_rejoin(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = self._public_room_with_bob()
        alice.sync()
        bob.ok("POST", f"/rooms/{q(room_id)}/leave", {})
        self._timed_wait(alice, lambda a: _member_in_timeline(a, room_id, bob.user_id,
                                                              "leave"))
        self.assertNotIn(room_id, bob.ok("GET", "/joined_rooms")["joined_rooms"])
        bob.ok("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        self._timed_wait(alice, lambda a: _member_in_timeline(a, room_id, bob.user_id,
                                                              "join"))
        bob.sync()
        alice.send(room_id, "welcome back")
        self._timed_wait(bob, lambda a: "welcome back" in timeline_bodies(a, room_id))
        alice.sync()
        bob.send(room_id, "glad to be back")
        self._timed_wait(alice, lambda a: "glad to be back" in timeline_bodies(a, room_id))

    def test_history_before_join_is_backfilled(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
        sent = [f"before {i}" for i in range(15)]
        for text in sent:
            alice.send(room_id, text)
        bob.ok("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        bob.send(room_id, "after")
        # Page back from the end, 4 at a time, until the room's creation.
        bodies: list[str] = []
        types: list[str] = []
        token: str | None = None
        for _ in range(20):
            path = f"/rooms/{q(room_id)}/messages?dir=b&limit=4"
            page = bob.ok("GET", path + (f"&from={q(token)}" if token else ""))
            for event in page["chunk"]:
                types.append(event["type"])
                if event["type"] == "m.room.message":
                    bodies.append(event["content"]["body"])
            token = page.get("end")
            if token is None:
                break
        self.assertEqual(bodies, ["after", *reversed(sent)], self.logs())
        self.assertEqual(types[-1], "m.room.create")
        self.assertIn("m.room.power_levels", types)
        if not self.b_is_axon:
            return  # Synapse starts a `dir=f` page without `from` at its own join
        # Paging forwards from the start gives the same events in the opposite order.
        forwards = bob.ok("GET", f"/rooms/{q(room_id)}/messages?dir=f&limit=100")
        self.assertEqual([e["type"] for e in forwards["chunk"]], types[::-1])
        # Event IDs are unique (nothing stored twice).
        ids = [e["event_id"] for e in forwards["chunk"]]
        self.assertEqual(len(ids), len(set(ids)))

    def check_history_missed_between_leave_and_rejoin(self) -> None:
        """Events sent while B had no user in the room are backfilled when Bob pages
        back to the hole, and appear between his leave and his rejoin."""
        alice, bob = self.alice, self.bob
        room_id = self._public_room_with_bob()
        bob.ok("POST", f"/rooms/{q(room_id)}/leave", {})
        alice.wait_for(lambda a: _member_in_timeline(a, room_id, bob.user_id, "leave"))
        alice.send(room_id, "while B was away")
        bob.ok("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        page = bob.ok("GET", f"/rooms/{q(room_id)}/messages?dir=b&limit=100")
        kinds = [e["content"].get("body") or e["content"].get("membership")
                 for e in page["chunk"] if e["type"] in ("m.room.message", "m.room.member")
                 and e.get("state_key", bob.user_id) == bob.user_id]
        self.assertEqual(kinds[:3], ["join", "while B was away", "leave"])

    def test_joined_only_history_is_not_shown_after_backfill(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {
            "preset": "public_chat", "initial_state": [{
                "type": "m.room.history_visibility", "state_key": "",
                "content": {"history_visibility": "joined"}}]})["room_id"]
        alice.send(room_id, "secret before")
        bob.ok("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        alice.send(room_id, "visible after")
        bob.wait_for(lambda a: "visible after" in timeline_bodies(a, room_id))
        page = bob.ok("GET", f"/rooms/{q(room_id)}/messages?dir=b&limit=50")
        bodies = [e["content"].get("body") for e in page["chunk"]
                  if e["type"] == "m.room.message"]
        self.assertEqual(bodies, ["visible after"], self.logs())

    def test_alias_lookup_and_join_by_alias(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "public_chat",
                                                   "room_alias_name": "fedalias"})["room_id"]
        alias = f"#fedalias:{self.a.server_name}"
        started = time.monotonic()
        answer = bob.ok("GET", f"/directory/room/{q(alias)}")
        self.assertLess(time.monotonic() - started, LATENCY_BOUND)
        self.assertEqual(answer["room_id"], room_id)
        self.assertIn(self.a.server_name, answer["servers"])
        code, body = bob.call("GET", f"/directory/room/{q('#nope:' + self.a.server_name)}")
        self.assertEqual((code, body.get("errcode")), (404, "M_NOT_FOUND"))
        joined = bob.ok("POST", f"/join/{q(alias)}", {})
        self.assertEqual(joined["room_id"], room_id)
        self.assertIn(room_id, bob.ok("GET", "/joined_rooms")["joined_rooms"])
        alice.wait_for(lambda a: _member_in_timeline(a, room_id, bob.user_id, "join"))

    def test_public_room_directory_of_a_from_b(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {
            "preset": "public_chat", "visibility": "public", "name": "listed on A",
            "topic": "federated directory"})["room_id"]
        started = time.monotonic()
        answer = bob.ok("GET", f"/publicRooms?server={q(self.a.server_name)}")
        self.assertLess(time.monotonic() - started, LATENCY_BOUND)
        listed = {r["room_id"]: r for r in answer["chunk"]}
        self.assertIn(room_id, listed, answer)
        self.assertEqual((listed[room_id]["name"], listed[room_id]["topic"]),
                         ("listed on A", "federated directory"))
        found = bob.ok("POST", f"/publicRooms?server={q(self.a.server_name)}",
                       {"filter": {"generic_search_term": "listed on"}})
        self.assertIn(room_id, [r["room_id"] for r in found["chunk"]])
        # B's own directory does not list A's room.
        local = bob.ok("GET", "/publicRooms")
        self.assertNotIn(room_id, [r["room_id"] for r in local["chunk"]])


#: the delivery latency every scenario asserts (loose: loopback, two idle processes)
LATENCY_BOUND = 5.0


def _timeline(answer: dict[str, Any], room_id: str,
              section: str = "join") -> list[dict[str, Any]]:
    room = answer["rooms"][section].get(room_id) or {}
    return list(room.get("timeline", {}).get("events", []))


def _member_in_timeline(answer: dict[str, Any], room_id: str, user_id: str,
                        membership: str, section: str = "join") -> bool:
    return any(e["type"] == "m.room.member" and e["state_key"] == user_id
               and e["content"].get("membership") == membership
               for e in _timeline(answer, room_id, section))


def _ephemeral(answer: dict[str, Any], room_id: str, kind: str) -> list[dict[str, Any]]:
    room = answer["rooms"]["join"].get(room_id) or {}
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == kind]


def _typing(answer: dict[str, Any], room_id: str) -> set[str]:
    return {u for e in _ephemeral(answer, room_id, "m.typing")
            for u in e["content"].get("user_ids", [])}


def _receipts(answer: dict[str, Any], room_id: str, event_id: str) -> set[str]:
    return {u for e in _ephemeral(answer, room_id, "m.receipt")
            for u in e["content"].get(event_id, {}).get("m.read", {})}


class TwoServersTestCase(TwoServerScenarios, unittest.TestCase):
    def test_history_missed_between_leave_and_rejoin(self) -> None:
        """B backfills the events it missed while Bob was away, in their place."""
        self.check_history_missed_between_leave_and_rejoin()
