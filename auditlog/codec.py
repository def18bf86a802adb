"""Layer 3: the canonical encoding of records and their per-record compression.

Canonical encoding (format v1, see docs/format.md): the record's fields as a msgpack map in
schema declaration order, fields whose value is None omitted, datetimes as the msgpack Timestamp
extension (type -1) in UTC, IP addresses as 4- or 16-byte bin, enumerations as their string
value, sequences as arrays, nested models as maps. Equal records give identical bytes; adding a
field with a default of None later leaves the bytes of old records unchanged, so their leaves
still verify.

Compression: each record is compressed on its own (never two records in one zstd context, so
the size of one user's record cannot reveal another's content), optionally with a zstd
dictionary trained on the first records of its (chain, period).
"""

from __future__ import annotations

import ipaddress
import typing
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgpack
import zstandard
from pydantic import BaseModel

from auditlog.errors import IntegrityError
from auditlog.records import Record, parse_stored_record

__all__ = [
    "CODEC_RAW",
    "CODEC_ZSTD",
    "FrameCodec",
    "decode_record",
    "encode_record",
    "encode_records",
    "train_dictionary",
]

CODEC_RAW: Final = 0
CODEC_ZSTD: Final = 1
ZSTD_LEVEL: Final = 1
# Records larger than this after decompression are refused: the biggest valid record (64 KiB of
# chat text plus its fields) is far smaller, so a larger claim is damage, not data.
MAX_RECORD_BYTES: Final = 1 << 20


def _flatten(annotation: object) -> list[object]:
    found = [annotation]
    for argument in typing.get_args(annotation):
        found.extend(_flatten(argument))
    return found


def _field_code(name: str, annotation: object, namespace: dict[str, Any]) -> list[str]:
    """Statements that copy one field into ``out`` in its canonical form."""
    flat = _flatten(annotation)
    models = [a for a in flat if isinstance(a, type) and issubclass(a, BaseModel)]
    if any(a in (ipaddress.IPv4Address, ipaddress.IPv6Address) for a in flat):
        value = "v.packed"
    elif models:
        nested = _encoder_name(models[0], namespace)
        many = any(typing.get_origin(a) is tuple for a in flat)
        value = f"[{nested}(x) for x in v]" if many else f"{nested}(v)"
    else:
        value = "v"
    if type(None) in flat:
        return [f"    v = d[{name!r}]", f"    if v is not None: out[{name!r}] = {value}"]
    return [f"    v = d[{name!r}]", f"    out[{name!r}] = {value}"]


def _encoder_name(model_type: type[BaseModel], namespace: dict[str, Any]) -> str:
    """Compile (once) the function giving a model's canonical map; return its name.

    The function is generated from the model's fields so that each record is encoded with
    straight-line code: a generic loop over the fields and msgpack's fallback hook for
    addresses and nested models cost a fifth of the write path. ``test_codec`` holds its
    output byte for byte to the documented reference encoding.
    """
    name = f"_fields_{model_type.__name__}"
    if name not in namespace:
        namespace[name] = None  # reserve: a model may nest itself
        lines = [f"def {name}(model):", "    d = model.__dict__", "    out = {}"]
        for field_name, info in model_type.model_fields.items():
            lines.extend(_field_code(field_name, info.annotation, namespace))
        lines.append("    return out")
        exec("\n".join(lines), namespace)  # noqa: S102 - code made from our own field names
    return name


_ENCODERS: dict[str, Any] = {}
_FIELDS_OF: dict[type[BaseModel], Callable[[BaseModel], dict[str, Any]]] = {}


def _encoder_for(kind: type[BaseModel]) -> Callable[[BaseModel], dict[str, Any]]:
    """The function giving a model's canonical map: fields in declaration order, None omitted,
    addresses packed (compiled on first use)."""
    function = _FIELDS_OF.get(kind)
    if function is None:
        function = _FIELDS_OF[kind] = _ENCODERS[_encoder_name(kind, _ENCODERS)]
    return function


def _default(value: object) -> object:
    raise TypeError(f"cannot encode a {type(value).__name__} in a record")


_PACKER = msgpack.Packer(datetime=True, default=_default)


def encode_record(record: Record) -> bytes:
    """The canonical bytes of ``record`` (what leaves hash and frames carry).

    Equal to packing ``record.__pydantic_serializer__.to_python(record, exclude_none=True)``
    with addresses as their packed bytes (a test holds the two together).
    """
    packed: bytes = _PACKER.pack(_encoder_for(type(record))(record))
    return packed


def encode_records(records: Sequence[Record]) -> list[bytes]:
    """``encode_record`` of each record; one generated encoder mapped in C when, as in a chain,
    all records are of one kind."""
    kinds = set(map(type, records))
    if len(kinds) == 1:
        (kind,) = kinds
        return list(map(_PACKER.pack, map(_encoder_for(kind), records)))
    return list(map(encode_record, records))


def decode_record(canonical: bytes) -> Record:
    """The record whose canonical bytes are ``canonical``."""
    try:
        data = msgpack.unpackb(canonical, timestamp=3)
    except (ValueError, msgpack.ExtraData) as exc:
        raise IntegrityError(
            f"a stored record is not valid msgpack ({type(exc).__name__})"
        ) from None
    if not isinstance(data, dict):
        raise IntegrityError("a stored record is not a msgpack map")
    # The messages name fields only, never values: stored records are user data.
    return parse_stored_record(data)


def train_dictionary(samples: Sequence[bytes], size: int) -> bytes:
    """A zstd dictionary of at most ``size`` bytes trained on canonical records."""
    # Fixed COVER parameters (k=512, d=6) instead of zstd's search over them: about 4x faster
    # to train (it happens once per chain and period, on the write path) for the same ratio
    # on our records, measured on the test workload.
    trained = zstandard.train_dictionary(size, list(samples), level=ZSTD_LEVEL, k=512, d=6)
    raw: bytes = trained.as_bytes()
    return raw


def dictionary_id(dictionary: bytes) -> int:
    """The 32-bit id zstd wrote into a trained dictionary's header (never 0)."""
    return int(zstandard.ZstdCompressionDict(dictionary).dict_id())


class FrameCodec:
    """Compresses canonical records one by one, with or without one dictionary.

    The first byte of a compressed frame names the codec: 0 raw, 1 zstd. zstd frames use the
    magic-less format without checksum or dictionary id (the block header names the dictionary
    and AES-GCM authenticates every byte), saving 8 bytes a record.
    """

    def __init__(self, dictionary: bytes | None = None) -> None:
        self.dictionary = dictionary
        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL,
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_checksum=0,
            write_content_size=1,
            write_dict_id=0,
        )
        zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self._compressor = zstandard.ZstdCompressor(dict_data=zdict, compression_params=params)
        self._decompressor = zstandard.ZstdDecompressor(
            dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS
        )

    def compress(self, canonical: bytes) -> bytes:
        """The frame plaintext of one record: a codec byte, then the (compressed) record."""
        packed: bytes = self._compressor.compress(canonical)
        if len(packed) < len(canonical):
            return b"\x01" + packed
        return b"\x00" + canonical

    def compress_many(self, records: list[bytes]) -> list[bytes]:
        """``compress`` of each record, the compression in one C call for the whole block.

        Every record is still its own zstd frame (the same bytes as ``compress``); only the
        loop over them runs in C, which saves a fifth of the compression cost per record.
        """
        if not records:
            return []
        multi = getattr(self._compressor, "multi_compress_to_buffer", None)
        # The cffi backend of python-zstandard lacks it, and it refuses empty inputs (which no
        # record encodes to).
        if multi is None or not all(records):
            return [self.compress(canonical) for canonical in records]
        packed = multi(records)
        out = []
        for i, canonical in enumerate(records):
            frame = packed[i].tobytes()
            out.append(b"\x01" + frame if len(frame) < len(canonical) else b"\x00" + canonical)
        return out

    def decompress(self, plaintext: bytes) -> bytes:
        """The canonical record inside a frame plaintext."""
        codec, body = plaintext[:1], plaintext[1:]
        if codec == b"\x00":
            return body
        if codec == b"\x01":
            try:
                out: bytes = self._decompressor.decompress(body, max_output_size=MAX_RECORD_BYTES)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"a record frame does not decompress ({exc})") from None
            return out
        raise IntegrityError(f"a record frame names unknown codec {plaintext[:1].hex() or 'none'}")


def unpack_fields(canonical: bytes) -> dict[str, Any]:
    """The raw msgpack map of a canonical record, for checks that need no schema validation."""
    data = msgpack.unpackb(canonical, timestamp=3)
    if not isinstance(data, dict):
        raise IntegrityError("a stored record is not a msgpack map")
    return data
