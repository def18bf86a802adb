"""What the log's methods return: receipts, reports and statistics (all exported by
``auditlog``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from auditlog.segment.pending import Durability, LeafSlot
from auditlog.segment.reader import ChainReport

__all__ = [
    "AppendResult",
    "ChainKeys",
    "ChainStats",
    "KeyStatus",
    "LogStats",
    "Receipt",
    "RepairReport",
    "VerifyReport",
]


class Receipt:
    """Proof of an append: where the record went, its leaf, and whether it is on disk yet."""

    __slots__ = ("_durability", "_leaf", "chain", "index")

    def __init__(
        self, chain: str, index: int, leaf: bytes | LeafSlot, durability: Durability
    ) -> None:
        self.chain = chain
        self.index = index
        self._leaf = leaf
        self._durability = durability

    @property
    def leaf(self) -> bytes:
        """The record's leaf hash (computed with its batch, when first asked for if need be)."""
        leaf = self._leaf
        if isinstance(leaf, LeafSlot):
            leaf = self._leaf = leaf.leaf(self.index)
        return leaf

    @property
    def durable(self) -> bool:
        """True once the block holding the record was written and synced."""
        return self._durability.size > self.index

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until the record is durable; False on timeout.

        With background group commit, waits for the flush that takes the record. Without, the
        caller flushes the chain itself, taking the records other threads appended meanwhile
        along (they find theirs durable when it is done). Raises ``AuditLogError`` if the chain
        failed, as the record will then never be durable.
        """
        return self._durability.wait(self.index, timeout)

    def __repr__(self) -> str:
        return f"Receipt(chain={self.chain!r}, index={self.index}, durable={self.durable})"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What ``append_many`` wrote: per chain, the index ranges its records received."""

    count: int
    ranges: dict[str, list[range]]
    durable: bool


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of a successful ``verify``: every chain's size, root and shape."""

    keyless: bool
    chains: dict[str, ChainReport]
    events: ChainReport | None = None
    """The log's own events chain (``_log``)."""
    head_generation: int = 0
    """The generation of the signed head the log was held against."""

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chains.values())

    @property
    def bytes(self) -> int:
        """Bytes of segments verified: every chain's and the events chain's."""
        events = self.events.bytes if self.events is not None else 0
        return sum(c.bytes for c in self.chains.values()) + events

    @property
    def blocks(self) -> int:
        return sum(c.blocks for c in self.chains.values())

    @property
    def segments(self) -> int:
        return sum(c.segments for c in self.chains.values())


@dataclass(frozen=True, slots=True)
class ChainStats:
    """Sizes of one chain, from its files, without keys."""

    chain: str
    records: int
    segments: int
    sealed_segments: int
    bytes: int
    periods: int


@dataclass(frozen=True, slots=True)
class LogStats:
    """Sizes of the log, per chain; computed from segment files without keys."""

    origin: str
    chains: dict[str, ChainStats]

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chains.values())

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chains.values())


class ChainKeys(NamedTuple):
    """The periods of one chain whose data key exists, and those whose key was shredded."""

    live: tuple[int, ...]
    shredded: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The state of a log's keys (no key material)."""

    root_key_id: str
    provider: str
    rotation_pending: bool
    chains: dict[str, ChainKeys]


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``repair`` cut from a chain's open tail, and where the cut bytes were kept."""

    chain: str
    segment: int
    offset: int
    bytes_cut: int
    first_lost_index: int
    quarantine: Path
