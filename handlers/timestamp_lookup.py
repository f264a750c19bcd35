"""`timestamp_to_event`: the room's event closest to a time, in one direction.

Client (`GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event`) and federation
(`GET /_matrix/federation/v1/timestamp_to_event/{roomId}`). As Synapse, a client lookup
asks the other servers in the room when we have nothing in that direction, or when the
answer lies next to the start of the history we hold (a backward gap); a remote answer
is used when it is closer, after fetching and checking the event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

import attrs

from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: servers asked, at most, per client lookup
MAX_SERVERS_ASKED = 3
REMOTE_TIMEOUT = 10.0


@attrs.frozen(slots=True)
class ClosestEvent:
    event_id: str
    origin_server_ts: int


def _check_direction(direction: str) -> None:
    if direction not in ("f", "b"):
        raise MatrixError(400, Codes.INVALID_PARAM, "dir must be 'f' or 'b'")


def _not_found(ts: int, direction: str) -> MatrixError:
    way = "forward" if direction == "f" else "backward"
    return MatrixError(404, Codes.NOT_FOUND, f"Unable to find event from {ts} in {way}"
                                             " direction")


class TimestampLookupHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._stream = stores.stream
        self._events = stores.events
        self._visibility = hs.get_visibility_handler()
        self._server_visibility = hs.get_server_visibility()
        self._backfill = hs.get_federation_backfill_handler()
        self._client = hs.get_federation_client()
        self._fed_events = hs.get_federation_event_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event
    async def get_closest_event(self, user_id: str, room_id: str, ts: int,
                                direction: str) -> ClosestEvent:
        """The closest event at or after (`f`) or at or before (`b`) `ts`.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a bad `dir`; 403 M_FORBIDDEN when the user
                is not in the room and it is not world-readable (also for unknown rooms);
                404 M_NOT_FOUND when no event is found, here or remotely.
        """
        _check_direction(direction)
        if not await self._visibility.is_joined_or_world_readable(user_id, room_id):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to access this room")
        local = await self._stream.get_event_for_timestamp(room_id, ts, direction)
        found = ClosestEvent(*local) if local is not None else None
        if found is None or await self._next_to_gap(room_id, found.event_id, direction):
            remote = await self._ask_remote(room_id, ts, direction)
            if remote is not None and (
                    found is None
                    or abs(remote.origin_server_ts - ts) < abs(found.origin_server_ts - ts)):
                found = remote
        if found is None:
            raise _not_found(ts, direction)
        return found

    # GET /_matrix/federation/v1/timestamp_to_event/{roomId}
    async def get_closest_event_for_server(self, origin: str, room_id: str, ts: int,
                                           direction: str) -> ClosestEvent:
        """What we hold locally (never asking further).

        Raises:
            MatrixError: 400 for a bad `dir`; 403/404 when `origin` may not read the
                room; 404 M_NOT_FOUND when no event is found.
        """
        _check_direction(direction)
        await self._server_visibility.check_room_access(origin, room_id)
        local = await self._stream.get_event_for_timestamp(room_id, ts, direction)
        if local is None:
            raise _not_found(ts, direction)
        return ClosestEvent(*local)

    async def _next_to_gap(self, room_id: str, event_id: str, direction: str) -> bool:
        """Backwards: the event is among the oldest we hold, and older ones are missing."""
        if direction != "b":
            return False
        event = await self._events.get_event(event_id)
        if event is None:
            return False
        gaps = set(await self._events.get_backward_extremities(room_id))
        return any(p in gaps for p in event.prev_event_ids)

    async def _ask_remote(self, room_id: str, ts: int, direction: str
                          ) -> ClosestEvent | None:
        room_version = await self._events.get_room_version(room_id)
        if room_version is None:
            return None
        servers = await self._backfill.servers_to_ask(room_id)
        for server in servers[:MAX_SERVERS_ASKED]:
            try:
                answer = await self._client.get_json(
                    server, f"/_matrix/federation/v1/timestamp_to_event/{quote(room_id)}",
                    {"ts": str(ts), "dir": direction}, timeout=REMOTE_TIMEOUT)
                event_id = answer.get("event_id") if isinstance(answer, dict) else None
                if not isinstance(event_id, str) or not event_id.startswith("$"):
                    continue
                # The answer's timestamp is only a claim: the checked event's counts.
                event = await self._fed_events.fetch_event(server, event_id, room_version)
            except Exception as e:  # noqa: BLE001 - any failure: try the next server
                logger.info("timestamp_to_event for %s from %s failed: %s", room_id,
                            server, e)
                continue
            ts_ok = event.origin_server_ts >= ts if direction == "f" \
                else event.origin_server_ts <= ts
            if event.room_id == room_id and ts_ok:
                return ClosestEvent(event.event_id, event.origin_server_ts)
        return None
