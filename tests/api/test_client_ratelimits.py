"""Client rate limits at their Synapse defaults: invites, joins, room creation, state
events and logins."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import FakeChannel, HomeserverTestCase, override_config

# The harness relaxes these for the rest of the suite; here the product defaults apply.
RELAXED = {"per_second": 1000, "burst_count": 1000}
PRODUCT_DEFAULTS = ("rc_message", "rc_joins", "rc_joins_per_room", "rc_invites",
                    "rc_room_creation")


class ClientRateLimitsTestCase(RoomHelpers, HomeserverTestCase):
    def make_config(self) -> dict[str, Any]:
        config = super().make_config()
        for key in PRODUCT_DEFAULTS:
            del config[key]
        return config

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.tokens: dict[str, str] = {}
        for name in ("alice", "bob"):
            self.user(name)

    def user(self, name: str) -> str:
        user_id = self.register_user(name)
        self.tokens[user_id] = self.login(name)
        return user_id

    def post(self, path: str, user_id: str, body: dict[str, Any] | None = None
             ) -> FakeChannel:
        return self.make_request("POST", f"{CLIENT}{path}", body or {},
                                 access_token=self.tokens[user_id])

    def invite(self, sender: str, room_id: str, target: str) -> FakeChannel:  # type: ignore[override]
        return self.post(f"/rooms/{room_id}/invite", sender, {"user_id": target})

    def assert_limited(self, channel: FakeChannel) -> None:
        self.assert_error(channel, 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(channel.json_body["retry_after_ms"], 0)

    def test_invites_per_invited_user(self) -> None:
        """rc_invites.per_user: the 6th invite to one user in a burst is 429, even from
        different rooms; others can still be invited, and the bucket refills."""
        alice, bob = "@alice:test", "@bob:test"
        rooms = [self.create_room(self.tokens[alice]) for _ in range(7)]
        for room_id in rooms[:5]:
            self.assertEqual(self.invite(alice, room_id, bob).code, 200)
        self.assert_limited(self.invite(alice, rooms[5], bob))
        self.assertEqual(self.invite(alice, rooms[5], "@carol:test").code, 200)
        self.reactor.advance(1 / 0.003 + 1)
        self.assertEqual(self.invite(alice, rooms[6], bob).code, 200)

    def test_invites_per_room(self) -> None:
        """rc_invites.per_room: the 11th invite into one room is 429, although neither of
        the two inviters reached their own limit."""
        alice, bob = "@alice:test", "@bob:test"
        room_id = self.create_room(self.tokens[alice], {"preset": "public_chat",
                                                        "power_level_content_override":
                                                            {"invite": 0}})
        self.assertEqual(self.post(f"/join/{room_id}", bob).code, 200)
        for i in range(10):
            sender = alice if i % 2 else bob
            self.assertEqual(self.invite(sender, room_id, f"@u{i}:test").code, 200)
        self.assert_limited(self.invite(alice, room_id, "@u10:test"))
        other = self.create_room(self.tokens[alice])
        self.assertEqual(self.invite(alice, other, "@u10:test").code, 200)

    def test_invites_per_issuer(self) -> None:
        """rc_invites.per_issuer: one user's 11th invite in a burst is 429 across rooms."""
        alice = "@alice:test"
        first, second = (self.create_room(self.tokens[alice]) for _ in range(2))
        for i in range(10):
            room_id = first if i < 5 else second
            self.assertEqual(self.invite(alice, room_id, f"@u{i}:test").code, 200)
        self.assert_limited(self.invite(alice, second, "@u10:test"))

    def test_refused_invite_uses_no_other_bucket(self) -> None:
        """An invite refused by the per-user bucket does not count against the inviter."""
        alice, bob = "@alice:test", "@bob:test"
        rooms = [self.create_room(self.tokens[alice]) for _ in range(2)]
        for _ in range(5):
            self.assertEqual(self.invite(alice, rooms[0], bob).code, 200)
        for _ in range(10):
            self.assert_limited(self.invite(alice, rooms[1], bob))
        # 5 counted for alice, not 15: five more invites to others still pass.
        for i in range(5):
            self.assertEqual(self.invite(alice, rooms[1], f"@u{i}:test").code, 200)

    @override_config({"rc_message": RELAXED})
    def test_room_creation(self) -> None:
        """rc_room_creation: of 15 createRoom calls in a burst only the first 10 pass."""
        codes = []
        for _ in range(15):
            self.reactor.advance(0.01)
            codes.append(self.post("/createRoom", "@alice:test").code)
        self.assertEqual(codes, [200] * 10 + [429] * 5)
        self.reactor.advance(1 / 0.016)
        self.create_room(self.tokens["@alice:test"])

    def test_room_creation_counts_as_a_request(self) -> None:
        """createRoom also counts in rc_message, as in Synapse."""
        alice = "@alice:test"
        room_id = self.create_room(self.tokens[alice])
        for i in range(9):
            self.send_message(self.tokens[alice], room_id, f"m{i}")
        self.assert_limited(self.post("/createRoom", alice))

    def test_too_many_invitees_at_creation(self) -> None:
        """createRoom with more invitees than rc_invites.per_room's burst is 400, and
        createRoom with that many succeeds without consuming invite buckets."""
        alice = "@alice:test"
        too_many = [f"@u{i}:test" for i in range(11)]
        channel = self.post("/createRoom", alice, {"invite": too_many})
        self.assert_error(channel, 400, "M_UNKNOWN")
        self.create_room(self.tokens[alice], {"invite": too_many[:10]})
        room_id = self.create_room(self.tokens[alice])
        self.assertEqual(self.invite(alice, room_id, "@u0:test").code, 200)

    @override_config({"rc_message": RELAXED, "rc_room_creation": RELAXED})
    def test_joins_local(self) -> None:
        """rc_joins.local: one user's 11th join in a burst is 429; the bucket refills."""
        alice, bob = "@alice:test", "@bob:test"
        rooms = [self.create_room(self.tokens[alice], {"preset": "public_chat"})
                 for _ in range(12)]
        for room_id in rooms[:10]:
            self.assertEqual(self.post(f"/join/{room_id}", bob).code, 200)
        self.assert_limited(self.post(f"/join/{rooms[10]}", bob))
        self.reactor.advance(1 / 0.1)
        self.assertEqual(self.post(f"/join/{rooms[11]}", bob).code, 200)

    def test_rejoin_is_not_counted(self) -> None:
        """Joining a room one is already in, or changing one's member event, is no new
        join and never limited."""
        alice = "@alice:test"
        room_id = self.create_room(self.tokens[alice], {"preset": "public_chat"})
        for _ in range(15):
            self.assertEqual(self.post(f"/join/{room_id}", "@bob:test").code, 200)
        for i in range(15):
            self.send_state(self.tokens["@bob:test"], room_id, "m.room.member",
                            {"membership": "join", "displayname": f"Bob {i}"}, "@bob:test")

    def test_joins_per_room(self) -> None:
        """rc_joins_per_room: the 11th user joining one room in a burst is 429."""
        room_id = self.create_room(self.tokens["@alice:test"], {"preset": "public_chat"})
        joiners = [self.user(f"j{i}") for i in range(11)]
        for user_id in joiners[:10]:
            self.assertEqual(self.post(f"/join/{room_id}", user_id).code, 200)
        self.assert_limited(self.post(f"/join/{room_id}", joiners[10]))
        other = self.create_room(self.tokens["@alice:test"], {"preset": "public_chat"})
        self.assertEqual(self.post(f"/join/{other}", joiners[10]).code, 200)

    @override_config({"rc_message": RELAXED, "rc_room_creation": RELAXED})
    def test_join_through_state_api_is_limited(self) -> None:
        """A join sent as PUT /state/m.room.member counts in rc_joins like /join."""
        alice, bob = "@alice:test", "@bob:test"
        rooms = [self.create_room(self.tokens[alice], {"preset": "public_chat"})
                 for _ in range(11)]
        for room_id in rooms[:10]:
            self.assertEqual(self.post(f"/join/{room_id}", bob).code, 200)
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{rooms[10]}/state/m.room.member/{bob}",
            {"membership": "join"}, access_token=self.tokens[bob])
        self.assert_limited(channel)

    @override_config({"rc_joins": {"local": RELAXED,
                                   "remote": {"per_second": 0.01, "burst_count": 0}}})
    def test_remote_joins_have_their_own_bucket(self) -> None:
        """A join to a room this server is not in counts in rc_joins.remote (refused here
        before any federation request), while local joins use rc_joins.local."""
        self.assert_limited(self.post("/join/!elsewhere:remote.test", "@bob:test"))
        room_id = self.create_room(self.tokens["@alice:test"], {"preset": "public_chat"})
        self.assertEqual(self.post(f"/join/{room_id}", "@bob:test").code, 200)

    def test_state_events_use_the_message_limiter(self) -> None:
        """rc_message counts state events: of 50 in a burst only 10 pass, and messages
        share the bucket."""
        alice = "@alice:test"
        room_id = self.create_room(self.tokens[alice])
        self.reactor.advance(100)
        codes = [self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id}/state/m.room.topic/",
            {"topic": f"t{i}"}, access_token=self.tokens[alice]).code for i in range(50)]
        self.assertEqual(codes, [200] * 10 + [429] * 40)
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id}/send/m.room.message/t1",
            {"msgtype": "m.text", "body": "x"}, access_token=self.tokens[alice])
        self.assert_limited(channel)


class LoginRateLimitDefaultsTestCase(HomeserverTestCase):
    def make_config(self) -> dict[str, Any]:
        config = super().make_config()
        del config["rc_login"]
        return config

    def test_login_burst_per_address(self) -> None:
        """rc_login.address at Synapse's default: 5 logins from one address, then 429
        for about 5 minutes (0.003/s)."""
        self.register_user("alice", "secret-pw")
        body = {"type": "m.login.password", "password": "secret-pw",
                "identifier": {"type": "m.id.user", "user": "alice"}}
        codes = [self.make_request("POST", f"{CLIENT}/login", body).code for _ in range(6)]
        self.assertEqual(codes, [200] * 5 + [429])
        self.reactor.advance(60)
        self.assertEqual(self.make_request("POST", f"{CLIENT}/login", body).code, 429)
        self.reactor.advance(300)
        self.assertEqual(self.make_request("POST", f"{CLIENT}/login", body).code, 200)

    def test_failed_attempts(self) -> None:
        """rc_login.failed_attempts: after 3 wrong passwords the right one is refused too."""
        self.register_user("alice", "secret-pw")
        body = {"type": "m.login.password", "password": "wrong",
                "identifier": {"type": "m.id.user", "user": "alice"}}
        for _ in range(3):
            self.assert_error(self.make_request("POST", f"{CLIENT}/login", body), 403,
                              "M_FORBIDDEN")
        body["password"] = "secret-pw"
        self.assert_error(self.make_request("POST", f"{CLIENT}/login", body, client_ip="10.0.0.2"),
                          429, "M_LIMIT_EXCEEDED")
