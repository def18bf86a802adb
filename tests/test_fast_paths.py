"""The write path's C-level loops give exactly what their plain Python definitions give."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog import _fast
from auditlog._fast import chunks, concat_each, prefix_each, sha256_each
from auditlog.crypto.keys import PeriodKeys, derive_subkey
from auditlog.records import Activity
from auditlog.segment.writer import _micros_of, _utc_micros

_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
    ),
)


def _activity(moment: datetime) -> Activity:
    return Activity(
        occurred_at=moment, subject="acct-1", service="web", account="acct-1", action="login"
    )


@given(st.lists(_TIMES, max_size=30))
@settings(max_examples=200, deadline=None)
def test_record_times_in_micros_equal_the_field_by_field_definition(
    moments: list[datetime],
) -> None:
    """``_micros_of`` (timedelta arithmetic in C) equals the calendar arithmetic."""
    records = []
    for moment in moments:
        try:
            records.append(_activity(moment))
        except ValueError:  # out of range once converted to UTC
            continue
    assert _micros_of(records) == [_utc_micros(r.occurred_at) for r in records]


@given(st.binary(max_size=40 * 32).map(lambda b: b[: len(b) // 32 * 32]))
def test_chunks_cut_whole_hashes(joined: bytes) -> None:
    """``chunks`` gives the consecutive 32-byte slices, as a comprehension would."""
    expected = [joined[i : i + 32] for i in range(0, len(joined), 32)]
    assert list(chunks(joined, 32)) == expected
    assert [bytes(v) for v in chunks(memoryview(joined), 32)] == expected


@given(st.lists(st.binary(max_size=100), max_size=20), st.binary(max_size=5))
def test_hashing_helpers_equal_their_definitions(items: list[bytes], prefix: bytes) -> None:
    """sha256_each, prefix_each and concat_each are the obvious loops."""
    assert list(sha256_each(items)) == [hashlib.sha256(i).digest() for i in items]
    assert list(prefix_each(prefix, items)) == [prefix + i for i in items]
    assert list(concat_each(items, reversed(items))) == [
        a + b for a, b in zip(items, reversed(items), strict=True)
    ]


@given(st.integers(0, 2**40), st.integers(1, 300))
@settings(max_examples=50)
def test_leaf_salts_are_aes_of_each_index_as_16_bytes(first: int, count: int) -> None:
    """A block's leaf salts are AES-256-ECB of each index as a 16-byte big-endian block."""
    data_key = os.urandom(32)
    keys = PeriodKeys(3, data_key)
    encryptor = Cipher(
        algorithms.AES(derive_subkey(data_key, b"leaf-salt")), modes.ECB()
    ).encryptor()
    expected = encryptor.update(
        b"".join(i.to_bytes(16, "big") for i in range(first, first + count))
    )
    assert keys.leaf_salts(first, count) == expected


# --- The C loops (auditlog._speedups) against their pure-Python definitions ------------------


def test_the_c_loops_are_built_where_required() -> None:
    """`make test` sets AUDITLOG_REQUIRE_NATIVE where a C compiler and OpenSSL's headers exist:
    there the C extension must have been built and be in use, so that the comparisons below
    run against it (elsewhere they are skipped and the pure-Python loops run everywhere)."""
    if os.environ.get("AUDITLOG_REQUIRE_NATIVE"):
        assert _fast.NATIVE, "auditlog._speedups was not built: is a C compiler installed?"
        assert _fast.parents is not _fast.py_parents


def _native() -> ModuleType:
    module: ModuleType = pytest.importorskip("auditlog._speedups")
    return module


@given(
    st.binary(max_size=3000),
    st.integers(0, 50),
    st.lists(st.integers(0, 400), max_size=30),
)
@settings(max_examples=300)
def test_c_frame_digests_equal_python(data: bytes, start: int, lengths: list[int]) -> None:
    """Same digests, and the same refusal of a frame that leaves the data."""
    native = _native()
    for buffer in (data, memoryview(data)):
        try:
            expected = _fast.py_frame_digests(buffer, start, lengths)
        except ValueError:
            with pytest.raises(ValueError, match=r"past the end|outside"):
                native.frame_digests(buffer, start, lengths)
            continue
        assert native.frame_digests(buffer, start, lengths) == expected


def test_c_frame_digests_refuse_negative_lengths_and_starts() -> None:
    """Negative numbers never move the read outside the buffer."""
    native = _native()
    with pytest.raises(ValueError, match="past the end"):
        native.frame_digests(b"x" * 100, 50, [10, -20, 10])
    with pytest.raises(ValueError, match="outside"):
        native.frame_digests(b"x" * 100, -1, [1])
    with pytest.raises(ValueError, match="outside"):
        native.frame_digests(b"x" * 100, 101, [])
    with pytest.raises(TypeError):
        native.frame_digests(b"x" * 100, 0, ["1"])
    with pytest.raises(OverflowError):
        native.frame_digests(b"x" * 100, 0, [2**70])


@given(st.lists(st.binary(max_size=300), max_size=30))
@settings(max_examples=200)
def test_c_digests_equal_python(items: list[bytes]) -> None:
    """The joined digests of a list of frames."""
    assert _native().digests(items) == _fast.py_digests(items)


@given(st.integers(0, 40).flatmap(lambda n: st.binary(min_size=32 * n, max_size=32 * n)))
@settings(max_examples=200)
def test_c_parents_equal_python(nodes: bytes) -> None:
    """Tree parents of pairs of nodes; an odd number of nodes is refused by both."""
    native = _native()
    if len(nodes) % 64:
        for implementation in (native.parents, _fast.py_parents):
            with pytest.raises(ValueError, match="whole pairs"):
                implementation(nodes)
        return
    assert native.parents(nodes) == _fast.py_parents(nodes)
    assert native.parents(memoryview(nodes)) == _fast.py_parents(nodes)


@given(st.lists(st.binary(max_size=300), max_size=30), st.booleans())
@settings(max_examples=200)
def test_c_leaf_hashes_equal_python(records: list[bytes], short: bool) -> None:
    """Salted leaf hashes; salts of the wrong total length are refused by both."""
    native = _native()
    salts = os.urandom(16 * len(records) - (1 if short and records else 0))
    if short and records:
        for implementation in (native.leaf_hashes, _fast.py_leaf_hashes):
            with pytest.raises(ValueError, match="one 16-byte salt per record"):
                implementation(salts, records)
        return
    assert native.leaf_hashes(salts, records) == _fast.py_leaf_hashes(salts, records)


_WRITE_AND_VERIFY = """
import sys
from pathlib import Path
from auditlog import AuditLog, _fast
from auditlog.testing import workload
from auditlog.testing._helpers import TEST_PASSPHRASE, TEST_SCRYPT_N
path = Path(sys.argv[1])
if sys.argv[2] == "write":
    with AuditLog.create(path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N) as log:
        log.append_many(workload(3000, seed=5))
with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as log:
    log.verify()
    log.verify(keyless=True)
    assert sum(1 for chain in log.chains() for _ in log.read_indexed(chain)) >= 3000
print("native" if _fast.NATIVE else "python")
"""


def _run(path: Path, action: str, *, pure: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "AUDITLOG_PURE_PYTHON"}
    if pure:
        env["AUDITLOG_PURE_PYTHON"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_AND_VERIFY, str(path), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_logs_written_by_either_path_verify_under_the_other(tmp_path: Path) -> None:
    """A log written with the C loops verifies and reads with the pure-Python ones, and the
    other way round: both write the same format."""
    _native()
    assert _run(tmp_path / "c", "write", pure=False) == "native"
    assert _run(tmp_path / "c", "verify", pure=True) == "python"
    assert _run(tmp_path / "py", "write", pure=True) == "python"
    assert _run(tmp_path / "py", "verify", pure=False) == "native"
