"""The redaction algorithm per room version (rooms/v1.md … v12.md, "Redactions")."""

from __future__ import annotations

import copy
import unittest
from typing import Any

import attrs

from homeserver.events import Event
from homeserver.redaction import prune_event, prune_event_dict
from homeserver.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS
ALL = tuple(str(n) for n in range(1, 13))

# A PDU carrying every top-level key the algorithms mention, plus some they do not.
TOP_LEVEL: dict[str, Any] = {
    "event_id": "$e:example.org", "room_id": "!r:example.org", "sender": "@u:example.org",
    "state_key": "", "hashes": {"sha256": "abc"}, "signatures": {"example.org": {"k": "s"}},
    "depth": 4, "prev_events": ["$p"], "prev_state": ["$s"], "auth_events": ["$a"],
    "origin": "example.org", "origin_server_ts": 1234, "membership": "join",
    "unsigned": {"age_ts": 1, "replaces_state": "$old"}, "redacts": "$target", "age_ts": 5,
    "custom": {"x": 1},
}
KEPT_ALWAYS = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
               "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"}
KEPT_BEFORE_V11 = {"prev_state", "origin", "membership"}

THIRD_PARTY_INVITE = {"display_name": "alice", "signed": {"mxid": "@a:x", "token": "t",
                                                          "signatures": {}}}
POWER_LEVELS = {"ban": 50, "events": {"m.room.name": 50}, "events_default": 0, "kick": 50,
                "redact": 50, "state_default": 50, "users": {"@u:example.org": 100},
                "users_default": 0, "invite": 0, "notifications": {"room": 50},
                "historical": 100}
PL_BEFORE_V11 = {k: v for k, v in POWER_LEVELS.items()
                 if k not in ("invite", "notifications", "historical")}
PL_FROM_V11 = {**PL_BEFORE_V11, "invite": 0}
CREATE = {"creator": "@u:example.org", "room_version": "9", "m.federate": False,
          "predecessor": {"room_id": "!old:x"}, "additional_creators": ["@v:x"]}


def versions(first: int, last: int = 12) -> tuple[str, ...]:
    return tuple(str(n) for n in range(first, last + 1))


# (event type, full content, [(versions, expected redacted content), …]) — one row per
# event type with per-version expectations covering v1 … v12.
TABLE: list[tuple[str, dict[str, Any], list[tuple[tuple[str, ...], dict[str, Any]]]]] = [
    ("m.room.member",
     {"membership": "join", "displayname": "Alice", "avatar_url": "mxc://x/y",
      "reason": "hi", "join_authorised_via_users_server": "@admin:example.org",
      "third_party_invite": THIRD_PARTY_INVITE},
     [(versions(1, 8), {"membership": "join"}),
      (versions(9, 10), {"membership": "join",
                         "join_authorised_via_users_server": "@admin:example.org"}),
      (versions(11), {"membership": "join",
                      "join_authorised_via_users_server": "@admin:example.org",
                      "third_party_invite": {"signed": THIRD_PARTY_INVITE["signed"]}})]),
    ("m.room.create", CREATE,
     [(versions(1, 10), {"creator": "@u:example.org"}),
      (versions(11), CREATE)]),
    ("m.room.join_rules",
     {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": "!a:x"}],
      "other": 1},
     [(versions(1, 7), {"join_rule": "restricted"}),
      (versions(8), {"join_rule": "restricted",
                     "allow": [{"type": "m.room_membership", "room_id": "!a:x"}]})]),
    ("m.room.power_levels", POWER_LEVELS,
     [(versions(1, 10), PL_BEFORE_V11), (versions(11), PL_FROM_V11)]),
    ("m.room.aliases", {"aliases": ["#a:example.org"], "other": 1},
     [(versions(1, 5), {"aliases": ["#a:example.org"]}), (versions(6), {})]),
    ("m.room.history_visibility", {"history_visibility": "shared", "other": 1},
     [(ALL, {"history_visibility": "shared"})]),
    ("m.room.redaction", {"redacts": "$target", "reason": "spam"},
     [(versions(1, 10), {}), (versions(11), {"redacts": "$target"})]),
    ("m.room.message", {"msgtype": "m.text", "body": "hello"}, [(ALL, {})]),
    ("m.room.name", {"name": "Room"}, [(ALL, {})]),
    ("m.room.topic", {"topic": "Topic"}, [(ALL, {})]),
    ("m.room.third_party_invite",
     {"display_name": "a", "key_validity_url": "https://x", "public_key": "k"}, [(ALL, {})]),
    ("m.room.guest_access", {"guest_access": "can_join"}, [(ALL, {})]),
    ("m.room.encrypted", {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "c"}, [(ALL, {})]),
]


def pdu(event_type: str, content: Any) -> dict[str, Any]:
    return {**copy.deepcopy(TOP_LEVEL), "type": event_type, "content": copy.deepcopy(content)}


class RedactionTableTestCase(unittest.TestCase):
    def test_table_covers_every_version(self) -> None:
        """Each row of the table gives exactly one expectation for each of v1 … v12."""
        for event_type, _, expectations in TABLE:
            covered = [v for vs, _ in expectations for v in vs]
            self.assertEqual(sorted(covered, key=int), list(ALL), event_type)

    def test_content_per_event_type_and_version(self) -> None:
        """Each event type keeps exactly its version's content keys (v1, v6, v8, v9, v11, v12…)."""
        for event_type, content, expectations in TABLE:
            for room_versions, expected in expectations:
                for version in room_versions:
                    with self.subTest(type=event_type, version=version):
                        pruned = prune_event_dict(pdu(event_type, content), V[version])
                        self.assertEqual(pruned["content"], expected)

    def test_top_level_keys_before_v11(self) -> None:
        """v1–v10 keep the base keys plus `prev_state`, `origin`, `membership`; no `unsigned`."""
        for version in versions(1, 10):
            with self.subTest(version=version):
                pruned = prune_event_dict(pdu("m.room.message", {}), V[version])
                self.assertEqual(set(pruned), KEPT_ALWAYS | KEPT_BEFORE_V11)
                self.assertEqual(pruned["origin"], "example.org")

    def test_top_level_keys_from_v11(self) -> None:
        """v11 and v12 drop `origin`, `membership`, `prev_state` (and never keep `redacts`)."""
        for version in versions(11):
            with self.subTest(version=version):
                pruned = prune_event_dict(pdu("m.room.redaction", {"redacts": "$t"}), V[version])
                self.assertEqual(set(pruned), KEPT_ALWAYS)
                self.assertEqual(pruned["content"], {"redacts": "$t"})

    def test_kept_values_unchanged(self) -> None:
        """Kept top-level values are equal to the originals."""
        pruned = prune_event_dict(pdu("m.room.member", {"membership": "ban"}), V["1"])
        for key in (KEPT_ALWAYS | KEPT_BEFORE_V11) - {"type", "content"}:
            self.assertEqual(pruned[key], TOP_LEVEL[key], key)

    def test_third_party_invite_without_signed(self) -> None:
        """v11: a `third_party_invite` object without `signed` stays as `{}`; a non-object goes."""
        without_signed = pdu("m.room.member", {"membership": "invite",
                                               "third_party_invite": {"display_name": "a"}})
        self.assertEqual(prune_event_dict(without_signed, V["11"])["content"],
                         {"membership": "invite", "third_party_invite": {}})
        not_object = pdu("m.room.member", {"membership": "invite", "third_party_invite": "x"})
        self.assertEqual(prune_event_dict(not_object, V["11"])["content"],
                         {"membership": "invite"})
        self.assertEqual(prune_event_dict(without_signed, V["10"])["content"],
                         {"membership": "invite"})

    def test_missing_or_bad_content(self) -> None:
        """A PDU without content, or with non-object content, redacts to `content: {}`."""
        no_content = {k: v for k, v in pdu("m.room.member", {}).items() if k != "content"}
        self.assertEqual(prune_event_dict(no_content, V["10"])["content"], {})
        self.assertEqual(prune_event_dict(pdu("m.room.create", ["x"]), V["11"])["content"], {})

    def test_v12_create_without_room_id(self) -> None:
        """A v12 create event has no `room_id`; redaction does not invent one."""
        create = {k: v for k, v in pdu("m.room.create", CREATE).items() if k != "room_id"}
        pruned = prune_event_dict(create, V["12"])
        self.assertNotIn("room_id", pruned)
        self.assertEqual(pruned["content"], CREATE)

    def test_input_untouched_and_output_independent(self) -> None:
        """The input is not changed, and mutating the output does not reach the input."""
        original = pdu("m.room.power_levels", POWER_LEVELS)
        snapshot = copy.deepcopy(original)
        pruned = prune_event_dict(original, V["11"])
        pruned["content"]["users"]["@evil:x"] = 100
        pruned["signatures"]["other"] = {}
        self.assertEqual(original, snapshot)

    def test_idempotent(self) -> None:
        """Redacting an already redacted event changes nothing, in every version."""
        for event_type, content, _ in TABLE:
            for version in ALL:
                with self.subTest(type=event_type, version=version):
                    once = prune_event_dict(pdu(event_type, content), V[version])
                    self.assertEqual(prune_event_dict(once, V[version]), once)


def make_event(version: str, event_type: str, content: dict[str, Any],
               **extra: Any) -> Event:
    wire = {k: v for k, v in pdu(event_type, content).items() if k != "redacts"}
    wire.update(extra)
    return Event.from_pdu(wire, V[version], event_id="$e:example.org")


class PruneEventTestCase(unittest.TestCase):
    def test_prune_event_content_and_pdu(self) -> None:
        """`prune_event` redacts both `content` and the stored PDU, keeping ID and state key."""
        event = make_event("10", "m.room.member", {"membership": "join", "displayname": "A"})
        pruned = prune_event(event)
        self.assertEqual(dict(pruned.content), {"membership": "join"})
        self.assertEqual(pruned.pdu_json["content"], {"membership": "join"})
        self.assertNotIn("unsigned", pruned.pdu_json)
        self.assertEqual((pruned.event_id, pruned.state_key, pruned.membership),
                         ("$e:example.org", "", "join"))
        self.assertEqual(event.content["displayname"], "A")

    def test_prune_event_redacts_field(self) -> None:
        """A v11 redaction keeps `redacts` (in content); a v10 one loses the top-level key."""
        v11 = make_event("11", "m.room.redaction", {"redacts": "$t", "reason": "x"})
        self.assertEqual(v11.redacts, "$t")
        self.assertEqual(prune_event(v11).redacts, "$t")
        v10 = make_event("10", "m.room.redaction", {"reason": "x"}, redacts="$t")
        self.assertEqual(v10.redacts, "$t")
        pruned = prune_event(v10)
        self.assertIsNone(pruned.redacts)
        self.assertNotIn("redacts", pruned.pdu_json)

    def test_prune_event_keeps_rejection(self) -> None:
        """A rejected event stays rejected after redaction."""
        event = make_event("9", "m.room.message", {"body": "x"})
        rejected = prune_event(attrs.evolve(event, rejected_reason="auth_error"))
        self.assertEqual(rejected.rejected_reason, "auth_error")
        self.assertEqual(dict(rejected.content), {})

    def test_prune_event_without_pdu_json(self) -> None:
        """An `Event` built without its wire form still gets its content redacted."""
        event = Event(event_id="$x", room_id="!r:x", type="m.room.join_rules", state_key="",
                      sender="@u:x", content={"join_rule": "public", "x": 1},
                      prev_event_ids=(), auth_event_ids=(), depth=1, origin_server_ts=0,
                      room_version=V["12"])
        pruned = prune_event(event)
        self.assertEqual(dict(pruned.content), {"join_rule": "public"})
        self.assertEqual(dict(pruned.pdu_json), {})


if __name__ == "__main__":
    unittest.main()
