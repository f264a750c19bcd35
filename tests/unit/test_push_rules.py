"""Push rule evaluation (client-server-api/modules/push.md), with the spec's examples."""

from __future__ import annotations

import unittest
from typing import Any

from homeserver.push_rules import (
    DEFAULT_RULES,
    KINDS,
    DefaultOverride,
    PushRule,
    check_actions,
    check_conditions,
    compile_condition,
    compile_ruleset,
    evaluate,
    make_event_context,
    merge_rules,
    rules_to_json,
    split_key,
    summarise_actions,
    user_context,
)

ALICE = "@alice:example.org"


def event(content: dict[str, Any] | None = None, event_type: str = "m.room.message",
          sender: str = "@example:example.org", room_id: str = "!room:example.org",
          state_key: str | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": event_type, "sender": sender, "room_id": room_id,
                          "event_id": "$e", "content": content or {}}
    if state_key is not None:
        ev["state_key"] = state_key
    return ev


def matches(cond: dict[str, Any], ev: dict[str, Any], member_count: int = 5,
            sender_level: float = 0, levels: dict[str, Any] | None = None,
            display_name: str | None = None) -> bool:
    ctx = make_event_context(ev, member_count, sender_level, levels)
    return compile_condition(cond)(ctx, user_context(ALICE, display_name))


def first_rule(ev: dict[str, Any], member_count: int = 5, sender_level: float = 0,
               user_rules: tuple[PushRule, ...] = (),
               overrides: dict[tuple[str, str], DefaultOverride] | None = None,
               display_name: str | None = None, levels: dict[str, Any] | None = None
               ) -> str | None:
    rules = compile_ruleset(merge_rules(user_rules, overrides or {}))
    ctx = make_event_context(ev, member_count, sender_level, levels)
    rule = evaluate(rules, ctx, user_context(ALICE, display_name))
    return rule.rule_id if rule else None


class EventMatchTestCase(unittest.TestCase):
    def test_spec_topic_example(self) -> None:
        """`lunc?*` on content.topic: whole-value, case-insensitive glob."""
        cond = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}
        for topic in ("Lunch plans", "LUNCH"):
            self.assertTrue(matches(cond, event({"topic": topic}, "m.room.topic", state_key="")),
                            topic)
        for topic in (" lunch", "lunc", None, 5):
            self.assertFalse(matches(cond, event({"topic": topic}, "m.room.topic",
                                                 state_key="")), topic)
        self.assertFalse(matches(cond, event({}, "m.room.topic")))

    def test_spec_body_example(self) -> None:
        """`ex*ple` on content.body matches a substring between word boundaries."""
        cond = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}
        for body in ("An example event.", "exple", "An exciting triple-whammy"):
            self.assertTrue(matches(cond, event({"body": body})), body)
        for body in ("Anexample", "examples", "example_x"):
            self.assertFalse(matches(cond, event({"body": body})), body)

    def test_body_word_boundaries(self) -> None:
        """Word boundaries are non-[A-Za-z0-9_] characters or the ends of the value."""
        cond = {"kind": "event_match", "key": "content.body", "pattern": "cake"}
        for body in ("cake", "I like cake!", "CAKE time", "(cake)", "tea,cake"):
            self.assertTrue(matches(cond, event({"body": body})), body)
        for body in ("cakes", "pancake", "cake_shop", "cake2"):
            self.assertFalse(matches(cond, event({"body": body})), body)

    def test_question_mark_and_regex_characters(self) -> None:
        """`?` is one character; regex metacharacters are literals."""
        cond = {"kind": "event_match", "key": "type", "pattern": "m.room.?essage"}
        self.assertTrue(matches(cond, event()))
        self.assertFalse(matches(cond, event(event_type="m.roomXmessage")))
        self.assertFalse(matches({"kind": "event_match", "key": "type", "pattern": "m.room.??"},
                                 event()))

    def test_dotted_key_escaping(self) -> None:
        """`\\.` addresses a property whose name contains a dot."""
        ev = event({"m.relates_to": {"rel_type": "m.thread"}, "m": {"relates_to": "no"}})
        self.assertTrue(matches({"kind": "event_match", "key": "content.m\\.relates_to.rel_type",
                                 "pattern": "m.thread"}, ev))
        self.assertTrue(matches({"kind": "event_match", "key": "content.m.relates_to",
                                 "pattern": "no"}, ev))
        self.assertEqual(split_key("content.m\\.relates_to.x"), ["content", "m.relates_to", "x"])
        self.assertEqual(split_key("content.m\\\\foo"), ["content", "m\\foo"])
        self.assertEqual(split_key("content.m\\xfoo"), ["content", "m\\xfoo"])
        self.assertTrue(matches({"kind": "event_match", "key": "content.m\\\\foo",
                                 "pattern": "v"}, event({"m\\foo": "v"})))
        self.assertTrue(matches({"kind": "event_match", "key": "content.m\\xfoo",
                                 "pattern": "v"}, event({"m\\xfoo": "v"})))

    def test_malformed_conditions_never_match(self) -> None:
        """Unknown kinds and missing parameters make a condition never match."""
        ev = event({"body": "x"})
        for cond in ({"kind": "unknown_kind"}, {"kind": "event_match", "key": "type"},
                     {"kind": "event_match", "pattern": "*"},
                     {"kind": "event_property_is", "key": "type"},
                     {"kind": "room_member_count", "is": "abc"},
                     {"kind": "room_member_count"},
                     {"kind": "sender_notification_permission"}):
            self.assertFalse(matches(cond, ev, sender_level=100), cond)


class PropertyTestCase(unittest.TestCase):
    def test_spec_event_property_is_example(self) -> None:
        """`content.m\\.federate` is true: exact type (no "true", no 1)."""
        cond = {"kind": "event_property_is", "key": "content.m\\.federate", "value": True}
        self.assertTrue(matches(cond, event({"m.federate": True}, "m.room.create",
                                            state_key="")))
        for value in ("true", 1, False, None):
            self.assertFalse(matches(cond, event({"m.federate": value})), value)

    def test_property_is_null_and_integers(self) -> None:
        """null matches null only; 1 does not match true."""
        self.assertTrue(matches({"kind": "event_property_is", "key": "content.x",
                                 "value": None}, event({"x": None})))
        self.assertFalse(matches({"kind": "event_property_is", "key": "content.x",
                                  "value": None}, event({})))
        self.assertTrue(matches({"kind": "event_property_is", "key": "content.x",
                                 "value": 1}, event({"x": 1})))
        self.assertFalse(matches({"kind": "event_property_is", "key": "content.x",
                                  "value": 1}, event({"x": True})))

    def test_spec_event_property_contains_example(self) -> None:
        """alt_aliases contains an exact value; partial values and non-arrays do not match."""
        cond = {"kind": "event_property_contains", "key": "content.alt_aliases",
                "value": "#myroom:example.com"}
        ev = event({"alias": "#somewhere:localhost",
                    "alt_aliases": ["#somewhere:example.org", "#myroom:example.com"]},
                   "m.room.canonical_alias", state_key="")
        self.assertTrue(matches(cond, ev))
        self.assertFalse(matches({**cond, "value": ":example.com"}, ev))
        self.assertFalse(matches(cond, event({"alt_aliases": "#myroom:example.com"})))


class OtherConditionsTestCase(unittest.TestCase):
    def test_room_member_count(self) -> None:
        """`is` with each operator; no operator means ==."""
        cases = {"2": (2, 3), "==2": (2, 1), "<3": (2, 3), ">3": (4, 3), "<=3": (3, 4),
                 ">=3": (3, 2)}
        for spec, (yes, no) in cases.items():
            cond = {"kind": "room_member_count", "is": spec}
            self.assertTrue(matches(cond, event(), member_count=yes), spec)
            self.assertFalse(matches(cond, event(), member_count=no), spec)

    def test_sender_notification_permission(self) -> None:
        """Needs the `notifications` level (default 50) for the key."""
        cond = {"kind": "sender_notification_permission", "key": "room"}
        self.assertTrue(matches(cond, event(), sender_level=50))
        self.assertFalse(matches(cond, event(), sender_level=49))
        self.assertTrue(matches(cond, event(), sender_level=10, levels={"room": 10}))
        self.assertFalse(matches(cond, event(), sender_level=float("inf") * 0 + 0,
                                 levels={"room": 1}))
        self.assertTrue(matches(cond, event(), sender_level=float("inf")))

    def test_contains_display_name(self) -> None:
        """The display name as a whole word in the body, case-insensitively."""
        cond = {"kind": "contains_display_name"}
        self.assertTrue(matches(cond, event({"body": "hey Alice Smith!"}),
                                display_name="alice smith"))
        self.assertFalse(matches(cond, event({"body": "hey Alicesmith"}),
                                 display_name="Alice"))
        self.assertFalse(matches(cond, event({"body": "hey Alice"}), display_name=None))
        self.assertFalse(matches(cond, event({"body": "a*b"}), display_name="a.b"))
        self.assertTrue(matches(cond, event({"body": "ping a.b now"}), display_name="a.b"))


class DefaultRulesTestCase(unittest.TestCase):
    def test_order_and_shape(self) -> None:
        """The ruleset lists every kind; master first; defaults flagged."""
        rules = rules_to_json(merge_rules((), {}), ALICE)["global"]
        self.assertEqual(list(rules), list(KINDS))
        override_ids = [r["rule_id"] for r in rules["override"]]
        self.assertEqual(override_ids, [
            ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
            ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
            ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
            ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"])
        self.assertEqual([r["rule_id"] for r in rules["underride"]], [
            ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
            ".m.rule.message", ".m.rule.encrypted"])
        self.assertEqual(rules["content"], [{
            "rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True,
            "pattern": "alice",
            "actions": ["notify", {"set_tweak": "sound", "value": "default"},
                        {"set_tweak": "highlight"}]}])
        master = rules["override"][0]
        self.assertEqual(master, {"rule_id": ".m.rule.master", "default": True,
                                  "enabled": False, "conditions": [], "actions": []})
        invite = rules["override"][2]
        self.assertEqual(invite["conditions"][2],
                         {"kind": "event_match", "key": "state_key", "pattern": ALICE})
        mention = rules["override"][4]
        self.assertEqual(mention["conditions"], [{
            "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
            "value": ALICE}])

    def test_plain_messages(self) -> None:
        """One-to-one rooms use .m.rule.room_one_to_one, bigger rooms .m.rule.message."""
        self.assertEqual(first_rule(event({"body": "hi"}), member_count=2),
                         ".m.rule.room_one_to_one")
        self.assertEqual(first_rule(event({"body": "hi"}), member_count=3), ".m.rule.message")
        self.assertEqual(first_rule(event({"ciphertext": "x"}, "m.room.encrypted"),
                                    member_count=2), ".m.rule.encrypted_room_one_to_one")
        self.assertEqual(first_rule(event({}, "m.call.invite")), ".m.rule.call")
        self.assertIsNone(first_rule(event({}, "m.room.topic", state_key="")))

    def test_mentions(self) -> None:
        """m.mentions user_ids and room (with permission) highlight."""
        ev = event({"body": "yo", "m.mentions": {"user_ids": [ALICE]}})
        self.assertEqual(first_rule(ev), ".m.rule.is_user_mention")
        room = event({"body": "all", "m.mentions": {"room": True}})
        self.assertEqual(first_rule(room, sender_level=50), ".m.rule.is_room_mention")
        self.assertEqual(first_rule(room, sender_level=0), ".m.rule.message")

    def test_legacy_mentions_skipped_with_m_mentions(self) -> None:
        """Body mentions (localpart, display name, @room) count only without m.mentions."""
        self.assertEqual(first_rule(event({"body": "hi alice"})), ".m.rule.contains_user_name")
        self.assertEqual(first_rule(event({"body": "hi Ally"}), display_name="Ally"),
                         ".m.rule.contains_display_name")
        self.assertEqual(first_rule(event({"body": "@room hi"}), sender_level=100),
                         ".m.rule.roomnotif")
        with_mentions = {"body": "hi alice @room", "m.mentions": {}}
        self.assertEqual(first_rule(event(with_mentions), sender_level=100),
                         ".m.rule.message")

    def test_suppressions(self) -> None:
        """Notices, edits, reactions, member events and ACLs do not notify."""
        cases = [
            (event({"msgtype": "m.notice", "body": "bot"}), ".m.rule.suppress_notices"),
            (event({"body": "* fix", "m.relates_to": {"rel_type": "m.replace",
                                                     "event_id": "$x"}}),
             ".m.rule.suppress_edits"),
            (event({}, "m.reaction"), ".m.rule.reaction"),
            (event({"membership": "join"}, "m.room.member", state_key="@bob:x"),
             ".m.rule.member_event"),
            (event({}, "m.room.server_acl", state_key=""), ".m.rule.room.server_acl"),
        ]
        for ev, rule_id in cases:
            self.assertEqual(first_rule(ev), rule_id)
            rules = compile_ruleset(merge_rules((), {}))
            hit = evaluate(rules, make_event_context(ev, 5, 0), user_context(ALICE))
            assert hit is not None
            self.assertFalse(hit.actions.notify)

    def test_invite_and_tombstone(self) -> None:
        """An invite for the user notifies; a tombstone highlights."""
        invite = event({"membership": "invite"}, "m.room.member", state_key=ALICE)
        self.assertEqual(first_rule(invite), ".m.rule.invite_for_me")
        other = event({"membership": "invite"}, "m.room.member", state_key="@bob:x")
        self.assertEqual(first_rule(other), ".m.rule.member_event")
        tomb = event({"body": "moved"}, "m.room.tombstone", state_key="")
        self.assertEqual(first_rule(tomb), ".m.rule.tombstone")

    def test_master_and_user_rules(self) -> None:
        """Enabled master beats everything; user rules come before default ones."""
        ev = event({"body": "hi", "m.mentions": {"user_ids": [ALICE]}})
        master_on = {("override", ".m.rule.master"): DefaultOverride(enabled=True)}
        self.assertEqual(first_rule(ev, overrides=master_on), ".m.rule.master")
        mute_room = PushRule(kind="room", rule_id="!room:example.org", actions=())
        self.assertEqual(first_rule(event({"body": "x"}), user_rules=(mute_room,)),
                         "!room:example.org")
        mute_sender = PushRule(kind="sender", rule_id="@example:example.org", actions=())
        self.assertEqual(first_rule(event({"body": "x"}), user_rules=(mute_sender,)),
                         "@example:example.org")
        cake = PushRule(kind="content", rule_id="cake", pattern="cake*lie", actions=("notify",))
        self.assertEqual(first_rule(event({"body": "the cake is a lie"}),
                                    user_rules=(cake,)), "cake")
        disabled = PushRule(kind="room", rule_id="!room:example.org", actions=(),
                            enabled=False)
        self.assertEqual(first_rule(event({"body": "x"}), user_rules=(disabled,)),
                         ".m.rule.message")
        off = {("underride", ".m.rule.message"): DefaultOverride(enabled=False)}
        self.assertIsNone(first_rule(event({"body": "x"}), overrides=off))
        loud = {("underride", ".m.rule.message"): DefaultOverride(
            actions=("notify", {"set_tweak": "highlight"}))}
        rules = compile_ruleset(merge_rules((), loud))
        hit = evaluate(rules, make_event_context(event({"body": "x"}), 5, 0),
                       user_context(ALICE))
        assert hit is not None
        self.assertTrue(hit.actions.highlight)

    def test_beer_example(self) -> None:
        """The spec's override example: 'beer' in rooms of at most 10 members."""
        beer = PushRule(kind="override", rule_id="beer", conditions=(
            {"kind": "event_match", "key": "content.body", "pattern": "beer"},
            {"kind": "room_member_count", "is": "<=10"}),
            actions=("notify", {"set_tweak": "sound", "value": "beeroclock.wav"}))
        self.assertEqual(first_rule(event({"body": "Beer time?"}), member_count=10,
                                    user_rules=(beer,)), "beer")
        self.assertEqual(first_rule(event({"body": "Beer time?"}), member_count=11,
                                    user_rules=(beer,)), ".m.rule.message")

    def test_default_rules_table(self) -> None:
        """Every default rule ID starts with a dot and is marked default."""
        for (kind, rule_id), rule in DEFAULT_RULES.items():
            self.assertTrue(rule_id.startswith("."))
            self.assertTrue(rule.default)
            self.assertIn(kind, KINDS)


class ActionsTestCase(unittest.TestCase):
    def test_summarise(self) -> None:
        """highlight without value is true; legacy actions are ignored."""
        a = summarise_actions(["notify", {"set_tweak": "highlight"}, "coalesce"])
        self.assertEqual((a.notify, a.highlight), (True, True))
        a = summarise_actions(["dont_notify"])
        self.assertEqual((a.notify, a.highlight), (False, False))
        a = summarise_actions(["notify", {"set_tweak": "highlight", "value": False},
                               {"set_tweak": "sound", "value": "ding"}])
        self.assertEqual((a.notify, a.highlight, a.tweaks["sound"]), (True, False, "ding"))
        self.assertFalse(summarise_actions([]).notify)

    def test_check_actions_and_conditions(self) -> None:
        """Unknown actions and malformed conditions are refused."""
        check_actions(["notify", "dont_notify", "coalesce", {"set_tweak": "sound"}])
        for bad in ("notify", ["explode"], [{"value": 1}], [{"set_tweak": 1}], [3]):
            with self.assertRaises(ValueError):
                check_actions(bad)
        check_conditions([{"kind": "whatever"}])
        for bad_c in ({}, [1], [{"key": "x"}], [{"kind": 2}]):
            with self.assertRaises(ValueError):
                check_conditions(bad_c)
