"""A memo keyed by the identity of objects whose hashing costs: an X.509 certificate hashes (and compares) its
whole DER, some microseconds each, so a verdict memoised by a chain of certificates would pay more to be found
than many a check costs. The parsers that produce certificates are memoised by their bytes, so the same chain
comes back as the very same objects; a memo keyed by ``id`` finds it at the cost of a tuple of integers.

Sound because each entry holds its objects: while an entry lives, no other object can have one of their ids,
so an entry found by ids whose objects are the ones asked about (``is``) was computed from them. Equal but
distinct objects miss, and are computed afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["IdentityMemo"]

V = TypeVar("V")


class IdentityMemo(Generic[V]):
    """Values by (the identity of some objects, an ordinary hashable key); the least recently used go first
    past ``size`` entries. Safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[tuple[int, ...], Hashable], tuple[tuple[object, ...], V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, objects: Sequence[object], key: Hashable = None) -> V | None:
        """The value stored for exactly these objects and ``key``, or None."""
        ids = (tuple(map(id, objects)), key)
        with self._lock:
            hit = self._entries.get(ids)
            # Equal ids mean these very objects (the entry holds them); checked all the same, as it is cheap.
            if hit is None or any(a is not b for a, b in zip(hit[0], objects, strict=True)):
                return None
            self._entries.move_to_end(ids)
            return hit[1]

    def put(self, objects: Sequence[object], value: V, key: Hashable = None) -> V:
        """Store ``value`` for these objects and ``key`` (keeping the objects alive with it); returns it."""
        with self._lock:
            ids = (tuple(map(id, objects)), key)
            self._entries[ids] = (tuple(objects), value)
            self._entries.move_to_end(ids)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def remember(self, objects: Sequence[object], make: Callable[[], V]) -> V:
        """The value stored for exactly these objects, else ``make()``, stored."""
        known = self.get(objects)
        return known if known is not None else self.put(objects, make())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
