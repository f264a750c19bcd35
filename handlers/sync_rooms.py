"""The `rooms` part of a /sync answer: joined, invited, left and knocked rooms.

Which rooms appear: on an initial sync every room the user is joined to (and invited,
knocked, and — with `include_leave` — left); on an incremental sync only rooms with new
events, ephemeral changes, account data or a membership change of the user since the
token. Finding the changed rooms and their new events needs no database for recent tokens: the
events store keeps an index of each room's newest events (`storage/recent_events.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.event_serialize import EventRedactions, stripped_state_event
from handlers.filtering import FilterCollection, RoomEventFilter, apply_event_fields
from handlers.push_rules import UnreadCounts
from homeserver.events import Event
from homeserver.stream_token import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateMap = Mapping[tuple[str, str], str]

#: state shown to invitees and knockers (the spec's recommended stripped state)
STRIPPED_STATE_TYPES = frozenset({
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
    "m.room.canonical_alias", "m.room.encryption", "m.room.topic",
})

#: at most this many timeline loads per room while a filter discards events
_MAX_TIMELINE_ROUNDS = 5


@attrs.frozen(slots=True)
class SyncRequest:
    user_id: str
    device_id: str | None
    since: StreamToken | None
    now: StreamToken
    full_state: bool
    filter: FilterCollection
    ignored: frozenset[str]
    #: `m.invite_permission_config` blocks invites: none are served (spec v1.18)
    invites_blocked: bool = False


@attrs.frozen(slots=True)
class _Timeline:
    events: list[Event]
    limited: bool
    #: the stream position just before the first timeline event
    start: int


class RoomSyncBuilder:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._events = stores.events
        self._state = stores.state
        self._members = stores.room_members
        self._stream = stores.stream
        self._reads = hs.get_room_read_handler()
        self._visibility = hs.get_visibility_handler()
        self._receipts = hs.get_receipts_handler()
        self._typing = hs.get_typing_handler()
        self._push = hs.get_push_rules_handler()
        self._recent = self._events.recent
        self._redactions = EventRedactions(self._events)

    async def rooms_to_watch(self, user_id: str) -> list[str]:
        return [r.room_id for r in await self._members.get_rooms_for_local_user(user_id)]

    async def build(self, req: SyncRequest,
                    room_account_data: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
        memberships = await self._members.get_rooms_for_local_user(
            req.user_id, ("join", "invite", "knock", "leave", "ban"))
        fc = req.filter
        since_room = req.since.room if req.since else None
        joined = [m for m in memberships if m.membership == "join"
                  and fc.include_room(m.room_id)]
        joined_ids = [m.room_id for m in joined]

        ephemeral = await self._ephemeral(req, joined_ids)
        room_data = {room: fc.room_account_data.filter(events)
                     for room, events in room_account_data.items()}
        # Rooms whose membership for this user changed since the token, and rooms with news.
        newly: set[str] = set()
        if since_room is not None:
            newly = {m.room_id for m in memberships if since_room < m.stream_ordering
                     <= req.now.room}
            changed = self._recent.rooms_changed(joined_ids, since_room)
            if changed is None:
                changed = set(await self._stream.get_rooms_changed(
                    joined_ids, since_room, req.now.room))
            # Ephemeral and account data only count once filtered: what the filter hides
            # must not end a long-poll with an empty room.
            wanted = (changed | newly | {r for r, evs in ephemeral.items() if evs}
                      | {r for r, evs in room_data.items() if evs}) & set(joined_ids)
            if req.full_state:
                wanted = set(joined_ids)
        else:
            wanted = set(joined_ids)

        read_positions = await self._receipts.get_read_positions(req.user_id, wanted)
        thread_positions = await self._receipts.get_thread_read_positions_for_rooms(
            req.user_id, wanted)
        unread = await self._push.get_unread_counts(req.user_id, read_positions, wanted,
                                                  req.now.room, thread_positions)
        parts: dict[str, tuple[_Timeline, list[Event]]] = {}
        for m in joined:
            if m.room_id not in wanted:
                continue
            # A newly joined room gets its recent history; `full_state` only resends state.
            fresh = since_room is None or m.room_id in newly
            timeline_since = None if fresh else since_room
            timeline = await self._timeline(req, m.room_id, timeline_since, req.now.room)
            state = await self._state_section(req, m.room_id, timeline,
                                              fresh or req.full_state, timeline_since)
            parts[m.room_id] = (timeline, state)
        join = await self._room_bodies(req, parts)
        lazy = fc.state.lazy_load_members
        for room_id, section in join.items():
            timeline, state = parts[room_id]
            if lazy and (since_room is None or room_id in newly or any(
                    e.type == "m.room.member" for e in (*timeline.events, *state))):
                section["summary"] = await self._summary(req.user_id, room_id)
            else:
                # Synapse always sends the key; clients index it.
                section["summary"] = {}
            section["ephemeral"] = {"events": ephemeral.get(room_id, [])}
            section["account_data"] = {"events": room_data.get(room_id, [])}
            section.update(_unread_sections(unread.get(room_id),
                                            fc.timeline.unread_thread_notifications))

        invite: dict[str, Any] = {}
        knock: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        for m in memberships:
            if not fc.include_room(m.room_id) or m.membership == "join":
                continue
            is_new = since_room is None or m.room_id in newly
            if m.membership == "invite" and req.invites_blocked:
                continue
            if m.membership in ("invite", "knock") and is_new:
                stripped = await self._stripped_state(req, m.room_id, m.event_id)
                if stripped is None:
                    continue
                if m.membership == "invite":
                    invite[m.room_id] = {"invite_state": {"events": stripped}}
                else:
                    knock[m.room_id] = {"knock_state": {"events": stripped}}
            elif m.membership in ("leave", "ban"):
                if since_room is None and not fc.include_leave:
                    continue
                if since_room is not None and m.room_id not in newly:
                    continue
                left = await self._left_room(req, m.room_id, m.stream_ordering)
                left["account_data"] = {"events": room_data.get(m.room_id, [])}
                leave[m.room_id] = left
        return {"join": join, "invite": invite, "leave": leave, "knock": knock}

    # -- joined and left rooms --

    async def _left_room(self, req: SyncRequest, room_id: str, left_at: int
                         ) -> dict[str, Any]:
        """A room the user left or was banned from: history up to the leave, and the
        state they may read (`room_state_access`): as of the end of their last join, none
        if they were never joined."""
        since_room = req.since.room if req.since else None
        timeline = await self._timeline(req, room_id, since_room, left_at)
        fresh = since_room is None or req.full_state
        access = await self._visibility.room_state_access(req.user_id, room_id)
        state: list[Event] = []
        if access is not None:
            state = await self._state_section(req, room_id, timeline, fresh, since_room,
                                              until=access.departed_at)
        return (await self._room_bodies(req, {room_id: (timeline, state)}))[room_id]

    async def _room_bodies(self, req: SyncRequest,
                           parts: Mapping[str, tuple[_Timeline, list[Event]]]
                           ) -> dict[str, dict[str, Any]]:
        """Timeline and state sections of these rooms, serialised in one batch."""
        txn_ids: dict[str, str] = {}
        if req.device_id is not None:
            own = [e.event_id for timeline, _ in parts.values() for e in timeline.events
                   if e.sender == req.user_id]
            if own:
                txn_ids = await self._events.get_txn_ids_for_device(
                    req.user_id, req.device_id, own)
        everything = [e for timeline, state in parts.values()
                      for e in (*timeline.events, *state)]
        serialized = iter(await self._serialize(req, everything, txn_ids))
        out: dict[str, dict[str, Any]] = {}
        for room_id, (timeline, state) in parts.items():
            timeline_events = [next(serialized) for _ in timeline.events]
            state_events = [next(serialized) for _ in state]
            out[room_id] = {
                "timeline": {
                    "events": timeline_events,
                    "limited": timeline.limited,
                    "prev_batch": req.now.replace(room=timeline.start).serialize(),
                },
                "state": {"events": state_events},
            }
        return out

    async def _serialize(self, req: SyncRequest, events: list[Event],
                         txn_ids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        fc = req.filter
        out = await self._reads.serialize_events(events, txn_ids, fc.event_format,
                                                 user_id=req.user_id)
        if fc.event_fields is not None:
            out = [apply_event_fields(e, fc.event_fields) for e in out]
        return out

    async def _timeline(self, req: SyncRequest, room_id: str, since: int | None,
                        upto: int) -> _Timeline:
        """The newest `limit` visible events in (since, upto], and whether more exist."""
        tl_filter: RoomEventFilter = req.filter.timeline
        limit = max(tl_filter.limit, 0)
        kept: list[Event] = []  # newest first
        order: dict[str, int] = {}
        upper = upto
        limited = False
        for _ in range(_MAX_TIMELINE_ROUNDS):
            if len(kept) >= limit:
                break
            batch = max(limit - len(kept), 1) + 1
            rows = self._recent.events_between(room_id, since, upper, batch)
            if rows is None:
                rows = await self._stream.get_room_events_between(
                    room_id, upper, since, "b", batch)
            if not rows:
                break
            order.update(rows)
            events = await self._events.get_events([e for e, _ in rows])
            ordered = [events[e] for e, _ in rows if e in events]
            visible = await self._visibility.filter_events_for_client(req.user_id, ordered)
            # Filters match what the client may see: redacted events pruned.
            visible = await self._redactions.pruned(
                [e for e in visible if e.sender not in req.ignored or e.state_key is not None])
            serialized = {e.event_id: _filter_view(e) for e in visible}
            matching = [e for e in visible if tl_filter.matches(serialized[e.event_id])]
            kept.extend(matching)
            upper = rows[-1][1] - 1
            if len(rows) < batch:
                break
        else:
            limited = True
        if len(kept) > limit:
            kept = kept[:limit]
            limited = True
        elif len(kept) == limit and upper > (since or 0) and limit > 0:
            # More may lie behind what we read: the client must paginate.
            limited = limited or await self._has_events_between(room_id, since, upper)
        kept.reverse()
        if kept:
            start = order[kept[0].event_id] - 1
        else:
            start = upto
        return _Timeline(kept, limited or (limit == 0 and since is None), start)

    async def _has_events_between(self, room_id: str, since: int | None, upper: int) -> bool:
        rows = self._recent.events_between(room_id, since, upper, 1)
        if rows is None:
            rows = await self._stream.get_room_events_between(room_id, upper, since, "b", 1)
        return bool(rows)

    async def _state_at(self, room_id: str, pos: int) -> StateMap:
        event_id = await self._stream.get_last_event_before(room_id, pos)
        if event_id is None:
            return {}
        return await self._state.get_state_after_event(event_id) or {}

    async def _state_section(self, req: SyncRequest, room_id: str, timeline: _Timeline,
                             fresh: bool, since_room: int | None,
                             until: int | None = None) -> list[Event]:
        """State at the start of the timeline (at most as of position `until`) that the
        client does not know yet."""
        st_filter = req.filter.state
        lazy = st_filter.lazy_load_members
        if not fresh and not timeline.limited and not lazy:
            return []
        start = timeline.start if until is None else min(timeline.start, until)
        at_start = await self._state_at(room_id, start)
        if not at_start and timeline.events:
            # Nothing of the room before the timeline in our stream (a room joined over
            # federation starts at our join): its state comes with the first event.
            at_start = await self._state.get_state_after_event(
                timeline.events[0].event_id) or {}
        if fresh:
            wanted = dict(at_start)
        elif timeline.limited:
            assert since_room is not None
            before = await self._state_at(room_id, since_room)
            wanted = {k: v for k, v in at_start.items() if before.get(k) != v}
        else:
            wanted = {}
        if lazy:
            senders = {e.sender for e in timeline.events} | {req.user_id}
            wanted = {k: v for k, v in wanted.items() if k[0] != "m.room.member"}
            for sender in senders:
                member = at_start.get(("m.room.member", sender))
                if member is not None:
                    wanted[("m.room.member", sender)] = member
        in_timeline = {e.event_id for e in timeline.events}
        ids = [v for v in wanted.values() if v not in in_timeline]
        events = await self._redactions.get_events(ids)
        state = [events[e] for e in ids if e in events]
        return [e for e in state if st_filter.matches(_filter_view(e))]

    async def _summary(self, user_id: str, room_id: str) -> dict[str, Any]:
        counts = await self._members.get_member_counts(room_id)
        summary: dict[str, Any] = {
            "m.joined_member_count": counts.get("join", 0),
            "m.invited_member_count": counts.get("invite", 0),
        }
        # Heroes: needed only when the room has no name and no canonical alias.
        current = await self._state.get_current_state_ids(room_id)
        if ("m.room.name", "") not in current and ("m.room.canonical_alias", "") not in current:
            others = [u for u in await self._members.get_users_in_room(room_id)
                      if u != user_id]
            if len(others) < 5:
                others += [u for u in await self._members.get_users_in_room(
                    room_id, "invite") if u != user_id]
            summary["m.heroes"] = others[:5]
        return summary

    async def _ephemeral(self, req: SyncRequest, room_ids: list[str]
                         ) -> dict[str, list[dict[str, Any]]]:
        """room -> its filtered `m.typing` / `m.receipt` events, for rooms with changes."""
        since = req.since
        out: dict[str, list[dict[str, Any]]] = {}
        typing = self._typing.get_typing_for_sync(
            room_ids, since.typing if since else None, req.now.typing)
        for room_id, event in typing.items():
            out.setdefault(room_id, []).append(event)
        receipts = await self._receipts.get_receipts_for_sync(
            req.user_id, room_ids, since.receipt if since else None, req.now.receipt)
        for room_id, event in receipts.items():
            out.setdefault(room_id, []).append(event)
        ephemeral_filter = req.filter.ephemeral
        return {room: ephemeral_filter.filter(events) for room, events in out.items()}

    async def _stripped_state(self, req: SyncRequest, room_id: str,
                              member_event_id: str) -> list[dict[str, Any]] | None:
        member = await self._events.get_event(member_event_id)
        if member is None or member.sender in req.ignored:
            return None
        unsigned = member.pdu_json.get("unsigned")
        remote_state = unsigned.get("invite_room_state", unsigned.get("knock_room_state")) \
            if isinstance(unsigned, Mapping) else None
        if isinstance(remote_state, list):
            # An invite to or a knock on a room we are not in: its stripped state.
            return [{k: e.get(k) for k in ("type", "state_key", "sender", "content")}
                    for e in remote_state if isinstance(e, Mapping)] + [
                        stripped_state_event(member)]
        current = await self._state.get_current_state_ids(room_id)
        # With the inviter's own membership, as Synapse (MSC4319).
        ids = [v for (t, k), v in current.items() if (t in STRIPPED_STATE_TYPES and k == "")
               or (t == "m.room.member" and k == member.sender != member.state_key)]
        events = await self._redactions.get_events([*ids, member_event_id])
        stripped = [stripped_state_event(events[e]) for e in ids if e in events]
        stripped.append(stripped_state_event(events.get(member_event_id, member)))
        return stripped


def _unread_sections(counts: UnreadCounts | None, threaded: bool) -> dict[str, Any]:
    """`unread_notifications` (main timeline only when threads are counted apart) and,
    when asked for, `unread_thread_notifications`."""
    if counts is None:
        out: dict[str, Any] = {"unread_notifications": {"notification_count": 0,
                                                        "highlight_count": 0}}
    elif threaded:
        out = {"unread_notifications": {
            "notification_count": counts.main_notification_count,
            "highlight_count": counts.main_highlight_count}}
    else:
        out = {"unread_notifications": {"notification_count": counts.notification_count,
                                        "highlight_count": counts.highlight_count}}
    if threaded:
        out["unread_thread_notifications"] = {
            thread: {"notification_count": n, "highlight_count": h}
            for thread, (n, h) in (counts.threads.items() if counts else ())}
    return out


def _filter_view(event: Event) -> dict[str, Any]:
    """The fields event filters look at, without serialising the whole event."""
    return {"type": event.type, "sender": event.sender, "room_id": event.room_id,
            "content": event.content}
