"""Creating accounts: username checks, password policy, and `POST /register` with UIA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from handlers.login import Session
from handlers.registration_tokens import REGISTRATION_TOKEN, RegistrationTokenHandler
from handlers.ui_auth import OperationRequest
from homeserver.errors import Codes, InteractiveAuthIncomplete, MatrixError
from homeserver.identifiers import MAX_USERID_LENGTH, is_valid_localpart

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Keys of a UIA session's serverdict that registration keeps between requests.
_PASSWORD_HASH = "registration_password_hash"
_REGISTERED_USER_ID = "registered_user_id"

# Attempts at a free generated (numeric) user ID before giving up.
_GENERATE_ATTEMPTS = 10


@attrs.frozen(slots=True)
class Registered:
    """The outcome of `POST /register`: the account, and its session unless inhibited."""

    user_id: str
    session: Session | None


class RegistrationHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._config = hs.config
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._users = stores.users
        self._ui_auth_store = stores.ui_auth
        self._passwords = hs.get_password_handler()
        self._login = hs.get_login_handler()
        self._ui_auth = hs.get_ui_auth_handler()
        self._limiter = hs.get_ratelimiters().registration
        #: tokens for token-authenticated registration (and their admin API)
        self.tokens = RegistrationTokenHandler(hs)
        self._ui_auth.register_stage(REGISTRATION_TOKEN, self.tokens.check_stage)
        self._flows = (
            [[REGISTRATION_TOKEN]] if hs.config.registration_requires_token
            else [["m.login.dummy"]]
        )
        self._next_generated: int | None = None

    # -- usernames --

    def check_username_grammar(self, localpart: str) -> str:
        """Return the full user ID for `localpart`, or raise 400 M_INVALID_USERNAME."""
        if not localpart:
            raise MatrixError(400, Codes.INVALID_USERNAME, "User ID cannot be empty")
        if not is_valid_localpart(localpart):
            raise MatrixError(
                400, Codes.INVALID_USERNAME,
                "User ID can only contain characters a-z, 0-9, or '=_-./+'",
            )
        if localpart.startswith("_"):
            raise MatrixError(400, Codes.INVALID_USERNAME, "User ID may not begin with _")
        if localpart.isdigit():
            # Kept free for the IDs generated when a client gives no username.
            raise MatrixError(400, Codes.INVALID_USERNAME,
                              "Numeric user IDs are reserved for generated user IDs")
        user_id = f"@{localpart}:{self._server_name}"
        if len(user_id) > MAX_USERID_LENGTH:
            raise MatrixError(400, Codes.INVALID_USERNAME,
                              f"User ID may not be longer than {MAX_USERID_LENGTH} characters")
        return user_id

    async def check_username_available(self, localpart: str) -> str:
        """Grammar check plus 400 M_USER_IN_USE if taken (case-insensitively)."""
        user_id = self.check_username_grammar(localpart)
        if await self._users.get_user_case_insensitive(user_id):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
        return user_id

    # GET /_matrix/client/v3/register/available
    async def check_username_for_client(self, localpart: str, client_ip: str) -> None:
        """Raise unless `localpart` could be registered now (it is not reserved)."""
        self._require_registration_enabled()
        self._limiter.check(f"available:{client_ip}")
        # Unlike /register this does not lower-case: "Alice" is not a valid localpart.
        await self.check_username_available(localpart)

    # -- creating accounts --

    async def register_user(self, localpart: str | None, password: str | None = None,
                            admin: bool = False, displayname: str | None = None,
                            user_type: str | None = None, *,
                            password_hash: str | None = None) -> str:
        """Create an account; returns its user ID.

        Args:
            localpart: the wanted localpart, or None for a generated numeric one.
            password: checked against the password policy and hashed.
            password_hash: an already hashed password (no policy check), instead.

        Raises:
            MatrixError: 400 M_INVALID_USERNAME, M_USER_IN_USE or M_WEAK_PASSWORD.
        """
        if password is not None:
            self._passwords.validate_policy(password)
            password_hash = await self._passwords.hash(password)
        if localpart is None:
            return await self._register_generated(password_hash, admin, displayname, user_type)
        user_id = await self.check_username_available(localpart)
        if not await self._store_user(user_id, password_hash, admin, displayname, user_type):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
        return user_id

    async def _store_user(self, user_id: str, password_hash: str | None, admin: bool,
                          displayname: str | None, user_type: str | None) -> bool:
        localpart = user_id[1:].split(":", 1)[0]
        return await self._users.register_user(
            user_id, password_hash, self._clock.time_msec(), admin=admin, user_type=user_type,
            displayname=displayname if displayname is not None else localpart,
        )

    async def _register_generated(self, password_hash: str | None, admin: bool,
                                  displayname: str | None, user_type: str | None) -> str:
        """Register under the next free numeric localpart (`@1:server`, `@2:server`, ...)."""
        for _ in range(_GENERATE_ATTEMPTS):
            if self._next_generated is None:
                # Numeric localparts exist only as generated ones, each at most the user
                # count when it was made, so one past the count is free (barring races).
                self._next_generated = await self._users.count_users() + 1
            candidate = self._next_generated
            self._next_generated += 1
            user_id = f"@{candidate}:{self._server_name}"
            if await self._store_user(user_id, password_hash, admin, displayname, user_type):
                return user_id
            self._next_generated = None  # another process took it: count again
        raise MatrixError(500, Codes.UNKNOWN, "Unable to find a free user ID")

    # POST /_matrix/client/v3/register
    async def register_with_uia(self, request: OperationRequest, body: dict[str, Any],
                                kind: str, client_ip: str) -> Registered:
        """One request of the user-interactive registration flow.

        Args:
            request: binds the UIA session to this endpoint.
            body: the JSON body, its field types already checked by the servlet.
            kind: `user` or `guest`.
            client_ip: for rate limiting.

        Raises:
            InteractiveAuthIncomplete: the 401 challenge until a flow is complete.
            MatrixError: 403 when registration is off or for guests, 400 for a bad or
                taken username or weak password, 429 when rate limited.
        """
        self._limiter.check(client_ip, update=False)
        if kind == "guest":
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled")
        self._require_registration_enabled()

        # The UIA session stores the body it gets: keep the plaintext password out of it.
        body = dict(body)
        password = body.pop("password", None)
        if password is not None:
            self._passwords.validate_policy(password)
        serverdict = await self._session_serverdict(body.get("auth"))
        registered_user_id = serverdict.get(_REGISTERED_USER_ID)
        password_hash = serverdict.get(_PASSWORD_HASH)

        # Refuse a bad or taken username before the client goes through the stages.
        username = body.get("username")
        if isinstance(username, str):
            await self._check_wanted_username(username.lower(), registered_user_id)

        try:
            result = await self._ui_auth.check_ui_auth(request, body, self._flows,
                                                       "register a new account",
                                                       single_use=False)
        except InteractiveAuthIncomplete as e:
            # Later requests of the flow need not repeat the password: keep its hash.
            if password is not None and password_hash is None:
                await self._ui_auth_store.set_serverdict_value(
                    e.body["session"], _PASSWORD_HASH, await self._passwords.hash(password))
            raise
        params = result.clientdict

        if registered_user_id is None:
            # A retry of a finished flow only logs in again; otherwise create the account.
            if password is not None:
                password_hash = await self._passwords.hash(password)
            username = _opt_str(params, "username")
            self._limiter.check(client_ip)
            registered_user_id = await self.register_user(
                username.lower() if username is not None else None,
                password_hash=password_hash,
            )
            await self._ui_auth_store.set_serverdict_value(
                result.session_id, _REGISTERED_USER_ID, registered_user_id)
            if REGISTRATION_TOKEN in result.completed:
                await self.tokens.use(result.session_id)

        if params.get("inhibit_login") is True:
            return Registered(registered_user_id, None)
        session = await self._login.create_session(
            registered_user_id, _opt_str(params, "device_id"),
            _opt_str(params, "initial_device_display_name"),
            params.get("refresh_token") is True,
        )
        return Registered(registered_user_id, session)

    async def _check_wanted_username(self, localpart: str,
                                     registered_user_id: str | None) -> None:
        if registered_user_id is None:
            await self.check_username_available(localpart)
        elif self.check_username_grammar(localpart) != registered_user_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "A different user ID has already been registered for this session")

    async def _session_serverdict(self, auth: Any) -> dict[str, Any]:
        """What registration stored in the UIA session named by `auth`, if any."""
        session_id = auth.get("session") if isinstance(auth, dict) else None
        if not isinstance(session_id, str):
            return {}
        session = await self._ui_auth_store.get_session(session_id)
        return session.serverdict if session is not None else {}

    def _require_registration_enabled(self) -> None:
        if not self._config.enable_registration:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")


def _opt_str(params: dict[str, Any], key: str) -> str | None:
    """A string field of the UIA session's stored body (checked when it was first sent)."""
    value = params.get(key)
    return value if isinstance(value, str) else None
