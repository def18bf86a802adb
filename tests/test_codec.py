"""The canonical encoding and per-record compression (layer 3)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlog.codec import (
    FrameCodec,
    decode_record,
    dictionary_id,
    encode_record,
    encode_records,
    train_dictionary,
)
from auditlog.errors import IntegrityError
from auditlog.testing import workload

RECORDS = list(workload(600, seed=11))


def _reference_encoding(record: object) -> bytes:
    # The definition in docs/format.md: pydantic's own serialization, None omitted.
    def default(value: object) -> object:
        return value.packed  # type: ignore[attr-defined]

    data = record.__pydantic_serializer__.to_python(record, exclude_none=True)  # type: ignore[attr-defined]
    packed: bytes = msgpack.packb(data, datetime=True, default=default)
    return packed


def test_fast_encoding_equals_the_specified_encoding() -> None:
    """The hot-path encoder gives exactly the bytes of the documented reference encoding."""
    for record in RECORDS:
        assert encode_record(record) == _reference_encoding(record)


@given(st.sampled_from(RECORDS))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_equal_records_encode_to_identical_bytes(record: object) -> None:
    """A record rebuilt from its fields encodes to the same bytes as the original."""
    rebuilt = type(record).model_validate(record.model_dump())  # type: ignore[attr-defined]
    assert rebuilt == record
    assert encode_record(rebuilt) == encode_record(record)  # type: ignore[arg-type]


@given(st.lists(st.sampled_from(RECORDS), max_size=40), st.booleans())
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_encoding_a_batch_equals_encoding_each_record(
    records: list[object], one_kind: bool
) -> None:
    """encode_records (one kind, or mixed) gives encode_record of each record, in order."""
    if one_kind and records:
        records = [r for r in records if type(r) is type(records[0])]
    expected = [encode_record(r) for r in records]  # type: ignore[arg-type]
    assert encode_records(records) == expected  # type: ignore[arg-type]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=50))
@settings(max_examples=100)
def test_compressing_a_block_equals_compressing_each_record(records: list[bytes]) -> None:
    """compress_many (one zstd call per block) gives compress of each record, byte for byte."""
    codec = FrameCodec(train_dictionary([encode_record(r) for r in RECORDS], 4096))
    assert codec.compress_many(records) == [codec.compress(r) for r in records]


def test_decode_inverts_encode() -> None:
    """Decoding a record's canonical bytes gives back an equal record."""
    for record in RECORDS:
        assert decode_record(encode_record(record)) == record


def test_decode_refuses_garbage_without_echoing_it() -> None:
    """Bytes that are not a record raise IntegrityError, not a library-internal exception."""
    with pytest.raises(IntegrityError):
        decode_record(b"\xc1")


@given(st.binary(max_size=2000))
def test_frame_codec_round_trips_any_bytes(data: bytes) -> None:
    """Compressing then decompressing gives back the input, whichever codec was chosen."""
    codec = FrameCodec()
    assert codec.decompress(codec.compress(data)) == data


def test_incompressible_records_are_stored_raw() -> None:
    """A frame that zstd cannot shrink is stored raw (codec byte 0), never larger than needed."""
    codec = FrameCodec()
    frame = codec.compress(bytes(range(40)))
    assert frame[:1] == b"\x00"
    assert len(frame) == 41


def test_dictionary_improves_compression_of_small_records() -> None:
    """A dictionary trained on a period's first records shrinks later records of the period."""
    canonical = [encode_record(r) for r in RECORDS]
    dictionary = train_dictionary(canonical[:400], 16 << 10)
    assert dictionary_id(dictionary) != 0
    with_dict = FrameCodec(dictionary)
    without = FrameCodec()
    tail = canonical[400:]
    assert sum(len(with_dict.compress(c)) for c in tail) < 0.8 * sum(
        len(without.compress(c)) for c in tail
    )
    for item in tail:
        assert with_dict.decompress(with_dict.compress(item)) == item


def test_unknown_codec_byte_is_an_integrity_error() -> None:
    """A frame naming a codec this version does not know is reported as damage."""
    with pytest.raises(IntegrityError):
        FrameCodec().decompress(b"\x07abc")
