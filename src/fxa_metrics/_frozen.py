"""Read-only containers for what a check prepares for the sinks.

Why a ``dict`` subclass rather than ``MappingProxyType``: orjson serialises
dict subclasses natively (in C), so freezing costs the hot path nothing at
encoding time, while a proxy would have to be copied back into a dict for
every line. Every sink of a route receives the same prepared object, so a sink
that tries to change it gets a ``TypeError`` (contained and counted by the
facade) instead of changing what the next sink writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn


def _readonly(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError("fxa_metrics: prepared records are read-only (copy before changing)")


class FrozenDict(dict[str, Any]):
    """A ``dict`` whose mutating methods raise ``TypeError``; hashable by identity only."""

    __slots__ = ()

    __setitem__ = _readonly
    __delitem__ = _readonly
    __ior__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        import copy

        return {k: copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


EMPTY = FrozenDict()


def freeze(value: Any) -> Any:
    """A deep read-only copy of JSON-like data: dicts become FrozenDict, lists tuples.

    Scalars (and anything else) are returned as they are: strings and numbers
    are immutable already.
    """
    cls = value.__class__
    if cls is FrozenDict or cls is str or cls is int or cls is float or cls is bool:
        return value
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(freeze(v) for v in value)
    return value


def frozen_pairs(pairs: Iterable[tuple[str, Any]]) -> FrozenDict:
    """A FrozenDict of already-immutable values (no deep copy)."""
    return FrozenDict(pairs)


def thaw(value: Any) -> Any:
    """A deep, plain, mutable copy of frozen data (for a library that edits what it is given)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
