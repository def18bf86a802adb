"""The log's signed head: one signed note that binds every file of the log but its segments.

Segments bind themselves (the hash chain, the Merkle tree, checkpoints). Everything else that a
writer acts on or a verifier relies on is bound here, so that someone who can write the
directory but holds no key can neither change, add, remove nor put back any of it unnoticed —
by keyless verification too, given the log's public key::

    auditlog-head/v2
    origin <log origin>
    generation <n>
    events <size of the events chain> <its root, base64>
    chain <id> checkpoints <count> <newest size> sealed <sequence|-> <bytes> shredded <p,...|->
    file <path in the log> <generation|-> <SHA-256, hex>

One ``chain`` line per chain (the events chain ``_log`` included): how many signed checkpoints it
stores and the size of the newest (so none can be deleted), the newest sealed segment and the
bytes of the sealed segments up to it that are present (so none can be shortened or put back),
and its shredded periods. One ``file`` line per bound file: the manifest, the holds, the key
files, and per chain its keyring, dictionaries, tombstones, redaction notes and quarantined
bytes; signed state files also give their generation, so an older signed version put back is
caught. Lines are sorted. The head is rewritten (generation + 1, signed with the log's key,
replaced atomically) under the log lock whenever anything it binds changes, and the events
chain gains a record for every change of state, so a head put back from a backup is caught
too (``docs/format.md``, "Log head").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from auditlog import note
from auditlog._fs import atomic_replace
from auditlog.errors import IntegrityError, NoteError
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import ENTRY_SEAL
from auditlog.segment.scan import SEGMENT_SUFFIX, entry_heads
from auditlog.storage.layout import LogLayout

__all__ = ["HEAD_MAGIC", "BoundFile", "ChainHead", "HeadStore", "LogHead", "file_digest"]

HEAD_MAGIC: Final = "auditlog-head/v2"
_DIGEST: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BoundFile:
    """A file the head binds: its SHA-256 and, for a signed state file, its generation."""

    digest: str
    generation: int | None = None


@dataclass(frozen=True, slots=True)
class ChainHead:
    """What the head says of one chain's files."""

    checkpoints: int = 0
    newest_checkpoint: int = 0
    sealed_through: int = -1
    sealed_bytes: int = 0
    shredded: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LogHead:
    """The content of a head (its text without the signature)."""

    origin: str
    generation: int
    events_size: int = 0
    events_root: bytes = b""
    chains: Mapping[str, ChainHead] = field(default_factory=dict)
    files: Mapping[str, BoundFile] = field(default_factory=dict)

    def text(self) -> str:
        lines = [
            HEAD_MAGIC,
            f"origin {self.origin}",
            f"generation {self.generation}",
            f"events {self.events_size} {base64.b64encode(self.events_root).decode('ascii')}",
        ]
        for chain, head in sorted(self.chains.items()):
            sealed = "-" if head.sealed_through < 0 else str(head.sealed_through)
            shredded = ",".join(map(str, head.shredded)) or "-"
            lines.append(
                f"chain {chain} checkpoints {head.checkpoints} {head.newest_checkpoint} "
                f"sealed {sealed} {head.sealed_bytes} shredded {shredded}"
            )
        for path, bound in sorted(self.files.items()):
            generation = "-" if bound.generation is None else str(bound.generation)
            lines.append(f"file {path} {generation} {bound.digest}")
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> LogHead:
        """The head of ``text``; ``IntegrityError`` (without location) when malformed."""
        try:
            return _parse(text)
        except (ValueError, IndexError, binascii.Error):
            raise IntegrityError(
                "the log's head is malformed: it was changed or damaged; restore it from a backup"
            ) from None


def _parse(text: str) -> LogHead:
    lines = text.rstrip("\n").split("\n")
    if lines[0] != HEAD_MAGIC or not lines[1].startswith("origin "):
        raise ValueError("not a head")
    origin = lines[1].removeprefix("origin ")
    generation = _int(lines[2], "generation")
    kind, size, root = lines[3].split(" ")
    if kind != "events":
        raise ValueError("no events line")
    chains: dict[str, ChainHead] = {}
    files: dict[str, BoundFile] = {}
    for line in lines[4:]:
        parts = line.split(" ")
        if parts[0] == "chain" and len(parts) == 10:
            _, chain, c, count, newest, s, through, sealed, sh, shredded = parts
            if (c, s, sh) != ("checkpoints", "sealed", "shredded") or chain in chains:
                raise ValueError("bad chain line")
            chains[chain] = ChainHead(
                checkpoints=_nonnegative(count),
                newest_checkpoint=_nonnegative(newest),
                sealed_through=-1 if through == "-" else _nonnegative(through),
                sealed_bytes=_nonnegative(sealed),
                shredded=() if shredded == "-" else tuple(map(_nonnegative, shredded.split(","))),
            )
        elif parts[0] == "file" and len(parts) == 4 and parts[1] not in files:
            generation_text, digest = parts[2], parts[3]
            if not _DIGEST.fullmatch(digest):
                raise ValueError("bad digest")
            files[parts[1]] = BoundFile(
                digest, None if generation_text == "-" else _nonnegative(generation_text)
            )
        else:
            raise ValueError("unknown line")
    head = LogHead(
        origin=origin,
        generation=generation,
        events_size=_nonnegative(size),
        events_root=base64.b64decode(root, validate=True),
        chains=chains,
        files=files,
    )
    if head.text() != text:
        raise ValueError("not in canonical form")
    return head


def _int(line: str, key: str) -> int:
    name, _, value = line.partition(" ")
    if name != key:
        raise ValueError(f"no {key}")
    return _nonnegative(value)


def _nonnegative(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError("not a number")
    return int(value)


def file_digest(path: Path | str) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


_DIGESTS: dict[str, tuple[tuple[int, int, int, int], str]] = {}
_DIGESTS_LOCK = threading.Lock()


def known_digest(path: Path | str, status: os.stat_result | None = None) -> str:
    """``file_digest``, remembered for a file this process has seen unchanged (same inode,
    size, modification and change times): bound files are written once and never changed in
    place, and the head is rewritten often. Checks against the head never use this."""
    name = os.fspath(path)
    status = os.stat(name) if status is None else status
    key = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    with _DIGESTS_LOCK:
        cached = _DIGESTS.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = file_digest(name)
    with _DIGESTS_LOCK:
        if len(_DIGESTS) > 100_000:
            _DIGESTS.clear()
        _DIGESTS[name] = (key, digest)
    return digest


def _segments(directory: Path) -> list[tuple[int, os.DirEntry[str]]]:
    """The segment files of a chain, in sequence order (names as ``list_segments`` reads
    them; strings, not paths: the head is rewritten at every seal)."""
    try:
        with os.scandir(directory) as entries:
            found = [
                (int(entry.name[:10]), entry)
                for entry in entries
                if len(entry.name) == 10 + len(SEGMENT_SUFFIX)
                and entry.name.endswith(SEGMENT_SUFFIX)
                and entry.name[:10].isascii()
                and entry.name[:10].isdigit()
            ]
    except FileNotFoundError:
        return []
    found.sort(key=lambda item: item[0])
    return found


def chain_snapshot(files: ChainFiles, shredded: tuple[int, ...]) -> ChainHead:
    """What a chain's files say now, for its ``chain`` line (no key needed).

    A sweep deletes segments without the log lock (between its signed journal and its end,
    which rebinds the head), so a segment listed here may be gone by the time it is read: the
    snapshot is then taken again.
    """
    for _ in range(100):
        try:
            return _chain_snapshot(files, shredded)
        except FileNotFoundError:
            continue
    return _chain_snapshot(files, shredded)


def _chain_snapshot(files: ChainFiles, shredded: tuple[int, ...]) -> ChainHead:
    checkpoints = CheckpointStore(files.checkpoints).sizes()
    segments = _segments(files.segments)
    sealed = segments[:-1]
    if segments and _is_sealed(Path(segments[-1][1].path)):
        sealed = segments
    return ChainHead(
        checkpoints=len(checkpoints),
        newest_checkpoint=checkpoints[-1] if checkpoints else 0,
        sealed_through=sealed[-1][0] if sealed else -1,
        sealed_bytes=sum(entry.stat().st_size for _, entry in sealed),
        shredded=tuple(sorted(shredded)),
    )


def _is_sealed(path: Path) -> bool:
    heads = entry_heads(path)
    return bool(heads) and heads[-1].kind == ENTRY_SEAL


def bound_chain_files(
    layout: LogLayout, files: ChainFiles, *, fresh: bool = True
) -> dict[str, BoundFile]:
    """The files of one chain the head binds, other than its keyring (which is signed and
    carries a generation: the keyring's owner binds it), with their digests (``fresh``: read
    now; else as remembered, for binding)."""
    found: dict[str, BoundFile] = {}
    for directory, suffix in (
        (files.dicts, ".zdict"),
        (files.tombstones, ".tomb"),
        (files.redactions, ".note"),
        (files.quarantine, ".bin"),
    ):
        try:
            with os.scandir(directory) as scan:
                entries = [
                    e for e in scan if e.name.endswith(suffix) and not e.name.startswith(".")
                ]
        except FileNotFoundError:
            continue
        prefix = layout.relative(directory) + "/"
        for entry in entries:
            digest = file_digest(entry.path) if fresh else known_digest(entry.path, entry.stat())
            found[prefix + entry.name] = BoundFile(digest)
    # An unfinished sweep's journal: bound before any step of it is carried out, so that a
    # journal put back from an older copy excuses nothing.
    if files.sweep_journal.exists():
        found[layout.relative(files.sweep_journal)] = BoundFile(file_digest(files.sweep_journal))
    return found


class HeadStore:
    """The head of one log: read it (its signature checked), and change it under the log lock.

    ``verifier_key`` is the key the handle trusts; ``signer_key`` is needed to change it.
    """

    def __init__(self, layout: LogLayout, verifier_key: str, signer_key: str | None = None):
        self.layout = layout
        self.verifier_key = verifier_key
        self._signer_key = signer_key
        # The head this handle wrote last, and the file it was in: while the file is unchanged
        # (under the log lock only this handle writes it) an update need not read and check it.
        self._written: tuple[tuple[int, int, int, int], LogHead] | None = None

    def load(self) -> LogHead | None:
        """The head, its signature checked; None if the log has none (a log being created)."""
        try:
            signed = self.layout.head.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, OSError) as exc:
            raise IntegrityError(
                f"the log's head ({self.layout.head}) cannot be read: {exc}; restore it from a "
                "backup",
                location={"file": "head.note"},
            ) from None
        try:
            text = note.open_note(signed, [self.verifier_key])
        except NoteError as exc:
            raise IntegrityError(
                f"the log's head ({self.layout.head}) is not signed by this log's key ({exc}): it "
                "was changed or replaced; restore it from a backup",
                location={"file": "head.note"},
            ) from None
        if not note.signatures_canonical(signed):
            raise IntegrityError(
                f"the log's head ({self.layout.head}) has a signature not in canonical base64: "
                "it was changed; restore it from a backup",
                location={"file": "head.note"},
            )
        return LogHead.parse(text)

    def require(self, origin: str | None = None) -> LogHead:
        """The head; ``IntegrityError`` if it is missing, or not of ``origin`` (if given)."""
        head = self.load()
        if head is None:
            raise IntegrityError(
                f"the log's signed head ({self.layout.head}) is missing: it was deleted; restore "
                "it from a backup (without it, nothing binds the log's state files)",
                location={"file": "head.note"},
            )
        if origin is not None and head.origin != origin:
            raise IntegrityError(
                f"the log's head is of origin {head.origin!r}, its manifest says {origin!r}: "
                "one of them was replaced; restore it from a backup",
                location={"file": "head.note"},
            )
        return head

    def write(self, head: LogHead) -> LogHead:
        """Sign and store ``head`` (the caller holds the log lock)."""
        if self._signer_key is None:
            raise IntegrityError("this handle holds no signing key: it cannot sign the log's head")
        signed = note.sign(head.text(), self._signer_key).encode("utf-8")
        atomic_replace(self.layout.head, signed, scrub_old=False)  # no secret in an old head
        self._written = (_stat_key(self.layout.head), head)
        return head

    def current(self) -> LogHead:
        """The head as stored now (the caller holds the log lock): the one this handle wrote
        last while the file is unchanged, else read and checked."""
        written = self._written
        if (
            written is not None
            and self.layout.head.exists()
            and _stat_key(self.layout.head) == written[0]
        ):
            return written[1]
        return self.require()

    def update(self, change: Callable[[LogHead], LogHead]) -> LogHead:
        """Apply ``change`` to the current head and store the result as the next generation."""
        with self.layout.log_lock():
            current = self.current()
            changed = change(current)
            return self.write(replace(changed, generation=current.generation + 1))


def _stat_key(path: Path) -> tuple[int, int, int, int]:
    status = os.stat(path)
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
