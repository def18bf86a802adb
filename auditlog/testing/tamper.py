"""Damaging a log on purpose, to test that verification, opening or a sweep notices.

Each helper does what someone who can write the log's files — but holds no key — could do,
or reaches a key the way only the operator can, for tests that check key material is gone.
Never point them at a log that matters.
"""

from __future__ import annotations

import os
from pathlib import Path

from auditlog import note
from auditlog._statefile import decode_state, write_state
from auditlog.crypto.keys import KeyringFile
from auditlog.crypto.signed import SignedState, StateSigner
from auditlog.log import AuditLog
from auditlog.log.head import HeadStore, LogHead
from auditlog.log.holds_file import HoldsFile
from auditlog.log.manifest import MANIFEST_PATH, Manifest
from auditlog.log.state import all_chains, snapshot
from auditlog.segment.format import file_header
from auditlog.segment.scan import list_segments, segment_path
from auditlog.storage.layout import LogLayout

__all__ = [
    "flip_bit",
    "period_data_key",
    "resign_with",
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


def resign_with(log_path: Path, signer_key: str) -> str:
    """Pass the log off as another key's: what someone who can write the directory can do.

    The manifest is made to name ``signer_key``'s verifier key, and every signature a verifier
    checks without the root key — the manifest, holds and keyrings, every checkpoint,
    tombstone and redaction note, and the head — is made again with ``signer_key``. Segments
    and wrapped keys are untouched. Returns the new verifier key. Only a verifier that pins the
    log's real key, or opens the log with its root key (which derives the real one), notices.
    """
    layout = LogLayout(log_path)
    verifier = note.verifier_from_signer(signer_key)
    manifest = decode_state(layout.manifest.read_bytes(), layout.manifest, Manifest)
    signer = StateSigner(manifest.origin, verifier, signer_key)
    forged = manifest.model_copy(update={"checkpoint_key": verifier})
    write_state(layout.manifest, signer.sign(forged, MANIFEST_PATH, generation=forged.generation))
    state_files: list[tuple[Path, type[SignedState]]] = [(layout.holds, HoldsFile)]
    for chain in all_chains(layout):
        files = layout.chain(chain)
        state_files.append((files.keyring, KeyringFile))
        for directory, suffix in (
            (files.checkpoints, ".note"),
            (files.tombstones, ".tomb"),
            (files.redactions, ".note"),
        ):
            for path in directory.glob(f"*{suffix}") if directory.is_dir() else ():
                signed = path.read_text("utf-8")
                path.write_text(note.sign(signed[: signed.index("\n\n") + 1], signer_key))
    for path, model in state_files:
        if path.exists():
            doc = decode_state(path.read_bytes(), path, model)
            place = layout.relative(path)
            write_state(path, signer.sign(doc, place, generation=doc.generation))
    signed_head = layout.head.read_text("utf-8")
    head = LogHead.parse(signed_head[: signed_head.index("\n\n") + 1])
    HeadStore(layout, verifier, signer_key).write(snapshot(layout, head))
    return verifier
