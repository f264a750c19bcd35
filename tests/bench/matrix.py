"""The few Matrix client-server calls the benchmark needs, over `HttpPool`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import quote

from tests.bench.httpclient import Connection, HttpPool, Response

CLIENT = "/_matrix/client/v3"
PASSWORD = "bench-password-123"


class MatrixRequestError(Exception):
    """A request the benchmark relies on did not succeed."""

    def __init__(self, what: str, resp: Response) -> None:
        body = resp.body[:300].decode("utf-8", "replace")
        super().__init__(f"{what}: HTTP {resp.status} {body}")
        self.status = resp.status


class User:
    __slots__ = ("user_id", "access_token", "headers", "_txn")

    def __init__(self, user_id: str, access_token: str) -> None:
        self.user_id = user_id
        self.access_token = access_token
        self.headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
        }
        self._txn = 0

    def next_txn_id(self) -> str:
        self._txn += 1
        return f"b{self._txn}"


def registration_mac(secret: str, nonce: str, username: str, password: str) -> str:
    """HMAC-SHA1 over `nonce\\0user\\0password\\0notadmin`, as register_new_matrix_user sends."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(b"\x00".join(
        [nonce.encode(), username.encode(), password.encode(), b"notadmin"]))
    return mac.hexdigest()


def _json(data: Any) -> bytes:
    return json.dumps(data).encode("utf-8")


class MatrixClient:
    """Registration, rooms and messages against one server URL."""

    def __init__(self, pool: HttpPool, shared_secret: str | None, open_registration: bool) -> None:
        if not shared_secret and not open_registration:
            raise ValueError("give --shared-secret or --open-registration to create users")
        self.pool = pool
        self._secret = shared_secret
        # A per-run prefix keeps user names unique across runs against the same server.
        self.run_id = secrets.token_hex(3)
        self._user_counter = 0

    def _next_localpart(self, role: str) -> str:
        self._user_counter += 1
        return f"bench_{self.run_id}_{role}{self._user_counter}"

    async def register(self, role: str = "u") -> User:
        localpart = self._next_localpart(role)
        if self._secret:
            return await self._register_shared_secret(localpart)
        return await self._register_open(localpart)

    async def register_many(self, count: int, role: str = "u", parallel: int = 16) -> list[User]:
        """Create `count` users, `parallel` registrations at a time, in a stable order."""
        gate = asyncio.Semaphore(parallel)

        async def one() -> User:
            async with gate:
                return await self.register(role)

        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def _register_shared_secret(self, localpart: str) -> User:
        path = "/_synapse/admin/v1/register"
        resp = await self.pool.request("GET", path)
        if resp.status != 200:
            raise MatrixRequestError("GET nonce", resp)
        nonce = resp.json()["nonce"]
        assert self._secret is not None
        body = {
            "nonce": nonce, "username": localpart, "password": PASSWORD, "admin": False,
            "mac": registration_mac(self._secret, nonce, localpart, PASSWORD),
        }
        resp = await self.pool.request("POST", path, _json(body),
                                       {"Content-Type": "application/json"})
        if resp.status != 200:
            raise MatrixRequestError(f"shared-secret register {localpart}", resp)
        data = resp.json()
        return User(data["user_id"], data["access_token"])

    async def _register_open(self, localpart: str) -> User:
        path = f"{CLIENT}/register"
        body: dict[str, Any] = {"username": localpart, "password": PASSWORD,
                                "initial_device_display_name": "loadgen"}
        headers = {"Content-Type": "application/json"}
        # First call opens a user-interactive auth session; the second completes m.login.dummy.
        resp = await self.pool.request("POST", path, _json(body), headers)
        if resp.status == 401:
            session = (resp.json() or {}).get("session")
            body["auth"] = {"type": "m.login.dummy", "session": session}
            resp = await self.pool.request("POST", path, _json(body), headers)
        if resp.status != 200:
            raise MatrixRequestError(f"register {localpart}", resp)
        data = resp.json()
        return User(data["user_id"], data["access_token"])

    async def whoami(self, user: User, conn: Connection | None = None) -> Response:
        return await self.pool.request("GET", f"{CLIENT}/account/whoami", None,
                                       user.headers, conn)

    async def create_room(self, user: User, invite: list[str] | None = None,
                          preset: str = "private_chat",
                          conn: Connection | None = None) -> str:
        body: dict[str, Any] = {"preset": preset}
        if invite:
            body["invite"] = invite
        resp = await self.pool.request("POST", f"{CLIENT}/createRoom", _json(body),
                                       user.headers, conn)
        if resp.status != 200:
            raise MatrixRequestError("createRoom", resp)
        return str(resp.json()["room_id"])

    async def join(self, user: User, room_id: str, conn: Connection | None = None) -> None:
        resp = await self.pool.request("POST", f"{CLIENT}/rooms/{quote(room_id)}/join",
                                       b"{}", user.headers, conn)
        if resp.status != 200:
            raise MatrixRequestError(f"join {user.user_id}", resp)

    async def send_message(self, user: User, room_id: str, text: str,
                           conn: Connection | None = None) -> Response:
        """PUT one m.room.message; returns the raw response (the caller checks the status)."""
        path = (f"{CLIENT}/rooms/{quote(room_id)}/send/m.room.message/"
                f"{user.next_txn_id()}")
        return await self.pool.request("PUT", path, _json({"msgtype": "m.text", "body": text}),
                                       user.headers, conn)
