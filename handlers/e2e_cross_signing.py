"""Cross-signing: uploading a user's master, self-signing and user-signing keys, and
signatures made with them (`/keys/device_signing/upload`, `/keys/signatures/upload`).

Rules (spec, "Cross-signing"): each key names its user and usage and holds one ed25519
key; the self-signing and user-signing keys are signed by the master key. A signature
upload may sign one's own devices (with the self-signing key), one's own master key (with
a device key), or another user's master key (with one's user-signing key); each object is
checked on its own and a bad one is reported in `failures`, the others stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from handlers.e2e_keys import failure
from handlers.e2e_signing import signed_part, single_public_key, verify_key_signature
from homeserver.errors import BadRequestError, Codes, MatrixError
from storage.stores.e2e_keys import SignatureRow

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class CrossSigningHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._store = stores.e2e_keys
        self._clock = hs.get_clock()
        self._keys = hs.get_e2e_keys_handler()
        self._device_lists = hs.get_device_list_handler()
        self._is_mine_id = hs.is_mine_id

    async def upload_needs_auth(self, user_id: str,
                                keys: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether this upload needs user-interactive auth: not when the user has no
        master key yet, nor when every key sent equals the stored one (a retry)."""
        stored = (await self._store.get_cross_signing_keys([user_id])).get(user_id, {})
        if "master" not in stored:
            return False
        return any(signed_part(stored.get(t) or {}) != signed_part(k)
                   for t, k in keys.items())

    # POST /_matrix/client/v3/keys/device_signing/upload
    async def upload_signing_keys(self, user_id: str,
                                  keys: Mapping[str, Mapping[str, Any]]) -> None:
        """Store the cross-signing keys (by type: master, self_signing, user_signing).

        Raises:
            BadRequestError: a key for another user, with the wrong usage or not one
                ed25519 key (M_INVALID_PARAM); no master key sent nor stored
                (M_MISSING_PARAM); a sub-key not signed by the master key
                (M_INVALID_SIGNATURE).
        """
        stored = (await self._store.get_cross_signing_keys([user_id])).get(user_id, {})
        for key_type, key in keys.items():
            usage = key.get("usage")
            if key.get("user_id") != user_id or not isinstance(usage, list) \
                    or key_type not in usage or single_public_key(key) is None:
                raise BadRequestError(f"Invalid {key_type} key")
        master = keys.get("master") or stored.get("master")
        if master is None:
            raise BadRequestError("No master key available", Codes.MISSING_PARAM)
        master_id = single_public_key(master)
        assert master_id is not None
        for key_type in ("self_signing", "user_signing"):
            sub = keys.get(key_type)
            if sub is not None and not verify_key_signature(sub, user_id, *master_id):
                raise BadRequestError(f"Invalid signature on {key_type} key",
                                      Codes.INVALID_SIGNATURE)
        changed = {t: k for t, k in keys.items() if stored.get(t) != k}
        if not changed:
            return
        await self._store.set_cross_signing_keys(user_id, changed, self._clock.time_msec())
        await self._device_lists.notify_cross_signing_change(user_id)

    # POST /_matrix/client/v3/keys/signatures/upload
    async def upload_signatures(self, user_id: str,
                                signatures: Mapping[str, Mapping[str, Mapping[str, Any]]]
                                ) -> dict[str, dict[str, Any]]:
        """Check and store each signed object; returns the `failures` map."""
        failures: dict[str, dict[str, Any]] = {}
        rows: list[SignatureRow] = []
        for target_user, objects in signatures.items():
            for key_id, obj in objects.items():
                try:
                    if target_user == user_id:
                        rows.extend(await self._own_signatures(user_id, key_id, obj))
                    else:
                        rows.extend(await self._other_user_signature(
                            user_id, target_user, key_id, obj))
                except MatrixError as e:
                    failures.setdefault(target_user, {})[key_id] = failure(
                        e.code, e.msg, e.errcode)
        await self._store.add_signatures(rows)
        # A newly signed device of one's own goes out as a device update (its keys now
        # carry the signature); a signed master key, one's own or another user's, as a
        # cross-signing change of the signer (it shows in the signer's key query).
        devices = await self._store.get_devices_with_keys([user_id])
        own_devices = {d.device_id for d in devices[user_id]}
        signed_devices = {r.target_key_id for r in rows
                          if r.target_user_id == user_id and r.target_key_id in own_devices}
        await self._device_lists.notify_device_change(user_id, signed_devices)
        if any(r.target_key_id not in signed_devices for r in rows):
            await self._device_lists.notify_cross_signing_change(user_id)
        await self._device_lists.notify_signed_other_users(
            user_id, {r.target_user_id for r in rows if r.target_user_id != user_id})
        return failures

    async def _own_signatures(self, user_id: str, key_id: str,
                              obj: Mapping[str, Any]) -> list[SignatureRow]:
        """Signatures over one of the user's devices (by the self-signing key) or over
        their master key (by one of their devices)."""
        stored = (await self._store.get_cross_signing_keys([user_id])).get(user_id, {})
        sigs = _signatures_of(obj, user_id)
        master = stored.get("master")
        if master is not None and key_id == (single_public_key(master) or ("", ""))[1]:
            if signed_part(obj) != signed_part(master):
                raise BadRequestError("The signed master key is not the stored one")
            devices = {d.device_id: d.keys for d in
                       (await self._store.get_devices_with_keys([user_id]))[user_id]
                       if d.keys is not None}
            out = []
            for sig_key_id, signature in sigs.items():
                device = devices.get(sig_key_id.removeprefix("ed25519:"))
                public = (device or {}).get("keys", {}).get(sig_key_id)
                if sig_key_id in master.get("signatures", {}).get(user_id, {}):
                    continue  # already part of the stored key (its self-signature)
                if not isinstance(public, str) or not verify_key_signature(
                        {**signed_part(obj), "signatures": {user_id: {sig_key_id: signature}}},
                        user_id, sig_key_id, public):
                    raise BadRequestError("Invalid signature", Codes.INVALID_SIGNATURE)
                out.append(SignatureRow(user_id, sig_key_id, user_id, key_id, signature))
            if not out:
                raise BadRequestError("No device signature on the master key",
                                      Codes.INVALID_SIGNATURE)
            return out
        ssk = stored.get("self_signing")
        if ssk is None:
            raise BadRequestError("No self-signing key uploaded", Codes.MISSING_PARAM)
        ssk_id, ssk_public = single_public_key(ssk) or ("", "")
        device = await self._store.get_device_keys(user_id, key_id)
        if device is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown device")
        if signed_part(obj) != signed_part(device):
            raise BadRequestError("The signed device keys are not the stored ones")
        sig = sigs.get(ssk_id)
        if sig is None or not verify_key_signature(
                {**signed_part(obj), "signatures": {user_id: {ssk_id: sig}}},
                user_id, ssk_id, ssk_public):
            raise BadRequestError("Invalid signature", Codes.INVALID_SIGNATURE)
        return [SignatureRow(user_id, ssk_id, user_id, key_id, sig)]

    async def _other_user_signature(self, user_id: str, target_user: str, key_id: str,
                                    obj: Mapping[str, Any]) -> list[SignatureRow]:
        """A signature by the user's user-signing key over another user's master key."""
        mine = (await self._store.get_cross_signing_keys([user_id])).get(user_id, {})
        usk = mine.get("user_signing")
        if usk is None:
            raise BadRequestError("No user-signing key uploaded", Codes.MISSING_PARAM)
        usk_id, usk_public = single_public_key(usk) or ("", "")
        master = await self._master_key_of(user_id, target_user)
        if master is None or (single_public_key(master) or ("", ""))[1] != key_id:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown master key")
        if signed_part(obj) != signed_part(master):
            raise BadRequestError("The signed master key is not the stored one")
        signature = _signatures_of(obj, user_id).get(usk_id)
        if signature is None or not verify_key_signature(
                {**signed_part(obj), "signatures": {user_id: {usk_id: signature}}},
                user_id, usk_id, usk_public):
            raise BadRequestError("Invalid signature", Codes.INVALID_SIGNATURE)
        return [SignatureRow(user_id, usk_id, target_user, key_id, signature)]

    async def _master_key_of(self, requester: str, user_id: str) -> dict[str, Any] | None:
        if self._is_mine_id(user_id):
            return (await self._store.get_cross_signing_keys([user_id])
                    ).get(user_id, {}).get("master")
        result = await self._keys.query_keys(requester, {user_id: []}, None)
        return result.master_keys.get(user_id)


def _signatures_of(obj: Mapping[str, Any], signer: str) -> dict[str, str]:
    sigs = obj.get("signatures")
    mine = sigs.get(signer) if isinstance(sigs, Mapping) else None
    if not isinstance(mine, Mapping):
        raise BadRequestError("No signature by the uploading user", Codes.INVALID_SIGNATURE)
    return {k: v for k, v in mine.items() if isinstance(k, str) and isinstance(v, str)}
