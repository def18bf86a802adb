"""Per-record loops that run in C: chained ``map`` calls with no Python bytecode per item.

The write and verify paths do a few small things to every record (hash it, slice it, put a
prefix in front of it). Written as comprehensions, the interpreter's cost per item is as large
as the work itself; written as ``map`` over C callables (``bytes.__add__``, ``hashlib.sha256``,
the digest method, ``slice``), the loop runs inside the interpreter's C code. Every helper
returns a lazy iterator: consume it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import repeat
from typing import Final, overload

__all__ = ["chunks", "concat_each", "prefix_each", "sha256_each"]

_DIGEST: Final = type(hashlib.sha256()).digest
_CONCAT: Final = bytes.__add__


def sha256_each(items: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """``hashlib.sha256(item).digest()`` of each item."""
    return map(_DIGEST, map(hashlib.sha256, items))


def prefix_each(prefix: bytes, items: Iterable[bytes]) -> Iterator[bytes]:
    """``prefix + item`` for each item."""
    return map(_CONCAT, repeat(prefix), items)


def concat_each(left: Iterable[bytes], right: Iterable[bytes]) -> Iterator[bytes]:
    """``a + b`` for each pair; stops at the shorter input."""
    return map(_CONCAT, left, right)


@overload
def chunks(data: bytes, size: int, start: int = 0, stop: int | None = None) -> Iterator[bytes]: ...


@overload
def chunks(
    data: memoryview, size: int, start: int = 0, stop: int | None = None
) -> Iterator[memoryview]: ...


def chunks(
    data: bytes | memoryview, size: int, start: int = 0, stop: int | None = None
) -> Iterator[bytes] | Iterator[memoryview]:
    """The consecutive ``size``-byte slices of ``data[start:stop]`` (a whole number of them)."""
    end = len(data) if stop is None else stop
    bounds = map(slice, range(start, end, size), range(start + size, end + size, size))
    return map(data.__getitem__, bounds)  # type: ignore[return-value]  # slices of data
