"""Room aliases: /directory/room/{roomAlias}, /rooms/{roomId}/aliases, and the checks on
m.room.canonical_alias."""

from __future__ import annotations

import urllib.parse
from typing import Any

from federation.client import FederationRequestError
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


def alias_path(alias: str) -> str:
    return f"{CLIENT}/directory/room/{urllib.parse.quote(alias)}"


class DirectoryTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})

    def put_alias(self, alias: str, room_id: str, token: str) -> Any:
        return self.make_request("PUT", alias_path(alias), {"room_id": room_id},
                                 access_token=token)

    def aliases_of(self, room_id: str, token: str) -> Any:
        return self.make_request("GET", f"{CLIENT}/rooms/{room_id}/aliases",
                                 access_token=token)

    # -- PUT --

    def test_create_and_resolve(self) -> None:
        """A member creates an alias; GET (without a token) returns the room and our server."""
        channel = self.put_alias("#fun:test", self.room_id, self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        channel = self.make_request("GET", alias_path("#fun:test"))
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"room_id": self.room_id, "servers": ["test"]})

    def test_create_taken_alias_conflicts(self) -> None:
        """An alias already in use gives 409 M_UNKNOWN (the spec's code) and keeps its room."""
        self.assertEqual(self.put_alias("#fun:test", self.room_id, self.alice_token).code, 200)
        other = self.create_room(self.alice_token)
        self.assert_error(self.put_alias("#fun:test", other, self.alice_token), 409,
                          "M_UNKNOWN")
        channel = self.make_request("GET", alias_path("#fun:test"))
        self.assertEqual(channel.json_body["room_id"], self.room_id)

    def test_create_bad_aliases(self) -> None:
        """Malformed and non-local aliases are 400 M_INVALID_PARAM."""
        for alias in ("fun:test", "#nodomain", "#:test", "#fun:bad domain",
                      "#fun:elsewhere.org"):
            with self.subTest(alias=alias):
                self.assert_error(self.put_alias(alias, self.room_id, self.alice_token),
                                  400, "M_INVALID_PARAM")

    def test_create_unknown_or_bad_room(self) -> None:
        """An unknown room is 404 M_NOT_FOUND; a malformed room ID 400 M_INVALID_PARAM."""
        self.assert_error(self.put_alias("#fun:test", "!nope:test", self.alice_token),
                          404, "M_NOT_FOUND")
        self.assert_error(self.put_alias("#fun:test", "nope", self.alice_token),
                          400, "M_INVALID_PARAM")

    def test_create_bad_bodies(self) -> None:
        """A missing room_id, a wrong type and a non-JSON body get their error codes."""
        cases = [({}, "M_MISSING_PARAM"), ({"room_id": 5}, "M_BAD_JSON"),
                 (b"not json", "M_NOT_JSON"), (b"[]", "M_BAD_JSON")]
        for body, errcode in cases:
            with self.subTest(body=body):
                channel = self.make_request("PUT", alias_path("#fun:test"), body,
                                            access_token=self.alice_token)
                self.assert_error(channel, 400, errcode)

    def test_create_needs_membership_or_admin(self) -> None:
        """A non-member may not create an alias (403); a server admin may."""
        self.assert_error(self.put_alias("#fun:test", self.room_id, self.bob_token), 403,
                          "M_FORBIDDEN")
        self.register_user("root", admin=True)
        root_token = self.login("root")
        self.assertEqual(self.put_alias("#fun:test", self.room_id, root_token).code, 200)

    def test_create_needs_token(self) -> None:
        """PUT without an access token is 401 M_MISSING_TOKEN."""
        channel = self.make_request("PUT", alias_path("#fun:test"), {"room_id": self.room_id})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_create_room_alias_name_resolves(self) -> None:
        """createRoom's room_alias_name creates a resolvable alias."""
        room_id = self.create_room(self.alice_token, {"room_alias_name": "made"})
        channel = self.make_request("GET", alias_path("#made:test"))
        self.assertEqual(channel.json_body["room_id"], room_id)

    # -- GET --

    def test_resolve_errors(self) -> None:
        """Unknown aliases are 404 M_NOT_FOUND, here and (asked over federation) on the
        alias's server; an unreachable server is 502; malformed aliases 400."""
        self.assert_error(self.make_request("GET", alias_path("#none:test")), 404,
                          "M_NOT_FOUND")
        asked: list[tuple[str, Any]] = []

        class RemoteDirectory:
            async def get_json(self, destination: str, path: str, query: Any = None,
                               timeout: float = 60) -> Any:
                asked.append((destination, query))
                if query["room_alias"] == "#known:elsewhere.org":
                    return {"room_id": "!r:elsewhere.org", "servers": ["elsewhere.org"]}
                code = 404 if destination == "elsewhere.org" else None
                raise FederationRequestError(destination, "no", code)

        self.hs._parts["federation_client"] = RemoteDirectory()
        self.assert_error(self.make_request("GET", alias_path("#none:elsewhere.org")), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.make_request("GET", alias_path("#x:down.example")), 502,
                          "M_UNKNOWN")
        channel = self.make_request("GET", alias_path("#known:elsewhere.org"))
        self.assertEqual(channel.json_body, {"room_id": "!r:elsewhere.org",
                                             "servers": ["elsewhere.org"]})
        self.assertEqual(asked[0], ("elsewhere.org", {"room_alias": "#none:elsewhere.org"}))
        self.assert_error(self.make_request("GET", alias_path("none")), 400,
                          "M_INVALID_PARAM")

    # -- DELETE --

    def test_delete_by_alias_creator(self) -> None:
        """The user who made an alias may delete it without room power; it is then gone."""
        self.join(self.bob, self.room_id)
        self.assertEqual(self.put_alias("#bobs:test", self.room_id, self.bob_token).code, 200)
        channel = self.make_request("DELETE", alias_path("#bobs:test"),
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assert_error(self.make_request("GET", alias_path("#bobs:test")), 404,
                          "M_NOT_FOUND")

    def test_delete_by_room_admin(self) -> None:
        """A room admin (power to send m.room.canonical_alias) deletes others' aliases."""
        self.join(self.bob, self.room_id)
        self.assertEqual(self.put_alias("#bobs:test", self.room_id, self.bob_token).code, 200)
        channel = self.make_request("DELETE", alias_path("#bobs:test"),
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)

    def test_delete_forbidden_for_others(self) -> None:
        """Members without power and non-members may not delete others' aliases."""
        self.assertEqual(self.put_alias("#fun:test", self.room_id, self.alice_token).code, 200)
        self.assert_error(self.make_request("DELETE", alias_path("#fun:test"),
                                            access_token=self.bob_token), 403, "M_FORBIDDEN")
        self.join(self.bob, self.room_id)
        self.assert_error(self.make_request("DELETE", alias_path("#fun:test"),
                                            access_token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(self.make_request("GET", alias_path("#fun:test")).code, 200)

    def test_delete_by_server_admin(self) -> None:
        """A server admin who is not in the room may delete any local alias."""
        self.assertEqual(self.put_alias("#fun:test", self.room_id, self.alice_token).code, 200)
        self.register_user("root", admin=True)
        channel = self.make_request("DELETE", alias_path("#fun:test"),
                                    access_token=self.login("root"))
        self.assertEqual(channel.code, 200, channel.result)

    def test_delete_errors(self) -> None:
        """Unknown aliases are 404, malformed ones 400, and a token is required."""
        self.assert_error(self.make_request("DELETE", alias_path("#none:test"),
                                            access_token=self.alice_token), 404, "M_NOT_FOUND")
        self.assert_error(self.make_request("DELETE", alias_path("none"),
                                            access_token=self.alice_token), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.make_request("DELETE", alias_path("#none:test")), 401,
                          "M_MISSING_TOKEN")

    def test_delete_updates_canonical_alias(self) -> None:
        """Deleting the canonical alias removes it from m.room.canonical_alias, both as
        `alias` and from `alt_aliases`, keeping the others."""
        for alias in ("#main:test", "#alt:test", "#alt2:test"):
            self.assertEqual(self.put_alias(alias, self.room_id, self.alice_token).code, 200)
        self.send_state(self.alice_token, self.room_id, "m.room.canonical_alias",
                        {"alias": "#main:test", "alt_aliases": ["#alt:test", "#alt2:test"]})
        self.make_request("DELETE", alias_path("#main:test"), access_token=self.alice_token)
        self.assertEqual(self.state_content(self.room_id, "m.room.canonical_alias"),
                         {"alt_aliases": ["#alt:test", "#alt2:test"]})
        self.make_request("DELETE", alias_path("#alt:test"), access_token=self.alice_token)
        self.assertEqual(self.state_content(self.room_id, "m.room.canonical_alias"),
                         {"alt_aliases": ["#alt2:test"]})
        self.make_request("DELETE", alias_path("#alt2:test"), access_token=self.alice_token)
        self.assertEqual(self.state_content(self.room_id, "m.room.canonical_alias"), {})

    def test_delete_without_power_keeps_canonical_event(self) -> None:
        """An alias creator without power deletes the alias; the canonical event stays."""
        self.join(self.bob, self.room_id)
        self.assertEqual(self.put_alias("#bobs:test", self.room_id, self.bob_token).code, 200)
        self.send_state(self.alice_token, self.room_id, "m.room.canonical_alias",
                        {"alias": "#bobs:test"})
        channel = self.make_request("DELETE", alias_path("#bobs:test"),
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.state_content(self.room_id, "m.room.canonical_alias"),
                         {"alias": "#bobs:test"})
        self.assertEqual(self.make_request("GET", alias_path("#bobs:test")).code, 404)

    # -- GET /rooms/{roomId}/aliases --

    def test_local_aliases_for_members(self) -> None:
        """Members see the room's local aliases, sorted; a room without any gives []."""
        for alias in ("#b:test", "#a:test"):
            self.put_alias(alias, self.room_id, self.alice_token)
        channel = self.aliases_of(self.room_id, self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"aliases": ["#a:test", "#b:test"]})
        empty = self.create_room(self.alice_token)
        self.assertEqual(self.aliases_of(empty, self.alice_token).json_body, {"aliases": []})

    def test_local_aliases_forbidden_for_non_members(self) -> None:
        """Non-members get 403, also for unknown rooms; a world-readable room is open."""
        self.assert_error(self.aliases_of(self.room_id, self.bob_token), 403, "M_FORBIDDEN")
        self.assert_error(self.aliases_of("!unknown:test", self.bob_token), 403,
                          "M_FORBIDDEN")
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        self.assertEqual(self.aliases_of(self.room_id, self.bob_token).code, 200)

    def test_local_aliases_errors(self) -> None:
        """A malformed room ID is 400 M_INVALID_PARAM; no token is 401."""
        self.assert_error(self.aliases_of("nope", self.alice_token), 400, "M_INVALID_PARAM")
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/aliases")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    # -- m.room.canonical_alias checks --

    def put_canonical(self, content: Any, room_id: str | None = None) -> Any:
        return self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id or self.room_id}/state/m.room.canonical_alias/",
            content, access_token=self.alice_token)

    def test_canonical_alias_must_point_here(self) -> None:
        """Aliases that exist and point to the room are accepted (alias and alt_aliases)."""
        self.put_alias("#main:test", self.room_id, self.alice_token)
        self.put_alias("#alt:test", self.room_id, self.alice_token)
        channel = self.put_canonical({"alias": "#main:test", "alt_aliases": ["#alt:test"]})
        self.assertEqual(channel.code, 200, channel.result)

    def test_canonical_alias_bad_alias(self) -> None:
        """Unknown local aliases and aliases of other rooms are 400 M_BAD_ALIAS."""
        other = self.create_room(self.alice_token)
        self.put_alias("#other:test", other, self.alice_token)
        for content in ({"alias": "#missing:test"}, {"alias": "#other:test"},
                        {"alt_aliases": ["#other:test"]}):
            with self.subTest(content=content):
                self.assert_error(self.put_canonical(content), 400, "M_BAD_ALIAS")
        self.assertIsNone(self.state_content(self.room_id, "m.room.canonical_alias"))

    def test_canonical_alias_invalid_syntax(self) -> None:
        """Malformed aliases and wrongly typed fields are 400 M_INVALID_PARAM."""
        for content in ({"alias": "nohash"}, {"alias": 5}, {"alt_aliases": "#a:test"},
                        {"alt_aliases": ["#ok:elsewhere.org", "bad"]}, {"alt_aliases": [1]}):
            with self.subTest(content=content):
                self.assert_error(self.put_canonical(content), 400, "M_INVALID_PARAM")

    def test_canonical_alias_remote_and_empty(self) -> None:
        """Remote aliases are only syntax-checked; an empty content clears the alias."""
        self.assertEqual(self.put_canonical({"alt_aliases": ["#x:elsewhere.org"]}).code, 200)
        self.assertEqual(self.put_canonical({}).code, 200)

    def test_canonical_alias_existing_not_rechecked(self) -> None:
        """Aliases already in the event are not validated again (spec), new ones are."""
        self.put_alias("#main:test", self.room_id, self.alice_token)
        self.put_alias("#alt:test", self.room_id, self.alice_token)
        self.assertEqual(self.put_canonical({"alias": "#main:test"}).code, 200)
        # Remove the mapping behind the room's back (as another room taking it over would).
        self.get_success(self.hs.get_datastores().rooms.delete_alias("#main:test"))
        channel = self.put_canonical({"alias": "#main:test", "alt_aliases": ["#alt:test"]})
        self.assertEqual(channel.code, 200, channel.result)
        self.assert_error(self.put_canonical({"alias": "#main:test",
                                              "alt_aliases": ["#alt:test", "#gone:test"]}),
                          400, "M_BAD_ALIAS")
