"""Per-record loops that run in C: chained ``map`` calls with no Python bytecode per item.

The write and verify paths do a few small things to every record (hash it, slice it, put a
prefix in front of it). Written as comprehensions, the interpreter's cost per item is as large
as the work itself; written as ``map`` over C callables (``bytes.__add__``, ``hashlib.sha256``,
the digest method, ``slice``), the loop runs inside the interpreter's C code. The iterator
helpers return lazy iterators: consume them once.

The four hashing loops of the hot paths (frame digests, from a block's bytes or from a list of
frames; leaf hashes; tree parents) go one step further: ``auditlog._speedups``, a small C
extension over OpenSSL's EVP API, runs each whole loop in one call, hashing every message of it
on one reused digest context, without the per-message Python call and object that every hashlib
call pays. Where it is not built
(no C compiler or OpenSSL headers at install time) or ``AUDITLOG_PURE_PYTHON`` is set, the
``py_`` versions below run instead; both give the same bytes (``tests/test_fast_paths.py``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate, repeat
from types import ModuleType
from typing import Final, overload

__all__ = [
    "NATIVE",
    "block_frames",
    "chunks",
    "concat_each",
    "digests",
    "extend_tree",
    "frame_digests",
    "leaf_hashes",
    "parents",
    "prefix_each",
    "sha256_each",
]

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


# -- the hashing loops, in C where built ------------------------------------------------------


def py_frame_digests(data: bytes | memoryview, start: int, lengths: Sequence[int]) -> bytes:
    """The SHA-256 digests, joined, of the consecutive slices of ``data`` from ``start`` with
    the given ``lengths``; ValueError if one leaves ``data``."""
    bounds = list(accumulate(lengths, initial=start))
    if start < 0 or min(lengths, default=0) < 0 or bounds[-1] > len(data):
        raise ValueError("a frame runs past the end of the data")
    return b"".join(sha256_each(map(data.__getitem__, map(slice, bounds, bounds[1:]))))


def py_digests(items: Sequence[bytes | memoryview]) -> bytes:
    """The SHA-256 digests, joined, of each item."""
    return b"".join(sha256_each(items))


def py_parents(nodes: bytes | memoryview) -> bytes:
    """SHA-256(0x01 || left || right) of each pair of the 32-byte nodes in ``nodes``, joined."""
    if len(nodes) % 64:
        raise ValueError("nodes must be whole pairs of 32-byte hashes")
    hashes = list(chunks(bytes(nodes), 32))
    return b"".join(sha256_each(concat_each(prefix_each(b"\x01", hashes[0::2]), hashes[1::2])))


def py_leaf_hashes(salts: bytes | memoryview, records: Sequence[bytes]) -> list[bytes]:
    """SHA-256(0x00 || salt || record) of each record; ``salts`` holds 16 bytes a record."""
    if len(salts) != 16 * len(records):
        raise ValueError("salts must hold one 16-byte salt per record")
    salted = prefix_each(b"\x00", chunks(bytes(salts), 16))
    return list(sha256_each(concat_each(salted, records)))


_BLOCK_HEADER_BYTES: Final = 128
_REDACTED: Final = 0x80000000
_EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def py_block_frames(body: bytes | memoryview) -> tuple[bytes, bytes] | None:
    """The block hash recomputed from a block body and its frame bounds (``count + 1`` native
    int64 offsets, for ``memoryview.cast("q")``), or None for anything but a well-formed block
    without redactions (the caller's general path raises or handles it)."""
    size = len(body)
    if size < _BLOCK_HEADER_BYTES + 32:
        return None
    count = int.from_bytes(body[4:8], "big")
    lengths_start = _BLOCK_HEADER_BYTES + 32 * count
    frames_start = lengths_start + 4 * count
    end = size - 32
    if count < 1 or frames_start > end:
        return None
    lengths = struct.unpack_from(f">{count}I", body, lengths_start)
    bounds = list(accumulate(lengths, initial=frames_start))
    if max(lengths) >= _REDACTED or bounds[-1] != end:
        return None
    block = hashlib.sha256(body[:frames_start])
    block.update(py_frame_digests(body, frames_start, lengths))
    return block.digest(), struct.pack(f"={count + 1}q", *bounds)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def py_extend_tree(
    end: int, frontier: bytes | memoryview, leaves: bytes | memoryview, want_nodes: bool
) -> tuple[bytes, bytes, list[tuple[int, int, bytes]]]:
    """The compact range of ``[0, end)`` (its hashes joined in ``frontier``) extended by the
    leaf hashes joined in ``leaves``: (new frontier joined, root, stride nodes), the stride
    nodes being every completed node at a level that is a positive multiple of 8 (only if
    ``want_nodes``), in no set order; as ``CompactRange.extend_joined`` and ``root``."""
    if len(frontier) != 32 * end.bit_count():
        raise ValueError("frontier must hold one hash per one bit of end")
    if len(leaves) % 32 or end + len(leaves) // 32 >= 1 << 63:
        raise ValueError("leaves must be whole 32-byte hashes within 2**63")
    held = list(chunks(bytes(frontier), 32))
    nodes: list[tuple[int, int, bytes]] = []
    data = bytes(leaves)
    count = len(data) // 32
    position = end
    done = 0
    while done < count:
        width = 1 << ((count - done).bit_length() - 1)
        if position:
            width = min(width, position & -position)
        level_nodes = list(chunks(data, 32, done * 32, (done + width) * 32))
        level = 0
        while len(level_nodes) > 1:
            level_nodes = [
                _node(a, b) for a, b in zip(level_nodes[::2], level_nodes[1::2], strict=True)
            ]
            level += 1
            if want_nodes and not level % 8:
                base = position >> level
                nodes.extend((level, base + i, node) for i, node in enumerate(level_nodes))
        node = level_nodes[0]
        start, span = position, width
        while start & span:
            node = _node(held.pop(), node)
            start -= span
            span <<= 1
            parent = span.bit_length() - 1
            if want_nodes and not parent % 8:
                nodes.append((parent, start >> parent, node))
        held.append(node)
        position += width
        done += width
    root = held[-1] if held else _EMPTY_ROOT
    for left in reversed(held[:-1]):
        root = _node(left, root)
    return b"".join(held), root, nodes


def _load_native() -> ModuleType | None:
    if os.environ.get("AUDITLOG_PURE_PYTHON"):
        return None
    try:
        # Optional: built at install time. Imported by name so that this module depends on
        # the extension alone, not on the package that re-exports everything.
        return importlib.import_module("auditlog._speedups")
    except ImportError:
        return None


_NATIVE_MODULE: Final = _load_native()
NATIVE: Final = _NATIVE_MODULE is not None
"""Whether the C loops are in use."""

frame_digests: Callable[[bytes | memoryview, int, Sequence[int]], bytes] = py_frame_digests
digests: Callable[[Sequence[bytes | memoryview]], bytes] = py_digests
parents: Callable[[bytes | memoryview], bytes] = py_parents
leaf_hashes: Callable[[bytes | memoryview, Sequence[bytes]], list[bytes]] = py_leaf_hashes
block_frames: Callable[[bytes | memoryview], tuple[bytes, bytes] | None] = py_block_frames
extend_tree: Callable[
    [int, bytes | memoryview, bytes | memoryview, bool],
    tuple[bytes, bytes, list[tuple[int, int, bytes]]],
] = py_extend_tree
if _NATIVE_MODULE is not None:
    frame_digests = _NATIVE_MODULE.frame_digests
    digests = _NATIVE_MODULE.digests
    parents = _NATIVE_MODULE.parents
    leaf_hashes = _NATIVE_MODULE.leaf_hashes
    block_frames = _NATIVE_MODULE.block_frames
    extend_tree = _NATIVE_MODULE.extend_tree
