"""POST /user/{userId}/filter, GET /user/{userId}/filter/{filterId}, and
`FilterHandler.resolve` (the /sync `filter` parameter)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from tests.api.room_helpers import CLIENT
from tests.harness import HomeserverTestCase

FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": 5, "types": ["m.room.message"],
                          "not_senders": ["@spam:test"]},
             "state": {"lazy_load_members": True}},
    "event_fields": ["type", "content"],
}


class FilterTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def upload(self, body: Any, user: str | None = None, token: str | None = None) -> Any:
        return self.make_request("POST", f"{CLIENT}/user/{user or self.alice}/filter", body,
                                 access_token=token or self.alice_token)

    def download(self, filter_id: str, user: str | None = None,
                 token: str | None = None) -> Any:
        return self.make_request("GET", f"{CLIENT}/user/{user or self.alice}/filter/{filter_id}",
                                 access_token=token or self.alice_token)

    def test_create_and_get(self) -> None:
        """A filter round-trips; IDs are per-user small integers as strings."""
        channel = self.upload(FILTER)
        self.assertEqual(channel.code, 200, channel.result)
        filter_id = channel.json_body["filter_id"]
        self.assertEqual(filter_id, "0")
        channel = self.download(filter_id)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, FILTER)
        second = self.upload({"room": {"include_leave": True}}).json_body["filter_id"]
        self.assertEqual(second, "1")
        self.assertEqual(self.download(second).json_body, {"room": {"include_leave": True}})
        # Bob's IDs count from 0 too, and his 0 is his own filter.
        bobs = self.upload({"presence": {"types": []}}, self.bob, self.bob_token)
        self.assertEqual(bobs.json_body["filter_id"], "0")
        self.assertEqual(self.download("0", self.bob, self.bob_token).json_body,
                         {"presence": {"types": []}})
        self.assertEqual(self.download("0").json_body, FILTER)

    def test_same_filter_same_id(self) -> None:
        """Re-uploading an identical filter returns its existing ID."""
        first = self.upload(FILTER).json_body["filter_id"]
        self.upload({"room": {}})
        self.assertEqual(self.upload(FILTER).json_body["filter_id"], first)

    def test_empty_filter(self) -> None:
        """`{}` is a valid filter."""
        channel = self.upload({})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.download(channel.json_body["filter_id"]).json_body, {})

    def test_invalid_filters(self) -> None:
        """Non-JSON is M_NOT_JSON; a non-object or wrong field types are M_BAD_JSON."""
        self.assert_error(self.upload(b"{nope"), 400, "M_NOT_JSON")
        self.assert_error(self.upload([1, 2]), 400, "M_BAD_JSON")
        for bad in ({"room": {"timeline": {"limit": -1}}},
                    {"room": {"rooms": "!a:test"}},
                    {"room": {"timeline": {"limit": "10"}}},
                    {"event_format": "xml"},
                    {"presence": {"senders": ["bob"]}}):
            self.assert_error(self.upload(bad), 400, "M_BAD_JSON")
        # nothing was stored
        self.assert_error(self.download("0"), 404, "M_NOT_FOUND")

    def test_other_users_filters(self) -> None:
        """Uploading or reading another user's filters is 403 M_FORBIDDEN."""
        filter_id = self.upload(FILTER).json_body["filter_id"]
        self.assert_error(self.upload(FILTER, self.alice, self.bob_token), 403, "M_FORBIDDEN")
        self.assert_error(self.download(filter_id, self.alice, self.bob_token),
                          403, "M_FORBIDDEN")
        self.assert_error(self.upload(FILTER, "@carol:elsewhere"), 403, "M_FORBIDDEN")

    def test_unknown_filter(self) -> None:
        """Unknown and non-numeric IDs are both 404 M_NOT_FOUND."""
        self.upload(FILTER)
        for filter_id in ("1", "999", "abc", "-1", "1e3", "9" * 40):
            self.assert_error(self.download(filter_id), 404, "M_NOT_FOUND")
        # Bob has no filter 0 even though Alice does.
        self.assert_error(self.download("0", self.bob, self.bob_token), 404, "M_NOT_FOUND")

    def test_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request("POST", f"{CLIENT}/user/{self.alice}/filter", {})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_resolve(self) -> None:
        """The /sync `filter` parameter: absent, inline JSON, a stored ID."""
        handler = self.hs.get_filter_handler()
        default = self.get_success(handler.resolve(self.alice, None))
        self.assertEqual(default.timeline.limit, 10)
        inline = self.get_success(handler.resolve(
            self.alice, '{"room": {"timeline": {"limit": 2}}}'))
        self.assertEqual(inline.timeline.limit, 2)
        filter_id = self.upload(FILTER).json_body["filter_id"]
        stored = self.get_success(handler.resolve(self.alice, filter_id))
        self.assertEqual(stored.timeline.limit, 5)
        self.assertEqual(stored.event_fields, ["type", "content"])
        self.assertTrue(stored.state.lazy_load_members)
        self.assertFalse(stored.timeline.matches(
            {"type": "m.room.message", "sender": "@spam:test", "content": {}}))

    def test_resolve_errors(self) -> None:
        """Bad inline JSON is 400 M_NOT_JSON, an invalid one M_BAD_JSON, an unknown
        or another user's ID 404 M_NOT_FOUND."""
        handler = self.hs.get_filter_handler()
        filter_id = self.upload(FILTER).json_body["filter_id"]
        for param, code, errcode in (
            ("{nope", 400, "M_NOT_JSON"),
            ('{"room": {"timeline": {"limit": -5}}}', 400, "M_BAD_JSON"),
            ("42", 404, "M_NOT_FOUND"),
            ("nope", 404, "M_NOT_FOUND"),
        ):
            e = self.get_failure(handler.resolve(self.alice, param), MatrixError)
            assert isinstance(e, MatrixError)
            self.assertEqual((e.code, e.errcode), (code, errcode), param)
        e = self.get_failure(handler.resolve(self.bob, filter_id), MatrixError)
        assert isinstance(e, MatrixError)
        self.assertEqual(e.errcode, "M_NOT_FOUND")
