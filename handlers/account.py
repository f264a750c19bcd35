"""Account management: logout, password change and deactivation."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from handlers.auth import Requester
from homeserver.errors import MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer


logger = logging.getLogger(__name__)


class AccountHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._users = stores.users
        self._tokens = stores.tokens
        self._devices = hs.get_device_handler()
        self._passwords = hs.get_password_handler()
        self._members_store = stores.room_members
        self._moderation = stores.moderation
        self._room_members = hs.get_room_member_handler()
        self._clock = hs.get_clock()

    # POST /_matrix/client/v3/logout
    async def logout(self, requester: Requester) -> None:
        """End this session: delete its device (and so every token of the device), or just
        the token when it has no device."""
        if requester.device_id is None:
            await self._tokens.delete_access_token(requester.access_token_id)
        else:
            await self._devices.delete_devices(requester.user_id, [requester.device_id])

    # POST /_matrix/client/v3/logout/all
    async def logout_all(self, user_id: str) -> None:
        """Delete every device and token of the user, this request's included."""
        await self._devices.delete_all_devices(user_id)

    def check_new_password(self, new_password: str) -> None:
        """Raise 400 M_WEAK_PASSWORD if the password breaks the policy (checked before UIA,
        so the user does not type their old password for nothing)."""
        self._passwords.validate_policy(new_password)

    # POST /_matrix/client/v3/account/password
    async def change_password(self, requester: Requester, new_password: str,
                              logout_devices: bool) -> None:
        """Set a new password; with `logout_devices`, sign out every other session.

        The requester's own token and device are kept (the spec: the server SHOULD NOT
        revoke the access token of the request).
        """
        self._passwords.validate_policy(new_password)
        password_hash = await self._passwords.hash(new_password)
        await self._users.set_password_hash(requester.user_id, password_hash)
        if logout_devices:
            await self._devices.delete_all_devices(
                requester.user_id, except_device_id=requester.device_id,
                except_token_id=requester.access_token_id,
            )

    # POST /_matrix/client/v3/account/deactivate
    async def deactivate(self, user_id: str, erase: bool = False) -> str:
        """Deactivate the account for good; the user ID stays taken.

        The account is marked first, so its tokens are refused even before they are
        deleted. Then, as Synapse: the profile and user-directory entry go, the user
        leaves every room, pending invites are rejected and knocks withdrawn; with
        `erase`, their events are served redacted to users who join afterwards.

        Returns:
            the `id_server_unbind_result`: "success", as there are no 3PIDs to unbind yet.
        """
        await self._users.deactivate_account(user_id)
        if erase:
            await self._moderation.mark_user_erased(user_id, self._clock.time_msec())
        await self._devices.delete_all_devices(user_id)
        await self._part_all_rooms(user_id)
        return "success"

    async def _part_all_rooms(self, user_id: str) -> None:
        rooms = await self._members_store.get_rooms_for_local_user(
            user_id, ("join", "invite", "knock"))
        for membership in rooms:
            try:
                await self._room_members.leave(user_id, membership.room_id)
            except MatrixError as e:
                # A room that refuses the leave (or an unreachable inviter's server)
                # must not stop the deactivation.
                logger.info("Deactivating %s: could not leave %s: %s", user_id,
                            membership.room_id, e)
