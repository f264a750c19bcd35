"""GET /rooms/{roomId}/messages and GET /rooms/{roomId}/context/{eventId}."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from homeserver.stream_token import StreamToken, TopologicalToken
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class MessagesTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})

    def messages(self, token: str | None = None, room_id: str | None = None,
                 **params: Any) -> Any:
        for key, value in list(params.items()):
            if isinstance(value, dict):
                params[key] = json.dumps(value)
        query = urllib.parse.urlencode(params)
        return self.make_request(
            "GET", f"{CLIENT}/rooms/{room_id or self.room_id}/messages?{query}",
            access_token=token or self.alice_token)

    def ok(self, channel: Any) -> dict[str, Any]:
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def page_all(self, direction: str, limit: int, token: str | None = None,
                 **params: Any) -> list[str]:
        """Page until `end` is missing; returns the event IDs in order."""
        ids: list[str] = []
        from_token: str | None = None
        for _ in range(200):
            args: dict[str, Any] = {"dir": direction, "limit": limit, **params}
            if from_token is not None:
                args["from"] = from_token
            body = self.ok(self.messages(token, **args))
            self.assertLessEqual(len(body["chunk"]), limit)
            ids.extend(e["event_id"] for e in body["chunk"])
            if "end" not in body:
                return ids
            from_token = body["end"]
        self.fail("pagination did not end")

    def redact(self, event_id: str) -> str:
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{event_id}/r{event_id[1:6]}",
            {"reason": "spam"}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id = channel.json_body["event_id"]
        return event_id

    # -- paging --

    def test_page_back_and_forth(self) -> None:
        """Paging 50 messages backwards and forwards with small limits returns every
        event exactly once, newest first / oldest first."""
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(50)]
        back = self.page_all("b", 7)
        self.assertEqual(len(back), len(set(back)))
        messages_back = [e for e in back if e in sent]
        self.assertEqual(messages_back, list(reversed(sent)))
        # The room's creation events come before the messages.
        self.assertGreater(len(back), 50)
        forward = self.page_all("f", 6)
        self.assertEqual(forward, list(reversed(back)))

    def test_page_default_dir_and_limit(self) -> None:
        """Without `dir` and `limit`: backwards, 10 events, `start` is the room's end."""
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(12)]
        body = self.ok(self.messages())
        self.assertEqual([e["event_id"] for e in body["chunk"]], list(reversed(sent))[:10])
        self.assertIn("end", body)
        current = self.hs.get_datastores().events.get_room_max_stream_ordering()
        self.assertEqual(StreamToken.parse(body["start"]).room, current)

    def test_page_from_and_to(self) -> None:
        """`from` continues where `end` left off, keeping the token's other fields;
        `to` stops the page and then `end` is omitted."""
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(10)]
        newest = self.ok(self.messages(dir="b", limit=4))
        self.assertEqual([e["event_id"] for e in newest["chunk"]], list(reversed(sent[6:])))
        boundary = newest["end"]
        # Backwards from the end, stopping at the boundary: exactly those 4, no `end`.
        body = self.ok(self.messages(dir="b", limit=100, to=boundary))
        self.assertEqual([e["event_id"] for e in body["chunk"]], list(reversed(sent[6:])))
        self.assertNotIn("end", body)
        # Forwards from the boundary: the same 4, oldest first.
        body = self.ok(self.messages(dir="f", limit=100, **{"from": boundary}))
        self.assertEqual([e["event_id"] for e in body["chunk"]], sent[6:])
        self.assertEqual(body["start"], boundary)
        # Backwards from the boundary with a `to` 3 events earlier.
        older = self.ok(self.messages(dir="b", limit=3, **{"from": boundary}))
        self.assertEqual([e["event_id"] for e in older["chunk"]], list(reversed(sent[3:6])))
        body = self.ok(self.messages(dir="f", limit=100, to=boundary,
                                     **{"from": older["end"]}))
        self.assertEqual([e["event_id"] for e in body["chunk"]], sent[3:6])
        self.assertNotIn("end", body)
        # `end` is a topological token: just below the last event returned.
        events = self.hs.get_datastores().events
        last = self.get_success(events.get_event(sent[6]))
        stream = self.get_success(events.get_stream_ordering(sent[6]))
        self.assertEqual(boundary, TopologicalToken(last.depth, stream - 1).serialize())
        # A /sync token (all its positions) is accepted as `from`: its room position
        # bounds the page; `end` continues topologically from the last event.
        token = StreamToken(room=stream - 1, presence=7, receipt=3).serialize()
        body = self.ok(self.messages(dir="b", limit=1, **{"from": token}))
        self.assertEqual([e["event_id"] for e in body["chunk"]], [sent[5]])
        self.assertEqual(body["start"], token)
        self.assertEqual(body["end"], TopologicalToken(last.depth - 1, stream - 2).serialize())

    def test_forwards_without_from_starts_at_create(self) -> None:
        """dir=f without `from` starts at the room's first event."""
        body = self.ok(self.messages(dir="f", limit=1))
        self.assertEqual(body["chunk"][0]["type"], "m.room.create")

    def test_limit_zero_and_clamped(self) -> None:
        """limit=0 gives an empty chunk with an `end`; a huge limit is clamped."""
        self.send_message(self.alice_token, self.room_id)
        body = self.ok(self.messages(dir="b", limit=0))
        self.assertEqual(body["chunk"], [])
        self.assertEqual(body["end"], body["start"])
        body = self.ok(self.messages(dir="b", limit=100000))
        self.assertNotIn("end", body)
        self.assertEqual(body["chunk"][-1]["type"], "m.room.create")

    def test_own_transaction_id(self) -> None:
        """The sending device sees `unsigned.transaction_id` on its own events."""
        self.send_message(self.alice_token, self.room_id, "x", txn_id="my-txn")
        body = self.ok(self.messages(dir="b", limit=1))
        self.assertEqual(body["chunk"][0]["unsigned"]["transaction_id"], "my-txn")
        self.join(self.bob, self.room_id)
        self.send_message(self.alice_token, self.room_id, "y")
        body = self.ok(self.messages(self.bob_token, dir="b", limit=1))
        self.assertNotIn("transaction_id", body["chunk"][0]["unsigned"])

    # -- filters --

    def test_filter_types_and_senders(self) -> None:
        """`types` and `not_senders` select events; paging still ends."""
        self.join(self.bob, self.room_id)
        a = [self.send_message(self.alice_token, self.room_id, f"a{i}") for i in range(6)]
        b = [self.send_message(self.bob_token, self.room_id, f"b{i}") for i in range(6)]
        only_messages = self.page_all("b", 4, filter={"types": ["m.room.message"]})
        self.assertEqual(only_messages, list(reversed(a + b)))
        not_bob = self.page_all("b", 4, filter={"types": ["m.room.*"],
                                                 "not_senders": [self.bob]})
        self.assertTrue(set(a) <= set(not_bob))
        self.assertFalse(set(b) & set(not_bob))
        self.assertNotIn(self.bob, [self.event_sender(e) for e in not_bob])
        members = self.page_all("f", 3, filter={"types": ["m.room.member"]})
        self.assertEqual(len(members), 2)

    def event_sender(self, event_id: str) -> str:
        event = self.get_success(self.hs.get_datastores().events.get_event(event_id))
        sender: str = event.sender
        return sender

    def test_filter_contains_url(self) -> None:
        """contains_url true keeps only events with a string content.url."""
        self.send_message(self.alice_token, self.room_id, "plain")
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/send/m.room.message/img1",
            {"msgtype": "m.image", "body": "pic", "url": "mxc://test/abc"},
            access_token=self.alice_token)
        image = channel.json_body["event_id"]
        self.assertEqual(self.page_all("b", 5, filter={"contains_url": True}), [image])
        without = self.page_all("b", 5, filter={"contains_url": False})
        self.assertNotIn(image, without)
        self.assertGreater(len(without), 3)

    def test_filter_lazy_load_members(self) -> None:
        """lazy_load_members returns the membership of the chunk's senders only."""
        self.join(self.bob, self.room_id)
        self.join(self.carol, self.room_id)
        self.send_message(self.carol_token, self.room_id, "old")
        self.send_message(self.bob_token, self.room_id, "hi")
        body = self.ok(self.messages(dir="b", limit=1, filter={"lazy_load_members": True}))
        self.assertEqual([e["sender"] for e in body["chunk"]], [self.bob])
        state = body["state"]
        self.assertEqual([(e["type"], e["state_key"]) for e in state],
                         [("m.room.member", self.bob)])
        self.assertEqual(state[0]["content"]["membership"], "join")
        # Without lazy loading there is no `state`.
        body = self.ok(self.messages(dir="b", limit=1))
        self.assertNotIn("state", body)

    # -- visibility --

    def test_never_member_forbidden(self) -> None:
        """A user who was never in a `shared` room gets 403; so do unknown rooms."""
        self.send_message(self.alice_token, self.room_id)
        self.assert_error(self.messages(self.bob_token, dir="b"), 403, "M_FORBIDDEN")
        self.assert_error(self.messages(room_id="!nope:test", dir="b"), 403, "M_FORBIDDEN")

    def test_invited_forbidden(self) -> None:
        """An invited (not joined) user of a `shared` room gets 403."""
        self.invite(self.alice, self.room_id, self.bob)
        self.assert_error(self.messages(self.bob_token, dir="b"), 403, "M_FORBIDDEN")

    def test_world_readable(self) -> None:
        """Anyone may page through a world_readable room."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        msg = self.send_message(self.alice_token, self.room_id, "public")
        body = self.ok(self.messages(self.bob_token, dir="b", limit=5))
        self.assertEqual(body["chunk"][0]["event_id"], msg)

    def test_left_user_sees_up_to_leave(self) -> None:
        """A user who left sees history up to (and including) their leave, not after."""
        before = self.send_message(self.alice_token, self.room_id, "before")
        join = self.join(self.bob, self.room_id)
        during = self.send_message(self.alice_token, self.room_id, "during")
        leave = self.leave(self.bob, self.room_id)
        after = self.send_message(self.alice_token, self.room_id, "after")
        back = self.page_all("b", 3, self.bob_token)
        # `shared` history from before the join is for current members only (Synapse).
        self.assertEqual(back, [leave, during, join])
        self.assertNotIn(before, back)
        self.assertNotIn(after, back)
        forward = self.page_all("f", 3, self.bob_token)
        self.assertEqual(forward[-1], leave)
        self.assertNotIn(after, forward)

    def test_joined_visibility_hides_earlier_history(self) -> None:
        """With `joined` visibility a late joiner sees nothing from before the join."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "joined"})
        secret = [self.send_message(self.alice_token, self.room_id, f"s{i}") for i in range(8)]
        join = self.join(self.bob, self.room_id)
        later = self.send_message(self.alice_token, self.room_id, "later")
        back = self.page_all("b", 3, self.bob_token)
        self.assertEqual(back[:2], [later, join])
        self.assertFalse(set(secret) & set(back))

    def test_redacted_events_pruned(self) -> None:
        """Redacted events come back pruned, with unsigned.redacted_because."""
        target = self.send_message(self.alice_token, self.room_id, "oops")
        redaction = self.redact(target)
        body = self.ok(self.messages(dir="b", limit=2))
        chunk = body["chunk"]
        self.assertEqual([e["event_id"] for e in chunk], [redaction, target])
        self.assertEqual(chunk[1]["content"], {})
        self.assertEqual(chunk[1]["unsigned"]["redacted_because"]["event_id"], redaction)
        self.assertEqual(chunk[0]["redacts"] if "redacts" in chunk[0]
                         else chunk[0]["content"]["redacts"], target)

    # -- bad input --

    def test_bad_parameters(self) -> None:
        """Bad tokens, dir, limit and filter are 400 with the right errcode."""
        for params, errcode in (
            ({"from": "nope"}, "M_INVALID_PARAM"),
            ({"from": "s1_x"}, "M_INVALID_PARAM"),
            ({"to": "t12"}, "M_INVALID_PARAM"),
            ({"from": "t-1-5"}, "M_INVALID_PARAM"),
            ({"from": "t3-x"}, "M_INVALID_PARAM"),
            ({"from": "t3-4_0_0"}, "M_INVALID_PARAM"),
            ({"to": "3-4"}, "M_INVALID_PARAM"),
            ({"dir": "x"}, "M_INVALID_PARAM"),
            ({"dir": "B"}, "M_INVALID_PARAM"),
            ({"limit": "-1"}, "M_INVALID_PARAM"),
            ({"limit": "ten"}, "M_INVALID_PARAM"),
            ({"filter": "{nope"}, "M_NOT_JSON"),
            ({"filter": "[]"}, "M_BAD_JSON"),
            ({"filter": '{"types": "m.room.message"}'}, "M_BAD_JSON"),
            ({"filter": '{"limit": -3}'}, "M_BAD_JSON"),
        ):
            self.assert_error(self.messages(**params), 400, errcode)

    def test_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")


class ContextTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})

    def context(self, event_id: str, token: str | None = None, room_id: str | None = None,
                **params: Any) -> Any:
        if "filter" in params:
            params["filter"] = json.dumps(params["filter"])
        query = urllib.parse.urlencode(params)
        return self.make_request(
            "GET", f"{CLIENT}/rooms/{room_id or self.room_id}/context/{event_id}?{query}",
            access_token=token or self.alice_token)

    def test_context(self) -> None:
        """The event with limit/2 events before (newest first) and the rest after
        (oldest first); start/end continue paging in /messages."""
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(20)]
        channel = self.context(sent[10], limit=6)
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["event"]["event_id"], sent[10])
        self.assertEqual(body["event"]["content"]["body"], "m10")
        self.assertEqual([e["event_id"] for e in body["events_before"]],
                         [sent[9], sent[8], sent[7]])
        self.assertEqual([e["event_id"] for e in body["events_after"]], sent[11:14])
        types = {(e["type"], e.get("state_key")) for e in body["state"]}
        self.assertIn(("m.room.create", ""), types)
        self.assertIn(("m.room.member", self.alice), types)
        # `start` pages back from before events_before, `end` on from after events_after.
        channel = self.make_request(
            "GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b&limit=2&from={body['start']}",
            access_token=self.alice_token)
        self.assertEqual([e["event_id"] for e in channel.json_body["chunk"]],
                         [sent[6], sent[5]])
        channel = self.make_request(
            "GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=f&limit=2&from={body['end']}",
            access_token=self.alice_token)
        self.assertEqual([e["event_id"] for e in channel.json_body["chunk"]],
                         [sent[14], sent[15]])

    def test_context_default_limit_and_zero(self) -> None:
        """Default limit is 10 (5 before, 5 after); limit=0 still returns the event."""
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(20)]
        body = self.context(sent[10]).json_body
        self.assertEqual(len(body["events_before"]), 5)
        self.assertEqual(len(body["events_after"]), 5)
        body = self.context(sent[10], limit=0).json_body
        self.assertEqual(body["event"]["event_id"], sent[10])
        self.assertEqual((body["events_before"], body["events_after"]), ([], []))

    def test_context_filter_and_lazy_load(self) -> None:
        """The filter applies around the event (not to it); lazy loading trims the state
        to the senders' memberships."""
        self.join(self.bob, self.room_id)
        a1 = self.send_message(self.alice_token, self.room_id, "a1")
        b1 = self.send_message(self.bob_token, self.room_id, "b1")
        a2 = self.send_message(self.alice_token, self.room_id, "a2")
        body = self.context(b1, limit=4, filter={"senders": [self.alice],
                                                 "lazy_load_members": True}).json_body
        self.assertEqual(body["event"]["event_id"], b1)
        self.assertEqual([e["event_id"] for e in body["events_before"]][:1], [a1])
        self.assertEqual([e["event_id"] for e in body["events_after"]], [a2])
        # state: filtered to alice's events; the lazy-loaded members are alice and bob,
        # and the sender filter keeps alice's membership only.
        self.assertEqual({(e["type"], e["state_key"]) for e in body["state"]
                          if e["type"] == "m.room.member"}, {("m.room.member", self.alice)})
        body = self.context(b1, limit=2, filter={"lazy_load_members": True}).json_body
        members = {e["state_key"] for e in body["state"] if e["type"] == "m.room.member"}
        self.assertEqual(members, {self.alice, self.bob})

    def test_context_errors(self) -> None:
        """Unknown event or another room's event: 404; an unreadable room: 403;
        bad limit or filter: 400."""
        event_id = self.send_message(self.alice_token, self.room_id)
        self.assert_error(self.context("$nope"), 404, "M_NOT_FOUND")
        other = self.create_room(self.alice_token)
        other_event = self.send_message(self.alice_token, other)
        self.assert_error(self.context(other_event), 404, "M_NOT_FOUND")
        self.assert_error(self.context(event_id, self.bob_token), 403, "M_FORBIDDEN")
        self.assert_error(self.context(event_id, room_id="!nope:test"), 403, "M_FORBIDDEN")
        self.assert_error(self.context(event_id, limit="-2"), 400, "M_INVALID_PARAM")
        self.assert_error(self.context(event_id, limit="x"), 400, "M_INVALID_PARAM")
        channel = self.make_request(
            "GET", f"{CLIENT}/rooms/{self.room_id}/context/{event_id}?filter=%7Bnope",
            access_token=self.alice_token)
        self.assert_error(channel, 400, "M_NOT_JSON")
        self.assert_error(self.context(event_id, filter={"types": 3}), 400, "M_BAD_JSON")

    def test_context_hidden_event(self) -> None:
        """An event from before a `joined`-visibility joiner's join is 403 to them."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "joined"})
        secret = self.send_message(self.alice_token, self.room_id, "secret")
        self.join(self.bob, self.room_id)
        visible = self.send_message(self.alice_token, self.room_id, "visible")
        self.assert_error(self.context(secret, self.bob_token), 403, "M_FORBIDDEN")
        body = self.context(visible, self.bob_token, limit=10).json_body
        self.assertNotIn(secret, [e["event_id"] for e in body["events_before"]])

    def test_context_redacted(self) -> None:
        """A redacted event is returned pruned."""
        target = self.send_message(self.alice_token, self.room_id, "oops")
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{target}/r1", {},
            access_token=self.alice_token)
        redaction = channel.json_body["event_id"]
        body = self.context(target).json_body
        self.assertEqual(body["event"]["content"], {})
        self.assertEqual(body["event"]["unsigned"]["redacted_because"]["event_id"], redaction)
