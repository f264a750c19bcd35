"""Evaluating every local member's push rules for a new event (a hot path: every message
times every local member).

Per event: one flattening of the event, one batched load of the recipients' rules (cached
by the store), then one cheap loop. Per room, what the evaluation needs from the current
state (joined members, display names, power levels) is cached and rebuilt only when the
room's current state changes (the state store hands out a new mapping object then). Per
user, the compiled rule list is cached until the stored rules change (the rules store
hands out a new object then).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.relations import thread_of
from homeserver.event_auth import get_user_power_level
from homeserver.events import Event
from homeserver.push_rules import (
    CompiledRule,
    UserContext,
    compile_ruleset,
    evaluate,
    make_event_context,
    merge_rules,
    user_context,
)
from storage.caches import LruCache
from storage.stores.push_actions import PushAction
from storage.stores.push_rules import UserPushRules

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)



@attrs.frozen(slots=True)
class _RoomInfo:
    """What push evaluation needs from one version of a room's current state."""

    #: the current-state mapping this was built from (identity = freshness)
    state: Mapping[tuple[str, str], str]
    member_count: int
    #: local joined members with their display names
    local_members: Mapping[str, UserContext]
    #: the create and power-levels events (for the sender's power level)
    auth_events: Mapping[tuple[str, str], Event]
    notification_levels: Mapping[str, Any]


class BulkPushRuleEvaluator:
    def __init__(self, hs: HomeServer) -> None:
        self._is_mine = hs.is_mine_id
        stores = hs.get_datastores()
        self._rules = stores.push_rules
        self._state = stores.state
        self._events = stores.events
        self._relations = stores.relations
        self._rooms: LruCache[str, _RoomInfo] = LruCache(10_000)
        self._compiled: LruCache[str, tuple[UserPushRules, tuple[CompiledRule, ...]]] = \
            LruCache(50_000)
        self._default_ruleset = compile_ruleset(merge_rules((), {}))

    async def actions_for_event(self, event: Event) -> list[PushAction]:
        """(user_id, notify, highlight, thread_id) for every local joined member other
        than the sender whose rules say notify for this event. thread_id is the thread
        root's event ID, or "main".

        An invitee is not joined, so `.m.rule.invite_for_me` is not evaluated here: it
        belongs to pushers (not built yet), and must not leave an unread count in the room.
        """
        room = await self._room_info(event.room_id)
        recipients = dict(room.local_members)
        recipients.pop(event.sender, None)
        if not recipients:
            return []

        pdu = event.pdu_json
        if pdu.get("room_id") != event.room_id:   # v12 create events have no room_id
            pdu = {**pdu, "room_id": event.room_id}
        sender_level = get_user_power_level(event.sender, room.auth_events)
        ev = make_event_context(pdu, room.member_count, sender_level,
                                room.notification_levels)
        thread_id, _ = await thread_of(self._relations, event)
        stored = await self._rules.get_push_rules_for_users(list(recipients))
        # Users on the server-default rules get the same answer unless the event can name
        # them (a mention, their name in the body, their membership): evaluate that shared
        # answer once, and the full rules only for those it might name.
        generic: Any = _UNSET
        body = pdu.get("content", {}).get("body") if isinstance(pdu.get("content"), dict) \
            else None
        text = body.lower() if isinstance(body, str) else ""
        mentioned = _mentioned_user_ids(pdu)
        out: list[PushAction] = []
        for user_id, user in recipients.items():
            ruleset = self._ruleset_for(user_id, stored[user_id])
            if ruleset is self._default_ruleset and not _may_name(user, text, mentioned,
                                                                   event.state_key):
                if generic is _UNSET:
                    generic = evaluate(ruleset, ev, _NOBODY)
                rule = generic
            else:
                rule = evaluate(ruleset, ev, user)
            if rule is not None and rule.actions.notify:
                out.append((user_id, True, rule.actions.highlight, thread_id))
        return out

    def _ruleset_for(self, user_id: str, stored: UserPushRules) -> tuple[CompiledRule, ...]:
        if not stored.rules and not stored.overrides:
            return self._default_ruleset
        cached = self._compiled.get(user_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        ruleset = compile_ruleset(merge_rules(stored.rules, stored.overrides))
        self._compiled.set(user_id, (stored, ruleset))
        return ruleset

    async def _room_info(self, room_id: str) -> _RoomInfo:
        state = await self._state.get_current_state_ids(room_id)
        cached = self._rooms.get(room_id)
        if cached is not None and cached.state is state:
            return cached
        wanted = [event_id for (typ, _), event_id in state.items() if typ == "m.room.member"]
        for key in (("m.room.create", ""), ("m.room.power_levels", "")):
            if key in state:
                wanted.append(state[key])
        events = await self._events.get_events(wanted)
        member_count = 0
        local: dict[str, UserContext] = {}
        for (typ, state_key), event_id in state.items():
            if typ != "m.room.member":
                continue
            member = events.get(event_id)
            if member is None or member.membership != "join":
                continue
            member_count += 1
            if self._is_mine(state_key):
                name = member.content.get("displayname")
                local[state_key] = user_context(state_key,
                                                name if isinstance(name, str) else None)
        auth_events = {key: events[state[key]]
                       for key in (("m.room.create", ""), ("m.room.power_levels", ""))
                       if key in state and state[key] in events}
        power = auth_events.get(("m.room.power_levels", ""))
        levels = power.content.get("notifications") if power is not None else None
        info = _RoomInfo(state=state, member_count=member_count, local_members=local,
                         auth_events=auth_events,
                         notification_levels=levels if isinstance(levels, Mapping) else {})
        self._rooms.set(room_id, info)
        return info


_UNSET = object()
#: a user no event can name: the shared answer of the default rules
_NOBODY = user_context("@\x00:\x00", None)


def _mentioned_user_ids(pdu: Mapping[str, Any]) -> frozenset[str]:
    content = pdu.get("content")
    mentions = content.get("m.mentions") if isinstance(content, dict) else None
    ids = mentions.get("user_ids") if isinstance(mentions, dict) else None
    return frozenset(i for i in ids if isinstance(i, str)) if isinstance(ids, list) \
        else frozenset()


def _may_name(user: UserContext, body_lower: str, mentioned: frozenset[str],
              state_key: str | None) -> bool:
    """Whether a user-specific default rule could match this user: a superset check
    (substring instead of whole word), so a False is certain."""
    if user.user_id in mentioned or state_key == user.user_id:
        return True
    if not body_lower:
        return False
    if user.localpart and user.localpart.lower() in body_lower:
        return True
    name = user.display_name
    return bool(name) and name is not None and name.lower() in body_lower
