"""Restricted joins (room versions 8+, `join_rule: restricted` / `knock_restricted`).

As the resident server we decide whether a user of another server may join a restricted
room without an invite: the user must be joined, per our current state, to one of the
rooms the join rules' `allow` list names (`{"type": "m.room_membership", "room_id": …}`),
and one of OUR users who is joined and may invite vouches for the join through
`content.join_authorised_via_users_server` (the auth rules then need our signature on the
event). Server-server API "Restricted rooms"; client-server API "Restricted rooms".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.event_auth import get_named_level, get_user_power_level
from homeserver.events import Event
from homeserver.room_versions import RoomVersion

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateKey = tuple[str, str]

#: the content key naming the user who authorises a restricted join
AUTHORISING_USER = "join_authorised_via_users_server"


def is_restricted(room_version: RoomVersion, join_rule: Any) -> bool:
    """Whether this join rule needs the `allow` conditions in this room version."""
    return (join_rule == "restricted" and room_version.restricted_join_rule) or (
        join_rule == "knock_restricted" and room_version.knock_restricted_join_rule)


def allowed_room_ids(join_rules_content: Mapping[str, Any]) -> list[str]:
    """The rooms of the `allow` conditions we understand (others never match)."""
    allow = join_rules_content.get("allow")
    if not isinstance(allow, list):
        return []
    return [c["room_id"] for c in allow if isinstance(c, dict)
            and c.get("type") == "m.room_membership" and isinstance(c.get("room_id"), str)]


class RestrictedJoins:
    """The resident server's side of restricted joins (built by the federation
    membership handler, which owns it)."""

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        stores = hs.get_datastores()
        self._events = stores.events
        self._members = stores.room_members

    async def authorising_user(self, room_version: RoomVersion,
                               state: Mapping[StateKey, str], user_id: str) -> str | None:
        """One of our users to put in `join_authorised_via_users_server` of `user_id`'s
        join to the room whose current state is `state`; None when the join needs none
        (the room is not restricted, or the user is already invited or joined — a banned
        user is left to the auth rules).

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user is in none of the allowed rooms
                (or there are none); 400 M_UNABLE_TO_AUTHORISE_JOIN when we are in none
                of them and so cannot tell; 400 M_UNABLE_TO_GRANT_JOIN when none of our
                users in the room may invite.
        """
        wanted = [state[k] for k in (("m.room.join_rules", ""), ("m.room.member", user_id),
                                     ("m.room.power_levels", ""), ("m.room.create", ""))
                  if k in state]
        loaded = await self._events.get_events(wanted)
        auth: dict[StateKey, Event] = {e.state_pair(): e for e in loaded.values()
                                       if e.state_key is not None}
        join_rules = auth.get(("m.room.join_rules", ""))
        if join_rules is None or not is_restricted(room_version,
                                                   join_rules.content.get("join_rule")):
            return None
        member = auth.get(("m.room.member", user_id))
        if member is not None and member.membership in ("join", "invite", "ban"):
            return None
        await self.check_allowed(join_rules.content, user_id)
        return await self._pick_authoriser(state, auth)

    async def check_allowed(self, join_rules_content: Mapping[str, Any], user_id: str) -> None:
        """Raise unless `user_id` is joined to one of the allowed rooms we are in."""
        known = self._hs.is_mine_id(user_id)  # our own users' rooms are all known here
        for room_id in allowed_room_ids(join_rules_content):
            joined = await self._members.get_users_in_room(room_id)
            if not any(self._hs.is_mine_id(u) for u in joined):
                continue  # not a room we are in: its membership is not ours to judge
            known = True
            if user_id in joined:
                return
        if not known and allowed_room_ids(join_rules_content):
            raise MatrixError(400, Codes.UNABLE_TO_AUTHORISE_JOIN,
                              "This server is in none of the rooms that grant access")
        raise MatrixError(403, Codes.FORBIDDEN,
                          "You are not in any of the rooms that grant access to this room")

    async def _pick_authoriser(self, state: Mapping[StateKey, str],
                               auth: Mapping[StateKey, Event]) -> str:
        """Our joined member with the highest power level, if it may invite."""
        invite_level = get_named_level(auth, "invite", 0)
        candidates = sorted(
            ((get_user_power_level(k, auth), k) for (t, k) in state
             if t == "m.room.member" and self._hs.is_mine_id(k)),
            key=lambda pair: (-pair[0], pair[1]))
        if candidates:
            members = await self._events.get_events(
                [state[("m.room.member", k)] for _, k in candidates])
            for level, user in candidates:
                event = members.get(state[("m.room.member", user)])
                if level >= invite_level and event is not None \
                        and event.membership == "join":
                    return user
        raise MatrixError(400, Codes.UNABLE_TO_GRANT_JOIN,
                          "No user of this server in the room can let you in; "
                          "try another server")

    def check_authoriser_is_ours(self, content: Mapping[str, Any]) -> None:
        """We only vouch for joins naming one of our users (send_join)."""
        via = content.get(AUTHORISING_USER)
        if via is None:
            return
        if not isinstance(via, str) or not self._hs.is_mine_id(via):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "This server can only authorise joins through its own users")
