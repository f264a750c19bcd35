"""The push rules API: /pushrules, one rule, enabled, actions; ordering; the stream."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT
from tests.harness import HomeserverTestCase

BASE = f"{CLIENT}/pushrules/global"


class PushRulesApiTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def req(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        return self.make_request(method, f"{BASE}{path}", body,
                                 access_token=token or self.token)

    def put_rule(self, path: str, body: Any, token: str | None = None) -> None:
        channel = self.req("PUT", path, body, token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})

    def ids(self, kind: str, token: str | None = None) -> list[str]:
        channel = self.make_request("GET", f"{CLIENT}/pushrules/",
                                    access_token=token or self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return [r["rule_id"] for r in channel.json_body["global"][kind]]

    # -- reading --

    def test_get_all_rules(self) -> None:
        """GET /pushrules/ lists every kind with the server-default rules filled in."""
        channel = self.make_request("GET", f"{CLIENT}/pushrules/", access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        rules = channel.json_body["global"]
        self.assertEqual(set(rules), {"override", "content", "room", "sender", "underride"})
        self.assertEqual(rules["override"][0]["rule_id"], ".m.rule.master")
        self.assertFalse(rules["override"][0]["enabled"])
        self.assertEqual(rules["content"][0]["pattern"], "alice")
        self.assertEqual(rules["room"], [])
        for rule in rules["underride"]:
            self.assertTrue(rule["default"])
            self.assertIn("conditions", rule)
        channel = self.make_request("GET", f"{CLIENT}/pushrules/global/",
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, rules)
        channel = self.req("GET", "/underride/")
        self.assertEqual(channel.json_body, rules["underride"])

    def test_get_one_rule_and_attributes(self) -> None:
        """A default rule, its enabled flag and its actions."""
        channel = self.req("GET", "/underride/.m.rule.message")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {
            "rule_id": ".m.rule.message", "default": True, "enabled": True,
            "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
            "actions": ["notify"]})
        channel = self.req("GET", "/underride/.m.rule.message/enabled")
        self.assertEqual(channel.json_body, {"enabled": True})
        channel = self.req("GET", "/underride/.m.rule.message/actions")
        self.assertEqual(channel.json_body, {"actions": ["notify"]})

    def test_get_errors(self) -> None:
        """Unknown rule 404 M_NOT_FOUND; unknown kind 400; no token 401."""
        self.assert_error(self.req("GET", "/override/nope"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("GET", "/override/nope/enabled"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("GET", "/override/nope/actions"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("GET", "/underride/.m.rule.master"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("GET", "/bogus/.m.rule.master"), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("GET", "/bogus/"), 400, "M_INVALID_PARAM")
        channel = self.make_request("GET", f"{CLIENT}/pushrules/")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    # -- creating, replacing, deleting --

    def test_create_rules_of_each_kind(self) -> None:
        """PUT creates enabled user rules in client format; GET returns them."""
        self.put_rule("/room/!abc:test", {"actions": []})
        self.put_rule("/sender/@spam:test", {"actions": []})
        self.put_rule("/content/cake", {"pattern": "cake", "actions": [
            "notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]})
        self.put_rule("/override/beer", {"conditions": [
            {"kind": "event_match", "key": "content.body", "pattern": "beer"},
            {"kind": "room_member_count", "is": "<=10"}], "actions": ["notify"]})
        self.put_rule("/underride/all", {"actions": ["notify"]})
        channel = self.req("GET", "/room/!abc:test")
        self.assertEqual(channel.json_body, {"rule_id": "!abc:test", "default": False,
                                             "enabled": True, "actions": []})
        channel = self.req("GET", "/content/cake")
        self.assertEqual(channel.json_body, {
            "rule_id": "cake", "default": False, "enabled": True, "pattern": "cake",
            "actions": ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]})
        channel = self.req("GET", "/override/beer")
        self.assertEqual(len(channel.json_body["conditions"]), 2)
        channel = self.req("GET", "/underride/all")
        self.assertEqual(channel.json_body["conditions"], [])
        # user rules come before the defaults of their kind, master stays first
        self.assertEqual(self.ids("override")[:2], [".m.rule.master", "beer"])
        self.assertEqual(self.ids("content")[0], "cake")
        self.assertEqual(self.ids("underride")[0], "all")
        self.assertEqual(self.ids("sender"), ["@spam:test"])
        # another user's rules are their own
        self.assertEqual(self.ids("room", self.bob_token), [])
        self.assert_error(self.req("GET", "/room/!abc:test", token=self.bob_token), 404,
                          "M_NOT_FOUND")

    def test_replace_keeps_place_and_enabled(self) -> None:
        """PUT on an existing rule updates it in place, keeping its enabled flag."""
        self.put_rule("/room/!a:test", {"actions": []})
        self.put_rule("/room/!b:test", {"actions": []})
        self.put_rule("/room/!a:test/enabled", {"enabled": False})
        self.put_rule("/room/!a:test", {"actions": ["notify"]})
        self.assertEqual(self.ids("room"), ["!b:test", "!a:test"])
        channel = self.req("GET", "/room/!a:test")
        self.assertEqual(channel.json_body["actions"], ["notify"])
        self.assertFalse(channel.json_body["enabled"])

    def test_before_and_after(self) -> None:
        """New rules go first; before/after place a rule next to another."""
        for name in ("one", "two", "three"):
            self.put_rule(f"/content/{name}", {"pattern": name, "actions": []})
        user = [i for i in self.ids("content") if not i.startswith(".")]
        self.assertEqual(user, ["three", "two", "one"])
        channel = self.req("PUT", "/content/x?before=one", {"pattern": "x", "actions": []})
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.req("PUT", "/content/y?after=three", {"pattern": "y", "actions": []})
        self.assertEqual(channel.code, 200, channel.result)
        user = [i for i in self.ids("content") if not i.startswith(".")]
        self.assertEqual(user, ["three", "y", "two", "x", "one"])
        # moving an existing rule
        channel = self.req("PUT", "/content/one?before=three", {"pattern": "one",
                                                                "actions": []})
        self.assertEqual(channel.code, 200, channel.result)
        user = [i for i in self.ids("content") if not i.startswith(".")]
        self.assertEqual(user, ["one", "three", "y", "two", "x"])

    def test_before_after_errors(self) -> None:
        """before/after naming no rule of the user's (or a default rule): 400."""
        self.put_rule("/content/one", {"pattern": "one", "actions": []})
        for query in ("?before=nope", "?after=nope", "?before=.m.rule.contains_user_name",
                      "?before=new"):
            channel = self.req("PUT", f"/content/new{query}", {"pattern": "x", "actions": []})
            self.assert_error(channel, 400, "M_UNKNOWN")
        self.assertNotIn("new", self.ids("content"))
        # a rule of another kind does not count
        channel = self.req("PUT", "/room/!r:test?before=one", {"actions": []})
        self.assert_error(channel, 400, "M_UNKNOWN")

    def test_put_errors(self) -> None:
        """Bad kinds, reserved or malformed IDs, bad bodies: 400 with the right code."""
        ok = {"actions": ["notify"]}
        self.assert_error(self.req("PUT", "/bogus/x", ok), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/.m.rule.master", ok), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/.mine", ok), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/a%2Fb", ok), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/a%5Cb", ok), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/x", {}), 400, "M_MISSING_PARAM")
        self.assert_error(self.req("PUT", "/override/x", {"actions": "notify"}), 400,
                          "M_BAD_JSON")
        self.assert_error(self.req("PUT", "/override/x", {"actions": ["explode"]}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/x", {"actions": [{"value": 1}]}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/x", {"actions": [], "conditions": {}}),
                          400, "M_BAD_JSON")
        self.assert_error(self.req("PUT", "/override/x", {"actions": [], "conditions": [{}]}),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/override/x", {"actions": [],
                                                          "conditions": ["x"]}),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/content/x", {"actions": []}), 400,
                          "M_MISSING_PARAM")
        self.assert_error(self.req("PUT", "/content/x", {"actions": [], "pattern": 3}), 400,
                          "M_BAD_JSON")
        self.assert_error(self.req("PUT", "/override/x", b"not json"), 400, "M_NOT_JSON")
        self.assert_error(self.req("PUT", "/override/x", ["notify"]), 400, "M_BAD_JSON")
        self.assertEqual([i for i in self.ids("override") if not i.startswith(".")], [])

    def test_delete(self) -> None:
        """DELETE removes a user rule; unknown and default rules give 404."""
        self.put_rule("/sender/@spam:test", {"actions": []})
        channel = self.req("DELETE", "/sender/@spam:test")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.ids("sender"), [])
        self.assert_error(self.req("DELETE", "/sender/@spam:test"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("DELETE", "/override/.m.rule.master"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("DELETE", "/bogus/x"), 400, "M_INVALID_PARAM")
        self.put_rule("/sender/@spam:test", {"actions": []})
        self.assert_error(self.req("DELETE", "/sender/@spam:test", token=self.bob_token),
                          404, "M_NOT_FOUND")
        self.assertEqual(self.ids("sender"), ["@spam:test"])

    # -- enabled / actions --

    def test_enable_and_actions_of_default_rules(self) -> None:
        """Default rules can be switched off and given other actions, per user."""
        self.put_rule("/override/.m.rule.master/enabled", {"enabled": True})
        channel = self.req("GET", "/override/.m.rule.master")
        self.assertTrue(channel.json_body["enabled"])
        self.assertTrue(channel.json_body["default"])
        self.put_rule("/underride/.m.rule.message/actions",
                      {"actions": ["notify", {"set_tweak": "highlight"}]})
        channel = self.req("GET", "/underride/.m.rule.message/actions")
        self.assertEqual(channel.json_body,
                         {"actions": ["notify", {"set_tweak": "highlight"}]})
        # enabled flag unchanged by setting actions, and bob is unaffected
        channel = self.req("GET", "/underride/.m.rule.message/enabled")
        self.assertEqual(channel.json_body, {"enabled": True})
        channel = self.req("GET", "/override/.m.rule.master/enabled", token=self.bob_token)
        self.assertEqual(channel.json_body, {"enabled": False})
        self.put_rule("/override/.m.rule.master/enabled", {"enabled": False})
        channel = self.req("GET", "/override/.m.rule.master/enabled")
        self.assertEqual(channel.json_body, {"enabled": False})

    def test_enable_and_actions_of_user_rules(self) -> None:
        """A user rule's enabled flag and actions can be changed."""
        self.put_rule("/room/!r:test", {"actions": []})
        self.put_rule("/room/!r:test/enabled", {"enabled": False})
        self.assertEqual(self.req("GET", "/room/!r:test/enabled").json_body,
                         {"enabled": False})
        self.put_rule("/room/!r:test/actions", {"actions": ["notify"]})
        self.assertEqual(self.req("GET", "/room/!r:test/actions").json_body,
                         {"actions": ["notify"]})

    def test_enabled_actions_errors(self) -> None:
        """Unknown rules 404; bad bodies 400."""
        self.assert_error(self.req("PUT", "/room/!r:test/enabled", {"enabled": True}), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/override/.m.rule.nope/enabled",
                                   {"enabled": True}), 404, "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/underride/.m.rule.master/enabled",
                                   {"enabled": True}), 404, "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/room/!r:test/actions", {"actions": []}), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/override/.m.rule.nope/actions", {"actions": []}),
                          404, "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/bogus/x/enabled", {"enabled": True}), 400,
                          "M_INVALID_PARAM")
        path = "/override/.m.rule.master"
        self.assert_error(self.req("PUT", f"{path}/enabled", {"enabled": "yes"}), 400,
                          "M_BAD_JSON")
        self.assert_error(self.req("PUT", f"{path}/enabled", {}), 400, "M_MISSING_PARAM")
        self.assert_error(self.req("PUT", f"{path}/actions", {"actions": ["boom"]}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", f"{path}/actions", {"actions": {}}), 400,
                          "M_BAD_JSON")
        self.assert_error(self.req("PUT", f"{path}/actions", {}), 400, "M_MISSING_PARAM")
        self.assert_error(self.req("PUT", f"{path}/bogus", {}), 404, "M_UNRECOGNIZED")

    # -- the stream --

    def test_changes_advance_the_stream(self) -> None:
        """Each change bumps the push-rules stream, announces it, and is seen by
        push_rules_changed for the user only."""
        handler = self.hs.get_push_rules_handler()
        notifier = self.hs.get_notifier()
        start = handler.get_current_key()
        version = notifier.current_version()
        self.put_rule("/room/!r:test", {"actions": []})
        after_put = handler.get_current_key()
        self.assertGreater(after_put, start)
        self.assertEqual(notifier.positions.get("push_rules"), after_put)
        self.assertTrue(self.get_success(notifier.wait_for_events(self.alice, [], version, 0)))
        self.assertTrue(self.get_success(handler.push_rules_changed(self.alice, start,
                                                                    after_put)))
        self.assertFalse(self.get_success(handler.push_rules_changed(self.bob, start,
                                                                     after_put)))
        self.assertFalse(self.get_success(handler.push_rules_changed(self.alice, after_put,
                                                                     after_put)))
        self.put_rule("/room/!r:test/enabled", {"enabled": False})
        self.put_rule("/room/!r:test/actions", {"actions": ["notify"]})
        self.assertEqual(self.req("DELETE", "/room/!r:test").code, 200)
        self.assertEqual(handler.get_current_key(), after_put + 3)
        content = self.get_success(handler.get_push_rules_for_sync(self.alice))
        self.assertEqual(content["global"]["room"], [])
        self.assertEqual(content["global"]["override"][0]["rule_id"], ".m.rule.master")

    def test_changed_before_startup(self) -> None:
        """Tokens from before this process started are answered from the database."""
        self.put_rule("/room/!r:test", {"actions": []})
        store = self.hs.get_datastores().push_rules
        store._startup_position = 10**9
        self.assertTrue(self.get_success(store.push_rules_changed(self.alice, 0)))
        self.assertFalse(self.get_success(store.push_rules_changed(self.bob, 0)))
        key = self.hs.get_push_rules_handler().get_current_key()
        self.assertFalse(self.get_success(store.push_rules_changed(self.alice, key)))
