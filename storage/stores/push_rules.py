"""Push rules: each user's own rules, their changes to the server-default rules, and the
push-rules stream (every change gets a position; sync sends `m.push_rules` after one)."""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.push_rules import DefaultOverride, PushRule
from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.stream import StreamIdGenerator

_USER_BATCH = 500


@attrs.frozen(slots=True)
class UserPushRules:
    """What is stored for one user. Cached: the same object is returned until the user's
    rules change, so callers may cache work derived from it by identity."""

    #: the user's own rules, each kind's from most to least important
    rules: tuple[PushRule, ...] = ()
    #: (kind, rule_id) -> change of a server-default rule
    overrides: Mapping[tuple[str, str], DefaultOverride] = attrs.Factory(dict)


class RuleWrite(enum.Enum):
    """The outcome of a write (a change, or why nothing changed)."""

    OK = "ok"
    NOT_FOUND = "not_found"
    #: `before`/`after` names a rule that does not exist (or the rule itself)
    BAD_RELATIVE = "bad_relative"


_EMPTY = UserPushRules()


class PushRulesStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._stream_ids = StreamIdGenerator(db, "push_rules_stream", "stream_id")
        self._cache: LruCache[str, UserPushRules] = LruCache(50_000)
        # user -> stream id of their last change since startup (answers "changed since?"
        # without a query for tokens issued by this process)
        self._startup_position = self._stream_ids.get_current_token()
        self._last_change: dict[str, int] = {}

    def get_max_push_rules_stream_id(self) -> int:
        """The push-rules stream position up to which every change is persisted."""
        return self._stream_ids.get_current_token()

    # -- reading --

    async def get_push_rules(self, user_id: str) -> UserPushRules:
        return (await self.get_push_rules_for_users([user_id]))[user_id]

    async def get_push_rules_for_users(self, user_ids: Collection[str]
                                       ) -> dict[str, UserPushRules]:
        """Every given user's stored rules (one query for all cache misses)."""
        result: dict[str, UserPushRules] = {}
        missing: list[str] = []
        for user_id in user_ids:
            cached = self._cache.get(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                result[user_id] = cached
        if not missing:
            return result
        seq = self._cache.sequence
        loaded = await self.db.run_interaction("get_push_rules_for_users",
                                               _load_rules_txn, missing)
        for user_id in missing:
            rules = loaded.get(user_id, _EMPTY)
            self._cache.set(user_id, rules, expected_sequence=seq)
            result[user_id] = rules
        return result

    async def push_rules_changed(self, user_id: str, from_key: int) -> bool:
        """Whether the user's rules changed after stream position `from_key`."""
        if from_key >= self._startup_position:
            return self._last_change.get(user_id, 0) > from_key
        rows = await self.db.execute(
            "push_rules_changed",
            "SELECT 1 FROM push_rules_stream WHERE user_id = ? AND stream_id > ? LIMIT 1",
            user_id, from_key)
        return bool(rows)

    # -- writing: each returns (outcome, stream id) --

    async def add_push_rule(self, user_id: str, kind: str, rule_id: str,
                            conditions: Sequence[Any], actions: Sequence[Any],
                            pattern: str | None, before: str | None = None,
                            after: str | None = None) -> tuple[RuleWrite, int]:
        """Create or replace a user rule. A new rule without `before`/`after` becomes the
        kind's most important; an updated one keeps its place (and enabled flag)."""
        return await self._write("add_push_rule", _add_rule_txn, user_id, kind, rule_id,
                                 json.dumps(list(conditions)), json.dumps(list(actions)),
                                 pattern, before, after)

    async def delete_push_rule(self, user_id: str, kind: str,
                               rule_id: str) -> tuple[RuleWrite, int]:
        return await self._write("delete_push_rule", _delete_rule_txn, user_id, kind, rule_id)

    async def set_push_rule_enabled(self, user_id: str, kind: str, rule_id: str,
                                    enabled: bool, is_default: bool) -> tuple[RuleWrite, int]:
        """Enable or disable a user rule, or (is_default) a server-default rule."""
        return await self._write("set_push_rule_enabled", _set_attr_txn, user_id, kind,
                                 rule_id, "enabled", int(enabled), is_default)

    async def set_push_rule_actions(self, user_id: str, kind: str, rule_id: str,
                                    actions: Sequence[Any],
                                    is_default: bool) -> tuple[RuleWrite, int]:
        return await self._write("set_push_rule_actions", _set_attr_txn, user_id, kind,
                                 rule_id, "actions", json.dumps(list(actions)), is_default)

    async def _write(self, desc: str, func: Any, user_id: str,
                     *args: Any) -> tuple[RuleWrite, int]:
        # The stream row is written even when nothing else changes: an allocated id that
        # is never stored could be handed out again after a restart.
        with self._stream_ids.get_next() as stream_id:
            outcome = await self.db.run_interaction(desc, self._write_txn, func, user_id,
                                                    stream_id, args)
        return outcome, stream_id

    def _write_txn(self, txn: Transaction, func: Any, user_id: str, stream_id: int,
                   args: tuple[Any, ...]) -> RuleWrite:
        txn.insert("push_rules_stream", {"stream_id": stream_id, "user_id": user_id})
        txn.call_after(self._changed, user_id, stream_id)
        outcome: RuleWrite = func(txn, user_id, *args)
        return outcome

    def _changed(self, user_id: str, stream_id: int) -> None:
        self._cache.invalidate(user_id)
        self._last_change[user_id] = max(stream_id, self._last_change.get(user_id, 0))


def _load_rules_txn(txn: Transaction, user_ids: list[str]) -> dict[str, UserPushRules]:
    rules: dict[str, list[PushRule]] = {}
    overrides: dict[str, dict[tuple[str, str], DefaultOverride]] = {}
    for i in range(0, len(user_ids), _USER_BATCH):
        chunk = user_ids[i:i + _USER_BATCH]
        marks = ", ".join("?" for _ in chunk)
        for user_id, kind, rule_id, conditions, actions, pattern, enabled in txn.select_all(
                "SELECT user_id, kind, rule_id, conditions, actions, pattern, enabled"
                f" FROM push_rules WHERE user_id IN ({marks})"
                " ORDER BY user_id, kind, priority DESC, rule_id", chunk):
            rules.setdefault(user_id, []).append(PushRule(
                kind=kind, rule_id=rule_id, conditions=tuple(json.loads(conditions)),
                actions=tuple(json.loads(actions)), pattern=pattern,
                default=False, enabled=bool(enabled)))
        for user_id, kind, rule_id, enabled, actions in txn.select_all(
                "SELECT user_id, kind, rule_id, enabled, actions"
                f" FROM push_rules_default_overrides WHERE user_id IN ({marks})", chunk):
            overrides.setdefault(user_id, {})[(kind, rule_id)] = DefaultOverride(
                enabled=None if enabled is None else bool(enabled),
                actions=None if actions is None else tuple(json.loads(actions)))
    return {u: UserPushRules(rules=tuple(rules.get(u, ())), overrides=overrides.get(u, {}))
            for u in set(rules) | set(overrides)}


def _priority_txn(txn: Transaction, user_id: str, kind: str,
                  rule_id: str) -> tuple[int, int] | None:
    row = txn.select_one(
        "SELECT priority, enabled FROM push_rules WHERE user_id = ? AND kind = ?"
        " AND rule_id = ?", (user_id, kind, rule_id))
    return (int(row[0]), int(row[1])) if row else None


def _add_rule_txn(txn: Transaction, user_id: str, kind: str, rule_id: str, conditions: str,
                  actions: str, pattern: str | None, before: str | None,
                  after: str | None) -> RuleWrite:
    existing = _priority_txn(txn, user_id, kind, rule_id)
    enabled = existing[1] if existing else 1
    relative = before or after
    if relative:
        if relative == rule_id:
            return RuleWrite.BAD_RELATIVE
        rel = _priority_txn(txn, user_id, kind, relative)
        if rel is None:
            return RuleWrite.BAD_RELATIVE
        if existing:
            txn.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (user_id, kind, rule_id))
        if before:
            # Just above `before`: make room by moving the more important rules up.
            txn.execute("UPDATE push_rules SET priority = priority + 1 WHERE user_id = ?"
                        " AND kind = ? AND priority > ?", (user_id, kind, rel[0]))
            priority = rel[0] + 1
        else:
            txn.execute("UPDATE push_rules SET priority = priority - 1 WHERE user_id = ?"
                        " AND kind = ? AND priority < ?", (user_id, kind, rel[0]))
            priority = rel[0] - 1
    elif existing:
        priority = existing[0]
    else:
        row = txn.select_one("SELECT MAX(priority) FROM push_rules WHERE user_id = ?"
                             " AND kind = ?", (user_id, kind))
        priority = (int(row[0]) + 1) if row and row[0] is not None else 0
    txn.upsert("push_rules", {"user_id": user_id, "kind": kind, "rule_id": rule_id},
               {"priority": priority, "conditions": conditions, "actions": actions,
                "pattern": pattern, "enabled": enabled})
    return RuleWrite.OK


def _delete_rule_txn(txn: Transaction, user_id: str, kind: str, rule_id: str) -> RuleWrite:
    txn.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                (user_id, kind, rule_id))
    return RuleWrite.OK if txn.rowcount > 0 else RuleWrite.NOT_FOUND


def _set_attr_txn(txn: Transaction, user_id: str, kind: str, rule_id: str, column: str,
                  value: Any, is_default: bool) -> RuleWrite:
    assert column in ("enabled", "actions")
    if is_default:
        txn.upsert("push_rules_default_overrides",
                   {"user_id": user_id, "kind": kind, "rule_id": rule_id}, {column: value})
        return RuleWrite.OK
    txn.execute(f"UPDATE push_rules SET {column} = ? WHERE user_id = ? AND kind = ?"
                " AND rule_id = ?", (value, user_id, kind, rule_id))
    return RuleWrite.OK if txn.rowcount > 0 else RuleWrite.NOT_FOUND

