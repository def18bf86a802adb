"""The write path's C-level loops give exactly what their plain Python definitions give."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta, timezone

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

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
