"""Push rules (the `/pushrules` API and `m.push_rules` for /sync) and unread counts.

Every change to a user's rules advances the push-rules stream and wakes the user's syncs.
Server-default rules (IDs starting with ".") cannot be created or deleted, only enabled,
disabled or given other actions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from homeserver.errors import Codes, MatrixError
from homeserver.push_rules import (
    DEFAULT_RULES,
    KINDS,
    PushRule,
    check_actions,
    check_conditions,
    is_default_rule_id,
    merge_rules,
    rules_to_json,
)
from storage.caches import LruCache
from storage.stores.push_rules import RuleWrite

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAIN_THREAD = "main"


@attrs.frozen(slots=True)
class UnreadCounts:
    """A user's unread notifications in one room after their read position."""

    #: the whole room, threads included (`unread_notifications` without
    #: `unread_thread_notifications`)
    notification_count: int = 0
    highlight_count: int = 0
    #: thread root event ID -> (notifications, highlights), threads other than "main"
    threads: dict[str, tuple[int, int]] = attrs.Factory(dict)
    #: the main timeline only (`unread_notifications` with `unread_thread_notifications`)
    main_notification_count: int = 0
    main_highlight_count: int = 0


class PushRulesHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._store = stores.push_rules
        self._actions = stores.push_actions
        self._notifier = hs.get_notifier()
        self._recent = stores.events.recent
        # (user, room) -> (read position, counted up to, thread -> (notifs, highlights))
        self._unread_cache: LruCache[tuple[str, str],
                                     tuple[int, int, dict[str, tuple[int, int]]]] = \
            LruCache(100_000)

    # -- /sync --

    def get_current_key(self) -> int:
        """The push-rules stream position a sync token may point at."""
        return self._store.get_max_push_rules_stream_id()

    async def get_push_rules_for_sync(self, user_id: str) -> dict[str, Any]:
        """The `m.push_rules` account-data content (same as `GET /pushrules/`)."""
        return rules_to_json(await self.get_rules(user_id), user_id)

    async def push_rules_changed(self, user_id: str, from_key: int, to_key: int) -> bool:
        """Whether the user's rules changed after `from_key` (a change after `to_key` also
        answers True: sending the current rules again is harmless)."""
        if from_key >= to_key:
            return False
        return await self._store.push_rules_changed(user_id, from_key)

    async def get_unread_counts(self, user_id: str, read_positions: Mapping[str, int],
                                room_ids: Collection[str], upto: int | None = None,
                                thread_positions: Mapping[str, Mapping[str, int]] | None = None
                                ) -> dict[str, UnreadCounts]:
        """room -> unread counts after `read_positions[room]` (0 when absent), counting
        events up to the stream position `upto` (all when None). Rooms without unread
        notifications are left out.

        With `upto`, counts are cached per user and room and extended by the events after
        the cached position only; a room without new events costs no query.
        `thread_positions` (room -> thread -> threaded receipt position) lowers the count
        of each thread read further than the room as a whole."""
        if upto is None:
            raw = await self._actions.get_unread_counts(user_id, read_positions, room_ids)
            return {room: _unread(by_thread) for room, by_thread in raw.items() if by_thread}
        result: dict[str, dict[str, tuple[int, int]]] = {}
        lower: dict[str, int] = {}
        base: dict[str, dict[str, tuple[int, int]]] = {}
        for room_id in room_ids:
            read = read_positions.get(room_id, 0)
            cached = self._unread_cache.get((user_id, room_id))
            if cached is not None and cached[0] == read and cached[1] <= upto:
                if self._recent.last_position(room_id) <= cached[1]:
                    result[room_id] = cached[2]
                    continue
                delta = self._recent.push_counts_between(room_id, user_id, cached[1], upto)
                if delta is not None:
                    merged = _add_counts(cached[2], delta)
                    self._unread_cache.set((user_id, room_id), (read, upto, merged))
                    result[room_id] = merged
                    continue
                lower[room_id], base[room_id] = cached[1], cached[2]
            else:
                lower[room_id], base[room_id] = read, {}
        if lower:
            raw = await self._actions.get_unread_counts(user_id, lower, lower.keys(), upto)
            for room_id in lower:
                merged = _add_counts(base[room_id], raw.get(room_id, {}))
                self._unread_cache.set(
                    (user_id, room_id), (read_positions.get(room_id, 0), upto, merged))
                result[room_id] = merged
        for room_id, threads in (thread_positions or {}).items():
            if room_id in result:
                result[room_id] = await self._minus_thread_reads(
                    user_id, room_id, read_positions.get(room_id, 0), upto, threads,
                    result[room_id])
        return {room: _unread(by_thread) for room, by_thread in result.items() if by_thread}

    async def _minus_thread_reads(self, user_id: str, room_id: str, room_read: int, upto: int,
                                  threads: Mapping[str, int],
                                  counts: dict[str, tuple[int, int]]
                                  ) -> dict[str, tuple[int, int]]:
        """Counts after removing, per thread, what its threaded receipt marks read."""
        out = dict(counts)
        for thread, pos in threads.items():
            until = min(pos, upto)
            if thread not in out or until <= room_read:
                continue
            read = self._recent.push_counts_between(room_id, user_id, room_read, until)
            if read is None:
                raw = await self._actions.get_unread_counts(
                    user_id, {room_id: room_read}, [room_id], until)
                read = raw.get(room_id, {})
            n, h = out[thread]
            read_n, read_h = read.get(thread, (0, 0))
            out[thread] = (max(0, n - read_n), max(0, h - read_h))
        return out

    # -- reading --

    async def get_rules(self, user_id: str) -> list[PushRule]:
        """The user's complete rule list in evaluation order."""
        stored = await self._store.get_push_rules(user_id)
        return merge_rules(stored.rules, stored.overrides)

    # GET /_matrix/client/v3/pushrules/global/{kind}/
    async def get_kind_json(self, user_id: str, kind: str) -> list[dict[str, Any]]:
        """One kind's rules in client format (400 M_INVALID_PARAM for an unknown kind)."""
        _check_kind(kind)
        return [r.to_json(user_id) for r in await self.get_rules(user_id) if r.kind == kind]

    # GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        """Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown kind; 404 M_NOT_FOUND.
        """
        _check_kind(kind)
        for rule in await self.get_rules(user_id):
            if rule.kind == kind and rule.rule_id == rule_id:
                return rule
        raise MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")

    # -- writing --

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def set_rule(self, user_id: str, kind: str, rule_id: str, actions: Sequence[Any],
                       conditions: Sequence[Any] | None, pattern: str | None,
                       before: str | None, after: str | None) -> None:
        """Create or replace one of the user's rules.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown kind, a server-default or
                malformed rule ID, bad actions or conditions, or a `before`/`after` that
                names no rule of the user's of this kind (400 M_UNKNOWN, as the spec's
                example); 400 M_MISSING_PARAM for a content rule without `pattern`.
        """
        _check_kind(kind)
        _check_rule_id(rule_id)
        if is_default_rule_id(rule_id):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "Rule IDs starting with '.' are reserved for server rules")
        checked_actions = _checked_actions(actions)
        stored_conditions: tuple[Any, ...] = ()
        if kind in ("override", "underride"):
            try:
                stored_conditions = check_conditions(list(conditions or []))
            except ValueError as e:
                raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None
        if kind == "content":
            if pattern is None:
                raise MatrixError(400, Codes.MISSING_PARAM, "Content rules need a 'pattern'")
        else:
            pattern = None
        for relative in (before, after):
            if relative is not None and is_default_rule_id(relative):
                raise MatrixError(400, Codes.UNKNOWN,
                                  f"Cannot place a rule relative to server rule {relative}")
        outcome, position = await self._store.add_push_rule(
            user_id, kind, rule_id, stored_conditions, checked_actions, pattern,
            before=before or None, after=after or None)
        if outcome is RuleWrite.BAD_RELATIVE:
            raise MatrixError(400, Codes.UNKNOWN,
                              f"before/after rule not found: {before or after}")
        self._announce(user_id, position)

    # DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        """Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown kind; 404 M_NOT_FOUND for an
                unknown rule and for server-default rules (as Synapse: they are not the
                user's to delete).
        """
        _check_kind(kind)
        if is_default_rule_id(rule_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Server-default rules cannot be deleted")
        outcome, position = await self._store.delete_push_rule(user_id, kind, rule_id)
        if outcome is RuleWrite.NOT_FOUND:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")
        self._announce(user_id, position)

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        """Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown kind; 404 M_NOT_FOUND.
        """
        is_default = self._check_existing_target(kind, rule_id)
        outcome, position = await self._store.set_push_rule_enabled(
            user_id, kind, rule_id, enabled, is_default)
        if outcome is RuleWrite.NOT_FOUND:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")
        self._announce(user_id, position)

    # PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
    async def set_actions(self, user_id: str, kind: str, rule_id: str,
                          actions: Sequence[Any]) -> None:
        """Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown kind or bad actions;
                404 M_NOT_FOUND.
        """
        is_default = self._check_existing_target(kind, rule_id)
        checked = _checked_actions(actions)
        outcome, position = await self._store.set_push_rule_actions(
            user_id, kind, rule_id, checked, is_default)
        if outcome is RuleWrite.NOT_FOUND:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")
        self._announce(user_id, position)

    def _check_existing_target(self, kind: str, rule_id: str) -> bool:
        """Whether the rule is a server-default one (404 for an unknown default rule)."""
        _check_kind(kind)
        if not is_default_rule_id(rule_id):
            return False
        if (kind, rule_id) not in DEFAULT_RULES:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")
        return True

    def _announce(self, user_id: str, position: int) -> None:
        self._notifier.on_new_event("push_rules", position, users=[user_id])


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MatrixError(400, Codes.INVALID_PARAM,
                          f"Unknown push rule kind {kind!r}: one of {', '.join(KINDS)}")


def _check_rule_id(rule_id: str) -> None:
    if not rule_id or "/" in rule_id or "\\" in rule_id:
        raise MatrixError(400, Codes.INVALID_PARAM,
                          "Rule IDs may not be empty or contain slashes")


def _checked_actions(actions: Sequence[Any]) -> tuple[Any, ...]:
    try:
        return check_actions(list(actions))
    except ValueError as e:
        raise MatrixError(400, Codes.INVALID_PARAM, str(e)) from None


def _unread(by_thread: Mapping[str, tuple[int, int]]) -> UnreadCounts:
    main = by_thread.get(MAIN_THREAD, (0, 0))
    return UnreadCounts(
        notification_count=sum(n for n, _ in by_thread.values()),
        highlight_count=sum(h for _, h in by_thread.values()),
        threads={t: c for t, c in by_thread.items() if t != MAIN_THREAD},
        main_notification_count=main[0], main_highlight_count=main[1])


def _add_counts(a: Mapping[str, tuple[int, int]], b: Mapping[str, tuple[int, int]]
                ) -> dict[str, tuple[int, int]]:
    out = dict(a)
    for thread, (n, h) in b.items():
        old_n, old_h = out.get(thread, (0, 0))
        out[thread] = (old_n + n, old_h + h)
    return out
