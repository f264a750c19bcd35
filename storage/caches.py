"""A size-bounded LRU cache. Every cache in front of a store is invalidated explicitly next
to the write that changes what it holds (usually through `txn.call_after`).

Thread-safe: transactions on database threads may read and fill it too."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LruCache(Generic[K, V]):
    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        #: bumped by every invalidation; a reader that started before one must not fill
        self.sequence = 0

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._data.move_to_end(key)
            return value  # type: ignore[return-value]

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def set(self, key: K, value: V, expected_sequence: int | None = None) -> None:
        """Store a value; with `expected_sequence`, only if nothing was invalidated since
        the reader read `sequence` (so a slow read cannot cache a stale value)."""
        with self._lock:
            if expected_sequence is not None and expected_sequence != self.sequence:
                return
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max_size:
                self._data.popitem(last=False)

    def invalidate(self, key: K) -> None:
        with self._lock:
            self.sequence += 1
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self.sequence += 1
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
