"""`rc_federation`: per origin, requests beyond `sleep_limit` in the window are delayed,
at most `concurrent` run at once, and beyond `reject_limit` waiting ones a request is 429
with `retry_after_ms`; limits recover once the clock moves on."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from tests.federation.fed_helpers import RemoteServer, install_remote
from tests.harness import FakeChannel, HomeserverTestCase, override_config

PROFILE = "/_matrix/federation/v1/query/profile?user_id=%40alice%3Atest"


class FederationRateLimitTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.remote = RemoteServer("remote.test")
        self.other = RemoteServer("other.test")

    def query(self, remote: RemoteServer | None = None, await_result: bool = True
              ) -> FakeChannel:
        remote = remote or self.remote
        install_remote(self, remote)
        auth = remote.auth_header("GET", PROFILE, None, self.hs.hostname)
        return self.make_request("GET", PROFILE, headers={"Authorization": auth},
                                 await_result=await_result)

    @override_config({"rc_federation": {"window_size": 1000, "sleep_limit": 1,
                                        "sleep_delay": 500, "reject_limit": 0,
                                        "concurrent": 5}})
    def test_sleep_then_reject_then_recover(self) -> None:
        """Over sleep_limit a request waits sleep_delay; with more than reject_limit
        waiting the next is 429 with retry_after_ms = window / sleep_limit; after the
        window the origin is served at once again."""
        self.assertEqual(self.query().code, 200)
        delayed = self.query(await_result=False)
        self.assertIsNone(delayed.response)
        refused = self.query()
        self.assert_error(refused, 429, "M_LIMIT_EXCEEDED")
        self.assertEqual(refused.json_body["retry_after_ms"], 1000)
        self.assertEqual(refused.header("Retry-After"), "1")
        # Another origin has its own limits.
        self.assertEqual(self.query(self.other).code, 200)
        self.reactor.advance(0.5)
        self.pump()
        self.assertEqual(delayed.code, 200, delayed.result)
        self.reactor.advance(1.0)
        self.assertEqual(self.query().code, 200)

    @override_config({"rc_federation": {"window_size": 1000, "sleep_limit": 100,
                                        "sleep_delay": 500, "reject_limit": 1,
                                        "concurrent": 1}})
    def test_concurrency_queue(self) -> None:
        """With concurrent: 1 the second request waits for the first and runs after it;
        once more than reject_limit wait, the next is refused."""
        handler = self.hs.get_federation_query_handler()
        original = handler.get_profile
        gate: defer.Deferred[None] = defer.Deferred()
        started: list[int] = []

        async def slow(user_id: str, field: str | None) -> Any:
            started.append(len(started))
            if len(started) == 1:
                await gate
            return await original(user_id, field)

        handler.get_profile = slow  # type: ignore[method-assign]
        first = self.query(await_result=False)
        second = self.query(await_result=False)
        third = self.query(await_result=False)
        self.assertEqual(started, [0])
        self.assert_error(self.query(), 429, "M_LIMIT_EXCEEDED")
        self.assertEqual(self.query(self.other).code, 200)  # not held up by remote.test
        gate.callback(None)
        self.pump()
        self.assertEqual([first.code, second.code, third.code], [200, 200, 200])
        self.assertEqual(len(started), 4)
        self.assertEqual(self.query().code, 200)

    @override_config({"rc_federation": {"sleep_limit": 1, "reject_limit": 0, "concurrent": 1}})
    def test_send_is_not_rate_limited(self) -> None:
        """/send is serialised per origin instead (as in Synapse): a burst of
        transactions is never delayed."""
        for i in range(30):
            path = f"/_matrix/federation/v1/send/burst{i}"
            body = {"origin": "remote.test", "origin_server_ts": 0, "pdus": []}
            install_remote(self, self.remote)
            auth = self.remote.auth_header("PUT", path, body, self.hs.hostname)
            channel = self.make_request("PUT", path, body, headers={"Authorization": auth})
            self.assertEqual(channel.code, 200, channel.result)

