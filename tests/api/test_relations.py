"""Relations and threads (issue 12): `/relations`, `/threads`, the bundled aggregations
on every path that serves events, and redaction removing children."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import storage
from tests.api.room_helpers import CLIENT as C
from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase

V1 = "/_matrix/client/v1"


class RelationsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        for name in ("alice", "bob", "carol"):
            self.register_user(name)
        self.alice, self.bob, self.carol = (self.login(n) for n in ("alice", "bob", "carol"))
        self.room = self.create_room(self.alice, {"preset": "public_chat"})
        self.join("@bob:test", self.room)
        self.root = self.send_message(self.alice, self.room, "root")

    # -- helpers --

    def send(self, token: str, content: dict[str, Any], event_type: str = "m.room.message",
             room: str | None = None) -> str:
        self._txn = getattr(self, "_txn", 0) + 1
        self.reactor.advance(0.01)
        channel = self.make_request(
            "PUT", f"{C}/rooms/{room or self.room}/send/{event_type}/t{self._txn}", content,
            access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    def reply(self, token: str, root: str, body: str = "reply") -> str:
        return self.send(token, {"msgtype": "m.text", "body": body,
                                 "m.relates_to": {"rel_type": "m.thread", "event_id": root}})

    def edit(self, token: str, target: str, body: str) -> str:
        return self.send(token, {"msgtype": "m.text", "body": f"* {body}",
                                 "m.new_content": {"msgtype": "m.text", "body": body},
                                 "m.relates_to": {"rel_type": "m.replace", "event_id": target}})

    def react(self, token: str, target: str, key: str = "+1") -> str:
        return self.send(token, {"m.relates_to": {"rel_type": "m.annotation",
                                                  "event_id": target, "key": key}},
                         event_type="m.reaction")

    def get(self, path: str, token: str | None = None, code: int = 200) -> Any:
        channel = self.make_request("GET", path, access_token=token or self.alice)
        self.assertEqual(channel.code, code, channel.result)
        return channel.json_body

    def relations(self, query: str = "", suffix: str = "", event: str | None = None,
                  token: str | None = None) -> Any:
        return self.get(f"{V1}/rooms/{self.room}/relations/{event or self.root}{suffix}"
                        f"{'?' + query if query else ''}", token)

    def redact(self, event_id: str) -> None:
        self._txn = getattr(self, "_txn", 0) + 1
        channel = self.make_request(
            "PUT", f"{C}/rooms/{self.room}/redact/{event_id}/r{self._txn}", {},
            access_token=self.alice)
        self.assertEqual(channel.code, 200, channel.result)

    def event_json(self, event_id: str, token: str | None = None) -> Any:
        return self.get(f"{C}/rooms/{self.room}/event/{event_id}", token)

    # -- /relations --

    def test_relations_newest_first_with_paging(self) -> None:
        """Children come newest first; next_batch pages on until the oldest, and dir=f
        gives them oldest first."""
        children = [self.reply(self.bob, self.root, f"r{i}") for i in range(3)]
        page = self.relations("limit=2")
        self.assertEqual([e["event_id"] for e in page["chunk"]], children[:0:-1])
        rest = self.relations(f"limit=2&from={urllib.parse.quote(page['next_batch'])}")
        self.assertEqual([e["event_id"] for e in rest["chunk"]], children[:1])
        self.assertNotIn("next_batch", rest)
        self.assertEqual(rest["prev_batch"], page["next_batch"])
        forwards = self.relations("dir=f")
        self.assertEqual([e["event_id"] for e in forwards["chunk"]], children)

    def test_relations_filtered_by_type(self) -> None:
        """The relType and eventType path segments filter; an unknown type is empty."""
        reply = self.reply(self.bob, self.root)
        reaction = self.react(self.bob, self.root)
        self.assertEqual([e["event_id"] for e in self.relations(suffix="/m.thread")["chunk"]],
                         [reply])
        self.assertEqual(
            [e["event_id"] for e in self.relations(suffix="/m.annotation/m.reaction")["chunk"]],
            [reaction])
        self.assertEqual(self.relations(suffix="/m.annotation/m.room.message")["chunk"], [])
        self.assertEqual(self.relations(suffix="/org.example.nothing")["chunk"], [])

    def test_recurse_follows_relations_of_relations(self) -> None:
        """recurse=true also returns a reaction to a thread reply, and says its depth."""
        reply = self.reply(self.bob, self.root)
        reaction = self.react(self.alice, reply)
        plain = self.relations()
        self.assertEqual([e["event_id"] for e in plain["chunk"]], [reply])
        self.assertNotIn("recursion_depth", plain)
        deep = self.relations("recurse=true")
        self.assertEqual([e["event_id"] for e in deep["chunk"]], [reaction, reply])
        self.assertEqual(deep["recursion_depth"], 3)

    def test_relation_from_another_room_is_not_served(self) -> None:
        """A child in another room that names this room's event is never listed."""
        other = self.create_room(self.alice)
        self.send(self.alice, {"msgtype": "m.text", "body": "x", "m.relates_to": {
            "rel_type": "m.thread", "event_id": self.root}}, room=other)
        self.assertEqual(self.relations()["chunk"], [])
        self.assertNotIn("m.relations", self.event_json(self.root)["unsigned"])

    def test_refusals(self) -> None:
        """Outsiders get 403, unknown events and events of other rooms 404, bad tokens,
        directions and negative limits 400; an oversized limit is clamped."""
        other = self.create_room(self.alice)
        elsewhere = self.send_message(self.alice, other, "elsewhere")
        base = f"{V1}/rooms/{self.room}/relations"
        private = self.create_room(self.alice)
        self.assertEqual(self.get(f"{V1}/rooms/{private}/relations/{self.root}", self.carol,
                                  403)["errcode"], "M_FORBIDDEN")
        self.assertEqual(self.get(f"{base}/$nope", code=404)["errcode"], "M_NOT_FOUND")
        self.assertEqual(self.get(f"{base}/{elsewhere}", code=404)["errcode"], "M_NOT_FOUND")
        self.assertEqual(self.get(f"{base}/{self.root}?from=garbage", code=400)["errcode"],
                         "M_INVALID_PARAM")
        self.get(f"{base}/{self.root}?dir=x", code=400)
        self.get(f"{base}/{self.root}?limit=-1", code=400)
        self.get(f"{base}/{self.root}?recurse=maybe", code=400)
        self.get(f"{base}/{self.root}?limit=100000")
        self.get(f"{V1}/rooms/{private}/threads", self.carol, 403)
        self.get(f"{V1}/rooms/{self.room}/threads?include=mine", code=400)
        self.get(f"{V1}/rooms/{self.room}/threads?from=%00", code=400)

    # -- bundled aggregations --

    def test_edit_bundled_on_every_path(self) -> None:
        """The newest valid edit is bundled whole on /event, /messages, /context, /sync
        and /relations; someone else's edit is ignored."""
        self.edit(self.alice, self.root, "first")
        newest = self.edit(self.alice, self.root, "second")
        self.edit(self.bob, self.root, "not allowed")
        # a child so that the root shows up in /relations of something
        served = [
            self.event_json(self.root),
            next(e for e in self.get(f"{C}/rooms/{self.room}/messages?dir=b&limit=20")["chunk"]
                 if e["event_id"] == self.root),
            self.get(f"{C}/rooms/{self.room}/context/{self.root}")["event"],
            next(e for e in self.get(f"{C}/sync")["rooms"]["join"][self.room]["timeline"]
                 ["events"] if e["event_id"] == self.root),
        ]
        for event in served:
            edit = event["unsigned"]["m.relations"]["m.replace"]
            self.assertEqual(edit["event_id"], newest)
            self.assertEqual(edit["content"]["m.new_content"]["body"], "second")
            self.assertEqual(event["content"]["body"], "root")

    def test_edit_validity_rules(self) -> None:
        """Edits of state events, edits without m.new_content and edits of edits are not
        bundled."""
        topic = self.send_state(self.alice, self.room, "m.room.topic", {"topic": "t"})
        self.send(self.alice, {"topic": "u", "m.new_content": {"topic": "u"},
                               "m.relates_to": {"rel_type": "m.replace", "event_id": topic}},
                  event_type="m.room.topic")
        self.send(self.alice, {"msgtype": "m.text", "body": "no new content",
                               "m.relates_to": {"rel_type": "m.replace", "event_id": self.root}})
        first = self.edit(self.alice, self.root, "fine")
        self.edit(self.alice, first, "edit of an edit")
        self.assertNotIn("m.relations", self.event_json(topic)["unsigned"])
        self.assertEqual(self.event_json(self.root)["unsigned"]["m.relations"]["m.replace"]
                         ["event_id"], first)
        self.assertNotIn("m.relations", self.event_json(first)["unsigned"])

    def test_thread_aggregation(self) -> None:
        """A root carries the reply count, the newest reply (with its own edit) and
        whether the requesting user took part."""
        self.reply(self.bob, self.root, "one")
        last = self.reply(self.bob, self.root, "two")
        self.edit(self.bob, last, "two, edited")
        as_bob = self.event_json(self.root, self.bob)["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual(as_bob["count"], 2)
        self.assertTrue(as_bob["current_user_participated"])
        self.assertEqual(as_bob["latest_event"]["event_id"], last)
        self.assertEqual(as_bob["latest_event"]["unsigned"]["m.relations"]["m.replace"]
                         ["content"]["m.new_content"]["body"], "two, edited")
        self.join("@carol:test", self.room)
        as_carol = self.event_json(self.root, self.carol)["unsigned"]["m.relations"]
        self.assertFalse(as_carol["m.thread"]["current_user_participated"])
        # the root's sender participates without replying
        self.assertTrue(self.event_json(self.root)["unsigned"]["m.relations"]["m.thread"]
                        ["current_user_participated"])

    def test_thread_aggregation_leaves_out_ignored_users(self) -> None:
        """Replies by a user the reader ignores are not counted nor shown as newest."""
        self.join("@carol:test", self.room)
        mine = self.reply(self.carol, self.root, "carol")
        self.reply(self.bob, self.root, "bob")
        channel = self.make_request(
            "PUT", f"{C}/user/@alice:test/account_data/m.ignored_user_list",
            {"ignored_users": {"@bob:test": {}}}, access_token=self.alice)
        self.assertEqual(channel.code, 200, channel.result)
        thread = self.event_json(self.root)["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, mine))

    def test_references_and_annotations(self) -> None:
        """m.reference children are bundled as a chunk of IDs; annotations are not."""
        ref = self.send(self.bob, {"msgtype": "m.text", "body": "see",
                                   "m.relates_to": {"rel_type": "m.reference",
                                                    "event_id": self.root}})
        self.react(self.bob, self.root)
        relations = self.event_json(self.root)["unsigned"]["m.relations"]
        self.assertEqual(relations, {"m.reference": {"chunk": [{"event_id": ref}]}})

    def test_redacted_child_leaves_aggregations(self) -> None:
        """Redacting a reply or an edit removes it from the root's aggregations and from
        /relations; a redacted root carries none."""
        first = self.reply(self.bob, self.root, "one")
        second = self.reply(self.bob, self.root, "two")
        edit = self.edit(self.alice, self.root, "edited")
        self.redact(second)
        self.redact(edit)
        relations = self.event_json(self.root)["unsigned"]["m.relations"]
        self.assertNotIn("m.replace", relations)
        self.assertEqual(relations["m.thread"]["count"], 1)
        self.assertEqual(relations["m.thread"]["latest_event"]["event_id"], first)
        self.assertEqual([e["event_id"] for e in self.relations()["chunk"]], [first])
        self.redact(self.root)
        self.assertNotIn("m.relations", self.event_json(self.root)["unsigned"])

    # -- /threads --

    def test_threads_by_latest_activity(self) -> None:
        """Roots are listed newest activity first, paged with next_batch, and
        include=participated keeps the threads the user started or replied in."""
        other_root = self.send_message(self.bob, self.room, "bob's root")
        third_root = self.send_message(self.bob, self.room, "quiet root")
        self.reply(self.bob, third_root)
        self.reply(self.bob, self.root)
        self.reply(self.bob, other_root)
        base = f"{V1}/rooms/{self.room}/threads"
        page = self.get(f"{base}?limit=2")
        self.assertEqual([e["event_id"] for e in page["chunk"]], [other_root, self.root])
        self.assertEqual(page["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"], 1)
        rest = self.get(f"{base}?limit=2&from={urllib.parse.quote(page['next_batch'])}")
        self.assertEqual([e["event_id"] for e in rest["chunk"]], [third_root])
        self.assertNotIn("next_batch", rest)
        mine = self.get(f"{base}?include=participated")
        self.assertEqual([e["event_id"] for e in mine["chunk"]], [self.root])
        self.join("@carol:test", self.room)
        self.assertEqual(self.get(f"{base}?include=participated", self.carol)["chunk"], [])

    def test_fill_migration_indexes_existing_events(self) -> None:
        """The schema delta that fills the index finds relations already stored, and
        skips redacted ones."""
        reply = self.reply(self.bob, self.root)
        gone = self.reply(self.bob, self.root)
        self.redact(gone)
        pool = self.hs.get_db_pool()
        engine = "postgres" if self.db_engine == "psycopg2" else "sqlite"
        fill = (Path(storage.__file__).parent / "schema" / "4"
                / f"51_event_relations_fill.{engine}").read_text()

        def refill(txn: Any) -> list[Any]:
            txn.execute("DELETE FROM event_relations")
            txn.execute(fill)
            return txn.select_all("SELECT event_id, relates_to_id, rel_type"
                                  " FROM event_relations", ())

        rows = self.get_success(pool.run_interaction("refill", refill))
        self.assertEqual([tuple(r) for r in rows], [(reply, self.root, "m.thread")])

    def test_reference_to_thread_reply_counts_in_thread(self) -> None:
        """A message relating (not by m.thread) to a thread reply notifies in that
        thread's unread count, found through the relation index."""
        reply = self.reply(self.alice, self.root)
        self.send(self.alice, {"msgtype": "m.text", "body": "see above", "m.relates_to": {
            "rel_type": "m.reference", "event_id": reply}})
        threaded = {"room": {"timeline": {"unread_thread_notifications": True}}}
        body = self.get(f"{C}/sync?filter={urllib.parse.quote(json.dumps(threaded))}",
                        self.bob)
        room = body["rooms"]["join"][self.room]
        self.assertEqual(room["unread_thread_notifications"],
                         {self.root: {"notification_count": 2, "highlight_count": 0}})
        self.assertEqual(room["unread_notifications"]["notification_count"], 1)
