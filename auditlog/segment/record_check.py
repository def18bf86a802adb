"""Keyed verification of one block's records, a stage at a time over the whole block.

``decrypt_block`` checks a record at a time (decrypt, decompress, leaf, then the caller's time
checks), paying Python's per-call costs four or five times a record. Verification needs no
record on its own, only the verdict on the block, so ``records_verify`` runs each stage over
every record of the block: the frames decrypted in one ``map``, the leaves hashed in one C call
(``_fast.leaf_hashes``) and compared in one comparison, the times checked by their extremes.
When any stage finds a problem it stops and says so (returns False), and the caller runs the
record-at-a-time check, which finds the first problem in record order and raises the error
it always raised: the fast path decides nothing on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

import msgpack

from auditlog._fast import leaf_hashes
from auditlog.codec import FrameCodec
from auditlog.crypto.keys import LEAF_SALT_BYTES, PeriodKeys
from auditlog.segment.blocks import ParsedBlock
from auditlog.segment.format import frame_nonces
from auditlog.segment.frames import origin_prefix

__all__ = ["records_verify"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# codec.unpack_fields without its Python frame: the map check is made below.
_UNPACK: Final = partial(msgpack.unpackb, timestamp=3)


def _micros(fields: object) -> int:
    """UTC microseconds of a canonical record's ``occurred_at``; ValueError if the record is
    not a map or the value not an aware datetime (msgpack's Timestamp gives one in UTC)."""
    if not isinstance(fields, dict):
        raise ValueError("not a map")
    value = fields.get("occurred_at")
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("not an aware datetime")
    return (value - _EPOCH) // _MICROSECOND


def records_verify(
    block: ParsedBlock, keys: PeriodKeys, codec: FrameCodec, origin: str, period_us: int
) -> bool:
    """Whether every record of ``block`` that is not redacted decrypts with its index and leaf,
    decompresses, hashes to its leaf and has an ``occurred_at`` within the block's time range
    and period (keyed verification, docs/format.md steps 13 to 16).

    False means "not shown here": the caller checks record by record and raises.
    """
    header = block.header
    count = header.count
    first = header.first_index
    leaves = bytes(block.leaves)
    positions = [p for p in range(count) if p not in block.redacted]
    if not positions:
        return True
    aead = keys.frame_aead(header.block_salt)
    prefix = origin_prefix(origin)
    nonces = frame_nonces(count)
    body = block.body
    starts, stops = block.frame_starts, block.frame_stops
    try:
        plaintexts = list(
            map(
                aead.decrypt,
                [nonces[p] for p in positions],
                [body[starts[p] : stops[p]] for p in positions],
                [
                    prefix + (first + p).to_bytes(8, "big") + leaves[32 * p : 32 * p + 32]
                    for p in positions
                ],
            )
        )
        canonicals = list(map(codec.decompress, plaintexts))
    except Exception:  # noqa: BLE001 - whatever it is, the record-at-a-time check names it
        return False
    salts = keys.leaf_salts(first, count)
    if len(positions) == count:
        wanted_salts, wanted_leaves = salts, leaves
    else:
        size = LEAF_SALT_BYTES
        wanted_salts = b"".join(salts[p * size : (p + 1) * size] for p in positions)
        wanted_leaves = b"".join(leaves[32 * p : 32 * p + 32] for p in positions)
    if b"".join(leaf_hashes(wanted_salts, canonicals)) != wanted_leaves:
        return False
    try:
        moments = list(map(_micros, map(_UNPACK, canonicals)))
    except Exception:  # noqa: BLE001 - as above
        return False
    earliest, latest = min(moments), max(moments)
    # Periods are contiguous ranges of time: the extremes in the period put every record in it.
    return (
        header.min_time <= earliest
        and latest <= header.max_time
        and earliest // period_us == header.period == latest // period_us
    )
