"""Sync tokens: the vector of stream positions a client has seen.

Serialised as `s` followed by the positions joined by `_`, in `StreamToken.KEYS` order
(`s1042_3_0_17_2_0_5_0`); the room position is negative in backfilled history
(`s-20_3_0_17_2_0_5_0`, see `EventsStore.persist_backfilled_event`). Tokens are opaque to clients; a token with fewer positions (from
an older server) is accepted with the missing ones at 0.
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
