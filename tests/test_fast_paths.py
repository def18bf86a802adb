"""The write path's C-level loops give exactly what their plain Python definitions give."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import random
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog import _fast
from auditlog._fast import chunks, concat_each, prefix_each, sha256_each
from auditlog.clock import utc_micros as _utc_micros
from auditlog.crypto.keys import PeriodKeys, derive_subkey
from auditlog.records import Activity
from auditlog.segment.pending import micros_of as _micros_of

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
    """``micros_of`` (timedelta arithmetic in C) equals the calendar arithmetic."""
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


# --- The C loops against callers that change their arguments, or pass the wrong ones ---------


def _under_a_changing_list(
    call: Callable[[list[Any]], object],
    states: Sequence[Sequence[Any]],
    expected_of: Callable[[Sequence[Any]], object],
) -> None:
    """Calls ``call`` many times on a list whose items another thread keeps replacing (with fresh
    copies of one of ``states``) or clearing, before and during each call, and checks each result
    against ``expected_of`` a state the list can have been in; ValueError is accepted where
    ``expected_of`` raises it for such a state."""
    shared: list[Any] = list(states[0])
    outcomes: list[object] = []
    refused = False
    for state in [(), *states]:
        try:
            outcomes.append(expected_of(state))
        except ValueError:
            refused = True
    stop = threading.Event()
    changes = [0]

    def change() -> None:
        pick = random.Random(5)
        while not stop.is_set():
            state = pick.choice(states)
            # Fresh copies of the items: the ones the list held before are freed here.
            shared[:] = [bytearray(item) if isinstance(item, bytes) else item for item in state]
            if pick.random() < 0.2:
                shared.clear()
            changes[0] += 1

    seen: list[object] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    changer = threading.Thread(target=change)
    changer.start()
    try:
        for _ in range(600):
            before = changes[0]
            while changes[0] == before:  # the list changes between any two calls ...
                time.sleep(0)
            try:  # ... and may change during one
                result = call(shared)
            except ValueError:
                assert refused, "ValueError for a list that was never invalid"
                result = ValueError
            else:
                assert result in outcomes
            if result not in seen:
                seen.append(result)
    finally:
        stop.set()
        changer.join()
        sys.setswitchinterval(interval)
    assert len(seen) >= 2, "the list never changed between calls"


def test_c_loops_copy_a_list_that_another_thread_keeps_changing() -> None:
    """While another thread empties and refills the list it was given (the hashing runs without
    the GIL), each call works on the items the list held when the call took them: every result
    is the pure-Python result for one of the list's states, or a clean ValueError."""
    native = _native()
    rng = random.Random(11)
    data = rng.randbytes(40_000)
    lengths = [[rng.randrange(1, 120) for _ in range(n)] for n in (300, 150, 40)]
    frames = [[rng.randbytes(rng.randrange(200)) for _ in range(n)] for n in (200, 90, 7)]
    records = [[rng.randbytes(rng.randrange(200)) for _ in range(120)] for _ in range(3)]
    salts = rng.randbytes(16 * 120)
    _under_a_changing_list(
        lambda shared: native.frame_digests(data, 5, shared),
        [*lengths, [100, 50_000]],  # the last state runs past the end of the data
        lambda state: _fast.py_frame_digests(data, 5, state),
    )
    _under_a_changing_list(native.digests, frames, _fast.py_digests)
    _under_a_changing_list(
        lambda shared: native.leaf_hashes(salts, shared),
        [*records, records[0][:5]],  # the last state has too few records for the salts
        lambda state: _fast.py_leaf_hashes(salts, state),
    )


class _HostileList(list[Any]):
    """A list that misreports its length, refuses indexing, and empties itself (collecting
    garbage) while it is iterated, yielding fresh objects that nothing else holds."""

    def __init__(self, items: Iterable[Any], claimed_length: int) -> None:
        super().__init__(items)
        self.claimed_length = claimed_length
        self.seen: list[Any] = []

    def __len__(self) -> int:
        return self.claimed_length

    def __getitem__(self, index: Any) -> NoReturn:
        raise AssertionError("the C loops index the caller's list")

    def __iter__(self) -> Iterator[Any]:
        items = list(super().__iter__())
        self.seen = []
        for item in items:
            self.clear()
            gc.collect()
            fresh = bytearray(item) if isinstance(item, bytes) else int(str(item))
            self.seen.append(bytes(fresh) if isinstance(fresh, bytearray) else fresh)
            yield fresh


@pytest.mark.parametrize("claimed_length", [0, 2, 10_000, -1])
def test_c_loops_take_exactly_what_a_hostile_list_yields(claimed_length: int) -> None:
    """A list subclass that lies about its length and empties itself while it is iterated gets
    the pure-Python result for the items it yielded (or, for a negative length, may get a clean
    ValueError); the C loops never index it."""
    native = _native()
    data = os.urandom(1000)
    records = [os.urandom(n) for n in (0, 1, 55, 56, 64, 150)]
    salts = os.urandom(16 * len(records))
    cases: list[tuple[Callable[[Any], object], Callable[[list[Any]], object], list[Any]]] = [
        (
            lambda hostile: native.frame_digests(data, 3, hostile),
            lambda seen: _fast.py_frame_digests(data, 3, seen),
            [0, 1, 64, 300],
        ),
        (native.digests, _fast.py_digests, records),
        (
            lambda hostile: native.leaf_hashes(salts, hostile),
            lambda seen: _fast.py_leaf_hashes(salts, seen),
            records,
        ),
    ]
    for native_call, python_call, items in cases:
        hostile = _HostileList(items, claimed_length)
        if claimed_length < 0:  # refused by the length hint that PySequence_Tuple asks for
            with contextlib.suppress(ValueError):
                assert native_call(hostile) == python_call(hostile.seen)
            continue
        assert native_call(hostile) == python_call(hostile.seen)
        assert hostile.seen == items
        assert list.__len__(hostile) == 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python classes have __buffer__ from 3.12")
def test_c_loops_survive_an_item_that_empties_the_list_when_read() -> None:
    """An item whose ``__buffer__`` empties the list and collects garbage, in the middle of the C
    loop, frees nothing that the call still has to hash: it hashes what the list held."""
    native = _native()
    items: list[Any] = []

    class Emptying:
        def __buffer__(self, flags: int) -> memoryview:
            items.clear()
            gc.collect()
            return memoryview(b"first")

    for _ in range(50):
        items[:] = [Emptying(), *(bytearray(os.urandom(100)) for _ in range(40))]
        expected = [b"first", *map(bytes, items[1:])]
        assert native.digests(items) == _fast.py_digests(expected)
        items[:] = [Emptying(), *(bytearray(os.urandom(150)) for _ in range(40))]
        expected = [b"first", *map(bytes, items[1:])]
        salts = os.urandom(16 * len(expected))
        assert native.leaf_hashes(salts, items) == _fast.py_leaf_hashes(salts, expected)


def test_c_loops_refuse_non_sequences_and_wrong_items_with_type_error() -> None:
    """An argument that is not a sequence, or a sequence of the wrong kind of item, raises
    TypeError rather than being read."""
    native = _native()
    salts = bytes(32)
    refused: list[Callable[[], object]] = [
        lambda: native.digests(5),
        lambda: native.digests(None),
        lambda: native.frame_digests(b"x" * 10, 0, 5),
        lambda: native.frame_digests(b"x" * 10, 0, None),
        lambda: native.leaf_hashes(salts, 5),
        lambda: native.leaf_hashes(salts, object()),
    ]
    for call in refused:
        with pytest.raises(TypeError, match="must be a sequence of"):
            call()
    wrong_items: list[Callable[[], object]] = [
        lambda: native.digests([b"frame", "text"]),
        lambda: native.digests([b"frame", 5]),
        lambda: native.digests("text"),
        lambda: native.frame_digests(b"x" * 10, 0, [1, 2.0]),
        lambda: native.frame_digests(b"x" * 10, 0, [1, None]),
        lambda: native.frame_digests(b"x" * 10, 0, ["1"]),
        lambda: native.frame_digests("text", 0, [1]),
        lambda: native.leaf_hashes(salts, [b"record", "text"]),
        lambda: native.leaf_hashes(salts, [b"record", None]),
        lambda: native.leaf_hashes("text" * 8, [b"a", b"b"]),
        lambda: native.parents("text" * 16),
        lambda: native.parents(None),
        lambda: native.parents([bytes(64)]),
    ]
    for call in wrong_items:
        with pytest.raises(TypeError):
            call()


def test_c_loops_release_every_buffer_and_reference() -> None:
    """Calls that succeed and calls that fail part-way leave no buffer exported (each
    bytearray can be resized again) and no reference behind."""
    native = _native()
    item = bytearray(b"a frame")
    data = bytearray(os.urandom(100))
    salts = bytearray(32)
    nodes = bytearray(128)
    lengths = [10, 20]
    items = [item, item]
    calls: list[Callable[[], object]] = [
        lambda: native.digests(items),
        lambda: native.digests([item, 5]),
        lambda: native.digests((item, memoryview(item), "text")),
        lambda: native.frame_digests(data, 0, lengths),
        lambda: native.frame_digests(memoryview(data), 0, lengths),
        lambda: native.frame_digests(data, 0, [10, 200]),
        lambda: native.frame_digests(data, 0, [10, "1"]),
        lambda: native.frame_digests(data, 0, [10, 2**70]),
        lambda: native.frame_digests(data, 101, lengths),
        lambda: native.frame_digests(data, 0, None),
        lambda: native.leaf_hashes(salts, items),
        lambda: native.leaf_hashes(salts, [item, None]),
        lambda: native.leaf_hashes(salts, [item]),
        lambda: native.leaf_hashes(salts, None),
        lambda: native.parents(nodes),
        lambda: native.parents(memoryview(nodes)[:96]),
    ]
    watched = (item, data, salts, nodes, lengths, items)
    before = [sys.getrefcount(obj) for obj in watched]
    for call in calls:
        for _ in range(200):
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                call()
    assert [sys.getrefcount(obj) for obj in watched] == before
    for buffer in (item, data, salts, nodes):
        buffer.extend(b"more")  # BufferError if a buffer were still exported


_WITHOUT_SHA256 = """
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.ExtensionFileLoader("auditlog._speedups", sys.argv[1])
spec = importlib.util.spec_from_file_location("auditlog._speedups", sys.argv[1], loader=loader)
native = importlib.util.module_from_spec(spec)
loader.exec_module(native)
for call, args in [
    (native.frame_digests, (b"frame", 0, [5])),
    (native.digests, ([b"frame"],)),
    (native.parents, (bytes(64),)),
    (native.leaf_hashes, (bytes(16), [b"record"])),
]:
    try:
        call(*args)
    except RuntimeError as error:
        assert "SHA-256 failed" in str(error), error
    else:
        raise AssertionError(f"{call.__name__} hashed without SHA-256")
assert native.parents(b"") == native.digests([]) == b"" and native.leaf_hashes(b"", []) == []
print("refused")
"""


@pytest.mark.skipif(
    ssl.OPENSSL_VERSION_INFO < (3,),
    reason="providers, and so a configuration without SHA-256, came with OpenSSL 3",
)
def test_c_loops_raise_runtime_error_when_openssl_refuses_sha256(tmp_path: Path) -> None:
    """With an OpenSSL configuration that offers no SHA-256 (only the base provider), every C
    loop raises RuntimeError instead of crashing or returning a digest."""
    native = _native()
    config = tmp_path / "openssl.cnf"
    config.write_text(
        "openssl_conf = openssl_init\n"
        "[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\nbase = base_sect\n"
        "[base_sect]\nactivate = 1\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SHA256, str(native.__file__)],
        env={**os.environ, "OPENSSL_CONF": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "refused"


_WRITE_AND_VERIFY = """
import sys
from pathlib import Path
from auditlog import AuditLog, _fast
from auditlog.testing import workload
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N
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
