"""POST /search (room_events): matching, every request field, paging, permissions, the
index's upkeep (encrypted events, redactions, history) and refusals."""

from __future__ import annotations

import os
from typing import Any

import yaml

from storage.prepare import SCHEMA_DIR
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class SearchTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)

    def search(self, room_events: dict[str, Any], token: str | None = None,
               next_batch: str | None = None) -> Any:
        query = f"?next_batch={next_batch}" if next_batch is not None else ""
        return self.make_request("POST", f"{CLIENT}/search{query}",
                                 {"search_categories": {"room_events": room_events}},
                                 access_token=token or self.alice_token)

    def found(self, room_events: dict[str, Any], token: str | None = None,
              next_batch: str | None = None) -> dict[str, Any]:
        channel = self.search(room_events, token, next_batch)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body["search_categories"]["room_events"]
        return body

    def ids(self, room_events: dict[str, Any], token: str | None = None) -> list[str]:
        return [r["result"]["event_id"] for r in self.found(room_events, token)["results"]]

    def send(self, token: str, content: dict[str, Any], event_type: str = "m.room.message",
             room_id: str | None = None) -> str:
        self._n = getattr(self, "_n", 0) + 1
        self.reactor.advance(1)
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id or self.room_id}/send/{event_type}/t{self._n}",
            content, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    def text(self, token: str, body: str, room_id: str | None = None) -> str:
        return self.send(token, {"msgtype": "m.text", "body": body}, room_id=room_id)

    # -- matching --

    def test_finds_message_by_word_with_rank_count_highlights(self) -> None:
        """A word of a message body finds it, with a rank, the count and the highlights."""
        hit = self.text(self.alice_token, "The quick brown fox")
        self.text(self.alice_token, "nothing to see")
        body = self.found({"search_term": "fox"})
        self.assertEqual([r["result"]["event_id"] for r in body["results"]], [hit])
        self.assertEqual(body["count"], 1)
        self.assertIn("fox", body["highlights"])
        self.assertIsInstance(body["results"][0]["rank"], float)
        self.assertEqual(body["results"][0]["result"]["content"]["body"],
                         "The quick brown fox")
        self.assertNotIn("next_batch", body)

    def test_all_words_must_match_and_phrase_and_negation(self) -> None:
        """Words are ANDed, a quoted phrase must be adjacent, `-word` excludes."""
        both = self.text(self.alice_token, "red apple pie")
        self.text(self.alice_token, "red car")
        self.assertEqual(self.ids({"search_term": "red apple"}), [both])
        self.assertEqual(self.ids({"search_term": '"apple pie"'}), [both])
        self.assertEqual(self.ids({"search_term": '"pie apple"'}), [])
        self.assertEqual(self.ids({"search_term": "red -car"}), [both])

    def test_name_and_topic_are_searched_and_keys_restrict(self) -> None:
        """m.room.name and m.room.topic are indexed under their keys; `keys` limits."""
        name = self.send_state(self.alice_token, self.room_id, "m.room.name",
                               {"name": "Zebra lounge"})
        topic = self.send_state(self.alice_token, self.room_id, "m.room.topic",
                                {"topic": "zebra facts"})
        msg = self.text(self.alice_token, "a zebra appeared")
        self.assertEqual(set(self.ids({"search_term": "zebra"})), {name, topic, msg})
        self.assertEqual(self.ids({"search_term": "zebra", "keys": ["content.name"]}),
                         [name])
        self.assertEqual(self.ids({"search_term": "zebra", "keys": ["content.topic"]}),
                         [topic])
        self.assertEqual(self.ids({"search_term": "zebra", "keys": ["content.body"]}),
                         [msg])

    def test_hostile_terms_are_plain_text(self) -> None:
        """FTS syntax in the term (quotes, NEAR(, *, :) is searched as words, not run."""
        near = self.text(self.alice_token, "NEAR the shore")
        for term in ['"', 'NEAR(', 'a"b', "x:*", "AND OR NOT", "(((", "\x00", "-", "*"]:
            self.assertEqual(self.search({"search_term": term}).code, 200, term)
        self.assertEqual(self.ids({"search_term": "NEAR("}), [near])
        self.assertEqual(self.ids({"search_term": "-shore"}), [])

    # -- filter --

    def test_filter_rooms_senders_types_url_limit(self) -> None:
        """rooms/not_rooms, senders/not_senders, types/not_types, contains_url, limit."""
        other = self.create_room(self.alice_token)
        a1 = self.text(self.alice_token, "kiwi one")
        b1 = self.text(self.bob_token, "kiwi two")
        o1 = self.text(self.alice_token, "kiwi three", room_id=other)
        img = self.send(self.alice_token, {"msgtype": "m.image", "body": "kiwi picture",
                                           "url": "mxc://test/kiwi"})
        notice = self.send(self.alice_token, {"msgtype": "m.notice", "body": "kiwi note"},
                           event_type="m.room.message")

        def q(flt: dict[str, Any]) -> set[str]:
            return set(self.ids({"search_term": "kiwi", "filter": flt}))

        self.assertEqual(q({"rooms": [other]}), {o1})
        self.assertEqual(q({"not_rooms": [other]}), {a1, b1, img, notice})
        self.assertEqual(q({"senders": [self.bob]}), {b1})
        self.assertEqual(q({"not_senders": [self.alice]}), {b1})
        self.assertEqual(q({"types": ["m.room.*"]}), {a1, b1, o1, img, notice})
        self.assertEqual(q({"not_types": ["m.room.message"]}), set())
        self.assertEqual(q({"contains_url": True}), {img})
        self.assertEqual(q({"contains_url": False}), {a1, b1, o1, notice})
        self.assertEqual(len(q({"limit": 2})), 2)

    def test_time_range_extension(self) -> None:
        """io.axon.from_ts / io.axon.to_ts bound origin_server_ts, inclusive."""
        ids = [self.text(self.alice_token, f"mango {i}") for i in range(3)]
        events = self.hs.get_datastores().events
        ts = [self.get_success(events.get_event(e)).origin_server_ts for e in ids]
        self.assertEqual(set(self.ids({"search_term": "mango",
                                       "filter": {"io.axon.from_ts": ts[1]}})),
                         set(ids[1:]))
        self.assertEqual(set(self.ids({"search_term": "mango",
                                       "filter": {"io.axon.to_ts": ts[1]}})),
                         set(ids[:2]))
        self.assertEqual(self.ids({"search_term": "mango", "filter": {
            "io.axon.from_ts": ts[1], "io.axon.to_ts": ts[1]}}), [ids[1]])
        self.assert_error(self.search({"search_term": "mango",
                                       "filter": {"io.axon.from_ts": "x"}}),
                          400, "M_BAD_JSON")

    # -- ordering and paging --

    def test_order_by_recent_and_rank(self) -> None:
        """`recent` is newest first; `rank` puts the better match first."""
        weak = self.text(self.alice_token, "lemon " + "filler " * 30)
        strong = self.text(self.alice_token, "lemon lemon lemon")
        newest = self.text(self.alice_token, "lemon " + "other " * 30)
        self.assertEqual(self.ids({"search_term": "lemon", "order_by": "recent"}),
                         [newest, strong, weak])
        self.assertEqual(self.ids({"search_term": "lemon"})[0], strong)

    def test_next_batch_pages_through_everything(self) -> None:
        """Following next_batch returns each match once, for both orders."""
        sent = {self.text(self.alice_token, f"plum {i}") for i in range(7)}
        for order in ("recent", "rank"):
            seen: list[str] = []
            batch: str | None = None
            for _ in range(10):
                body = self.found({"search_term": "plum", "order_by": order,
                                   "filter": {"limit": 3}}, next_batch=batch)
                self.assertLessEqual(len(body["results"]), 3)
                seen.extend(r["result"]["event_id"] for r in body["results"])
                batch = body.get("next_batch")
                if batch is None:
                    break
            self.assertEqual(sorted(seen), sorted(sent), order)

    def test_bad_next_batch_refused(self) -> None:
        """A next_batch this server did not give (or of the other order) is 400."""
        for token in ("nonsense", "rank:-1", "recent:abc", "rank:" + "9" * 40):
            self.assert_error(self.search({"search_term": "x"}, next_batch=token),
                              400, "M_INVALID_PARAM")
        self.assert_error(self.search({"search_term": "x", "order_by": "recent"},
                                      next_batch="rank:3"), 400, "M_INVALID_PARAM")

    # -- context, state, groups --

    def test_event_context_with_profile(self) -> None:
        """event_context gives events before/after, tokens and senders' profiles."""
        self.send_state(self.alice_token, self.room_id, "m.room.member",
                        {"membership": "join", "displayname": "Alice A"},
                        state_key=self.alice)
        before = self.text(self.bob_token, "before it")
        hit = self.text(self.alice_token, "the cherry")
        after = self.text(self.bob_token, "after it")
        body = self.found({"search_term": "cherry", "event_context": {
            "before_limit": 1, "after_limit": 1, "include_profile": True}})
        ctx = body["results"][0]["context"]
        self.assertEqual(body["results"][0]["result"]["event_id"], hit)
        self.assertEqual([e["event_id"] for e in ctx["events_before"]], [before])
        self.assertEqual([e["event_id"] for e in ctx["events_after"]], [after])
        self.assertIsInstance(ctx["start"], str)
        self.assertIsInstance(ctx["end"], str)
        self.assertEqual(ctx["profile_info"][self.alice]["displayname"], "Alice A")
        self.assertIn(self.bob, ctx["profile_info"])
        plain = self.found({"search_term": "cherry", "event_context": {}})
        self.assertNotIn("profile_info", plain["results"][0]["context"])
        self.assertEqual(len(plain["results"][0]["context"]["events_before"]), 5)

    def test_include_state_and_groupings(self) -> None:
        """include_state gives each result room's state; groups by room and sender."""
        other = self.create_room(self.bob_token, {"preset": "public_chat"})
        self.join(self.alice, other)
        a = self.text(self.alice_token, "grape here")
        b = self.text(self.bob_token, "grape there", room_id=other)
        body = self.found({"search_term": "grape", "include_state": True, "order_by":
                           "recent", "groupings": {"group_by": [{"key": "room_id"},
                                                                {"key": "sender"}]}})
        self.assertEqual(set(body["state"]), {self.room_id, other})
        types = {e["type"] for e in body["state"][self.room_id]}
        self.assertIn("m.room.create", types)
        rooms = body["groups"]["room_id"]
        self.assertEqual(rooms[other], {"results": [b], "order": 0})
        self.assertEqual(rooms[self.room_id], {"results": [a], "order": 1})
        self.assertEqual(body["groups"]["sender"][self.alice]["results"], [a])
        self.assertNotIn("state", self.found({"search_term": "grape"}))

    # -- who sees what --

    def test_rooms_not_joined_are_not_searched(self) -> None:
        """A user finds nothing from a room they never joined, public or not."""
        self.text(self.alice_token, "secret banana")
        carol = self.register_user("carol")
        carol_token = self.login("carol")
        self.assertEqual(self.ids({"search_term": "banana"}, carol_token), [])
        self.assertEqual(self.ids({"search_term": "banana", "filter": {
            "rooms": [self.room_id]}}, carol_token), [])
        self.join(carol, self.room_id)
        self.assertEqual(len(self.ids({"search_term": "banana"}, carol_token)), 1)

    def test_left_user_sees_only_until_leave(self) -> None:
        """After leaving, a user finds what they saw while joined, not what came later."""
        seen = self.text(self.alice_token, "melon early")
        self.leave(self.bob, self.room_id)
        self.text(self.alice_token, "melon late")
        self.assertEqual(self.ids({"search_term": "melon"}, self.bob_token), [seen])

    def test_history_visibility_joined_hides_earlier_events(self) -> None:
        """With history_visibility `joined`, events before a user's join are not found."""
        room = self.create_room(self.alice_token, {"preset": "private_chat"})
        self.send_state(self.alice_token, room, "m.room.history_visibility",
                        {"history_visibility": "joined"})
        self.text(self.alice_token, "peach before", room_id=room)
        self.invite(self.alice, room, self.bob)
        self.join(self.bob, room)
        after = self.text(self.alice_token, "peach after", room_id=room)
        self.assertEqual(self.ids({"search_term": "peach"}, self.bob_token), [after])

    def test_ignored_users_dropped(self) -> None:
        """Messages of users one ignores are not returned."""
        self.text(self.bob_token, "olive from bob")
        mine = self.text(self.alice_token, "olive from alice")
        channel = self.make_request(
            "PUT", f"{CLIENT}/user/{self.alice}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob: {}}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.ids({"search_term": "olive"}), [mine])

    # -- the index --

    def index_rows(self, event_id: str) -> list[Any]:
        db = self.hs.get_datastores().db
        rows: list[Any] = self.get_success(db.execute(
            "t", "SELECT key, value FROM event_search WHERE event_id = ?", event_id))
        return rows

    def test_encrypted_events_never_indexed(self) -> None:
        """m.room.encrypted events are not indexed, even with a body field."""
        enc = self.send(self.alice_token, {"algorithm": "m.megolm.v1.aes-sha2",
                                           "ciphertext": "xyz", "body": "walnut"},
                        event_type="m.room.encrypted")
        self.assertEqual(self.index_rows(enc), [])
        self.assertEqual(self.ids({"search_term": "walnut"}), [])

    def test_redaction_removes_entry(self) -> None:
        """A redaction deletes its target's index rows; it is no longer found."""
        target = self.text(self.alice_token, "pecan pie")
        self.assertEqual(self.index_rows(target), [("content.body", "pecan pie")])
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{target}/r1", {},
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.index_rows(target), [])
        self.assertEqual(self.ids({"search_term": "pecan"}), [])
        self.assertEqual(self.found({"search_term": "pecan"})["count"], 0)

    def test_history_fill_migration_indexes_existing_events(self) -> None:
        """The upgrade migration indexes events stored before the index existed, except
        redacted and encrypted ones."""
        kept = self.text(self.alice_token, "hazel kept")
        gone = self.text(self.alice_token, "hazel gone")
        self.make_request("PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{gone}/r2", {},
                          access_token=self.alice_token)
        self.send(self.alice_token, {"algorithm": "x", "ciphertext": "y", "body": "hazel"},
                  event_type="m.room.encrypted")
        db = self.hs.get_datastores().db
        suffix = ".sqlite" if db.engine.name == "sqlite3" else ".postgres"
        with open(os.path.join(SCHEMA_DIR, "4", "56_event_search_fill" + suffix)) as f:
            sql = f.read()

        def refill(txn: Any) -> None:
            for sql_stmt in db.engine.full_text.before_delete:
                txn.execute(sql_stmt.replace("WHERE event_id = ?", "WHERE 1 = 1"))
            txn.execute("DELETE FROM event_search")
            for statement in _statements(sql):
                txn.execute(statement)

        self.get_success(db.run_interaction("refill", refill))
        self.assertEqual(self.ids({"search_term": "hazel"}), [kept])

    def test_answers_match_io_axon_openapi(self) -> None:
        """The /search answer and the time-range filter follow docs/api/io.axon.yaml."""
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api",
                               "io.axon.yaml")) as f:
            spec = yaml.safe_load(f)
        op = spec["paths"]["/_matrix/client/v3/search"]["post"]
        self.text(self.alice_token, "fig one")
        self.text(self.alice_token, "fig two")
        request = {"search_term": "fig", "filter": {"limit": 1, "io.axon.from_ts": 0},
                   "event_context": {}, "include_state": True,
                   "groupings": {"group_by": [{"key": "sender"}]}}
        body = {"search_categories": {"room_events": request}}
        _check(op["requestBody"]["content"]["application/json"]["schema"], body, spec)
        channel = self.search(request)
        self.assertEqual(channel.code, 200, channel.result)
        _check(op["responses"]["200"]["content"]["application/json"]["schema"],
               channel.json_body, spec)
        self.assertIn("next_batch", channel.json_body["search_categories"]["room_events"])
        bad = self.search({"search_term": "fig", "filter": {"io.axon.to_ts": 2**53}})
        self.assert_error(bad, 400, "M_BAD_JSON")
        _check(op["responses"]["400"]["content"]["application/json"]["schema"],
               bad.json_body, spec)

    # -- refusals --

    def test_bad_requests_refused(self) -> None:
        """Missing/empty term, bad keys/order/filter/context, oversized limit: 400."""
        self.assert_error(self.search({}), 400, "M_MISSING_PARAM")
        self.assert_error(self.search({"search_term": "  "}), 400, "M_INVALID_PARAM")
        self.assert_error(self.search({"search_term": 5}), 400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "keys": ["content.url"]}),
                          400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "order_by": "best"}),
                          400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "filter": {"rooms": "!a"}}),
                          400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "filter": {"limit": -1}}),
                          400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "filter": {"limit": 101}}),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.search({"search_term": "x", "event_context": {
            "before_limit": 1000}}), 400, "M_BAD_JSON")
        self.assert_error(self.search({"search_term": "x", "groupings": {
            "group_by": [{"key": "type"}]}}), 400, "M_BAD_JSON")
        channel = self.make_request("POST", f"{CLIENT}/search", {},
                                    access_token=self.alice_token)
        self.assert_error(channel, 400, "M_MISSING_PARAM")
        channel = self.make_request("POST", f"{CLIENT}/search",
                                    {"search_categories": {"room_events": {
                                        "search_term": "x"}}})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_no_room_events_category(self) -> None:
        """A request without room_events gets an empty search_categories."""
        channel = self.make_request("POST", f"{CLIENT}/search", {"search_categories": {}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"search_categories": {}})


_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str,
                          "integer": int, "number": (int, float), "boolean": bool}


def _check(schema: dict[str, Any], value: Any, root: dict[str, Any]) -> None:
    """The parts of JSON Schema the io.axon document uses (jsonschema is not installed):
    $ref, allOf, type, required, properties, items, minimum, maximum."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        _check(node, value, root)
    for sub in schema.get("allOf", []):
        _check(sub, value, root)
    if "type" in schema:
        assert isinstance(value, _TYPES[schema["type"]]), (schema, value)
        assert not (schema["type"] in ("integer", "number") and isinstance(value, bool))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, (key, value)
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check(sub, value[key], root)
    if isinstance(value, list) and "items" in schema:
        for item in value:
            _check(schema["items"], item, root)
    if "minimum" in schema:
        assert value >= schema["minimum"]
    if "maximum" in schema:
        assert value <= schema["maximum"]


def _statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
