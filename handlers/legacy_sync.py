"""The deprecated r0 event-stream APIs some bridges and bots still call, built on the
`/sync` machinery (tokens are /sync tokens):

- `GET /events?from=&timeout=`: the long-poll of new events, one flat `chunk`;
- `GET /initialSync`: every room with its recent messages and current state;
- `GET /rooms/{roomId}/initialSync`: the same for one room.

Shapes follow the r0.6.1 spec and Synapse (`messages` is `{chunk, start, end}`, oldest
first; events carry their `room_id`). Typing and receipts are not served here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from handlers.sync import SyncParams
from homeserver.errors import Codes, MatrixError
from homeserver.stream_token import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: events per room per /events answer (older ones of a burst follow in the next answer)
EVENTS_PER_ROOM = 100
DEFAULT_INITIAL_LIMIT = 10
MAX_INITIAL_LIMIT = 100


@attrs.frozen(slots=True)
class EventsChunk:
    chunk: list[dict[str, Any]]
    start: str
    end: str


def _with_room(events: list[dict[str, Any]], room_id: str) -> list[dict[str, Any]]:
    return [{**e, "room_id": room_id} for e in events]


class LegacySyncHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._sync = hs.get_sync_handler()
        self._filters = hs.get_filter_handler()
        self._room_reads = hs.get_room_read_handler()
        self._pagination = hs.get_pagination_handler()
        stores = hs.get_datastores()
        self._rooms = stores.rooms
        self._members = stores.room_members

    # GET /_matrix/client/v3/events
    async def get_events(self, user_id: str, from_token: StreamToken | None,
                         timeout_ms: int) -> EventsChunk:
        """Events of the user's joined rooms (and presence) after `from_token` (None: now),
        waiting up to `timeout_ms` for some."""
        since = from_token or self._sync.current_token()
        result = await self._sync.sync(SyncParams(
            user_id=user_id, device_id=None, since=since, timeout_ms=timeout_ms,
            full_state=False, filter=await self._filter(user_id, EVENTS_PER_ROOM, False)))
        chunk: list[dict[str, Any]] = []
        for room_id, room in result["rooms"]["join"].items():
            chunk.extend(_with_room(room["timeline"]["events"], room_id))
        chunk.extend(result["presence"]["events"])
        return EventsChunk(chunk, since.serialize(), result["next_batch"])

    # GET /_matrix/client/v3/initialSync
    async def initial_sync(self, user_id: str, limit: int | None,
                           archived: bool) -> dict[str, Any]:
        """Every room of the user (left ones too with `archived`).

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a negative `limit`.
        """
        limit = _check_limit(limit)
        result = await self._sync.sync(SyncParams(
            user_id=user_id, device_id=None, since=None, timeout_ms=0, full_state=False,
            filter=await self._filter(user_id, limit, archived)))
        end = result["next_batch"]
        rooms: list[dict[str, Any]] = []
        for membership, section in (("join", "join"), ("leave", "leave")):
            for room_id, room in result["rooms"][section].items():
                timeline = room["timeline"]
                info = await self._room_info(user_id, room_id, membership, end,
                                             timeline["events"], timeline.get("prev_batch"))
                info["account_data"] = room.get("account_data", {}).get("events", [])
                rooms.append(info)
        for room_id, room in result["rooms"]["invite"].items():
            invite = next((e for e in room["invite_state"]["events"]
                           if e["type"] == "m.room.member" and e.get("state_key") == user_id),
                          None)
            info = {"room_id": room_id, "membership": "invite"}
            if invite is not None:
                info["invite"] = {**invite, "room_id": room_id}
                info["inviter"] = invite["sender"]
            rooms.append(info)
        return {"rooms": rooms, "presence": result["presence"]["events"],
                "account_data": result["account_data"]["events"], "receipts": [],
                "end": end}

    # GET /_matrix/client/v3/rooms/{roomId}/initialSync
    async def room_initial_sync(self, user_id: str, room_id: str) -> dict[str, Any]:
        """One room's recent messages and state, for a member or a world-readable room.

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user may not read the room.
        """
        page = await self._pagination.get_messages(user_id, None, room_id, None, None,
                                                   "b", DEFAULT_INITIAL_LIMIT, None)
        end = self._sync.current_token().serialize()
        local = await self._members.get_local_membership(user_id, room_id)
        info = await self._room_info(
            user_id, room_id, local.membership if local is not None else "leave", end,
            list(reversed(page["chunk"])), page.get("end"))
        info.update(presence=[], receipts=[], account_data=[])
        return info

    async def _room_info(self, user_id: str, room_id: str, membership: str, end: str,
                         messages: list[dict[str, Any]], start: str | None
                         ) -> dict[str, Any]:
        room = await self._rooms.get_room(room_id)
        return {
            "room_id": room_id, "membership": membership,
            "messages": {"chunk": _with_room(messages, room_id), "start": start or end,
                         "end": end},
            "state": await self._room_reads.get_state(user_id, room_id),
            "visibility": "public" if room is not None and room.is_public else "private",
        }

    async def _filter(self, user_id: str, limit: int, include_leave: bool) -> Any:
        return await self._filters.resolve(user_id, json.dumps(
            {"room": {"timeline": {"limit": limit}, "include_leave": include_leave}}))


def _check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_INITIAL_LIMIT
    if limit < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, "limit must not be negative")
    return min(limit, MAX_INITIAL_LIMIT)
