"""Answers to other servers' queries (`/_matrix/federation/v1/query/{type}`): profiles of
our users and our room aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.profile import check_key_name
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import RoomAlias, UserID
from storage.stores.profiles import COLUMN_FIELDS

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationQueryHandler:
    """Built once by the container (`hs.get_federation_query_handler()`)."""

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        stores = hs.get_datastores()
        self._users = stores.users
        self._profiles = stores.profiles
        self._directory = hs.get_directory_handler()

    # GET /_matrix/federation/v1/query/profile
    async def get_profile(self, user_id: str, field: str | None) -> dict[str, Any]:
        """A local user's public profile, or only `field`. Unset fields are `null`
        (`displayname` and `avatar_url` always appear in a full profile), as Synapse.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed user ID or field name;
                404 M_NOT_FOUND for a remote or unknown user.
        """
        user = UserID.parse(user_id)
        if field is not None:
            try:
                check_key_name(field)
            except MatrixError:
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  f"Invalid profile field {field[:100]!r}") from None
        if not self._hs.is_mine_server_name(user.domain) \
                or await self._users.get_user(user_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Profile was not found")
        if field is not None:
            return {field: await self._profiles.get_profile_field(user_id, field)}
        profile = await self._profiles.get_full_profile(user_id) or {}
        return {**dict.fromkeys(COLUMN_FIELDS), **profile}

    # GET /_matrix/federation/v1/query/directory
    async def get_room_alias(self, room_alias: str) -> dict[str, Any]:
        """`{room_id, servers}` for one of our aliases.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed alias; 404 M_NOT_FOUND for
                an unknown alias or one of another server.
        """
        alias = RoomAlias.parse(room_alias)
        if not self._hs.is_mine_server_name(alias.domain):
            # Never ask onwards: the asking server should query the alias's own server.
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {room_alias} not found")
        return await self._directory.resolve_alias(room_alias)
