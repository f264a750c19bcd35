"""GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event in a local room."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase


class TimestampToEventTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.token = self.login("alice")
        self.register_user("eve")
        self.eve_token = self.login("eve")
        self.room_id = self.create_room(self.token)
        self.reactor.advance(100)
        self.first = self.send_message(self.token, self.room_id, "one")
        self.reactor.advance(100)
        self.second = self.send_message(self.token, self.room_id, "two")

    def ts_of(self, event_id: str) -> int:
        event = self.get_success(self.hs.get_datastores().events.get_event(event_id))
        ts: int = event.origin_server_ts
        return ts

    def lookup(self, query: str, token: str | None = None) -> Any:
        return self.make_request(
            "GET", f"/_matrix/client/v1/rooms/{self.room_id}/timestamp_to_event?{query}",
            access_token=token or self.token)

    def test_directions(self) -> None:
        """Forwards: the first event at or after ts; backwards: the last at or before."""
        middle = (self.ts_of(self.first) + self.ts_of(self.second)) // 2
        channel = self.lookup(f"ts={middle}&dir=f")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"event_id": self.second,
                                             "origin_server_ts": self.ts_of(self.second)})
        channel = self.lookup(f"ts={middle}&dir=b")
        self.assertEqual(channel.json_body["event_id"], self.first)
        channel = self.lookup(f"ts={self.ts_of(self.first)}&dir=f")
        self.assertEqual(channel.json_body["event_id"], self.first)

    def test_nothing_in_that_direction(self) -> None:
        """No event after the last one (and no other server to ask): 404 M_NOT_FOUND."""
        self.assert_error(self.lookup(f"ts={self.ts_of(self.second) + 1}&dir=f"), 404,
                          "M_NOT_FOUND")

    def test_refusals(self) -> None:
        """Non-members 403; bad or missing `dir`/`ts` 400; no token 401."""
        self.assert_error(self.lookup("ts=0&dir=f", self.eve_token), 403, "M_FORBIDDEN")
        self.assert_error(self.lookup("ts=0&dir=x"), 400, "M_INVALID_PARAM")
        self.assert_error(self.lookup("ts=0"), 400, "M_MISSING_PARAM")
        self.assert_error(self.lookup("dir=f"), 400, "M_MISSING_PARAM")
        self.assert_error(self.lookup("ts=soon&dir=f"), 400, "M_INVALID_PARAM")
        channel = self.make_request(
            "GET", f"/_matrix/client/v1/rooms/{self.room_id}/timestamp_to_event?ts=0&dir=f")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
