"""Keyless verification's per-block C calls and the parallel verification of chains.

``block_frames`` and ``extend_tree`` (auditlog._speedups) are held to their pure-Python
definitions in auditlog._fast, to ``CompactRange`` and to the RFC 6962 vectors; both SHA-256
paths of the extension (OpenSSL's functions directly, and EVP) give the same bytes. Verifying
chains on an executor gives the report and the errors verifying in one process gives.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog import AuditLog, IntegrityError, _fast
from auditlog.merkle import CompactRange, leaf_hash
from auditlog.merkle.tree import range_nodes
from auditlog.segment.blocks import pack_block, parse_block, redact_block
from auditlog.segment.format import BlockHeader
from auditlog.testing import workload
from auditlog.testing.tamper import flip_bit, segment_files

VECTORS = Path(__file__).parent / "vectors" / "rfc6962"


@pytest.fixture(scope="module", params=["direct", "evp"])
def native(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The C extension, with each of its two SHA-256 paths."""
    module: ModuleType = pytest.importorskip("auditlog._speedups")
    module._use_evp(request.param == "evp")
    try:
        yield module
    finally:
        module._use_evp(False)


def _block(frames: list[bytes], first_index: int = 0) -> bytes:
    header = BlockHeader(
        count=len(frames),
        first_index=first_index,
        tree_size=first_index + len(frames),
        period=1,
        dictionary_id=0,
        min_time=0,
        max_time=0,
        block_salt=bytes(16),
        prev_hash=bytes(32),
        tree_root=bytes(32),
    )
    leaves = b"".join(leaf_hash(frame) for frame in frames)
    entry, _ = pack_block(header, leaves, frames)
    return entry[8:]


frames_strategy = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(frames=frames_strategy)
def test_block_frames_equals_its_definition(native: ModuleType, frames: list[bytes]) -> None:
    """The C block hash and frame bounds equal the pure-Python ones and the written hash."""
    body = _block(frames)
    found = native.block_frames(memoryview(body))
    assert found == _fast.py_block_frames(body)
    assert found is not None
    digest, bounds = found
    assert digest == body[-32:]
    offsets = memoryview(bounds).cast("q")
    assert [body[a:b] for a, b in pairwise(offsets)] == frames


@settings(max_examples=60, deadline=None)
@given(frames=frames_strategy, offset=st.integers(0, 10_000), value=st.integers(0, 255))
def test_block_frames_on_damaged_bodies(
    native: ModuleType, frames: list[bytes], offset: int, value: int
) -> None:
    """On any changed byte the C and Python definitions agree (a hash, or None), and
    parse_block raises or returns the same block either way."""
    body = bytearray(_block(frames))
    body[offset % len(body)] = value
    assert native.block_frames(bytes(body)) == _fast.py_block_frames(bytes(body))
    for cut in (0, 1, 127, 128, 160, len(body) - 1):
        assert native.block_frames(bytes(body[:cut])) == _fast.py_block_frames(bytes(body[:cut]))


def test_a_redacted_block_takes_the_general_path(native: ModuleType) -> None:
    """A block with a redacted slot is left to parse_block's general path, which checks it."""
    frames = [b"one", b"two" * 40, b"three"]
    body = _block(frames)
    block = parse_block(memoryview(body), 0)
    redacted = redact_block(block, {1})[8:]
    assert native.block_frames(redacted) is None
    assert _fast.py_block_frames(redacted) is None
    again = parse_block(memoryview(redacted), 0)
    assert again.redacted == frozenset({1})
    assert again.block_hash == block.block_hash


@settings(max_examples=80, deadline=None)
@given(
    end=st.one_of(st.integers(0, 3000), st.sampled_from([255, 256, 65535, 65536, 1 << 40])),
    count=st.integers(0, 600),
    seed=st.binary(min_size=8, max_size=8),
)
def test_extend_tree_equals_the_compact_range(
    native: ModuleType, end: int, count: int, seed: bytes
) -> None:
    """extend_tree (C and Python) gives CompactRange's frontier, root and stride nodes."""
    frontier = [leaf_hash(seed + bytes([i])) for i in range(len(range_nodes(0, end)))]
    leaves = b"".join(leaf_hash(seed + i.to_bytes(4, "big")) for i in range(count))
    tree = CompactRange(0, end, frontier)
    stride: list[tuple[int, int, bytes]] = []
    tree.extend_joined(leaves, stride)
    for implementation in (native.extend_tree, _fast.py_extend_tree):
        joined, root, nodes = implementation(end, b"".join(frontier), leaves, True)
        assert joined == b"".join(tree.hashes)
        assert root == tree.root()
        assert sorted(nodes) == sorted(stride)
        assert implementation(end, b"".join(frontier), leaves, False)[2] == []


def test_extend_tree_refuses_bad_input(native: ModuleType) -> None:
    """A frontier that does not fit ``end`` or leaves that are not whole hashes: ValueError."""
    for implementation in (native.extend_tree, _fast.py_extend_tree):
        with pytest.raises(ValueError, match="frontier"):
            implementation(3, bytes(32), b"", False)
        with pytest.raises(ValueError, match="whole"):
            implementation(0, b"", bytes(33), False)


def _standard_leaf_hashes() -> list[bytes]:
    data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
    data.append("606162636465666768696a6b6c6d6e6f")
    return [leaf_hash(bytes.fromhex(item)) for item in data]


def test_extend_tree_gives_the_rfc6962_roots(native: ModuleType) -> None:
    """The roots of the RFC 6962 vector trees, computed one leaf or all leaves at a time."""
    roots: dict[int, bytes] = {}
    for path in VECTORS.glob("inclusion/[0-9]*/happy-path.json"):
        case = json.loads(path.read_text())
        if not case.get("wantErr") and case.get("treeSize") and case.get("root"):
            roots.setdefault(case["treeSize"], base64.b64decode(case["root"]))
    assert roots, "no RFC 6962 vectors found"
    leaves = _standard_leaf_hashes()
    for size, expected in roots.items():
        if size > len(leaves):
            continue
        _, root, _ = native.extend_tree(0, b"", b"".join(leaves[:size]), False)
        assert root == expected
        joined = b""
        for end, leaf in enumerate(leaves[:size]):
            joined, root, _ = native.extend_tree(end, joined, leaf, False)
        assert root == expected


def test_the_extension_says_which_sha256_it_uses() -> None:
    """hash_backend names the path in use: the direct functions only under the default
    provider, EVP when asked."""
    module = pytest.importorskip("auditlog._speedups")
    assert module.hash_backend() in {"direct", "evp"}
    module._use_evp(True)
    try:
        assert module.hash_backend() == "evp"
    finally:
        module._use_evp(False)


# -- chains on an executor --------------------------------------------------------------------


@pytest.fixture
def two_chain_log(create_log: Callable[..., AuditLog], log_path: Path) -> Path:
    with create_log() as log:
        log.append_many(list(workload(600, seed=3)))
    return log_path


def _verify(open_log: Callable[..., AuditLog], **kwargs: Any) -> Any:
    with open_log(mode="read") as log:
        return log.verify(**kwargs)


@pytest.mark.parametrize("keyless", [True, False])
def test_verify_on_an_executor_reports_as_in_one_process(
    two_chain_log: Path, open_log: Callable[..., AuditLog], keyless: bool
) -> None:
    """Chains verified on an executor (threads here) give the one-process report."""
    alone = _verify(open_log, keyless=keyless, workers=1)
    seen: list[int] = []
    with ThreadPoolExecutor(2) as pool, open_log(mode="read") as log:
        shared = log.verify(keyless=keyless, executor=pool, progress=seen.append)
    assert shared == alone
    assert sum(seen) == sum(c.bytes for c in shared.chains.values()) + (
        shared.events.bytes if shared.events else 0
    )


def test_keyed_verify_in_worker_processes(
    two_chain_log: Path, open_log: Callable[..., AuditLog]
) -> None:
    """A spawned process pool verifies with the data keys it is sent (nothing else)."""
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        report = _verify(open_log, executor=pool)
    assert report == _verify(open_log, workers=1)


@pytest.mark.parametrize("keyless", [True, False])
def test_damage_raises_the_same_error_on_an_executor(
    two_chain_log: Path, open_log: Callable[..., AuditLog], keyless: bool
) -> None:
    """A flipped byte in a chain raises the same error, with the same location, whether the
    chains are verified in one process or on an executor."""
    chain = sorted(p.name for p in (two_chain_log / "chains").iterdir() if p.name != "_log")[-1]
    segment = segment_files(two_chain_log, chain)[0]
    flip_bit(segment, os.path.getsize(segment) // 2)
    errors = []
    for kwargs in ({"workers": 1}, {"executor": ThreadPoolExecutor(2)}):
        with pytest.raises(IntegrityError) as caught:
            _verify(open_log, keyless=keyless, **kwargs)
        errors.append((type(caught.value), str(caught.value), caught.value.location))
    assert errors[0] == errors[1]
