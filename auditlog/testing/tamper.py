"""Damaging a log on purpose, to test that verification, opening or a sweep notices.

Each helper does what someone who can write the log's files — but holds no key — could do,
or reaches a key the way only the operator can, for tests that check key material is gone.
Never point them at a log that matters.
"""

from __future__ import annotations

import os
from pathlib import Path

from auditlog.log import AuditLog
from auditlog.segment.format import file_header
from auditlog.segment.scan import list_segments, segment_path
from auditlog.storage.layout import LogLayout

__all__ = [
    "flip_bit",
    "period_data_key",
    "segment_files",
    "signer_key",
    "start_empty_segment",
]


def segment_files(log_path: Path, chain: str) -> list[Path]:
    """The chain's segment files, oldest first."""
    return [path for _, path in list_segments(LogLayout(log_path).chain(chain).segments)]


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    """Flip one bit of a file in place (read-only files too: their mode is restored)."""
    mode = path.stat().st_mode
    os.chmod(path, 0o600)
    try:
        with path.open("r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)[0]
            handle.seek(offset)
            handle.write(bytes([byte ^ (1 << bit)]))
    finally:
        os.chmod(path, mode & 0o777)


def start_empty_segment(log_path: Path, chain: str) -> Path:
    """Leave what a crash can leave: a new segment file holding only its header.

    The chain's writer must not be open. The new segment starts where the newest one ends.
    """
    files = segment_files(log_path, chain)
    with AuditLog.open(log_path, mode="read") as log:
        end = log.stats().chains[chain].records
    sequence = len(files) and int(files[-1].stem) + 1
    path = segment_path(LogLayout(log_path).chain(chain).segments, sequence)
    path.write_bytes(file_header(sequence, end))
    os.chmod(path, 0o600)
    return path


def period_data_key(log: AuditLog, chain: str, period: int) -> bytes:
    """The data key of one period of a chain, unwrapped with the log handle's root key.

    For tests that check a key's bytes are gone from every file once it is shredded; raises
    ``KeyShreddedError`` for a shredded period, as every read of it does.
    """
    return log._keys.keyring(chain).get(period)._data_key


def signer_key(log: AuditLog) -> str:
    """The log's checkpoint signer key (C2SP note signer key), unwrapped with the handle's
    root key: for tests that check it never reaches a file in clear, and for tests of what a
    log does with well-signed notes it did not write itself (forks)."""
    return log._keys.signer()
