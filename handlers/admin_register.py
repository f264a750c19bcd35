"""Registration with the shared secret, as Synapse does it (`register_new_matrix_user`).

The client fetches a single-use nonce, then sends the account details with
`mac = HMAC-SHA1(registration_shared_secret,
nonce NUL username NUL password NUL ("admin" | "notadmin") [NUL user_type])` in hex.
It works whether or not open registration is enabled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from handlers.login import Session
from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

NONCE_TIMEOUT_S = 60
#: the user types Synapse knows without configuration
USER_TYPES = frozenset({"support", "bot"})
_MAX_FIELD_LENGTH = 512


def compute_mac(secret: str, nonce: str, username: str, password: str, admin: bool,
                user_type: str | None = None) -> str:
    """The hex HMAC-SHA1 that `register_new_matrix_user` sends."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(username.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    if user_type:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf-8"))
    return mac.hexdigest()


class SharedSecretRegistrationHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        self._secret = hs.config.registration_shared_secret
        self._passwords = hs.get_password_handler()
        self._registration = hs.get_registration_handler()
        self._login = hs.get_login_handler()
        #: nonce -> when it was issued (seconds)
        self._nonces: dict[str, float] = {}

    def _clear_old_nonces(self) -> None:
        now = self._clock.time()
        for nonce, issued in list(self._nonces.items()):
            if now - issued > NONCE_TIMEOUT_S:
                del self._nonces[nonce]

    # GET /_synapse/admin/v1/register
    def new_nonce(self) -> str:
        self._clear_old_nonces()
        nonce = secrets.token_hex(64)
        self._nonces[nonce] = self._clock.time()
        return nonce

    # POST /_synapse/admin/v1/register
    async def register(self, nonce: str, username: str, password: str, admin: bool,
                       mac: str, displayname: str | None = None,
                       user_type: str | None = None, refresh_token: bool = False) -> Session:
        """Check the nonce and MAC, create the account and log it in.

        Raises:
            MatrixError: 400 when shared-secret registration is off, for an unknown or
                reused nonce, a bad username, password or user type; 403 for a wrong MAC.
        """
        self._clear_old_nonces()
        if not self._secret:
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")
        # A nonce is good for one attempt, whether or not that attempt succeeds.
        if self._nonces.pop(nonce, None) is None:
            raise MatrixError(400, Codes.UNKNOWN, "unrecognised nonce")
        if len(username) > _MAX_FIELD_LENGTH or "\x00" in username:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid username")
        if len(password) > _MAX_FIELD_LENGTH or "\x00" in password:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid password")
        if user_type is not None and user_type not in USER_TYPES:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user type")

        want = compute_mac(self._secret, nonce, username, password, admin, user_type)
        if not hmac.compare_digest(want.encode("ascii"), mac.encode("utf-8")):
            raise MatrixError(403, Codes.FORBIDDEN, "HMAC incorrect")

        # The admin sets the password: the policy for users does not apply (as in Synapse).
        password_hash = await self._passwords.hash(password)
        user_id = await self._registration.register_user(
            username.lower(), admin=admin, displayname=displayname, user_type=user_type,
            password_hash=password_hash,
        )
        return await self._login.create_session(user_id, None, None, refresh_token)
