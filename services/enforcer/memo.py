"""Built values kept by a digest of what they were built from, so a bundle whose inputs did not
change reuses its documents instead of building them again.

Most records change nothing a policy depends on: an APD revision with the same egress, a proof,
a story, and every revision while an enforced agent is frozen. Building the documents (parsing
behaviour keys, resolving destinations, the NetworkPolicy through the kubernetes client models)
was most of the enforcer's cost per record.

The key is a SHA-256 of the inputs, never the inputs: a cache keeps no text, not even as a key.
A memo is bounded (least recently used out first): with more agents than it holds it builds
more often, never anything else. Values are shared between callers, so they are immutable
(tuples, frozen models, bytes to copy from).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_EVERY: list[Memo[Any]] = []


def digest(*parts: object) -> bytes:
    """One key for these inputs: their repr (strings quoted, containers in order) hashed.

    Every part is built of str, int, bool, None, enums, lists, tuples, dicts and pydantic
    models, whose reprs name every value: two different inputs never share a repr."""
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).digest()


class Memo(Generic[V]):
    """At most `size` values by key, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[bytes, V] = OrderedDict()
        _EVERY.append(self)

    def get(self, key: bytes, build: Callable[[], V]) -> V:
        """The value kept for `key`, or `build()`'s (kept only if it returned: an error is
        raised again the next time, with that call's own message)."""
        try:
            value = self._values[key]
        except KeyError:
            value = build()
            self._values[key] = value
            if len(self._values) > self._size:
                self._values.popitem(last=False)
            return value
        self._values.move_to_end(key)
        return value

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def forget() -> None:
    """Empty every memo: what is asked next is built afresh (tests compare the two)."""
    for memo in _EVERY:
        memo.clear()
