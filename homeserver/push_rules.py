"""Push rules: the server-default rules and their evaluation (pure, no I/O).

A user's rules are checked in the spec's order — override, content, room, sender, underride —
and within a kind the user's own rules before the server-default ones, except
`.m.rule.master`, which comes before everything. The first enabled rule that matches
decides the actions; no match means no notification.

Evaluation is a hot path (every event × every local member): rules are compiled once into
closures (globs become cached regexes), an event is flattened once into dotted keys and
shared by every member's evaluation (`EventContext`), and the per-user facts travel in a
small `UserContext`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

#: the kinds of rule in the order they are checked
KINDS = ("override", "content", "room", "sender", "underride")

#: actions that older spec versions had; ignored wherever they appear
LEGACY_ACTIONS = ("dont_notify", "coalesce")

#: rules that look for mentions in the body; skipped for events that have `m.mentions`
#: (the spec removed them in v1.17, Synapse and older clients still use them)
LEGACY_MENTION_RULES = frozenset({
    ("override", ".m.rule.contains_display_name"),
    ("override", ".m.rule.roomnotif"),
    ("content", ".m.rule.contains_user_name"),
})

#: the required level for a `notifications` key absent from the power levels
DEFAULT_NOTIFICATION_LEVEL = 50

#: nesting depth of event JSON that flattening follows
_MAX_FLATTEN_DEPTH = 20

#: internal markers in default rules, replaced by the owner's user ID / localpart
_USER_ID = "user_id"
_LOCALPART = "user_localpart"


@attrs.frozen(slots=True)
class PushRule:
    """One push rule as the client API shows it (plus its kind)."""

    kind: str
    rule_id: str
    actions: tuple[Any, ...]
    #: override/underride only; room, sender and content rules have implicit conditions
    conditions: tuple[Mapping[str, Any], ...] = ()
    #: content rules only
    pattern: str | None = None
    default: bool = False
    enabled: bool = True

    def to_json(self, user_id: str) -> dict[str, Any]:
        """The client format (`GET /pushrules/`), placeholders filled for `user_id`."""
        out: dict[str, Any] = {"rule_id": self.rule_id, "default": self.default,
                               "enabled": self.enabled, "actions": list(self.actions)}
        if self.kind in ("override", "underride"):
            out["conditions"] = [_fill_condition(c, user_id) for c in self.conditions]
        if self.kind == "content":
            out["pattern"] = _localpart(user_id) if self.pattern is None else self.pattern
        return out


def _fill_condition(cond: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    out = dict(cond)
    if out.pop("pattern_type", None) == _USER_ID:
        out["pattern"] = user_id
    if out.pop("value_type", None) == _USER_ID:
        out["value"] = user_id
    return out


def _localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


# --- server-default rules (client-server-api/modules/push.md "Predefined Rules") -------

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _default(kind: str, rule_id: str, conditions: Iterable[Mapping[str, Any]],
             actions: Iterable[Any], enabled: bool = True) -> PushRule:
    return PushRule(kind=kind, rule_id=rule_id, conditions=tuple(conditions),
                    actions=tuple(actions), default=True, enabled=enabled)


MASTER_RULE = _default("override", ".m.rule.master", [], [], enabled=False)

DEFAULT_OVERRIDE_RULES: tuple[PushRule, ...] = (
    _default("override", ".m.rule.suppress_notices",
             [_match("content.msgtype", "m.notice")], []),
    _default("override", ".m.rule.invite_for_me", [
        _match("type", "m.room.member"), _match("content.membership", "invite"),
        {"kind": "event_match", "key": "state_key", "pattern_type": _USER_ID},
    ], ["notify", _SOUND]),
    _default("override", ".m.rule.member_event", [_match("type", "m.room.member")], []),
    _default("override", ".m.rule.is_user_mention", [
        {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
         "value_type": _USER_ID},
    ], ["notify", _SOUND, _HIGHLIGHT]),
    # legacy (removed in v1.17): the display name in the body
    _default("override", ".m.rule.contains_display_name",
             [{"kind": "contains_display_name"}], ["notify", _SOUND, _HIGHLIGHT]),
    _default("override", ".m.rule.is_room_mention", [
        {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
        {"kind": "sender_notification_permission", "key": "room"},
    ], ["notify", _HIGHLIGHT]),
    # legacy (removed in v1.17): "@room" in the body
    _default("override", ".m.rule.roomnotif", [
        _match("content.body", "@room"),
        {"kind": "sender_notification_permission", "key": "room"},
    ], ["notify", _HIGHLIGHT]),
    _default("override", ".m.rule.tombstone",
             [_match("type", "m.room.tombstone"), _match("state_key", "")],
             ["notify", _HIGHLIGHT]),
    _default("override", ".m.rule.reaction", [_match("type", "m.reaction")], []),
    _default("override", ".m.rule.room.server_acl",
             [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _default("override", ".m.rule.suppress_edits", [
        {"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
         "value": "m.replace"},
    ], []),
)

#: legacy (removed in v1.17): the owner's localpart in the body; `pattern` None = localpart
DEFAULT_CONTENT_RULES: tuple[PushRule, ...] = (
    PushRule(kind="content", rule_id=".m.rule.contains_user_name", pattern=None,
             actions=("notify", _SOUND, _HIGHLIGHT), default=True),
)

DEFAULT_UNDERRIDE_RULES: tuple[PushRule, ...] = (
    _default("underride", ".m.rule.call", [_match("type", "m.call.invite")],
             ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _default("underride", ".m.rule.encrypted_room_one_to_one", [
        {"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted"),
    ], ["notify", _SOUND]),
    _default("underride", ".m.rule.room_one_to_one", [
        {"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message"),
    ], ["notify", _SOUND]),
    _default("underride", ".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _default("underride", ".m.rule.encrypted", [_match("type", "m.room.encrypted")],
             ["notify"]),
)

DEFAULT_RULES: dict[tuple[str, str], PushRule] = {
    (r.kind, r.rule_id): r
    for r in (MASTER_RULE, *DEFAULT_OVERRIDE_RULES, *DEFAULT_CONTENT_RULES,
              *DEFAULT_UNDERRIDE_RULES)
}


def is_default_rule_id(rule_id: str) -> bool:
    """Server-default rule IDs start with a dot; users may not create such rules."""
    return rule_id.startswith(".")


@attrs.frozen(slots=True)
class DefaultOverride:
    """A user's change to one server-default rule (None: unchanged)."""

    enabled: bool | None = None
    actions: tuple[Any, ...] | None = None


def merge_rules(user_rules: Iterable[PushRule],
                overrides: Mapping[tuple[str, str], DefaultOverride]) -> list[PushRule]:
    """The user's complete rule list in evaluation order.

    Args:
        user_rules: the user's own rules, each kind's rules from most to least important.
        overrides: (kind, rule_id) -> the user's enabled/actions change of a default rule.
    """
    by_kind: dict[str, list[PushRule]] = {k: [] for k in KINDS}
    for rule in user_rules:
        by_kind[rule.kind].append(rule)

    def with_override(rule: PushRule) -> PushRule:
        change = overrides.get((rule.kind, rule.rule_id))
        if change is None:
            return rule
        return attrs.evolve(
            rule,
            enabled=rule.enabled if change.enabled is None else change.enabled,
            actions=rule.actions if change.actions is None else change.actions)

    out = [with_override(MASTER_RULE)]
    out += by_kind["override"] + [with_override(r) for r in DEFAULT_OVERRIDE_RULES]
    out += by_kind["content"] + [with_override(r) for r in DEFAULT_CONTENT_RULES]
    out += by_kind["room"] + by_kind["sender"]
    out += by_kind["underride"] + [with_override(r) for r in DEFAULT_UNDERRIDE_RULES]
    return out


def rules_to_json(rules: Iterable[PushRule], user_id: str) -> dict[str, Any]:
    """`{"global": {kind: [rule, ...]}}`: the body of `GET /pushrules/` and the content of
    the `m.push_rules` account data."""
    ruleset: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for rule in rules:
        ruleset[rule.kind].append(rule.to_json(user_id))
    return {"global": ruleset}


# --- validation of client input -------------------------------------------------------


def check_actions(actions: Any) -> tuple[Any, ...]:
    """The actions if they are a list of known actions.

    Raises:
        ValueError: naming the first action that is not `notify`, a legacy action, or a
            `set_tweak` object.
    """
    if not isinstance(actions, list):
        raise ValueError("actions must be a list")
    for action in actions:
        if isinstance(action, str) and (action == "notify" or action in LEGACY_ACTIONS):
            continue
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            continue
        raise ValueError(f"Unrecognised action: {action!r}")
    return tuple(actions)


def check_conditions(conditions: Any) -> tuple[Mapping[str, Any], ...]:
    """The conditions if each is an object with a string `kind` (unknown kinds are kept:
    the spec says they never match).

    Raises:
        ValueError: for anything else.
    """
    if not isinstance(conditions, list):
        raise ValueError("conditions must be a list")
    for cond in conditions:
        if not isinstance(cond, dict) or not isinstance(cond.get("kind"), str):
            raise ValueError("each condition must be an object with a string 'kind'")
    return tuple(conditions)


# --- evaluation -------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Actions:
    """What a matching rule asks for."""

    notify: bool
    highlight: bool
    tweaks: Mapping[str, Any]


def summarise_actions(actions: Iterable[Any]) -> Actions:
    """notify / highlight / tweaks of an action list (legacy actions ignored; a highlight
    tweak without a value means true)."""
    notify = False
    tweaks: dict[str, Any] = {}
    for action in actions:
        if action == "notify":
            notify = True
        elif isinstance(action, Mapping) and isinstance(action.get("set_tweak"), str):
            name = action["set_tweak"]
            tweaks[name] = action.get("value", True) if name == "highlight" \
                else action.get("value")
    return Actions(notify=notify, highlight=tweaks.get("highlight") is True, tweaks=tweaks)


@attrs.frozen(slots=True)
class EventContext:
    """One event, prepared once for all its recipients' evaluations."""

    room_id: str
    sender: str
    #: escaped dotted path -> value (strings, numbers, booleans, null, lists)
    flat: Mapping[str, Any]
    #: `content.body` when it is a string
    body: str | None
    #: the event has an `m.mentions` object (legacy mention rules are then skipped)
    has_mentions: bool
    #: joined members of the room
    member_count: int
    sender_power_level: float
    #: the power levels' `notifications` object (key -> required level)
    notification_levels: Mapping[str, Any]
    #: results of rules that do not depend on the recipient, shared by all recipients
    memo: dict[CompiledRule, bool] = attrs.field(factory=dict, eq=False)


@attrs.frozen(slots=True)
class UserContext:
    """The recipient: their ID, localpart and display name in the room."""

    user_id: str
    localpart: str
    display_name: str | None = None


def make_event_context(event_json: Mapping[str, Any], member_count: int,
                       sender_power_level: float,
                       notification_levels: Mapping[str, Any] | None = None
                       ) -> EventContext:
    """Flatten an event (its PDU or client JSON) for evaluation."""
    flat: dict[str, Any] = {}
    _flatten(event_json, "", flat, 0)
    content = event_json.get("content")
    content = content if isinstance(content, Mapping) else {}
    body = content.get("body")
    return EventContext(
        room_id=str(event_json.get("room_id", "")), sender=str(event_json.get("sender", "")),
        flat=flat, body=body if isinstance(body, str) else None,
        has_mentions=isinstance(content.get("m.mentions"), Mapping),
        member_count=member_count, sender_power_level=sender_power_level,
        notification_levels=notification_levels or {})


_SKIPPED_TOP_KEYS = frozenset({"signatures", "hashes", "unsigned", "auth_events",
                               "prev_events"})


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    if depth > _MAX_FLATTEN_DEPTH:
        return
    for key, value in obj.items():
        if not isinstance(key, str) or (depth == 0 and key in _SKIPPED_TOP_KEYS):
            continue
        path = prefix + key.replace("\\", "\\\\").replace(".", "\\.")
        if isinstance(value, Mapping):
            _flatten(value, path + ".", out, depth + 1)
        else:
            out[path] = value


def split_key(key: str) -> list[str]:
    """A dot-separated property path into its names (`\\.` is a literal dot, `\\\\` a
    backslash, any other backslash is literal)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key) and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _canonical_key(key: str) -> str:
    """The flattened-dict key for a condition's `key` (escapes normalised)."""
    return ".".join(p.replace("\\", "\\\\").replace(".", "\\.") for p in split_key(key))


_WORD = "A-Za-z0-9_"
#: a word boundary: not between two word characters
_BOUNDARY = f"(?:(?<![{_WORD}])|(?![{_WORD}]))"


@functools.lru_cache(maxsize=10_000)
def glob_regex(pattern: str, word_boundary: bool) -> re.Pattern[str]:
    """A compiled, case-insensitive regex for a glob (`*`, `?`). With `word_boundary` it
    matches a substring starting and ending at word boundaries (use `search`), otherwise
    the whole value (use `fullmatch`)."""
    parts = []
    for c in pattern:
        if c == "*":
            parts.append(".*?")
        elif c == "?":
            parts.append(".")
        else:
            parts.append(re.escape(c))
    body = "".join(parts)
    if word_boundary:
        body = f"{_BOUNDARY}(?:{body}){_BOUNDARY}"
    return re.compile(body, re.IGNORECASE | re.DOTALL)


Matcher = Callable[[EventContext, UserContext], bool]


def _never(ev: EventContext, user: UserContext) -> bool:
    return False


def _always(ev: EventContext, user: UserContext) -> bool:
    return True


def _is_plain_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int))


def _same_value(a: Any, b: Any) -> bool:
    """Exact equality of canonical-JSON scalars (true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def _body_glob_matcher(regex_for: Callable[[UserContext], re.Pattern[str] | None]
                       ) -> Matcher:
    def match(ev: EventContext, user: UserContext) -> bool:
        if ev.body is None:
            return False
        regex = regex_for(user)
        return regex is not None and regex.search(ev.body) is not None
    return match


def compile_condition(cond: Mapping[str, Any]) -> Matcher:
    """A condition as a function of (event, user); unknown or malformed ones never match."""
    kind = cond.get("kind")
    if kind == "event_match":
        return _compile_event_match(cond)
    if kind in ("event_property_is", "event_property_contains"):
        key = cond.get("key")
        if not isinstance(key, str):
            return _never
        path = _canonical_key(key)
        if cond.get("value_type") == _USER_ID:
            def value_of(user: UserContext) -> Any:
                return user.user_id
        elif "value" in cond and _is_plain_value(cond["value"]):
            fixed = cond["value"]

            def value_of(user: UserContext) -> Any:
                return fixed
        else:
            return _never
        if kind == "event_property_is":
            def prop_is(ev: EventContext, user: UserContext) -> bool:
                if path not in ev.flat:
                    return False
                return _same_value(ev.flat[path], value_of(user))
            return prop_is

        def prop_contains(ev: EventContext, user: UserContext) -> bool:
            values = ev.flat.get(path)
            if not isinstance(values, list):
                return False
            wanted = value_of(user)
            return any(_same_value(v, wanted) for v in values)
        return prop_contains
    if kind == "contains_display_name":
        def display_name_regex(user: UserContext) -> re.Pattern[str] | None:
            if not user.display_name:
                return None
            return literal_regex(user.display_name)
        return _body_glob_matcher(display_name_regex)
    if kind == "room_member_count":
        return _compile_member_count(cond.get("is"))
    if kind == "sender_notification_permission":
        key = cond.get("key")
        if not isinstance(key, str):
            return _never

        def permitted(ev: EventContext, user: UserContext) -> bool:
            required = ev.notification_levels.get(key, DEFAULT_NOTIFICATION_LEVEL)
            if isinstance(required, bool) or not isinstance(required, int):
                required = DEFAULT_NOTIFICATION_LEVEL
            return ev.sender_power_level >= required
        return permitted
    return _never


@functools.lru_cache(maxsize=10_000)
def literal_regex(text: str) -> re.Pattern[str]:
    """A case-insensitive regex finding `text` between word boundaries (display names)."""
    return re.compile(f"{_BOUNDARY}(?:{re.escape(text)}){_BOUNDARY}",
                      re.IGNORECASE | re.DOTALL)


def _compile_event_match(cond: Mapping[str, Any]) -> Matcher:
    key = cond.get("key")
    if not isinstance(key, str):
        return _never
    path = _canonical_key(key)
    word = path == "content.body"
    if cond.get("pattern_type") == _USER_ID:
        def match_user(ev: EventContext, user: UserContext) -> bool:
            value = ev.flat.get(path)
            if not isinstance(value, str):
                return False
            regex = glob_regex(user.user_id, word)
            return (regex.search(value) if word else regex.fullmatch(value)) is not None
        return match_user
    pattern = cond.get("pattern")
    if not isinstance(pattern, str):
        return _never
    regex = glob_regex(pattern, word)
    if word:
        def match_word(ev: EventContext, user: UserContext) -> bool:
            value = ev.flat.get(path)
            return isinstance(value, str) and regex.search(value) is not None
        return match_word

    def match_whole(ev: EventContext, user: UserContext) -> bool:
        value = ev.flat.get(path)
        return isinstance(value, str) and regex.fullmatch(value) is not None
    return match_whole


_MEMBER_COUNT_RE = re.compile(r"^(==|<=|>=|<|>)?\s*([0-9]+)$")


def _compile_member_count(spec: Any) -> Matcher:
    if not isinstance(spec, str):
        return _never
    m = _MEMBER_COUNT_RE.match(spec.strip())
    if m is None:
        return _never
    op, number = m.group(1) or "==", int(m.group(2))
    compare: Callable[[int], bool] = {
        "==": lambda n: n == number, "<": lambda n: n < number, ">": lambda n: n > number,
        "<=": lambda n: n <= number, ">=": lambda n: n >= number,
    }[op]
    return lambda ev, user: compare(ev.member_count)


@attrs.frozen(slots=True, eq=False)
class CompiledRule:
    """A rule ready to evaluate (compared and hashed by identity)."""

    kind: str
    rule_id: str
    matches: Matcher
    actions: Actions
    #: skipped for events with `m.mentions`
    legacy_mention: bool
    #: the result is the same for every recipient (memoised per event)
    user_independent: bool = False


def compile_rule(rule: PushRule) -> CompiledRule:
    """The rule's conditions (explicit or implied by its kind) as one matcher."""
    matchers: list[Matcher]
    independent = True
    if rule.kind == "room":
        room_id = rule.rule_id
        matchers = [lambda ev, user: ev.room_id == room_id]
    elif rule.kind == "sender":
        sender = rule.rule_id
        matchers = [lambda ev, user: ev.sender == sender]
    elif rule.kind == "content":
        if rule.pattern is None:   # the default rule: the owner's localpart
            independent = False
            matchers = [_body_glob_matcher(lambda user: glob_regex(user.localpart, True))]
        else:
            regex = glob_regex(rule.pattern, True)
            matchers = [_body_glob_matcher(lambda user: regex)]
    else:
        matchers = [compile_condition(c) for c in rule.conditions]
        independent = not any(_depends_on_user(c) for c in rule.conditions)
    if not matchers:
        matches: Matcher = _always
    elif len(matchers) == 1:
        matches = matchers[0]
    else:
        def matches(ev: EventContext, user: UserContext) -> bool:
            return all(m(ev, user) for m in matchers)
    return CompiledRule(kind=rule.kind, rule_id=rule.rule_id, matches=matches,
                        actions=summarise_actions(rule.actions),
                        legacy_mention=(rule.kind, rule.rule_id) in LEGACY_MENTION_RULES,
                        user_independent=independent)


def _depends_on_user(cond: Mapping[str, Any]) -> bool:
    return (cond.get("kind") == "contains_display_name"
            or cond.get("pattern_type") is not None or cond.get("value_type") is not None)


_default_compiled: dict[tuple[str, str], CompiledRule] = {}


def compile_ruleset(rules: Iterable[PushRule]) -> tuple[CompiledRule, ...]:
    """The enabled rules, compiled, in order. Unchanged default rules are compiled once per
    process and shared by every user."""
    out: list[CompiledRule] = []
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.default and DEFAULT_RULES.get((rule.kind, rule.rule_id)) is rule:
            key = (rule.kind, rule.rule_id)
            compiled = _default_compiled.get(key)
            if compiled is None:
                compiled = _default_compiled[key] = compile_rule(rule)
        else:
            compiled = compile_rule(rule)
        out.append(compiled)
    return tuple(out)


def evaluate(rules: Sequence[CompiledRule], ev: EventContext,
             user: UserContext) -> CompiledRule | None:
    """The first rule that matches the event for this user, or None."""
    for rule in rules:
        if rule.legacy_mention and ev.has_mentions:
            continue
        if rule.user_independent:
            hit = ev.memo.get(rule)
            if hit is None:
                hit = ev.memo[rule] = rule.matches(ev, user)
        else:
            hit = rule.matches(ev, user)
        if hit:
            return rule
    return None


def user_context(user_id: str, display_name: str | None = None) -> UserContext:
    return UserContext(user_id=user_id, localpart=_localpart(user_id),
                       display_name=display_name)
