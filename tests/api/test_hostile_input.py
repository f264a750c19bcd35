"""Hostile input on every client endpoint: a Matrix 4xx, never a 500.

The endpoints are not listed by hand: the sweep walks the routes registered from
`client_api.SERVLET_MODULES` (federation servlets aside) and builds a concrete path for
each from its regex. A new servlet that takes a body fails `test_every_route_is_swept`
until it has a body template below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from homeserver.json_decode import MAX_CONTENT_DEPTH, MAX_DEPTH, decode_json
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import FakeChannel, HomeserverTestCase

AUTH = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "password", "session": "sess"}

#: a valid-looking body per (method, route); a route may have several (e.g. state events
#: of different types), each with its own path parameters
TEMPLATES: dict[tuple[str, str], list[tuple[dict[str, str], Any]]] = {
    ("POST", "/login"): [({}, {
        "type": "m.login.password", "password": "password", "device_id": "DEV",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "initial_device_display_name": "laptop"})],
    ("POST", "/refresh"): [({}, {"refresh_token": "axr_x"})],
    ("POST", "/account/password"): [({}, {"new_password": "new", "auth": AUTH})],
    ("POST", "/account/deactivate"): [({}, {"auth": AUTH, "id_server": "id.example"})],
    ("POST", "/register"): [({}, {
        "username": "newbie", "password": "pw", "device_id": "D", "inhibit_login": False,
        "initial_device_display_name": "phone", "auth": {"type": "m.login.dummy"}})],
    ("POST", "/_synapse/admin/v1/register"): [({}, {
        "nonce": "n", "username": "u", "password": "p", "mac": "m", "displayname": "d",
        "admin": False})],
    ("POST", "/_synapse/admin/v1/registration_tokens/new"): [({}, {"token": "tok",
                                                                    "uses_allowed": 3})],
    ("PUT", "/_synapse/admin/v1/registration_tokens/{token}"): [({}, {"uses_allowed": 3})],
    ("PUT", "/devices/{device_id}"): [({}, {"display_name": "my phone"})],
    ("DELETE", "/devices/{device_id}"): [({}, {"auth": AUTH})],
    ("POST", "/delete_devices"): [({}, {"devices": ["OTHER"], "auth": AUTH})],
    ("POST", "/users/{user_id}/report"): [({}, {"reason": "spam"})],
    ("PUT", "/profile/{user_id}/{key}"): [
        ({"key": "displayname"}, {"displayname": "Alice"}),
        ({"key": "avatar_url"}, {"avatar_url": "mxc://test/abc"})],
    ("POST", "/user_directory/search"): [({}, {"search_term": "ali", "limit": 10})],
    ("POST", "/search"): [({}, {"search_categories": {"room_events": {
        "search_term": "hello", "keys": ["content.body"], "order_by": "recent",
        "filter": {"limit": 5, "io.axon.from_ts": 0, "io.axon.to_ts": 10, "senders": []},
        "event_context": {"before_limit": 1, "after_limit": 1, "include_profile": True},
        "include_state": True, "groupings": {"group_by": [{"key": "room_id"}]}}}})],
    ("POST", "/keys/upload"): [({}, {
        "device_keys": {"user_id": "@alice:test", "device_id": "DEV",
                        "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                        "keys": {"ed25519:DEV": "key"}, "signatures": {}},
        "one_time_keys": {"signed_curve25519:AAAA": {"key": "k", "signatures": {}}},
        "fallback_keys": {"signed_curve25519:AAAB": {"key": "k", "fallback": True}}})],
    ("POST", "/keys/query"): [({}, {"device_keys": {"@alice:test": []}, "timeout": 1000})],
    ("POST", "/keys/claim"): [({}, {"one_time_keys": {"@alice:test": {
        "DEV": "signed_curve25519"}}, "timeout": 1000})],
    ("POST", "/keys/device_signing/upload"): [({}, {
        "master_key": {"user_id": "@alice:test", "usage": ["master"],
                       "keys": {"ed25519:mk": "mk"}}, "auth": AUTH})],
    ("POST", "/keys/signatures/upload"): [({}, {"@alice:test": {"DEV": {
        "user_id": "@alice:test", "device_id": "DEV", "keys": {"ed25519:DEV": "key"},
        "signatures": {"@alice:test": {"ed25519:mk": "sig"}}}}})],
    ("POST", "/room_keys/version"): [({}, {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": {"public_key": "pk", "signatures": {}}})],
    ("PUT", "/room_keys/version/{version}"): [({}, {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "version": "1",
        "auth_data": {"public_key": "pk"}})],
    ("PUT", "/room_keys/keys"): [({}, {"rooms": {"!r:test": {"sessions": {"s": {
        "first_message_index": 1, "forwarded_count": 0, "is_verified": True,
        "session_data": {"ephemeral": "e"}}}}}})],
    ("PUT", "/room_keys/keys/{room_id}"): [({}, {"sessions": {"s": {
        "first_message_index": 1, "forwarded_count": 0, "is_verified": True,
        "session_data": {"ephemeral": "e"}}}})],
    ("PUT", "/room_keys/keys/{room_id}/{session_id}"): [({}, {
        "first_message_index": 1, "forwarded_count": 0, "is_verified": True,
        "session_data": {"ephemeral": "e"}})],
    ("POST", "/createRoom"): [({}, {
        "name": "room", "topic": "topic", "room_alias_name": "alias", "preset": "private_chat",
        "visibility": "private", "room_version": "10", "invite": ["@bob:test"],
        "is_direct": False, "creation_content": {"m.federate": True, "type": "m.space"},
        "initial_state": [{"type": "m.room.topic", "state_key": "", "content": {"topic": "t"}}],
        "power_level_content_override": {"events": {"m.room.name": 50}, "ban": 50}})],
    ("PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}"): [
        ({"event_type": "m.room.message"}, {
            "msgtype": "m.text", "body": "hello", "format": "org.matrix.custom.html",
            "formatted_body": "<b>hello</b>",
            "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}),
        ({"event_type": "m.room.redaction"}, {"redacts": "$x", "reason": "spam"})],
    ("PUT", "/rooms/{room_id}/state/{event_type}/{state_key}"): [
        ({"event_type": "m.room.topic"}, {"topic": "new topic"}),
        ({"event_type": "m.room.name"}, {"name": "new name"}),
        ({"event_type": "m.room.canonical_alias"}, {"alias": "#a:test", "alt_aliases": []}),
        ({"event_type": "m.room.member", "state_key": "@bob:test"},
         {"membership": "invite", "reason": "come in", "displayname": "Bob"}),
        ({"event_type": "m.room.power_levels"}, {"users": {"@alice:test": 100}, "ban": 50})],
    ("PUT", "/rooms/{room_id}/redact/{event_id}/{txn_id}"): [({}, {"reason": "spam"})],
    ("POST", "/rooms/{room_id}/report/{event_id}"): [({}, {"reason": "bad", "score": -100})],
    ("POST", "/rooms/{room_id}/invite"): [({}, {"user_id": "@bob:test", "reason": "hi"})],
    ("POST", "/rooms/{room_id}/join"): [({}, {"reason": "hi"})],
    ("POST", "/join/{room_id}"): [({}, {"reason": "hi"})],
    ("POST", "/knock/{room_id}"): [({}, {"reason": "let me in"})],
    ("POST", "/rooms/{room_id}/leave"): [({}, {"reason": "bye"})],
    ("POST", "/rooms/{room_id}/{action}"): [
        ({"action": action}, {"user_id": "@bob:test", "reason": "why"})
        for action in ("kick", "ban", "unban")],
    ("PUT", "/directory/room/{alias}"): [({}, {"room_id": "!r:test"})],
    ("PUT", "/directory/list/room/{room_id}"): [({}, {"visibility": "public"})],
    ("POST", "/publicRooms"): [({}, {
        "limit": 10, "since": "s", "server": "test", "include_all_networks": False,
        "third_party_instance_id": "inst",
        "filter": {"generic_search_term": "room", "room_types": ["m.space", None]}})],
    ("POST", "/rooms/{room_id}/upgrade"): [({}, {"new_version": "11"})],
    ("PUT", "/presence/{user_id}/status"): [({}, {"presence": "online",
                                                   "status_msg": "around"})],
    ("PUT", "/sendToDevice/{event_type}/{txn_id}"): [({}, {
        "messages": {"@alice:test": {"DEV": {"body": "secret", "algorithm": "x"}}}})],
    ("POST", "/user/{user_id}/filter"): [({}, {
        "event_fields": ["content.body"], "event_format": "client",
        "room": {"timeline": {"limit": 10, "types": ["m.room.message"],
                              "not_senders": ["@x:test"]}, "rooms": ["!r:test"]},
        "presence": {"types": ["m.presence"]}})],
    ("PUT", "/user/{user_id}/account_data/{data_type}"): [({}, {"key": "value"})],
    ("PUT", "/user/{user_id}/rooms/{room_id}/account_data/{data_type}"): [({}, {"k": "v"})],
    ("PUT", "/user/{user_id}/rooms/{room_id}/tags/{tag}"): [({}, {"order": 0.5})],
    ("POST", "/rooms/{room_id}/receipt/{receipt_type}/{event_id}"): [({}, {
        "thread_id": "main"})],
    ("POST", "/rooms/{room_id}/read_markers"): [({}, {"m.fully_read": "$e", "m.read": "$e"})],
    ("PUT", "/rooms/{room_id}/typing/{user_id}"): [({}, {"typing": True, "timeout": 30000})],
    ("PUT", "/pushrules/global/{kind}/{rule_id}"): [({}, {
        "actions": ["notify", {"set_tweak": "sound", "value": "default"}],
        "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "p"}],
        "pattern": "p"})],
    ("PUT", "/pushrules/global/{kind}/{rule_id}/enabled"): [({}, {"enabled": True})],
    ("PUT", "/pushrules/global/{kind}/{rule_id}/actions"): [({}, {"actions": ["notify"]})],
    ("POST", "/user/{user_id}/openid/request_token"): [({}, {})],
}

#: routes that take a method with a body but read none (Synapse ignores it too)
BODY_IGNORED = {
    ("POST", "/logout"), ("POST", "/logout/all"), ("POST", "/rooms/{room_id}/forget"),
    ("DELETE", "/profile/{user_id}/{key}"), ("DELETE", "/directory/room/{alias}"),
    ("DELETE", "/user/{user_id}/rooms/{room_id}/tags/{tag}"),
    ("DELETE", "/pushrules/global/{kind}/{rule_id}"),
    ("DELETE", "/_synapse/admin/v1/registration_tokens/{token}"),
    ("DELETE", "/room_keys/keys"), ("DELETE", "/room_keys/keys/{room_id}"),
    ("DELETE", "/room_keys/keys/{room_id}/{session_id}"),
    ("DELETE", "/room_keys/version/{version}"),
    # media uploads: the body is the file, so any bytes are a valid upload
    ("POST", "/_matrix/media/r0/upload"),
    ("PUT", "/_matrix/media/v3/upload/{server_name}/{media_id}"),
    ("POST", "/_matrix/media/v1/create"),
    # tus: the POST body is empty, PATCH bytes are no JSON (tests/api/test_resumable_upload.py)
    ("POST", "/io.axon/upload/resumable"), ("DELETE", "/io.axon/upload/resumable/{upload_id}"),
}

#: a query string a route needs before it reads the body
REQUIRED_QUERY = {name: "?version=1" for name in (
    "/room_keys/keys", "/room_keys/keys/{room_id}", "/room_keys/keys/{room_id}/{session_id}")}

#: routes that long-poll by default: the query test asks them not to wait
NO_WAIT_QUERY = {"/events": "timeout=0&"}

#: query parameters that carry JSON
JSON_QUERY = [("GET", "/sync", "filter"), ("GET", "/rooms/{room_id}/messages", "filter"),
              ("GET", "/rooms/{room_id}/context/{event_id}", "filter")]

#: every query parameter some client endpoint reads
QUERY_NAMES = ("access_token", "from", "to", "dir", "limit", "filter", "since", "timeout",
               "full_state", "set_presence", "server", "via", "server_name", "membership",
               "not_membership", "at", "user_id", "kind", "suggested_only", "max_depth",
               "username", "token", "valid", "include_unredacted_content", "ts",
               "room_id", "event_id", "device_id", "txn_id", "search_term", "include_all",
               "version", "filename", "allow_remote", "timeout_ms")

BAD_UTF8 = ("%ED%A0%80", "%FF")  # an encoded lone surrogate; a byte that is never UTF-8

# a body that the server would destroy our session or room with, if it accepted it
SESSION_ENDING = {("POST", "/logout"), ("POST", "/logout/all"),
                  ("POST", "/account/deactivate"), ("DELETE", "/devices/{device_id}"),
                  ("POST", "/account/password")}

# run last, so that the sweeps before them still act as a member of the room
ROOM_ENDING = {("POST", "/rooms/{room_id}/leave"), ("POST", "/rooms/{room_id}/upgrade")}

_VERSION_PREFIX = re.compile(r"^/_matrix/client/(?:r0|v3|v1|unstable)")


def nested(depth: int) -> Any:
    """An object `depth` levels deep: {"a": {"a": ... 1}}."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_raw(depth: int) -> bytes:
    """`nested(depth)` as JSON text, for depths `json.dumps` cannot reach."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _string_paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _string_paths(child, (*path, i))
    elif isinstance(value, str):
        yield path


def _number_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _number_paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _number_paths(child, (*path, i))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path


MARK = "@@HOSTILE@@"


def _replace_leaf(body: Any, path: tuple[Any, ...], raw: str) -> bytes:
    """The body as JSON text with the leaf at `path` replaced by the raw JSON `raw`."""
    copy = json.loads(json.dumps(body))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = MARK
    return json.dumps(copy).replace(json.dumps(MARK), raw).encode("utf-8")


def hostile_bodies(template: Any) -> Iterator[tuple[str, bytes]]:
    """(label, raw body) for each hostile variant of a valid body."""
    yield "nesting one over the cap", json.dumps(nested(MAX_DEPTH + 1)).encode()
    yield "1e400", b'{"x": 1e400}'
    yield "-1e400", b'{"x": -1e400}'
    yield "NaN", b'{"x": NaN}'
    yield "Infinity", b'{"x": Infinity}'
    yield "lone surrogate in a key", b'{"\\ud800": 1}'
    yield "invalid UTF-8", b'{"x": "\xff"}'
    for path in _string_paths(template):
        yield f"lone surrogate at {path}", _replace_leaf(template, path, '"a\\udc00b"')
    for path in _number_paths(template):
        yield f"1e400 at {path}", _replace_leaf(template, path, "1e400")


def route_name(pattern: str) -> str:
    """`^/_matrix/client/(?:r0|v3)/rooms/(?P<room_id>[^/]*)/join$` → `/rooms/{room_id}/join`."""
    path = _build(pattern, None)
    return _VERSION_PREFIX.sub("", path)


def _build(pattern: str, values: dict[str, str] | None) -> str:
    """A path the regex matches: named groups from `values` (or `{name}`), the first
    branch of each alternation, one of each repeat, `x` for a character class."""
    parsed = sre_parse.parse(pattern)
    names = {index: name for name, index in parsed.state.groupdict.items()}

    def walk(items: Any) -> str:
        out = ""
        for op, av in items:
            if op is sre_constants.LITERAL:
                out += chr(av)
            elif op is sre_constants.SUBPATTERN:
                name = names.get(av[0])
                if name is not None and values is None:
                    out += "{" + name + "}"
                elif name is not None and values is not None and name in values:
                    out += values[name]
                else:
                    out += walk(av[3])
            elif op is sre_constants.BRANCH:
                out += walk(av[1][0])
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                out += walk(av[2]) * max(av[0], 1)
            elif op is sre_constants.IN and av[0][0] is sre_constants.LITERAL:
                out += chr(av[0][1])  # e.g. (?:v3|v1), which the parser makes v[31]
            elif op in (sre_constants.IN, sre_constants.ANY):
                out += "x"
        return out

    return walk(parsed)


def free_groups(pattern: str) -> list[str]:
    """The named groups that take free text (`[^/]*`), not a fixed choice like
    `kick|ban|unban`."""
    parsed = sre_parse.parse(pattern)
    names = {index: name for name, index in parsed.state.groupdict.items()}
    found: list[str] = []

    def walk(items: Any) -> None:
        for op, av in items:
            if op is sre_constants.SUBPATTERN:
                if av[0] in names and any(
                        sub_op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
                        for sub_op, _ in av[3]):
                    found.append(names[av[0]])
                walk(av[3])
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                walk(av[2])
            elif op is sre_constants.BRANCH:
                for branch in av[1]:
                    walk(branch)

    walk(parsed)
    return found


class HostileInputTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice", admin=True)
        self.token = self.login("alice", device_id="DEV")
        self.bob = self.register_user("bob")
        self.room_id = self.create_room(self.token, {"preset": "public_chat"})
        self.event_id = self.send_message(self.token, self.room_id)
        self.routes = self._client_routes()

    def _client_routes(self) -> list[tuple[str, str, re.Pattern[str]]]:
        """(method, route name, regex) of every non-federation route, in a fixed order with
        the session-ending ones last."""
        routes = []
        for regex, methods in self.hs.get_router()._routes:
            if regex.pattern.startswith(("^/_matrix/federation", "^/_matrix/key")):
                continue
            name = route_name(regex.pattern)
            for method in methods:
                if method != "HEAD":
                    routes.append((method, name, regex))
        def order(route: tuple[str, str, re.Pattern[str]]) -> tuple[int, str, str]:
            key = (route[0], route[1])
            return (2 if key in SESSION_ENDING else 1 if key in ROOM_ENDING else 0,
                    route[1], route[0])

        return sorted(routes, key=order)

    def values(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        self._n = getattr(self, "_n", 0) + 1
        values = {
            "room_id": self.room_id, "event_id": self.event_id, "user_id": self.alice,
            "event_type": "m.room.topic", "state_key": "", "txn_id": f"hostile{self._n}",
            "key": "displayname", "device_id": "DEV", "token": "tok", "alias": "#h:test",
            "action": "kick", "data_type": "m.hostile", "tag": "u.work",
            "receipt_type": "m.read", "kind": "override", "rule_id": "hostile",
            "scope": "global", "filter_id": "0", "version": "1", "session_id": "sess1",
            "server_name": "test", "media_id": "nosuchmedia", "upload_id": "nosuchupload",
            "file_name": "f.txt",
        }
        values.update(overrides or {})
        return values

    def path(self, regex: re.Pattern[str], overrides: dict[str, str] | None = None) -> str:
        path = _build(regex.pattern, self.values(overrides))
        self.assertIsNotNone(regex.match(path), (regex.pattern, path))
        return path

    def token_for(self, method: str, name: str) -> str:
        """Our token, or a throwaway one for requests that could end the session."""
        if (method, name) in SESSION_ENDING:
            return self.login("alice")
        return self.token

    def assert_matrix_4xx(self, channel: FakeChannel, what: str,
                          errcodes: tuple[str, ...] = ("M_NOT_JSON", "M_BAD_JSON")) -> None:
        self.assertTrue(400 <= channel.code < 500, f"{what}: {channel.code} {channel.result!r}")
        self.assertIn(channel.json_body.get("errcode"), errcodes, what)

    def assert_not_5xx(self, channel: FakeChannel, what: str) -> None:
        self.assertLess(channel.code, 500, f"{what}: {channel.result!r}")
        if channel.code >= 400:
            body = channel.json_body
            # the one 4xx without an errcode: user-interactive auth asking for a stage
            self.assertTrue("errcode" in body or (channel.code == 401 and "flows" in body),
                            f"{what}: {body}")

    def test_every_route_is_swept(self) -> None:
        """Every client route with a body-taking method has a body template or is known to
        read no body, and the path built from its regex routes to it."""
        missing = []
        for method, name, regex in self.routes:
            self.path(regex)
            if method in ("POST", "PUT", "DELETE") and (method, name) not in TEMPLATES \
                    and (method, name) not in BODY_IGNORED:
                missing.append((method, name))
        self.assertEqual(missing, [])
        self.assertGreater(len(self.routes), 60)

    def test_hostile_bodies(self) -> None:
        """Deep nesting just over the cap, 1e400, NaN, Infinity, invalid UTF-8 and a lone
        surrogate in each string field of each endpoint's body: 400 M_NOT_JSON, never 5xx."""
        for method, name, regex in self.routes:
            for overrides, template in TEMPLATES.get((method, name), []):
                for label, raw in hostile_bodies(template):
                    what = f"{method} {name} {overrides}: {label}"
                    with self.subTest(what):
                        path = self.path(regex, overrides) + REQUIRED_QUERY.get(name, "")
                        channel = self.make_request(method, path, raw,
                                                    access_token=self.token_for(method, name))
                        self.assert_matrix_4xx(channel, what, ("M_NOT_JSON",))
            if (method, name) in BODY_IGNORED:
                for label, raw in hostile_bodies({}):
                    with self.subTest(f"{method} {name}: {label}"):
                        channel = self.make_request(method, self.path(regex), raw,
                                                    access_token=self.token_for(method, name))
                        self.assert_not_5xx(channel, f"{method} {name}: {label}")

    def test_extreme_numbers(self) -> None:
        """Each number field of each body as 10**30, -10**30, 1e308 or -1 (valid JSON, but
        beyond any column or clock): a 4xx or a success, never 5xx."""
        for method, name, regex in self.routes:
            if (method, name) in SESSION_ENDING:
                continue
            for overrides, template in TEMPLATES.get((method, name), []):
                for path in _number_paths(template):
                    for raw in ("1" + "0" * 30, "-1" + "0" * 30, "1e308", "-1"):
                        what = f"{method} {name} {overrides}: {raw} at {path}"
                        with self.subTest(what):
                            channel = self.make_request(
                                method, self.path(regex, overrides),
                                _replace_leaf(template, path, raw), access_token=self.token)
                            self.assert_not_5xx(channel, what)

    def test_json_query_parameters(self) -> None:
        """A JSON query parameter (filter) with any hostile value is a 400, never 5xx;
        invalid UTF-8 in it is read as U+FFFD, as everywhere in query strings."""
        routes = {(m, n): r for m, n, r in self.routes}
        for method, name, param in JSON_QUERY:
            for label, raw in hostile_bodies({"room": {"timeline": {"limit": 1}}}):
                with self.subTest(f"{name}?{param}: {label}"):
                    value = "".join(f"%{b:02X}" for b in raw)
                    channel = self.make_request(
                        method, f"{self.path(routes[(method, name)])}?{param}={value}",
                        access_token=self.token)
                    if label == "invalid UTF-8":
                        self.assert_not_5xx(channel, f"{name} {label}")
                    else:
                        self.assert_matrix_4xx(channel, f"{name} {label}")

    def test_hostile_path_parameters(self) -> None:
        """Each path parameter of each route, as an encoded lone surrogate or invalid UTF-8,
        is answered without a 5xx."""
        for method, name, regex in self.routes:
            groups = free_groups(regex.pattern)
            body = (TEMPLATES.get((method, name)) or [({}, {})])[0][1]
            for group in groups:
                for bad in BAD_UTF8:
                    what = f"{method} {name} {group}={bad}"
                    with self.subTest(what):
                        channel = self.make_request(
                            method, self.path(regex, {group: bad}),
                            body if method in ("POST", "PUT") else None,
                            access_token=self.token_for(method, name))
                        self.assert_not_5xx(channel, what)

    def test_hostile_query_strings(self) -> None:
        """Each query parameter any endpoint reads, as an encoded lone surrogate or invalid
        UTF-8, on every route: no 5xx."""
        for method, name, regex in self.routes:
            for param in QUERY_NAMES:
                for bad in BAD_UTF8:
                    what = f"{method} {name}?{param}={bad}"
                    with self.subTest(what):
                        no_wait = NO_WAIT_QUERY.get(name, "") if param != "timeout" else ""
                        channel = self.make_request(
                            method, f"{self.path(regex)}?{no_wait}{param}={bad}",
                            {} if method in ("POST", "PUT") else None,
                            access_token=self.token_for(method, name))
                        self.assert_not_5xx(channel, what)


class DeepContentTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.room_id = self.create_room(self.token)

    def joined_rooms(self) -> list[str]:
        channel = self.make_request("GET", f"{CLIENT}/joined_rooms", access_token=self.token)
        rooms: list[str] = channel.json_body["joined_rooms"]
        return rooms

    def put(self, path: str, content: Any) -> FakeChannel:
        return self.make_request("PUT", f"{CLIENT}/rooms/{self.room_id}{path}", content,
                                 access_token=self.token)

    def test_reported_bodies(self) -> None:
        """The bodies from the report: a message and a state event nested ~960 deep, and
        createRoom with creation_content ~550 deep, are 400 M_NOT_JSON (no room made)."""
        self.assert_error(self.put("/send/m.room.message/t1", nested_raw(960)), 400,
                          "M_NOT_JSON")
        self.assert_error(self.put("/state/m.room.topic/", nested_raw(960)), 400, "M_NOT_JSON")
        before = self.joined_rooms()
        channel = self.make_request("POST", f"{CLIENT}/createRoom",
                                    b'{"creation_content": ' + nested_raw(550) + b"}",
                                    access_token=self.token)
        self.assert_error(channel, 400, "M_NOT_JSON")
        self.assertEqual(self.joined_rooms(), before)

    def test_content_just_below_the_cap_still_fits_every_response(self) -> None:
        """Content MAX_CONTENT_DEPTH deep is accepted, and the /sync and /messages
        responses carrying it still decode under the nesting cap."""
        deepest = nested(MAX_CONTENT_DEPTH)
        self.assertEqual(self.put("/send/m.x/t1", deepest).code, 200)
        self.assertEqual(self.put("/state/m.x/k", deepest).code, 200)
        for path in ("/sync", f"/rooms/{self.room_id}/messages?dir=b"):
            channel = self.make_request("GET", f"{CLIENT}{path}", access_token=self.token)
            self.assertEqual(channel.code, 200)
            self.assertIn(json.dumps(deepest), json.dumps(decode_json(channel.result)))

    def test_content_one_over_is_refused_everywhere(self) -> None:
        """Content one level deeper than MAX_CONTENT_DEPTH (still under the decoder's cap)
        is 400 M_BAD_JSON for messages, state events and every content of createRoom,
        which then makes no room at all."""
        too_deep = nested(MAX_CONTENT_DEPTH + 1)
        self.assert_error(self.put("/send/m.x/t1", too_deep), 400, "M_BAD_JSON")
        self.assert_error(self.put("/state/m.x/k", too_deep), 400, "M_BAD_JSON")
        before = self.joined_rooms()
        for body in ({"creation_content": too_deep},
                     {"power_level_content_override": too_deep},
                     {"initial_state": [{"type": "m.x", "state_key": "", "content": too_deep}]}):
            with self.subTest(next(iter(body))):
                channel = self.make_request("POST", f"{CLIENT}/createRoom", body,
                                            access_token=self.token)
                self.assert_error(channel, 400, "M_BAD_JSON")
        self.assertEqual(self.joined_rooms(), before)

    def test_to_device_and_account_data_depth(self) -> None:
        """To-device messages and account data (global, per room, tags) deeper than
        MAX_CONTENT_DEPTH as /sync sends them are 400 M_BAD_JSON; at the cap they are
        stored and the /sync carrying them still decodes."""
        user = f"{CLIENT}/user/{self.alice}"
        too_deep, deepest = nested(MAX_CONTENT_DEPTH + 1), nested(MAX_CONTENT_DEPTH)
        device = self.hs.get_datastores().devices
        [own] = [d.device_id for d in self.get_success(device.get_devices(self.alice))]
        cases = [
            (f"{CLIENT}/sendToDevice/m.x/t1", {"messages": {self.alice: {own: too_deep}}},
             f"{CLIENT}/sendToDevice/m.x/t2", {"messages": {self.alice: {own: deepest}}}),
            (f"{user}/account_data/m.x", too_deep, f"{user}/account_data/m.x", deepest),
            (f"{user}/rooms/{self.room_id}/account_data/m.x", too_deep,
             f"{user}/rooms/{self.room_id}/account_data/m.x", deepest),
            # m.tag wraps a tag's content two levels down: {"tags": {tag: content}}
            (f"{user}/rooms/{self.room_id}/tags/u.a", nested(MAX_CONTENT_DEPTH - 1),
             f"{user}/rooms/{self.room_id}/tags/u.a", nested(MAX_CONTENT_DEPTH - 2)),
        ]
        for refused_path, refused, accepted_path, accepted in cases:
            with self.subTest(refused_path):
                self.assert_error(self.make_request("PUT", refused_path, refused,
                                                    access_token=self.token),
                                  400, "M_BAD_JSON")
                channel = self.make_request("PUT", accepted_path, accepted,
                                            access_token=self.token)
                self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("GET", f"{CLIENT}/sync", access_token=self.token)
        self.assertEqual(channel.code, 200)
        body = decode_json(channel.result)
        self.assertEqual(body["to_device"]["events"][0]["content"], deepest)

    def test_deep_remote_to_device_is_dropped(self) -> None:
        """A to-device message from another server too deep for /sync is dropped; a
        shallow one from the same server is delivered."""
        device = self.hs.get_datastores().devices
        [own] = [d.device_id for d in self.get_success(device.get_devices(self.alice))]
        self.get_success(self.hs.get_to_device_handler().on_remote_to_device("remote.test", {
            "sender": "@eve:remote.test", "type": "m.x", "message_id": "m1",
            "messages": {self.alice: {own: nested(MAX_CONTENT_DEPTH + 1)}}}))
        self.get_success(self.hs.get_to_device_handler().on_remote_to_device("remote.test", {
            "sender": "@eve:remote.test", "type": "m.x", "message_id": "m2",
            "messages": {self.alice: {own: {"fine": True}}}}))
        channel = self.make_request("GET", f"{CLIENT}/sync", access_token=self.token)
        contents = [e["content"] for e in channel.json_body["to_device"]["events"]]
        self.assertEqual(contents, [{"fine": True}])
