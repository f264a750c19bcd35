"""Sync tokens: the vector of stream positions a client has seen; pagination tokens: a
place in one room's history (`TopologicalToken`).

A sync token is `s` followed by the positions joined by `_`, in `StreamToken.KEYS` order
(`s1042_3_0_17_2_0_5_0`). Its room position may be negative: `/messages` `end` tokens of
older versions pointed into backfilled history that way (`s-20_3_0_17_2_0_5_0`), and are
still accepted. Tokens are opaque to clients; a token with fewer positions (from an older
server) is accepted with the missing ones at 0.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.frozen(slots=True)
class StreamToken:
    #: the room-event stream: `events.stream_ordering`
    room: int = 0
    presence: int = 0
    #: in memory; starts from the wall clock at boot so it keeps growing across restarts
    typing: int = 0
    receipt: int = 0
    #: global and per-room account data and room tags
    account_data: int = 0
    push_rules: int = 0
    to_device: int = 0
    device_list: int = 0

    KEYS: ClassVar[tuple[str, ...]] = (
        "room", "presence", "typing", "receipt", "account_data", "push_rules", "to_device",
        "device_list",
    )

    def serialize(self) -> str:
        return "s" + "_".join(str(getattr(self, k)) for k in self.KEYS)

    @classmethod
    def parse(cls, text: str) -> StreamToken:
        """Raises ValueError for anything that is not a token of ours."""
        if not text.startswith("s") or len(text) > 200:
            raise ValueError("not a stream token")
        parts = text[1:].split("_")
        # The room position may be negative: /messages paging into backfilled history.
        if len(parts) > len(cls.KEYS) or not all(p.isdigit() for p in parts[1:]) \
                or not parts[0].removeprefix("-").isdigit():
            raise ValueError("not a stream token")
        return cls(**{k: int(p) for k, p in zip(cls.KEYS, parts, strict=False)})

    def replace(self, **positions: int) -> StreamToken:
        return attrs.evolve(self, **positions)

    def advanced_past(self, other: StreamToken) -> bool:
        """True if any position of this token is beyond the same one of `other`."""
        return any(getattr(self, k) > getattr(other, k) for k in self.KEYS)


@attrs.frozen(slots=True, order=True)
class TopologicalToken:
    """A place in one room's history, between two events, in the order `/messages`
    pages it: by depth (Synapse's topological ordering), then by stream ordering, so that
    backfilled events (negative stream orderings) fall where their depth puts them.

    Serialised as Synapse does, `t<depth>-<stream>` (`t42-1037`; in backfilled history
    `t7--20`). Paging backwards from it returns the events at (depth, stream) <= it,
    paging forwards those after it.
    """

    depth: int
    stream: int

    def serialize(self) -> str:
        return f"t{self.depth}-{self.stream}"

    @classmethod
    def parse(cls, text: str) -> TopologicalToken:
        """Raises ValueError for anything that is not a topological token."""
        depth, sep, stream = text[1:].partition("-")
        if not text.startswith("t") or len(text) > 50 or not sep or not depth.isdigit() \
                or not stream.removeprefix("-").isdigit():
            raise ValueError("not a topological token")
        return cls(int(depth), int(stream))


#: a `from`/`to` of /messages: a topological token, or a /sync token (`prev_batch`)
PaginationToken = TopologicalToken | StreamToken


def parse_pagination_token(text: str) -> PaginationToken:
    """A `t…` token or a sync token (`s…`). Raises ValueError for anything else."""
    if text.startswith("t"):
        return TopologicalToken.parse(text)
    return StreamToken.parse(text)
