"""POST /users/{userId}/report and GET /v1/mutual_rooms."""

from __future__ import annotations

from typing import Any

from handlers import mutual_rooms
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase

MUTUAL = "/_matrix/client/v1/mutual_rooms"


class ReportUserTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.store = hs.get_datastores().moderation

    def report(self, user_id: str, body: Any) -> Any:
        return self.make_request("POST", f"{CLIENT}/users/{user_id}/report", body,
                                 access_token=self.alice_token)

    def test_report_stored(self) -> None:
        """A report about a local user answers {} and is stored."""
        channel = self.report(self.bob, {"reason": "spam"})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assertEqual(self.get_success(self.store.count_user_reports(self.bob)), 1)

    def test_unknown_and_remote_users_answer_200(self) -> None:
        """Unknown and remote users answer 200 too and store nothing (MSC4277)."""
        for user in ("@nobody:test", "@someone:elsewhere.example"):
            channel = self.report(user, {"reason": "x"})
            self.assertEqual(channel.code, 200, channel.result)
            self.assertEqual(self.get_success(self.store.count_user_reports(user)), 0)

    def test_bad_input(self) -> None:
        """Missing reason is M_MISSING_PARAM, a non-string M_BAD_JSON, a bad ID 400."""
        self.assert_error(self.report(self.bob, {}), 400, "M_MISSING_PARAM")
        self.assert_error(self.report(self.bob, {"reason": 3}), 400, "M_BAD_JSON")
        self.assert_error(self.report(self.bob, {"reason": "x" * 1001}), 400, "M_BAD_JSON")
        self.assert_error(self.report("bob", {"reason": "x"}), 400, "M_INVALID_PARAM")
        channel = self.make_request("POST", f"{CLIENT}/users/{self.bob}/report",
                                    {"reason": "x"})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")


class MutualRoomsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def mutual(self, query: str) -> Any:
        return self.make_request("GET", f"{MUTUAL}?{query}", access_token=self.alice_token)

    def test_shared_rooms_only(self) -> None:
        """Only rooms where both are joined are listed, with their count."""
        shared = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, shared)
        self.create_room(self.alice_token)
        invited = self.create_room(self.alice_token)
        self.invite(self.alice, invited, self.bob)
        channel = self.mutual(f"user_id={self.bob}")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"joined": [shared], "count": 1})

    def test_unknown_user_is_empty(self) -> None:
        """A user who does not exist shares nothing (empty list, not an error)."""
        channel = self.mutual("user_id=@ghost:test")
        self.assertEqual(channel.json_body, {"joined": [], "count": 0})

    def test_batches(self) -> None:
        """Over the batch size, `next_batch` pages on until every room was given once."""
        old = mutual_rooms.BATCH_SIZE
        mutual_rooms.BATCH_SIZE = 2
        self.addCleanup(setattr, mutual_rooms, "BATCH_SIZE", old)
        rooms = []
        for _ in range(3):
            room = self.create_room(self.alice_token, {"preset": "public_chat"})
            self.join(self.bob, room)
            rooms.append(room)
        first = self.mutual(f"user_id={self.bob}").json_body
        self.assertEqual(first["count"], 3)
        self.assertEqual(len(first["joined"]), 2)
        second = self.mutual(f"user_id={self.bob}&from={first['next_batch']}").json_body
        self.assertNotIn("next_batch", second)
        self.assertEqual(sorted(first["joined"] + second["joined"]), sorted(rooms))

    def test_bad_input(self) -> None:
        """Missing, malformed or own user_id and a bad `from` are 400."""
        self.assert_error(self.mutual(""), 400, "M_MISSING_PARAM")
        self.assert_error(self.mutual("user_id=bob"), 400, "M_INVALID_PARAM")
        self.assert_error(self.mutual(f"user_id={self.alice}"), 400, "M_INVALID_PARAM")
        self.assert_error(self.mutual(f"user_id={self.bob}&from=zzz"), 400,
                          "M_INVALID_PARAM")
