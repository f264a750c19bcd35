"""User-interactive authentication (client-server spec, "User-Interactive Authentication API").

An endpoint calls `check_ui_auth` with its flows. Without a completed flow the call raises
`InteractiveAuthIncomplete`, which the router renders as the 401 challenge
`{flows, params, session, completed[, errcode, error]}`. Stage checkers are pluggable, so
areas add their own (registration adds `m.login.registration_token`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from homeserver.errors import Codes, InteractiveAuthIncomplete, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer
    from storage.stores.ui_auth import UIAuthSession

SESSION_LIFETIME_MS = 24 * 60 * 60 * 1000

#: (auth dict, session, the user the operation is for or None) -> stage result to record
StageChecker = Callable[[dict[str, Any], "UIAuthSession", str | None], Awaitable[Any]]


@attrs.frozen(slots=True)
class UIAuthResult:
    #: stage type -> what the checker returned (e.g. the user ID for m.login.password)
    completed: dict[str, Any]
    #: the request body of the first request in the session, merged under this one's
    clientdict: dict[str, Any]
    session_id: str


class OperationRequest(Protocol):
    """What UIA needs of a request: the operation a session is bound to."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


class StageFailed(Exception):
    """A stage's credentials were wrong: the challenge is sent again with this error."""

    def __init__(self, errcode: str, msg: str) -> None:
        super().__init__(msg)
        self.errcode = errcode
        self.msg = msg


class UserInteractiveAuthHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().ui_auth
        self._hs = hs
        self._checkers: dict[str, StageChecker] = {"m.login.dummy": _check_dummy}
        self._params: dict[str, Callable[[], dict[str, Any]]] = {}
        self._checkers["m.login.password"] = self._check_password

    def register_stage(self, stage_type: str, checker: StageChecker,
                       params: Callable[[], dict[str, Any]] | None = None) -> None:
        self._checkers[stage_type] = checker
        if params is not None:
            self._params[stage_type] = params

    async def check_ui_auth(self, request: OperationRequest, body: dict[str, Any],
                            flows: Sequence[Sequence[str]], description: str,
                            for_user_id: str | None = None,
                            single_use: bool = True) -> UIAuthResult:
        """Run one step of UIA for this request.

        Args:
            request: the request (its method and path bind the session to the operation).
            body: the parsed JSON body, with its optional `auth` dict.
            flows: the acceptable flows, each a list of stage types.
            description: what the operation is, for logs and admin tools.
            for_user_id: the user who must prove who they are (None during registration).
            single_use: end the session once a flow completes, so a finished session
                cannot authorise the operation again (registration keeps its session to
                answer retries with the same account).

        Returns:
            the completed stages once one flow is done.

        Raises:
            InteractiveAuthIncomplete: the 401 challenge (or stage failure).
            MatrixError: a malformed `auth` dict or unknown session.
        """
        auth = body.get("auth")
        clientdict = {k: v for k, v in body.items() if k != "auth"}
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'auth' must be an object")
        session_id = auth.get("session") if auth else None
        now = self._clock.time_msec()
        if session_id is None:
            session_id = secrets.token_urlsafe(18)
            await self._store.create_session(session_id, now, clientdict, request.path,
                                             request.method, description)
            session = await self._store.get_session(session_id)
        else:
            if not isinstance(session_id, str):
                raise MatrixError(400, Codes.BAD_JSON, "'auth.session' must be a string")
            session = await self._store.get_session(session_id)
            if session is None or session.creation_time + SESSION_LIFETIME_MS < now:
                raise MatrixError(400, Codes.UNKNOWN, "Unknown session ID")
            if session.uri != request.path or session.method != request.method:
                raise MatrixError(
                    403, Codes.FORBIDDEN,
                    "Requested operation has changed during the UI authentication session",
                )
        assert session is not None
        merged = {**session.clientdict, **clientdict}

        completed = await self._store.get_completed_stages(session_id)
        error: StageFailed | None = None
        stage_type = auth.get("type") if auth else None
        if stage_type is not None:
            if not isinstance(stage_type, str):
                raise MatrixError(400, Codes.BAD_JSON, "'auth.type' must be a string")
            allowed = {s for flow in flows for s in flow}
            checker = self._checkers.get(stage_type)
            if checker is None or stage_type not in allowed:
                raise MatrixError(400, Codes.UNRECOGNIZED,
                                  f"Unrecognised login type: {stage_type}")
            try:
                assert auth is not None
                result = await checker(auth, session, for_user_id)
            except StageFailed as e:
                error = e
            else:
                await self._store.mark_stage_complete(session_id, stage_type, result)
                completed[stage_type] = result

        for flow in flows:
            if all(stage in completed for stage in flow):
                if single_use:
                    await self._store.delete_session(session_id)
                return UIAuthResult(completed, merged, session_id)

        challenge: dict[str, Any] = {
            "flows": [{"stages": list(flow)} for flow in flows],
            "params": {
                stage: self._params[stage]()
                for flow in flows for stage in flow if stage in self._params
            },
            "session": session_id,
        }
        if completed:
            challenge["completed"] = sorted(completed)
        if error is not None:
            challenge["errcode"] = error.errcode
            challenge["error"] = error.msg
        raise InteractiveAuthIncomplete(challenge)

    async def _check_password(self, auth: dict[str, Any], session: UIAuthSession,
                              for_user_id: str | None) -> str:
        """`m.login.password`: the password of `for_user_id` (identifier optional)."""
        if for_user_id is None:
            raise StageFailed(Codes.FORBIDDEN, "Password auth is not available here")
        password = auth.get("password")
        if not isinstance(password, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'password' in auth")
        login = self._hs.get_login_handler()
        identifier = auth.get("identifier")
        if identifier is None and "user" in auth:
            identifier = {"type": "m.id.user", "user": auth["user"]}
        if identifier is not None:
            user_id = login.user_id_from_identifier(identifier)
            if user_id != for_user_id:
                raise StageFailed(Codes.FORBIDDEN, "Invalid username or password")
        if not await login.check_password_for_user(for_user_id, password):
            raise StageFailed(Codes.FORBIDDEN, "Invalid username or password")
        return for_user_id

    async def prune_expired_sessions(self) -> None:
        await self._store.delete_old_sessions(self._clock.time_msec() - SESSION_LIFETIME_MS)


async def _check_dummy(auth: dict[str, Any], session: UIAuthSession,
                       for_user_id: str | None) -> bool:
    return True
