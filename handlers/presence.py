"""Presence: who is online, idle or offline, shared with the users one shares a room with.

Policy follows Synapse: a /sync brings an offline user online (a sync with
`set_presence=unavailable` marks them unavailable); setting `online` counts as activity;
an online user with no activity for 5 minutes becomes `unavailable`; a user with no /sync
for a while becomes `offline` (keeping their status message). A looping check every 5 s
applies the timers. Changes that clients must see get a new presence-stream position and
wake the syncs of the user and of everyone sharing a joined room with them; pure timer
bookkeeping (the last sync time) is written without a stream position.

Federation (as Synapse): such a change of a local user is also sent as an `m.presence` EDU
to every server sharing a joined room with them, and a user who stays online is re-sent
every 25 minutes. Remote users' presence arrives in `m.presence` EDUs from their own server
and is kept in the same table and stream (so local room-mates see it in /sync); a remote
user not updated for 30 minutes goes offline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer, task

from homeserver.async_utils import Linearizer
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID
from storage.stores.presence import PresenceRow

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

PRESENCE_STATES = ("online", "unavailable", "offline")

#: a user active within this is `currently_active`
LAST_ACTIVE_GRANULARITY_MS = 60_000
#: online → unavailable after this long without activity
IDLE_TIMER_MS = 5 * 60_000
#: Synapse: offline 30 s after the last /sync ended. We only see syncs start, so we also
#: allow for one long-poll (clients use timeouts of 30 s, rarely more).
SYNC_ONLINE_TIMEOUT_MS = 30_000
MAX_SYNC_POLL_MS = 60_000
OFFLINE_AFTER_MS = SYNC_ONLINE_TIMEOUT_MS + MAX_SYNC_POLL_MS
#: how often the timers are checked
TIMEOUT_CHECK_INTERVAL_S = 5.0
#: the first check waits this long, so clients can reconnect after a restart
TIMEOUT_CHECK_START_DELAY_S = 30.0
#: a sync that changes nothing but the last-sync time writes it only this often
SYNC_TS_WRITE_GRANULARITY_MS = 10_000
#: a remote user not updated by their server for this long goes offline (Synapse)
FEDERATION_TIMEOUT_MS = 30 * 60_000
#: a local user who stays online is re-sent to other servers this often (Synapse)
FEDERATION_PING_INTERVAL_MS = 25 * 60_000
#: how often the timer loop looks for users to re-send
FEDERATION_PING_CHECK_MS = 60_000
#: the longest status message accepted from another server
MAX_STATUS_MSG_LEN = 2048


def _default_row(user_id: str) -> PresenceRow:
    return PresenceRow(user_id=user_id, state="offline", status_msg=None, last_active_ts=0,
                       last_user_sync_ts=0, currently_active=False, stream_id=0)


def presence_content(row: PresenceRow, now: int) -> dict[str, Any]:
    """The `m.presence` content (and GET body) for a row, ages relative to `now`."""
    content: dict[str, Any] = {"presence": row.state,
                               "currently_active": row.currently_active}
    if row.last_active_ts:
        content["last_active_ago"] = max(0, now - row.last_active_ts)
    if row.status_msg is not None:
        content["status_msg"] = row.status_msg
    return content


def federation_presence(row: PresenceRow, now: int) -> dict[str, Any]:
    """One entry of an `m.presence` EDU's `push` list."""
    return {"user_id": row.user_id, **presence_content(row, now)}


def remote_timeout(row: PresenceRow, now: int) -> PresenceRow:
    """A remote row after the federation timeout ran at `now`."""
    if row.state != "offline" and now - row.last_user_sync_ts > FEDERATION_TIMEOUT_MS:
        return attrs.evolve(row, state="offline", currently_active=False)
    return row


def _with_currently_active(row: PresenceRow, now: int) -> PresenceRow:
    active = row.state == "online" and now - row.last_active_ts < LAST_ACTIVE_GRANULARITY_MS
    return attrs.evolve(row, currently_active=active)


def should_notify(old: PresenceRow, new: PresenceRow) -> bool:
    """Whether clients must hear about the change from `old` to `new` (Synapse's rule)."""
    if old.state != new.state or old.status_msg != new.status_msg:
        return True
    if new.state == "online":
        if old.currently_active != new.currently_active:
            return True
        # While currently active, last-active bumps are implied and not sent.
        if (not new.currently_active
                and new.last_active_ts - old.last_active_ts > LAST_ACTIVE_GRANULARITY_MS):
            return True
    return False


def apply_timeouts(row: PresenceRow, now: int) -> PresenceRow:
    """The row after the idle and offline timers ran at `now`."""
    if row.state == "offline":
        return row
    if row.state == "online" and now - row.last_active_ts > IDLE_TIMER_MS:
        row = attrs.evolve(row, state="unavailable")
    if now - row.last_user_sync_ts > OFFLINE_AFTER_MS:
        row = attrs.evolve(row, state="offline")
    return row


class PresenceHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._notifier = hs.get_notifier()
        stores = hs.get_datastores()
        self._store = stores.presence
        self._members = stores.room_members
        self._enabled = hs.config.presence_enabled
        self._is_mine_id = hs.is_mine_id
        # The federation sender is fetched on first use (it is built after us).
        self._get_federation_sender = hs.get_federation_sender
        #: local user -> when their presence was last sent to other servers
        self._last_federated: dict[str, int] = {}
        self._last_ping_check = 0
        self._linearizer = Linearizer()
        self._loop: task.LoopingCall | None = None
        # an IDelayedCall (zope interfaces do not type-check as attribute types)
        self._start_call: Any = None
        if self._enabled:
            self._start_call = self._clock.call_later(TIMEOUT_CHECK_START_DELAY_S,
                                                      self._start_timers)
            hs.add_shutdown_hook(self._stop_timers)

    def _start_timers(self) -> None:
        self._start_call = None
        self._loop = self._clock.looping_call(TIMEOUT_CHECK_INTERVAL_S, self._run_timeouts)

    def _stop_timers(self) -> None:
        if self._start_call is not None and self._start_call.active():
            self._start_call.cancel()
        self._start_call = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def get_current_key(self) -> int:
        """The presence-stream position (a sync token's `presence`)."""
        return self._store.get_current_position()

    # -- /sync --

    async def get_presence_for_sync(self, user_id: str, from_key: int | None,
                                    to_key: int) -> list[dict[str, Any]]:
        """`m.presence` events for /sync.

        Args:
            user_id: the syncing user.
            from_key: the `since` token's presence position; None for an initial sync,
                which gets everyone's current presence except offline users.
            to_key: the position this sync answers up to.

        Returns:
            Events of the user and of users sharing a joined room with them whose
            presence changed in (from_key, to_key].
        """
        if not self._enabled:
            return []
        if from_key is None:
            rows = await self._store.get_current_presence_for_user(user_id, to_key)
        elif from_key >= to_key:
            return []
        else:
            rows = await self._store.get_presence_changes_for_user(user_id, from_key, to_key)
        now = self._clock.time_msec()
        return [{"type": "m.presence", "sender": row.user_id,
                 "content": presence_content(row, now)} for row in rows]

    async def user_syncing(self, user_id: str, set_presence: str) -> None:
        """A /sync started with this `set_presence` ("offline": leave presence alone).

        An offline user comes online (or unavailable); an online user syncing with
        `unavailable` becomes unavailable. The last-sync time keeps them from timing out.
        """
        if not self._enabled or set_presence == "offline":
            return

        def change(prev: PresenceRow, now: int) -> PresenceRow:
            new = attrs.evolve(prev, last_user_sync_ts=now)
            if prev.state == "offline":
                new = attrs.evolve(new, state=set_presence)
                if set_presence == "online":
                    new = attrs.evolve(new, last_active_ts=now)
            elif prev.state == "online" and set_presence == "unavailable":
                new = attrs.evolve(new, state="unavailable")
            return new

        await self._update(user_id, change, from_sync=True)

    async def bump_presence_active_time(self, user_id: str) -> None:
        """The user did something (sent a message): they are active, and online again if
        they had gone idle."""
        if not self._enabled:
            return

        def change(prev: PresenceRow, now: int) -> PresenceRow:
            new = attrs.evolve(prev, last_active_ts=now)
            if prev.state == "unavailable":
                new = attrs.evolve(new, state="online")
            return new

        await self._update(user_id, change)

    # -- GET/PUT /presence/{userId}/status --

    # PUT /_matrix/client/v3/presence/{userId}/status
    async def set_state(self, user_id: str, presence: str, status_msg: str | None) -> None:
        """Set the user's presence and status message (None clears it); `online` counts
        as activity. The client is evidently connected, so this also counts as a sync
        for the offline timer (Synapse would time a user who never synced out at once).
        A no-op when presence is disabled."""
        if presence not in PRESENCE_STATES:
            raise ValueError(f"invalid presence state {presence!r}")
        if not self._enabled:
            return

        def change(prev: PresenceRow, now: int) -> PresenceRow:
            new = attrs.evolve(prev, state=presence, status_msg=status_msg,
                               last_user_sync_ts=now)
            if presence == "online":
                new = attrs.evolve(new, last_active_ts=now)
            return new

        await self._update(user_id, change)

    # GET /_matrix/client/v3/presence/{userId}/status
    async def get_state(self, user_id: str) -> dict[str, Any]:
        """The user's presence as the GET endpoint returns it (no visibility check)."""
        if not self._enabled:
            return {"presence": "offline"}
        row = await self._store.get_presence(user_id) or _default_row(user_id)
        return presence_content(row, self._clock.time_msec())

    async def get_state_for_requester(self, requester_id: str, user_id: str
                                      ) -> dict[str, Any]:
        """`get_state` after the checks of the GET endpoint.

        Raises:
            MatrixError: 403 M_FORBIDDEN for a user sharing no joined room with the
                requester, whether or not the account exists (as Synapse: a different
                answer would tell who has an account); anyone may read their own.
        """
        if requester_id != user_id and not await self._store.shares_room(requester_id,
                                                                          user_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not allowed to see their presence")
        return await self.get_state(user_id)

    # -- the write path --

    async def _update(self, user_id: str, change: Callable[[PresenceRow, int], PresenceRow],
                      from_sync: bool = False) -> None:
        """Apply `change` to the user's row, one update per user at a time; give the row
        a new stream position and wake the interested syncs if clients must see it."""
        async with self._linearizer.queue(user_id):
            now = self._clock.time_msec()
            prev = await self._store.get_presence(user_id) or _default_row(user_id)
            new = change(prev, now)
            if not new.remote:
                new = _with_currently_active(new, now)
            if new == prev:
                return
            if should_notify(prev, new):
                with self._store.stream.get_next() as stream_id:
                    await self._store.upsert_presence(attrs.evolve(new, stream_id=stream_id))
                await self._announce(user_id, stream_id)
                return
            if (from_sync and attrs.evolve(new, last_user_sync_ts=prev.last_user_sync_ts) == prev
                    and now - prev.last_user_sync_ts < SYNC_TS_WRITE_GRANULARITY_MS):
                return  # only the last-sync time moved, and not by much
            await self._store.upsert_presence(new)

    async def _announce(self, user_id: str, stream_id: int) -> None:
        if not self._is_mine_id(user_id):
            users = await self._members.get_local_users_sharing_room_with(user_id)
            self._notifier.on_new_event("presence", stream_id, users=users)
            return
        local = set(await self._store.get_users_sharing_room(user_id))
        local.add(user_id)
        self._notifier.on_new_event("presence", stream_id, users=sorted(local))
        row = await self._store.get_presence(user_id)
        if row is not None:
            await self._federate(row)

    # -- federation --

    async def _federate(self, row: PresenceRow) -> None:
        """Send a local user's presence to every server sharing a joined room with them."""
        now = self._clock.time_msec()
        self._last_federated[row.user_id] = now
        rooms = await self._members.get_rooms_for_local_user(row.user_id)
        if not rooms:
            return
        sender = self._get_federation_sender()
        destinations: set[str] = set()
        for room in rooms:
            destinations |= await sender.destinations_for_room(room.room_id)
        content = {"push": [federation_presence(row, now)]}
        for destination in sorted(destinations):
            # A newer update of the same user replaces one still queued.
            sender.send_edu(destination, "m.presence", content,
                            key=("m.presence", row.user_id))

    async def on_remote_presence(self, origin: str, content: Any) -> None:
        """An `m.presence` EDU: updates of users of `origin` who share a joined room with
        one of our users (others, and malformed entries, are ignored)."""
        if not self._enabled or not isinstance(content, dict):
            return
        push = content.get("push")
        if not isinstance(push, list):
            return
        for update in push:
            parsed = _parse_remote_update(origin, update)
            if parsed is None or self._is_mine_id(parsed.user_id):
                continue
            if not await self._members.get_local_users_sharing_room_with(parsed.user_id):
                continue

            def change(prev: PresenceRow, now: int, u: _RemoteUpdate = parsed) -> PresenceRow:
                last_active = (now - u.last_active_ago if u.last_active_ago is not None
                               else prev.last_active_ts)
                return attrs.evolve(prev, state=u.presence, status_msg=u.status_msg,
                                    last_active_ts=max(0, last_active),
                                    last_user_sync_ts=now,
                                    currently_active=u.currently_active, remote=True)

            await self._update(parsed.user_id, change)

    async def _ping_federation(self, now: int) -> None:
        """Re-send local users who stay online, so other servers do not time them out."""
        if now - self._last_ping_check < FEDERATION_PING_CHECK_MS:
            return
        self._last_ping_check = now
        for row in await self._store.get_local_users_online():
            if now - self._last_federated.get(row.user_id, 0) > FEDERATION_PING_INTERVAL_MS:
                await self._federate(row)

    # -- timers --

    def _run_timeouts(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._handle_timeouts())

    async def _handle_timeouts(self) -> None:
        """Move idle users to unavailable, users who stopped syncing to offline, and
        end `currently_active` (never raises: that would stop the looping call)."""
        try:
            now = self._clock.time_msec()
            candidates = await self._store.get_timeout_candidates(
                synced_before=now - OFFLINE_AFTER_MS, idle_before=now - IDLE_TIMER_MS,
                active_before=now - LAST_ACTIVE_GRANULARITY_MS,
                remote_updated_before=now - FEDERATION_TIMEOUT_MS)
            for row in candidates:
                await self._update(row.user_id,
                                   remote_timeout if row.remote else apply_timeouts)
            await self._ping_federation(now)
        except Exception:
            logger.exception("presence timeout check failed")


@attrs.frozen(slots=True)
class _RemoteUpdate:
    user_id: str
    presence: str
    last_active_ago: int | None
    currently_active: bool
    status_msg: str | None


def _parse_remote_update(origin: str, update: Any) -> _RemoteUpdate | None:
    """One `push` entry of an `m.presence` EDU, or None if malformed or not a user of
    `origin` (a server speaks only for its own users)."""
    if not isinstance(update, dict):
        return None
    user_id, presence = update.get("user_id"), update.get("presence")
    ago = update.get("last_active_ago")
    active = update.get("currently_active", False)
    status_msg = update.get("status_msg")
    if not isinstance(user_id, str) or presence not in PRESENCE_STATES:
        return None
    try:
        if UserID.parse(user_id).domain != origin:
            return None
    except MatrixError:
        return None
    if ago is not None and (not isinstance(ago, int) or isinstance(ago, bool) or ago < 0):
        return None
    if not isinstance(active, bool):
        return None
    if status_msg is not None and not isinstance(status_msg, str):
        return None
    if status_msg is not None:
        status_msg = status_msg[:MAX_STATUS_MSG_LEN]
    return _RemoteUpdate(user_id, presence, ago, active, status_msg)
