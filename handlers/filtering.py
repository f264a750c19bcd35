"""Filters: the client-server "Filtering" model, validated once and applied to
client-format events. Pure: no I/O, so /sync, /messages and /context share it.

A `FilterCollection` is the whole sync filter (`POST /user/{userId}/filter`); a
`RoomEventFilter` is what `/messages` and `/context` take in their `filter` parameter.
Matching follows the spec (and Synapse where it is silent): a `not_*` entry excludes even
when the positive list includes; a `*` in a type matches any run of characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

import attrs
import pydantic
from pydantic import Field, StringConstraints

from homeserver.errors import Codes, MatrixError
from homeserver.json_decode import JsonDecodeError, decode_json
from homeserver.push_rules import split_key

#: the timeline limit when a filter gives none (spec: "Servers should apply a default")
DEFAULT_LIMIT = 10

_RoomId = Annotated[str, StringConstraints(pattern=r"^!")]
_UserId = Annotated[str, StringConstraints(pattern=r"^@")]


# -- the wire model (validation only) -------------------------------------------------------

class _Model(pydantic.BaseModel):
    # strict: no "10" -> 10, no true -> 1; unknown keys are ignored (forward compatible)
    model_config = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)


class _EventFilterModel(_Model):
    limit: Annotated[int, Field(ge=0)] | None = None
    types: list[str] | None = None
    not_types: list[str] | None = None
    senders: list[_UserId] | None = None
    not_senders: list[_UserId] | None = None


class _RoomEventFilterModel(_EventFilterModel):
    rooms: list[_RoomId] | None = None
    not_rooms: list[_RoomId] | None = None
    contains_url: bool | None = None
    lazy_load_members: bool | None = None
    include_redundant_members: bool | None = None
    unread_thread_notifications: bool | None = None


class _RoomFilterModel(_Model):
    rooms: list[_RoomId] | None = None
    not_rooms: list[_RoomId] | None = None
    include_leave: bool | None = None
    timeline: _RoomEventFilterModel | None = None
    state: _RoomEventFilterModel | None = None
    ephemeral: _RoomEventFilterModel | None = None
    account_data: _RoomEventFilterModel | None = None


class _SyncFilterModel(_Model):
    event_fields: list[str] | None = None
    event_format: Literal["client", "federation"] | None = None
    presence: _EventFilterModel | None = None
    account_data: _EventFilterModel | None = None
    room: _RoomFilterModel | None = None


_M = TypeVar("_M", bound=pydantic.BaseModel)


def _validate(model: type[_M], obj: Any, what: str) -> _M:
    if not isinstance(obj, dict):
        raise MatrixError(400, Codes.BAD_JSON, f"{what} must be a JSON object")
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or what
        raise MatrixError(400, Codes.BAD_JSON, f"Invalid {what}: {where}: {first['msg']}"
                          ) from None


# -- matching -------------------------------------------------------------------------------

def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _tuple(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@attrs.frozen(slots=True)
class Filter:
    """An EventFilter (presence, global account data): types and senders.

    `None` for a positive list means "everything"; an empty list means "nothing".
    """

    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    _type_globs: tuple[re.Pattern[str], ...] = attrs.field(
        init=False, eq=False, repr=False,
        default=attrs.Factory(lambda s: tuple(_glob(t) for t in s.types or ()),
                              takes_self=True))
    _not_type_globs: tuple[re.Pattern[str], ...] = attrs.field(
        init=False, eq=False, repr=False,
        default=attrs.Factory(lambda s: tuple(_glob(t) for t in s.not_types),
                              takes_self=True))

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether a client-format event (or account-data/presence dict) passes."""
        ev_type = event.get("type")
        ev_type = ev_type if isinstance(ev_type, str) else ""
        if any(g.fullmatch(ev_type) for g in self._not_type_globs):
            return False
        if self.types is not None and not any(g.fullmatch(ev_type) for g in self._type_globs):
            return False
        sender = _sender_of(event)
        if sender in self.not_senders:
            return False
        return self.senders is None or sender in self.senders

    def filter(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events that match, in their order (the limit is not applied)."""
        return [e for e in events if self.matches(e)]


@attrs.frozen(slots=True)
class RoomEventFilter(Filter):
    """A RoomEventFilter: an EventFilter plus rooms, `contains_url` and lazy loading."""

    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    #: None: not considered; True: only events with a string `content.url`; False: none
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    def matches(self, event: Mapping[str, Any]) -> bool:
        room_id = event.get("room_id")
        if room_id is not None:
            if room_id in self.not_rooms:
                return False
            if self.rooms is not None and room_id not in self.rooms:
                return False
        if self.contains_url is not None:
            content = event.get("content")
            has_url = isinstance(content, Mapping) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return Filter.matches(self, event)

    def filter(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if self.matches(e)]

    @classmethod
    def parse(cls, obj: Any) -> RoomEventFilter:
        """Validate a RoomEventFilter (the `filter` of /messages and /context).

        Raises:
            MatrixError: 400 M_BAD_JSON for a non-object or a field of the wrong type.
        """
        return _room_event_filter(_validate(_RoomEventFilterModel, obj, "filter"))


def parse_room_event_filter_param(text: str | None) -> RoomEventFilter | None:
    """The `filter` query parameter of /messages and /context (JSON text), or None.

    Raises:
        MatrixError: 400 M_NOT_JSON for text that is not JSON; 400 M_BAD_JSON for JSON
            that is not a valid RoomEventFilter.
    """
    if text is None:
        return None
    try:
        obj = decode_json(text)
    except JsonDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "filter must be valid JSON") from None
    return RoomEventFilter.parse(obj)


def _sender_of(event: Mapping[str, Any]) -> str | None:
    sender = event.get("sender")
    if isinstance(sender, str) and sender:
        return sender
    # Old-style presence events carry the user in content.user_id.
    content = event.get("content")
    user_id = content.get("user_id") if isinstance(content, Mapping) else None
    return user_id if isinstance(user_id, str) else None


def _event_filter(m: _EventFilterModel | None) -> Filter:
    if m is None:
        return Filter()
    return Filter(types=_tuple(m.types), not_types=tuple(m.not_types or ()),
                  senders=_tuple(m.senders), not_senders=tuple(m.not_senders or ()),
                  limit=DEFAULT_LIMIT if m.limit is None else m.limit)


def _room_event_filter(m: _RoomEventFilterModel | None) -> RoomEventFilter:
    if m is None:
        return RoomEventFilter()
    return RoomEventFilter(
        types=_tuple(m.types), not_types=tuple(m.not_types or ()),
        senders=_tuple(m.senders), not_senders=tuple(m.not_senders or ()),
        limit=DEFAULT_LIMIT if m.limit is None else m.limit,
        rooms=_tuple(m.rooms), not_rooms=tuple(m.not_rooms or ()),
        contains_url=m.contains_url, lazy_load_members=bool(m.lazy_load_members),
        include_redundant_members=bool(m.include_redundant_members),
        unread_thread_notifications=bool(m.unread_thread_notifications))


@attrs.frozen(slots=True)
class FilterCollection:
    """A whole sync filter, as /sync applies it."""

    timeline: RoomEventFilter = RoomEventFilter()
    state: RoomEventFilter = RoomEventFilter()
    ephemeral: RoomEventFilter = RoomEventFilter()
    room_account_data: RoomEventFilter = RoomEventFilter()
    account_data: Filter = Filter()
    presence: Filter = Filter()
    include_leave: bool = False
    #: the `room.rooms` / `room.not_rooms` lists, applied before the per-part filters
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    event_fields: list[str] | None = None
    #: "client" or "federation"
    event_format: str = "client"

    @classmethod
    def default(cls) -> FilterCollection:
        """The filter of a /sync without `filter`: everything, timeline limit 10."""
        return _DEFAULT

    @classmethod
    def parse(cls, obj: Any) -> FilterCollection:
        """Validate a sync filter (the body of `POST /user/{userId}/filter`).

        Raises:
            MatrixError: 400 M_BAD_JSON for a non-object, a field of the wrong type, a
                negative limit, a room ID not starting with `!`, a user ID not starting
                with `@`, or an `event_format` other than client/federation.
        """
        m: _SyncFilterModel = _validate(_SyncFilterModel, obj, "filter")
        room = m.room or _RoomFilterModel()
        return cls(
            timeline=_room_event_filter(room.timeline),
            state=_room_event_filter(room.state),
            ephemeral=_room_event_filter(room.ephemeral),
            room_account_data=_room_event_filter(room.account_data),
            account_data=_event_filter(m.account_data),
            presence=_event_filter(m.presence),
            include_leave=bool(room.include_leave),
            rooms=_tuple(room.rooms), not_rooms=tuple(room.not_rooms or ()),
            event_fields=list(m.event_fields) if m.event_fields is not None else None,
            event_format=m.event_format or "client",
        )

    def include_room(self, room_id: str) -> bool:
        """Whether the room-level `rooms`/`not_rooms` let this room into the sync."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


_DEFAULT = FilterCollection()


# -- event_fields ---------------------------------------------------------------------------

def split_field_path(path: str) -> list[str]:
    """Split a dot-separated property path (appendix "Dot-separated property paths"):
    `\\.` is a literal dot, `\\\\` a literal backslash, any other `\\x` stays as is."""
    return split_key(path)


def apply_event_fields(event: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the listed fields of an event (all of them when `fields` is None or
    empty). Paths into a value that is not an object, or that the event lacks, are
    skipped."""
    if not fields:
        return event
    out: dict[str, Any] = {}
    for path in fields:
        keys = split_field_path(path)
        src: Any = event
        for key in keys[:-1]:
            src = src.get(key) if isinstance(src, dict) else None
        if not isinstance(src, dict) or keys[-1] not in src:
            continue
        dst = out
        for key in keys[:-1]:
            nxt = dst.get(key)
            if not isinstance(nxt, dict):
                nxt = dst[key] = {}
            dst = nxt
        dst[keys[-1]] = src[keys[-1]]
    return out
