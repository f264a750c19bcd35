"""Account management: logout, password change and deactivation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.auth import Requester

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class AccountHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._users = stores.users
        self._tokens = stores.tokens
        self._devices = hs.get_device_handler()
        self._passwords = hs.get_password_handler()

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
    async def deactivate(self, user_id: str) -> str:
        """Deactivate the account for good; the user ID stays taken.

        The account is marked first, so its tokens are refused even before they are deleted.

        Returns:
            the `id_server_unbind_result`: "success", as there are no 3PIDs to unbind yet.
        """
        await self._users.deactivate_account(user_id)
        await self._devices.delete_all_devices(user_id)
        return "success"
