"""Profiles: `displayname`, `avatar_url`, `m.tz` and custom fields (spec v1.16).

Remote profiles are asked of the user's server. A display name or avatar change is
copied into the user's `m.room.member` join in each joined room (spec: "Events on Change
of Profile Information"), at most `rc_joins_per_room` often per room and user.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from handlers.auth import Requester
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID, is_valid_server_name

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

# Not yet in `Codes` (profile.yaml, PUT /profile/{userId}/{keyName}).

DISPLAYNAME = "displayname"
AVATAR_URL = "avatar_url"
TIMEZONE = "m.tz"

MAX_DISPLAYNAME_LEN = 256
MAX_AVATAR_URL_LEN = 1000
#: the spec's limit on a key name, in bytes of UTF-8
MAX_KEY_BYTES = 255
#: the whole profile, as JSON, must stay within 64 KiB
MAX_PROFILE_BYTES = 64 * 1024

# Common Namespaced Identifier Grammar (appendices), which custom keys follow.
_KEY_RE = re.compile(r"[a-z][a-z0-9._\-]*")
_MEDIA_ID_RE = re.compile(r"[A-Za-z0-9_\-]+")
#: the value passed to `set_profile_field` when the body lacks the key
MISSING: Any = object()

# Keys whose value must be a string; any JSON value is allowed for other keys.
_STRING_KEYS = (DISPLAYNAME, AVATAR_URL, TIMEZONE)


def is_valid_mxc_uri(uri: str) -> bool:
    """`mxc://<server-name>/<media-id>` with a valid server name and a safe media ID."""
    if not uri.startswith("mxc://"):
        return False
    server_name, sep, media_id = uri[len("mxc://"):].partition("/")
    return bool(sep) and is_valid_server_name(server_name) and bool(
        _MEDIA_ID_RE.fullmatch(media_id))


def check_key_name(key: str) -> None:
    """Raise 400 M_KEY_TOO_LARGE or M_INVALID_PARAM unless `key` is a valid profile key."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError(400, Codes.KEY_TOO_LARGE,
                          f"Profile key names are limited to {MAX_KEY_BYTES} bytes")
    if not _KEY_RE.fullmatch(key):
        raise MatrixError(400, Codes.INVALID_PARAM,
                          "Invalid profile key: it must follow the Common Namespaced "
                          "Identifier Grammar")


class ProfileHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        stores = hs.get_datastores()
        self._profiles = stores.profiles
        self._users = stores.users
        self._room_members = stores.room_members
        self._member_handler = hs.get_room_member_handler()
        self._member_updates = hs.get_ratelimiters().profile_member_updates

    async def _require_local_user(self, user_id: str) -> UserID:
        """Parse `user_id`; 404 unless it is an existing local user."""
        user = UserID.parse(user_id)
        if not self._hs.is_mine_server_name(user.domain):
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        if await self._users.get_user(user_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        return user

    # GET /_matrix/client/v3/profile/{userId}
    async def get_profile(self, user_id: str) -> dict[str, Any]:
        """Every set field of a local user's profile.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed user ID; 404 M_NOT_FOUND for
                an unknown or remote user, or a profile with nothing set.
        """
        user = UserID.parse(user_id)
        if not self._hs.is_mine_server_name(user.domain):
            return await self._remote_profile(user_id, user.domain, None)
        await self._require_local_user(user_id)
        profile = await self._profiles.get_full_profile(user_id)
        if not profile:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        return profile

    async def _remote_profile(self, user_id: str, server: str, field: str | None
                              ) -> dict[str, Any]:
        """A remote user's profile through the federation `query/profile` endpoint."""
        from federation.client import FederationRequestError

        query = {"user_id": user_id, **({"field": field} if field else {})}
        try:
            answer = await self._hs.get_federation_client().get_json(
                server, "/_matrix/federation/v1/query/profile", query, timeout=15)
        except FederationRequestError as e:
            if e.code == 404:
                raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found") from None
            raise MatrixError(502, Codes.UNKNOWN,
                              f"Failed to fetch the profile from {server}") from None
        if not isinstance(answer, dict):
            raise MatrixError(502, Codes.UNKNOWN, f"Bad profile answer from {server}")
        return answer

    # GET /_matrix/client/v3/profile/{userId}/{keyName}
    async def get_profile_field(self, user_id: str, key: str) -> Any:
        """One field's value.

        Raises:
            MatrixError: 400 for a bad user ID or key name; 404 M_NOT_FOUND for an unknown
                user or an unset field.
        """
        user = UserID.parse(user_id)
        check_key_name(key)
        if not self._hs.is_mine_server_name(user.domain):
            value = (await self._remote_profile(user_id, user.domain, key)).get(key)
            if value is None:
                raise MatrixError(404, Codes.NOT_FOUND,
                                  f"The user has no '{key}' in their profile")
            return value
        await self._require_local_user(user_id)
        value = await self._profiles.get_profile_field(user_id, key)
        if value is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"The user has no '{key}' in their profile")
        return value

    # PUT /_matrix/client/v3/profile/{userId}/{keyName}
    async def set_profile_field(self, requester: Requester, user_id: str, key: str,
                                value: Any) -> None:
        """Set a field of the requester's own profile.

        `displayname` is stripped of surrounding space; an empty `displayname` or
        `avatar_url` unsets it.

        Raises:
            MatrixError: 400 M_INVALID_PARAM (bad user ID, key, null value, too long,
                not an mxc URI), M_KEY_TOO_LARGE, M_MISSING_PARAM (`value` is MISSING),
                M_BAD_JSON (a non-string value for a string key), M_PROFILE_TOO_LARGE;
                403 M_FORBIDDEN for another user's profile.
        """
        await self._check_can_edit(requester, user_id, key)
        if value is MISSING:
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing key '{key}' in the body")
        if value is None:
            raise MatrixError(
                400, Codes.BAD_JSON if key in _STRING_KEYS else Codes.INVALID_PARAM,
                f"'{key}' must not be null; use DELETE to remove a field",
            )
        if key in _STRING_KEYS and not isinstance(value, str):
            raise MatrixError(400, Codes.BAD_JSON, f"'{key}' must be a string")
        if key == DISPLAYNAME:
            if len(value) > MAX_DISPLAYNAME_LEN:
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  f"Display name is too long (max {MAX_DISPLAYNAME_LEN})")
            value = value.strip() or None
        elif key == AVATAR_URL:
            if len(value) > MAX_AVATAR_URL_LEN:
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  f"Avatar URL is too long (max {MAX_AVATAR_URL_LEN})")
            if value and not is_valid_mxc_uri(value):
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "avatar_url must be an mxc:// URI or empty")
            value = value or None
        stored = await self._profiles.set_profile_field(user_id, key, value, MAX_PROFILE_BYTES)
        if not stored:
            raise MatrixError(400, Codes.PROFILE_TOO_LARGE,
                              "The profile would exceed its maximum size of 64 KiB")
        if key in (DISPLAYNAME, AVATAR_URL):
            await self._update_room_memberships(user_id)

    async def _update_room_memberships(self, user_id: str) -> None:
        """Re-send the user's join in each joined room, carrying the new profile."""
        for room in await self._room_members.get_rooms_for_local_user(user_id, ("join",)):
            key = f"{room.room_id} {user_id}"
            try:
                self._member_updates.check(key)
                await self._member_handler.update_membership(
                    user_id, room.room_id, user_id, "join", ratelimit=False)
            except MatrixError as e:
                # Over the limit, or the room refuses: the profile itself is saved.
                logger.info("Profile of %s not copied into %s: %s", user_id, room.room_id,
                            e)

    # DELETE /_matrix/client/v3/profile/{userId}/{keyName}
    async def delete_profile_field(self, requester: Requester, user_id: str, key: str) -> None:
        """Remove a field of the requester's own profile (no error if it was not set)."""
        await self._check_can_edit(requester, user_id, key)
        await self._profiles.set_profile_field(user_id, key, None)
        if key in (DISPLAYNAME, AVATAR_URL):
            await self._update_room_memberships(user_id)

    async def _check_can_edit(self, requester: Requester, user_id: str, key: str) -> None:
        UserID.parse(user_id)
        check_key_name(key)
        if requester.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You may only change your own profile")
        if requester.is_guest and key != DISPLAYNAME:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN,
                              "Guests may only set their display name")
        user = await self._users.get_user(user_id)
        if user is not None and user.suspended:
            raise MatrixError(403, Codes.USER_SUSPENDED,
                              "Updating your profile is not allowed while suspended")
