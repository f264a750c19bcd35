"""Inbound federation requests in API tests: fake remote servers that sign their requests.

    remote = RemoteServer("remote.example")
    channel = signed_request(self, remote, "GET", "/_matrix/federation/v1/event/$abc")
    self.assertEqual(channel.code, 200, channel.result)

`signed_request` signs with the remote's own key (X-Matrix, `federation.auth.sign_request`)
and makes the homeserver's key ring able to fetch that key: the first call per test plugs
in a fetcher answering `GET /_matrix/key/v2/server` for every `RemoteServer` used so far
(any other server or path fails like an unreachable server).

Until remote joins land, `join_remote_user` puts a remote user in a room by sending its
join through the local event pipeline (the room must let it join: public, or invited).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from federation.auth import sign_request
from federation.keyring import KEY_SERVER_PATH
from handlers.event_creation import EventSpec
from tests.federation.key_helpers import DAY_MS, FakeServer

if TYPE_CHECKING:
    from homeserver.server import HomeServer
    from tests.harness import FakeChannel, HomeserverTestCase

FEDERATION = "/_matrix/federation/v1"


@attrs.define
class RemoteServer(FakeServer):
    """A remote server (`name`) with its own ed25519 signing key (`key`, ID `key_id`)."""

    def auth_header(self, method: str, uri: str, content: Any, destination: str) -> str:
        """The `Authorization` header value for one request to `destination`."""
        return sign_request(self.name, destination, method, uri, content, self.key)


@attrs.define
class RemoteKeyFetcher:
    """The key ring's fetcher in tests: serves the keys of the registered remotes."""

    hs: HomeServer
    servers: dict[str, RemoteServer] = attrs.Factory(dict)

    async def __call__(self, server_name: str, path: str, body: dict[str, Any] | None) -> Any:
        remote = self.servers.get(server_name)
        if remote is None or path != KEY_SERVER_PATH or body is not None:
            raise ConnectionError(f"{server_name} unreachable")
        return remote.key_response(self.hs.get_clock().time_msec() + DAY_MS)


def install_remote(testcase: HomeserverTestCase, remote: RemoteServer) -> RemoteKeyFetcher:
    """Make `remote`'s key fetchable by `testcase.hs`'s key ring (idempotent)."""
    fetcher: RemoteKeyFetcher | None = getattr(testcase, "_remote_key_fetcher", None)
    if fetcher is None or fetcher.hs is not testcase.hs:
        fetcher = RemoteKeyFetcher(testcase.hs)
        testcase.hs.get_keyring().set_fetcher(fetcher)
        testcase._remote_key_fetcher = fetcher  # type: ignore[attr-defined]
    fetcher.servers[remote.name] = remote
    return fetcher


def signed_request(testcase: HomeserverTestCase, remote: RemoteServer, method: str,
                   path: str, body: Any = None, destination: str | None = None,
                   headers: dict[str, str] | None = None) -> FakeChannel:
    """`make_request` as `remote`: `path` is the full request target (with its query
    string, percent-encoded as sent); `body` a JSON value or None. `destination` defaults to
    the homeserver's name (pass another to test a misdirected request); `headers` are
    added (and may replace `Authorization`)."""
    install_remote(testcase, remote)
    auth = remote.auth_header(method, path, body, destination or testcase.hs.hostname)
    return testcase.make_request(method, path, body,
                                 headers={"Authorization": auth, **(headers or {})})


def join_remote_user(testcase: HomeserverTestCase, room_id: str, user_id: str) -> str:
    """Persist `user_id`'s (a remote user's) join to the room; returns the event ID.

    A stand-in for a join over federation: the event is built and signed locally, but
    the room state afterwards is the same.
    """
    sent = testcase.get_success(testcase.hs.get_event_creation_handler().send(EventSpec(
        room_id=room_id, type="m.room.member", sender=user_id, state_key=user_id,
        content={"membership": "join"})))
    event_id: str = sent.event.event_id
    return event_id
