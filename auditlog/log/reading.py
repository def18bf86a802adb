"""Reading records back by index, and sizing the log from its files."""

from __future__ import annotations

from collections.abc import Iterator

from auditlog._statefile import read_state
from auditlog.codec import decode_record
from auditlog.crypto.keys import KeyringFile
from auditlog.errors import ConfigurationError, KeyShreddedError
from auditlog.log.chains import Chains
from auditlog.log.key_material import KeyMaterial
from auditlog.log.results import ChainStats, LogStats
from auditlog.records import Record

__all__ = ["log_stats", "read_records"]


def read_records(
    chains: Chains, keys: KeyMaterial, chain: str, start: int, end: int | None
) -> Iterator[tuple[int, Record]]:
    """Decrypt the records of ``chain`` with indexes in [start, end), with their indexes.

    A range that reaches into records a sweep deleted raises ``KeyShreddedError`` before
    anything is decrypted.
    """
    if start < 0 or (end is not None and end < start):
        raise ConfigurationError("read needs 0 <= start <= end")
    reader = chains.reader(chain)
    keyring = keys.keyring(chain)
    limit = end if end is not None else 1 << 64
    for tombstone in chains.tombstones(chain).values():
        if tombstone.first_index < limit and start < tombstone.end_index:
            raise KeyShreddedError(
                f"records {tombstone.first_index} to {tombstone.end_index - 1} of chain "
                f"{chain!r} (periods {', '.join(map(str, tombstone.periods))}) were deleted "
                "by a retention sweep; a signed tombstone stands for them"
            )
    for index, canonical in reader.read(keyring, start, end):
        yield index, decode_record(canonical)


def log_stats(chains: Chains) -> LogStats:
    """Record, segment and byte counts per chain (keyless; reads the last segment only)."""
    found = {}
    for chain in chains.names():
        reader = chains.reader(chain)
        files = reader.segment_files()
        records = max((t.end_index for t in chains.tombstones(chain).values()), default=0)
        sealed = max(len(files) - 1, 0)
        if files:
            end, newest_sealed = reader.end(files)
            records = max(records, end)
            sealed += newest_sealed
        found[chain] = ChainStats(
            chain=chain,
            records=records,
            segments=len(files),
            sealed_segments=sealed,
            bytes=sum(p.stat().st_size for _, p in files),
            periods=len(_periods_on_disk(chains, chain)),
        )
    return LogStats(origin=chains.origin, chains=found)


def _periods_on_disk(chains: Chains, chain: str) -> list[int]:
    # The keyring lists periods without unwrapping anything; it is readable without keys.
    path = chains.layout.chain(chain).keyring
    if not path.exists():
        return []
    return list(read_state(path, KeyringFile).keys)
