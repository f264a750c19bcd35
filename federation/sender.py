"""Outbound federation: per-destination transaction queues.

Each remote server has its own queue of PDUs and EDUs and sends at most one transaction
(`PUT /_matrix/federation/v1/send/{txnId}`, ≤ 50 PDUs and ≤ 100 EDUs) at a time; whatever is
queued while one is in flight goes in the next. A queue runs on its own, so a slow or dead
server never delays the others.

A failed transaction (connection error, timeout, 5xx, 429) puts its contents back and backs
the destination off: 5 s, doubling up to 1 h. The backoff is kept in the `destinations`
table, so a restarted server does not hammer a dead one. While a destination is backed off
its PDUs wait in memory, bounded to the newest `MAX_PENDING_PDUS`; older ones are dropped
(the remote can fetch them through `get_missing_events` when a newer PDU reaches it; a
catch-up from the database is future work). Any other 4xx answer means the transaction
itself is refused: it is dropped and logged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Collection, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer

from federation.client import FederationRequestError
from homeserver.events import Event
from storage.stores.destinations import DestinationRetry

if TYPE_CHECKING:
    from federation.client import FederationClient
    from homeserver.clock import Clock
    from homeserver.server import HomeServer
    from storage.stores.destinations import DestinationsStore

logger = logging.getLogger(__name__)

#: the spec's limits on one transaction
MAX_PDUS_PER_TXN = 50
MAX_EDUS_PER_TXN = 100
#: what a backed-off destination may accumulate in memory (the oldest are dropped)
MAX_PENDING_PDUS = 1000
MAX_PENDING_EDUS = 1000
#: backoff after a failure: the first wait, doubling up to the cap (ms)
MIN_RETRY_INTERVAL_MS = 5_000
MAX_RETRY_INTERVAL_MS = 3600_000
#: how long one transaction may take (seconds)
TXN_TIMEOUT = 60.0


def next_retry(previous: DestinationRetry | None, destination: str,
               now_ms: int) -> DestinationRetry:
    """The backoff state after one more failure at `now_ms`."""
    if previous is None or not previous.retry_interval:
        interval = MIN_RETRY_INTERVAL_MS
        failure_ts = now_ms
    else:
        interval = min(previous.retry_interval * 2, MAX_RETRY_INTERVAL_MS)
        failure_ts = previous.failure_ts if previous.failure_ts is not None else now_ms
    return DestinationRetry(destination, now_ms, interval, failure_ts)


def _is_retryable(error: FederationRequestError) -> bool:
    """Connection errors, timeouts, 5xx and 429 are worth retrying; other 4xx are not."""
    code = error.code
    return code is None or code == 429 or not 400 <= code < 500


class FederationSender:
    """Queues PDUs and EDUs per destination and sends them as transactions."""

    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._is_mine_id = hs.is_mine_id
        self._clock = hs.get_clock()
        self._client = hs.get_federation_client()
        stores = hs.get_datastores()
        self._destinations = stores.destinations
        self._members = stores.room_members
        self._events = stores.events
        hs.add_shutdown_hook(self.stop)
        self._queues: dict[str, _DestinationQueue] = {}
        # Transaction IDs count from the boot time in µs: a restarted server never reuses
        # one (the receiver deduplicates on (origin, txnId)) unless it sent more than a
        # million transactions per second.
        self._last_txn_id = self._clock.time_msec() * 1000
        #: local events and room EDUs waiting for their destinations, in order
        self._room_work: deque[Event | _RoomEdu] = deque()
        self._handling_events = False
        self._tasks: set[defer.Deferred[None]] = set()
        self._stopped = False

    # -- the public API --

    def send_pdu(self, event: Event, destinations: Collection[str]) -> None:
        """Queue an event for these servers (our own name is ignored); returns at once."""
        pdu = dict(event.pdu_json)
        pdu.pop("unsigned", None)
        for destination in destinations:
            if destination and destination != self._server_name:
                self._queue(destination).add_pdu(pdu)

    def send_edu(self, destination: str, edu_type: str, content: Mapping[str, Any],
                 key: Hashable | None = None) -> None:
        """Queue an EDU; returns at once. A newer EDU of the same type and `key` (e.g. the
        typing state of one room) replaces a queued one that has not been sent yet."""
        if not destination or destination == self._server_name:
            return
        self._queue(destination).add_edu(
            {"edu_type": edu_type, "content": dict(content)}, key)

    async def destinations_for_room(self, room_id: str) -> set[str]:
        """The servers of the room's joined members in current state, minus our own."""
        users = await self._members.get_users_in_room(room_id)
        servers = {user.split(":", 1)[1] for user in users if ":" in user}
        servers.discard(self._server_name)
        return servers

    def notify_new_event(self, event: Event, stream_ordering: int) -> None:
        """Persist listener: send a newly persisted local event to the servers in its room.

        Events are handled one after another so that each destination gets them in the
        order they were persisted.
        """
        if self._stopped or not self._is_mine_id(event.sender):
            return
        self._add_room_work(event)

    def send_edu_to_room(self, room_id: str, edu_type: str, content: Mapping[str, Any],
                         key: Hashable | None = None) -> None:
        """Queue an EDU for every other server in the room (see `send_edu` for `key`);
        returns at once. It keeps its order with the room's events and EDUs."""
        if not self._stopped:
            self._add_room_work(_RoomEdu(room_id, edu_type, dict(content), key))

    def stop(self) -> None:
        """Cancel timers and in-flight work (server shutdown, test teardown)."""
        self._stopped = True
        for queue in self._queues.values():
            queue.cancel_timer()
        for task in list(self._tasks):
            task.cancel()

    # -- plumbing used by the queues --

    def is_stopped(self) -> bool:
        return self._stopped

    def next_txn_id(self) -> str:
        """A transaction ID greater than every earlier one of this server."""
        self._last_txn_id = max(self._last_txn_id + 1, self._clock.time_msec() * 1000)
        return str(self._last_txn_id)

    def run_in_background(self, coro: Any) -> None:
        """Run a coroutine without waiting for it; keep it so that `stop` can cancel it."""
        d: defer.Deferred[None] = defer.ensureDeferred(coro)
        if not d.called:
            self._tasks.add(d)

        def _done(result: Any) -> None:
            self._tasks.discard(d)
            if isinstance(result, defer.Failure) and not result.check(defer.CancelledError):
                logger.error("Federation sender task failed",
                             exc_info=(result.type, result.value, result.getTracebackObject()))

        d.addBoth(_done)

    @property
    def client(self) -> FederationClient:
        return self._client

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def events_store(self) -> Any:
        return self._events

    @property
    def store(self) -> DestinationsStore:
        return self._destinations

    @property
    def server_name(self) -> str:
        return self._server_name

    # -- internals --

    def _queue(self, destination: str) -> _DestinationQueue:
        queue = self._queues.get(destination)
        if queue is None:
            queue = self._queues[destination] = _DestinationQueue(self, destination)
        return queue

    def _add_room_work(self, item: Event | _RoomEdu) -> None:
        self._room_work.append(item)
        if not self._handling_events:
            self.run_in_background(self._handle_room_work())

    async def _handle_room_work(self) -> None:
        self._handling_events = True
        try:
            while self._room_work and not self._stopped:
                item = self._room_work.popleft()
                try:
                    if isinstance(item, _RoomEdu):
                        destinations = await self.destinations_for_room(item.room_id)
                    else:
                        destinations = await self._destinations_for_event(item)
                except Exception:
                    logger.exception("Cannot compute the destinations in %s", item.room_id)
                    continue
                if isinstance(item, _RoomEdu):
                    for destination in sorted(destinations):
                        self.send_edu(destination, item.edu_type, item.content, item.key)
                else:
                    self.send_pdu(item, destinations)
        finally:
            self._handling_events = False

    async def _destinations_for_event(self, event: Event) -> set[str]:
        destinations = await self.destinations_for_room(event.room_id)
        # A kicked or banned server is no longer joined but must still hear of it.
        if event.type == "m.room.member" and event.state_key \
                and event.membership in ("leave", "ban") \
                and not self._is_mine_id(event.state_key) and ":" in event.state_key:
            destinations.add(event.state_key.split(":", 1)[1])
        destinations.discard(self._server_name)
        return destinations


@attrs.frozen(slots=True)
class _RoomEdu:
    """An EDU for every server in a room, waiting for the room's destinations."""

    room_id: str
    edu_type: str
    content: dict[str, Any]
    key: Hashable | None


class _DestinationQueue:
    """What is waiting for one server, and the loop that sends it."""

    def __init__(self, sender: FederationSender, destination: str) -> None:
        self._sender = sender
        self.destination = destination
        self._pdus: deque[dict[str, Any]] = deque()
        #: (edu_type, key) or a unique counter -> EDU, oldest first
        self._edus: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
        self._edu_counter = 0
        self._dropped_pdus = 0
        #: rooms whose PDUs were dropped from the full queue (caught up when it drains)
        self._dropped_rooms: set[str] = set()
        self._retry: DestinationRetry | None = None
        self._retry_loaded = False
        self._running = False
        self._timer: Any = None

    def add_pdu(self, pdu: dict[str, Any]) -> None:
        self._pdus.append(pdu)
        self._trim_pdus()
        self._wake()

    def add_edu(self, edu: dict[str, Any], key: Hashable | None) -> None:
        if key is None:
            self._edu_counter += 1
            slot: Hashable = ("", self._edu_counter)
        else:
            slot = (edu["edu_type"], key)
            self._edus.pop(slot, None)
        self._edus[slot] = edu
        while len(self._edus) > MAX_PENDING_EDUS:
            self._edus.popitem(last=False)
        self._wake()

    def cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _trim_pdus(self) -> None:
        dropped = 0
        while len(self._pdus) > MAX_PENDING_PDUS:
            pdu = self._pdus.popleft()
            if isinstance(pdu.get("room_id"), str):
                self._dropped_rooms.add(pdu["room_id"])
            dropped += 1
        if dropped:
            if not self._dropped_pdus:
                logger.warning("Too many PDUs queued for %s: dropping the oldest",
                               self.destination)
            self._dropped_pdus += dropped

    def _wake(self) -> None:
        if not self._running and not self._sender.is_stopped():
            self._running = True
            self._sender.run_in_background(self._run())

    async def _run(self) -> None:
        try:
            await self._send_loop()
        finally:
            self._running = False

    async def _send_loop(self) -> None:
        sender = self._sender
        if not self._retry_loaded:
            try:
                self._retry = await sender.store.get_destination_retry(self.destination)
            except Exception:
                logger.exception("Cannot read the backoff state of %s", self.destination)
            self._retry_loaded = True
        while (self._pdus or self._edus) and not sender.is_stopped():
            now = sender.clock.time_msec()
            if self._retry is not None and self._retry.retry_due_ts > now:
                self._schedule_retry(self._retry.retry_due_ts - now)
                return
            pdus = [self._pdus.popleft() for _ in range(min(len(self._pdus),
                                                             MAX_PDUS_PER_TXN))]
            edu_items = [self._edus.popitem(last=False)
                         for _ in range(min(len(self._edus), MAX_EDUS_PER_TXN))]
            txn_id = sender.next_txn_id()
            body = {"origin": sender.server_name, "origin_server_ts": now, "pdus": pdus,
                    "edus": [edu for _, edu in edu_items]}
            try:
                response = await sender.client.put_json(
                    self.destination, f"/_matrix/federation/v1/send/{txn_id}", body,
                    timeout=TXN_TIMEOUT)
            except FederationRequestError as e:
                if sender.is_stopped():
                    return
                if _is_retryable(e):
                    logger.info("Transaction %s to %s failed (%s): backing off", txn_id,
                                self.destination, e)
                    self._requeue(pdus, edu_items)
                    await self._mark_down()
                    continue
                logger.warning("Transaction %s to %s refused with %s %s: dropped "
                               "%d PDUs and %d EDUs", txn_id, self.destination, e.code,
                               e.errcode, len(pdus), len(edu_items))
                await self._mark_up()
                continue
            except Exception:
                if sender.is_stopped():
                    return
                logger.exception("Transaction %s to %s failed", txn_id, self.destination)
                self._requeue(pdus, edu_items)
                await self._mark_down()
                continue
            await self._mark_up()
            self._log_pdu_errors(txn_id, response)

    def _requeue(self, pdus: list[dict[str, Any]],
                 edu_items: list[tuple[Hashable, dict[str, Any]]]) -> None:
        """Put a failed transaction's contents back in front of what came since."""
        self._pdus.extendleft(reversed(pdus))
        self._trim_pdus()
        newer = list(self._edus.items())
        self._edus.clear()
        for slot, edu in edu_items:
            self._edus[slot] = edu
        for slot, edu in newer:
            # A newer EDU with the same key replaces the one that failed to go.
            self._edus.pop(slot, None)
            self._edus[slot] = edu
        while len(self._edus) > MAX_PENDING_EDUS:
            self._edus.popitem(last=False)

    async def _mark_down(self) -> None:
        sender = self._sender
        self._retry = next_retry(self._retry, self.destination, sender.clock.time_msec())
        await self._save_retry()

    async def _mark_up(self) -> None:
        if self._retry is not None and self._retry.retry_interval:
            logger.info("%s is reachable again", self.destination)
            self._retry = DestinationRetry(self.destination, 0, 0, None)
            self._dropped_pdus = 0
            await self._save_retry()
        if self._dropped_rooms:
            rooms, self._dropped_rooms = self._dropped_rooms, set()
            await self._catch_up(rooms)

    async def _catch_up(self, room_ids: set[str]) -> None:
        """After PDUs for these rooms were dropped: send the rooms' newest local events
        (their forward extremities); the server fetches what lies between with
        `/get_missing_events` and `/state`, as the spec's catch-up expects."""
        events = self._sender.events_store
        for room_id in sorted(room_ids):
            extremities = [e for e, _ in await events.get_forward_extremities(room_id)]
            for event in (await events.get_events(extremities)).values():
                if event.sender.split(":", 1)[-1] == self._sender.server_name:
                    pdu = dict(event.pdu_json)
                    pdu.pop("unsigned", None)
                    self.add_pdu(pdu)
        logger.info("Catching %s up on %d room(s)", self.destination, len(room_ids))

    async def _save_retry(self) -> None:
        """Persist the backoff; on a database error the in-memory state still applies."""
        assert self._retry is not None
        try:
            await self._sender.store.set_destination_retry(self._retry)
        except Exception:
            logger.exception("Cannot save the backoff state of %s", self.destination)

    def _schedule_retry(self, delay_ms: int) -> None:
        self.cancel_timer()
        self._timer = self._sender.clock.call_later(delay_ms / 1000, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def _log_pdu_errors(self, txn_id: str, response: Any) -> None:
        results = response.get("pdus") if isinstance(response, dict) else None
        if not isinstance(results, dict):
            return
        for event_id, result in results.items():
            if isinstance(result, dict) and result.get("error"):
                logger.warning("%s rejected %s (transaction %s): %s", self.destination,
                               event_id, txn_id, result["error"])
