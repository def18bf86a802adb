"""A transparency-log witness: cosign checkpoints only while a log's history stays consistent.

A witness is an independent party that remembers, for every log it follows (one log per origin
line), the latest checkpoint it verified. It cosigns a new checkpoint (c2sp.org/tlog-cosignature,
Ed25519, type 0x04) only if the log signed it and a Merkle consistency proof shows that it extends
the one remembered, as c2sp.org/tlog-witness specifies for its ``add-checkpoint`` call. A log that
shows one history to a witness and another to someone else, or that shrinks, can then not gather
cosignatures for both: clients that require cosignatures from enough witnesses
(:func:`verify_witnessed`) see a single history.

A witness directory holds:

- ``root.key``: a random root key wrapped by a passphrase (scrypt), as for a log
  (:class:`~auditlog.crypto.PassphraseKeyProvider`);
- ``witness.key``: the witness's Ed25519 signer key, wrapped by that root key; it is never
  written in clear;
- ``state.json``: the followed logs, their verifier keys and latest cosigned checkpoints,
  replaced atomically;
- ``evidence/``: pairs of checkpoints that contradict each other, kept for whoever investigates;
- ``lock``: held while a request is checked and the state updated, so that two concurrent
  requests cannot roll the state back.

``docs/witness.md`` describes the guarantees, the files and the wire format.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from auditlog import merkle, note
from auditlog._fs import (
    DIR_MODE,
    atomic_replace,
    create_exclusive,
    exclusive_lock,
    make_private_dir,
)
from auditlog.crypto.providers import DEFAULT_SCRYPT_N, PassphraseKeyProvider
from auditlog.errors import (
    AuditLogError,
    ConfigurationError,
    ForkError,
    IntegrityError,
    KeyMaterialError,
    NoteError,
    OldSizeMismatchError,
    ProofError,
    RollbackError,
)

__all__ = [
    "EVIDENCE_FORMAT",
    "KEY_FORMAT",
    "MAX_PROOF_LINES",
    "STATE_FORMAT",
    "STATE_VERSION",
    "OldSizeMismatchError",
    "Witness",
    "format_add_checkpoint_request",
    "parse_add_checkpoint_request",
    "parse_proof_lines",
    "verify_witnessed",
]

STATE_FORMAT: Final = "auditlog-witness-state"
STATE_VERSION: Final = 1
KEY_FORMAT: Final = "auditlog-witness-key"
_KEY_VERSION: Final = 1
EVIDENCE_FORMAT: Final = "auditlog-witness-evidence"
_EVIDENCE_VERSION: Final = 1

MAX_PROOF_LINES: Final = 63
"""Most consistency proof lines an ``add-checkpoint`` request may carry (c2sp.org/tlog-witness)."""

_ROOT_KEY_FILE: Final = "root.key"
_SIGNER_KEY_FILE: Final = "witness.key"
_STATE_FILE: Final = "state.json"
_LOCK_FILE: Final = "lock"
_EVIDENCE_DIR: Final = "evidence"
# The wrapped signer key is bound to its verifier key, so that swapping the public key recorded
# in witness.key for another one makes the file fail to unwrap instead of lying.
_WRAP_CONTEXT: Final = b"auditlog/v1 witness signer key\0"
_OLD_SIZE_LINE: Final = re.compile("old (0|[1-9][0-9]{0,19})")
_MAX_TREE_SIZE: Final = 2**64 - 1
_MAX_QUOTED: Final = 200  # longest origin quoted in an error message


@dataclass(frozen=True)
class _Cosigned:
    """The latest checkpoint cosigned for a log: the signed note as received, and its body."""

    signed: str
    checkpoint: note.Checkpoint


@dataclass(frozen=True)
class _FollowedLog:
    """A log the witness follows: its key and the latest checkpoint cosigned for it, if any."""

    verifier_key: str
    latest: _Cosigned | None = None


class Witness:
    """A witness directory, unlocked: its signer key is in memory, its state on disk.

    Create one with :meth:`init` and open it again with :meth:`open`. Each call that reads or
    changes the state takes the directory's lock and reads the state file afresh, so several
    processes may serve one witness directory.
    """

    def __init__(self, directory: Path, signer_key: str, verifier_key: str) -> None:
        """Use :meth:`init` or :meth:`open`; this constructor does not check the directory."""
        self._directory = directory
        self._signer_key = signer_key
        self._verifier_key = verifier_key

    def __repr__(self) -> str:
        return f"Witness({str(self._directory)!r}, verifier_key={self._verifier_key!r})"

    @classmethod
    def init(
        cls,
        directory: Path,
        name: str,
        passphrase: str | None = None,
        *,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> Witness:
        """Create a witness named ``name`` in a new (or empty) ``directory``.

        The witness key is generated here and stored only wrapped under a passphrase-protected
        root key (``passphrase``, else ``AUDITLOG_PASSPHRASE``). The witness follows no log yet:
        see :meth:`add_log`. ``scrypt_n`` lowers the passphrase-stretching cost: for tests only.
        """
        directory = Path(directory)
        signer_key, verifier_key = note.generate_witness_key(name)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise ConfigurationError(
                f"{directory} exists and is not an empty directory: a witness needs a directory "
                "of its own (a half-created one can be removed and created again)"
            )
        make_private_dir(directory)
        os.chmod(directory, DIR_MODE)  # an empty directory made by someone else may be wider
        provider = PassphraseKeyProvider.create(
            directory / _ROOT_KEY_FILE, passphrase, scrypt_n=scrypt_n
        )
        wrapped = provider.wrap(signer_key.encode("utf-8"), _wrap_context(verifier_key))
        key_doc = {
            "format": KEY_FORMAT,
            "version": _KEY_VERSION,
            "root_key_id": provider.key_id,
            "verifier_key": verifier_key,
            "wrapped_signer_key": base64.b64encode(wrapped).decode("ascii"),
        }
        create_exclusive(directory / _SIGNER_KEY_FILE, _dump_json(key_doc))
        # The state comes last: its presence marks a complete witness directory.
        create_exclusive(directory / _STATE_FILE, _dump_state(verifier_key, {}))
        return cls(directory, signer_key, verifier_key)

    @classmethod
    def open(cls, directory: Path, passphrase: str | None = None) -> Witness:
        """Unlock the witness in ``directory`` with its passphrase (or ``AUDITLOG_PASSPHRASE``)."""
        directory = Path(directory)
        if not (directory / _STATE_FILE).is_file():
            raise ConfigurationError(
                f"{directory} is not a witness directory (no {_STATE_FILE}): create one with "
                "`auditlog witness init`"
            )
        key_path = directory / _SIGNER_KEY_FILE
        key_doc = _load_key_doc(key_path)
        provider = PassphraseKeyProvider.open(directory / _ROOT_KEY_FILE, passphrase)
        if provider.key_id != key_doc.root_key_id:
            raise KeyMaterialError(
                f"{key_path} was wrapped by root key {key_doc.root_key_id!r}, but "
                f"{_ROOT_KEY_FILE} holds {provider.key_id!r}: restore both files from one backup"
            )
        unwrapped = provider.unwrap(key_doc.wrapped, _wrap_context(key_doc.verifier_key))
        signer_key = unwrapped.decode("utf-8")
        if note.verifier_from_signer(signer_key) != key_doc.verifier_key:
            raise KeyMaterialError(f"{key_path} holds a signer key that does not match its name")
        witness = cls(directory, signer_key, key_doc.verifier_key)
        witness._read_state()  # a damaged state file or one of another witness fails here
        return witness

    @property
    def directory(self) -> Path:
        """The witness directory."""
        return self._directory

    @property
    def verifier_key(self) -> str:
        """The witness's public key string (type 0x04), for clients' witness policies."""
        return self._verifier_key

    @property
    def name(self) -> str:
        """The witness's key name, which begins each of its cosignature lines."""
        return note.parse_verifier_key(self._verifier_key).name

    def add_log(self, origin: str, verifier_key: str) -> None:
        """Follow the log whose checkpoints carry ``origin`` and are signed by ``verifier_key``.

        Adding a log again with the same key does nothing. A log's key cannot be replaced
        here: a new key for a known origin would let whoever holds it start a new history.
        """
        _require_origin(origin)
        key = note.parse_verifier_key(verifier_key)
        if key.algorithm != note.ALGORITHM_ED25519:
            raise NoteError("a log's verifier key must be an Ed25519 note key (type 0x01)")
        with self._locked():
            logs = self._read_state()
            known = logs.get(origin)
            if known is not None:
                if known.verifier_key == verifier_key:
                    return
                raise ConfigurationError(
                    f"this witness already follows {_quote(origin)} with another key; "
                    "replacing a log's key is not supported: use a new origin"
                )
            logs[origin] = _FollowedLog(verifier_key)
            self._write_state(logs)

    def followed_logs(self) -> dict[str, str]:
        """Return the origin and verifier key of every log the witness follows."""
        return {origin: log.verifier_key for origin, log in self._read_state().items()}

    def latest_checkpoint(self, origin: str) -> note.Checkpoint | None:
        """Return the latest checkpoint cosigned for ``origin``, or None if there is none yet."""
        log = self._read_state().get(origin)
        if log is None:
            raise ConfigurationError(f"this witness does not follow {_quote(origin)}")
        return None if log.latest is None else log.latest.checkpoint

    def add_checkpoint(
        self,
        note_text: str,
        *,
        old_size: int,
        proof: Sequence[bytes],
        timestamp: int | None = None,
    ) -> str:
        """Check a signed checkpoint against what the witness knows, remember it, cosign it.

        ``note_text`` is the signed checkpoint; ``old_size`` is the size of the checkpoint the
        witness last cosigned for its origin (0 if none) and ``proof`` the consistency proof
        from that size. The first checkpoint of a log is trusted on first use: it needs
        ``old_size=0`` and an empty proof. Returns the cosignature line (newline included),
        timestamped ``timestamp`` (POSIX seconds, default now), once the new state is durable.

        Raises ``ConfigurationError`` for an origin the witness does not follow, ``NoteError``
        if the log's signature does not verify, ``RollbackError`` for a checkpoint smaller than
        the known one, ``ForkError`` for a checkpoint that contradicts the known one (same size,
        another root) or is not proven to extend it (the consistency proof fails), with both
        checkpoints kept under ``evidence/``, ``OldSizeMismatchError`` when ``old_size`` is not
        the known size, and ``ProofError`` for a proof where none may be.
        """
        if not isinstance(note_text, str):
            raise NoteError("a signed checkpoint must be text")
        origin = note_text.split("\n", 1)[0]
        old_size = _require_size(old_size, "old size")
        proof = _require_proof_hashes(proof)
        now = int(time.time()) if timestamp is None else timestamp
        with self._locked():
            logs = self._read_state()
            log = logs.get(origin)
            if log is None:
                raise ConfigurationError(
                    f"this witness does not follow {_quote(origin)}: add the log first "
                    "(`auditlog witness add-log`)"
                )
            offered = note.Checkpoint.from_text(note.open(note_text, [log.verifier_key]))
            self._check_against_known(log, offered, note_text, old_size, proof, now)
            # Cosign before writing, so a bad timestamp cannot leave a state with no answer;
            # the line is returned only once the state is durable, as the protocol requires.
            cosignature = note.cosign(offered.to_text(), self._signer_key, now)
            if log.latest is None or log.latest.checkpoint != offered:
                logs[origin] = _FollowedLog(log.verifier_key, _Cosigned(note_text, offered))
                self._write_state(logs)
        return cosignature

    def _check_against_known(
        self,
        log: _FollowedLog,
        offered: note.Checkpoint,
        offered_note: str,
        old_size: int,
        proof: list[bytes],
        now: int,
    ) -> None:
        """Raise unless ``offered`` may replace the known checkpoint of its log."""
        latest = log.latest
        origin = offered.origin
        if latest is None:
            _check_first_checkpoint(origin, old_size, proof, offered.size)
            return
        known = latest.checkpoint
        where: dict[str, object] = {"origin": origin, "known_size": known.size}
        if offered.size < known.size:
            raise RollbackError(
                f"checkpoint of size {offered.size} is smaller than the checkpoint of size "
                f"{known.size} this witness already cosigned for {_quote(origin)}: refusing a "
                "rollback",
                location={**where, "size": offered.size},
            )
        # Extension lines may differ between two views of one tree: witnesses vouch only for
        # the origin, size and root (c2sp.org/tlog-cosignature).
        if offered.size == known.size and offered.root_hash != known.root_hash:
            evidence = self._save_evidence(
                "same-size-fork", latest.signed, offered_note, old_size, proof, now
            )
            raise ForkError(
                f"two different checkpoints of size {offered.size} for {_quote(origin)}: the "
                "log signed two histories; both are kept as evidence",
                location={**where, "size": offered.size, "evidence": evidence},
            )
        _require_old_size(origin, old_size, known.size)
        if known.size == 0 or known.size == offered.size:
            # Nothing to prove: the empty tree is a prefix of every tree, and a checkpoint
            # already known may be asked for again (e.g. for a fresher cosignature).
            _require_empty_proof(proof, known.size, offered.size)
            return
        try:
            merkle.verify_consistency(
                known.size, offered.size, proof, known.root_hash, offered.root_hash
            )
        except ProofError as exc:
            evidence = self._save_evidence(
                "inconsistent", latest.signed, offered_note, old_size, proof, now
            )
            raise ForkError(
                f"the checkpoint of size {offered.size} is not proven to extend the checkpoint "
                f"of size {known.size} this witness cosigned for {_quote(origin)} ({exc}): "
                "either the proof is wrong or the log forked; both checkpoints are kept",
                location={**where, "size": offered.size, "evidence": evidence},
            ) from exc

    def _save_evidence(
        self,
        reason: str,
        known_note: str,
        offered_note: str,
        old_size: int,
        proof: list[bytes],
        now: int,
    ) -> str:
        """Keep two contradicting signed checkpoints; return the file's path.

        The file is named after the two checkpoint bodies, so one contradiction is kept once
        however often it is submitted, and the number of files is bounded by what the log
        signed, not by what a requester sends.
        """
        bodies = _note_body(known_note) + "\0" + _note_body(offered_note)
        digest = hashlib.sha256(bodies.encode("utf-8")).hexdigest()[:32]
        directory = self._directory / _EVIDENCE_DIR
        make_private_dir(directory)
        path = directory / f"{reason}-{digest}.json"
        doc = {
            "format": EVIDENCE_FORMAT,
            "version": _EVIDENCE_VERSION,
            "reason": reason,
            "detected_at": now,
            "known_checkpoint": known_note,
            "offered_checkpoint": offered_note,
            "old_size": old_size,
            "proof": [_b64(h) for h in proof],
        }
        # If the file exists, the same contradiction was kept before; the first copy stays.
        with contextlib.suppress(FileExistsError):
            create_exclusive(path, _dump_json(doc))
        return str(path)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the directory's lock: checking a request and storing its result is one step."""
        return exclusive_lock(self._directory / _LOCK_FILE)

    def _read_state(self) -> dict[str, _FollowedLog]:
        path = self._directory / _STATE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(f"{path} is missing: not a witness directory") from None
        return _parse_state(raw, path, self._verifier_key)

    def _write_state(self, logs: dict[str, _FollowedLog]) -> None:
        atomic_replace(self._directory / _STATE_FILE, _dump_state(self._verifier_key, logs))


def verify_witnessed(
    note_text: str, log_verifier_key: str, witness_keys: Sequence[str], threshold: int
) -> note.Checkpoint:
    """Check that a checkpoint is signed by its log and cosigned by ``threshold`` witnesses.

    ``witness_keys`` are the witness verifier keys (type 0x04) the caller trusts. Keys that
    share an Ed25519 public key count once, whatever their names: a v1 cosignature does not sign
    the witness's name, so one witness could otherwise relabel its cosignature and count twice.
    Every signature by one of the given keys must verify. Returns the parsed checkpoint; raises
    ``NoteError`` otherwise, and for a policy that can never hold (no keys, a threshold below 1
    or above the number of distinct keys).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise NoteError("the witness threshold must be an int")
    if isinstance(witness_keys, str):
        raise NoteError("witness_keys must be a collection of key strings, not one string")
    log_key = note.parse_verifier_key(log_verifier_key)
    if log_key.algorithm != note.ALGORITHM_ED25519:
        raise NoteError("the log's verifier key must be an Ed25519 note key (type 0x01)")
    by_public_key: dict[bytes, list[str]] = {}
    for text in witness_keys:
        key = note.parse_verifier_key(text)
        if key.algorithm != note.ALGORITHM_COSIGNATURE_V1:
            raise NoteError(f"witness key {key.name} is not a cosignature key (type 0x04)")
        by_public_key.setdefault(key.public_key, []).append(text)
    if threshold < 1 or threshold > len(by_public_key):
        raise NoteError(
            f"a policy of {threshold} of {len(by_public_key)} distinct witness keys can never "
            "be met safely: the threshold must be between 1 and the number of keys"
        )
    # First verify every signature from every given key at once: a forged or malformed line
    # fails here, so the per-witness checks below can read any failure as "not cosigned".
    note.open_with_signatures(note_text, [log_verifier_key, *witness_keys])
    text = note.open(note_text, [log_verifier_key])
    checkpoint = note.Checkpoint.from_text(text)
    cosigned = sum(1 for keys in by_public_key.values() if _has_signature(note_text, keys))
    if cosigned < threshold:
        raise NoteError(
            f"checkpoint of size {checkpoint.size} for {_quote(checkpoint.origin)} has valid "
            f"cosignatures from {cosigned} of the trusted witnesses, fewer than the {threshold} "
            "required"
        )
    return checkpoint


def parse_add_checkpoint_request(body: bytes) -> tuple[int, list[bytes], str]:
    """Parse a c2sp.org/tlog-witness ``add-checkpoint`` request body.

    The body is an ``old <size>`` line, up to 63 lines each the base64 of one 32-byte hash, an
    empty line, then the signed checkpoint. Returns ``(old_size, proof, signed_checkpoint)``;
    the checkpoint's signatures are not checked here (:meth:`Witness.add_checkpoint` does).
    Every line ends in a newline; anything else, such as CRLF line ends, is refused with
    ``ProofError`` for a bad proof line and ``NoteError`` for the rest.
    """
    if not isinstance(body, bytes):
        raise NoteError("an add-checkpoint request body must be bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed add-checkpoint request: not valid UTF-8") from None
    head, separator, signed = text.partition("\n\n")
    if not separator:
        raise NoteError(
            "malformed add-checkpoint request: no empty line between the proof and the checkpoint"
        )
    old_line, *proof_lines = head.split("\n")
    match = _OLD_SIZE_LINE.fullmatch(old_line)
    if match is None or int(match.group(1)) > _MAX_TREE_SIZE:
        raise NoteError(
            "malformed add-checkpoint request: the first line must be 'old <size>' in decimal "
            "without leading zeros"
        )
    proof = parse_proof_lines(proof_lines, first_line=2)
    _require_signed_checkpoint(signed)
    return int(match.group(1)), proof, signed


def parse_proof_lines(lines: Sequence[str], *, first_line: int = 1) -> list[bytes]:
    """Parse consistency proof lines, each the canonical base64 of one 32-byte hash.

    At most :data:`MAX_PROOF_LINES` lines (no line ends are expected in ``lines``). Raises
    ``ProofError`` naming the first bad line, counted from ``first_line``.
    """
    if isinstance(lines, str) or not isinstance(lines, Sequence):
        raise ProofError("proof lines must be a sequence of strings")
    if len(lines) > MAX_PROOF_LINES:
        raise ProofError(f"a proof may have at most {MAX_PROOF_LINES} lines, not {len(lines)}")
    return [_parse_proof_line(line, number) for number, line in enumerate(lines, first_line)]


def format_add_checkpoint_request(old_size: int, proof: Sequence[bytes], note_text: str) -> bytes:
    """Build a c2sp.org/tlog-witness ``add-checkpoint`` request body; see the parser."""
    old_size = _require_size(old_size, "old size")
    hashes = _require_proof_hashes(proof)
    if len(hashes) > MAX_PROOF_LINES:
        raise ProofError(f"a proof may have at most {MAX_PROOF_LINES} lines, not {len(hashes)}")
    _require_signed_checkpoint(note_text)
    lines = [f"old {old_size}", *(_b64(h) for h in hashes)]
    return ("".join(line + "\n" for line in lines) + "\n" + note_text).encode("utf-8")


def _check_first_checkpoint(origin: str, old_size: int, proof: list[bytes], size: int) -> None:
    """Accept a log's first checkpoint on trust: nothing known, so nothing to be consistent with."""
    _require_old_size(origin, old_size, 0)
    _require_empty_proof(proof, 0, size)


def _require_old_size(origin: str, old_size: int, known_size: int) -> None:
    if old_size != known_size:
        raise OldSizeMismatchError(
            f"the request's old size is {old_size}, but the latest checkpoint this witness "
            f"cosigned for {_quote(origin)} has size {known_size}: send a consistency proof "
            f"from size {known_size}",
            origin=origin,
            old_size=old_size,
            known_size=known_size,
        )


def _require_empty_proof(proof: list[bytes], old_size: int, size: int) -> None:
    if proof:
        raise ProofError(
            f"a consistency proof from size {old_size} to size {size} must be empty here, but "
            f"has {len(proof)} hashes"
        )


def _has_signature(note_text: str, keys: list[str]) -> bool:
    """Whether a note, all of whose known signatures verified, carries one by any of ``keys``."""
    try:
        note.open(note_text, keys)
    except NoteError:
        return False
    return True


def _require_signed_checkpoint(signed: object) -> None:
    """Check the shape of a signed checkpoint: a checkpoint text, a blank line, signatures.

    Signatures are checked by whoever holds the keys; this only refuses what cannot be one.
    """
    if not isinstance(signed, str) or not signed.endswith("\n"):
        raise NoteError("a signed checkpoint must be text ending in a newline")
    split = signed.rfind("\n\n")
    if split < 0 or split + 2 == len(signed):
        raise NoteError("a signed checkpoint needs a blank line and then signature lines")
    note.Checkpoint.from_text(signed[: split + 1])


def _note_body(signed: str) -> str:
    return signed[: signed.rfind("\n\n") + 1]


def _parse_proof_line(line: object, number: int) -> bytes:
    decoded = b""
    if isinstance(line, str):
        try:
            decoded = base64.b64decode(line, validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII character
            decoded = b""
    if len(decoded) != merkle.HASH_SIZE or _b64(decoded) != line:
        raise ProofError(
            f"proof line {number} is not the canonical base64 of a {merkle.HASH_SIZE}-byte hash"
        )
    return decoded


def _require_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{what} must be an int")
    if not 0 <= value <= _MAX_TREE_SIZE:
        raise ProofError(f"{what} must be between 0 and 2^64 - 1, got {value}")
    return value


def _require_proof_hashes(proof: object) -> list[bytes]:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError("a proof must be a sequence of hashes")
    hashes = list(proof)
    for position, item in enumerate(hashes):
        if not isinstance(item, bytes) or len(item) != merkle.HASH_SIZE:
            raise ProofError(f"proof hash {position} is not {merkle.HASH_SIZE} bytes")
    return hashes


def _require_origin(origin: object) -> None:
    # The checks of a checkpoint's origin line, applied before the log is followed rather than
    # when its first checkpoint arrives.
    if not isinstance(origin, str):
        raise ConfigurationError("a log origin must be a string")
    note.Checkpoint(origin, 0, merkle.EMPTY_ROOT)


def _quote(origin: str) -> str:
    return repr(origin if len(origin) <= _MAX_QUOTED else origin[:_MAX_QUOTED] + "...")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _wrap_context(verifier_key: str) -> bytes:
    return _WRAP_CONTEXT + verifier_key.encode("utf-8")


def _dump_json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _dump_state(witness_key: str, logs: dict[str, _FollowedLog]) -> bytes:
    doc = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "witness": witness_key,
        "logs": {
            origin: {
                "verifier_key": log.verifier_key,
                "checkpoint": None if log.latest is None else log.latest.signed,
            }
            for origin, log in sorted(logs.items())
        },
    }
    return _dump_json(doc)


def _parse_state(raw: bytes, path: Path, witness_key: str) -> dict[str, _FollowedLog]:
    """Read and check the state file; any damage is an error, never an empty state."""

    def damaged(why: str) -> IntegrityError:
        return IntegrityError(
            f"the witness state file is damaged ({why}): restore it from a backup; starting "
            "afresh would let the logs it follows roll back",
            location={"file": str(path)},
        )

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise damaged(f"not an {STATE_FORMAT} document")
    if doc.get("version") != STATE_VERSION:
        raise ConfigurationError(
            f"{path} has witness state version {doc.get('version')!r}; this auditlog reads "
            f"version {STATE_VERSION}: upgrade auditlog"
        )
    if set(doc) != {"format", "version", "witness", "logs"} or not isinstance(doc["logs"], dict):
        raise damaged("unexpected fields")
    if doc["witness"] != witness_key:
        raise damaged("it belongs to another witness key")
    logs: dict[str, _FollowedLog] = {}
    for origin, entry in doc["logs"].items():
        if not isinstance(entry, dict) or set(entry) != {"verifier_key", "checkpoint"}:
            raise damaged(f"the entry of {_quote(origin)} has unexpected fields")
        verifier_key, signed = entry["verifier_key"], entry["checkpoint"]
        if not isinstance(verifier_key, str) or not isinstance(signed, str | None):
            raise damaged(f"the entry of {_quote(origin)} has fields of the wrong type")
        latest = None
        try:
            _require_origin(origin)
            if signed is not None:
                checkpoint = note.Checkpoint.from_text(note.open(signed, [verifier_key]))
                latest = _Cosigned(signed, checkpoint)
        except AuditLogError as exc:
            raise damaged(f"the checkpoint of {_quote(origin)} does not verify: {exc}") from None
        if latest is not None and latest.checkpoint.origin != origin:
            raise damaged(f"the checkpoint filed under {_quote(origin)} is of another log")
        logs[origin] = _FollowedLog(verifier_key, latest)
    return logs


@dataclass(frozen=True)
class _KeyDoc:
    root_key_id: str
    verifier_key: str
    wrapped: bytes


def _load_key_doc(path: Path) -> _KeyDoc:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{path} is missing: the witness has no key") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyMaterialError(f"{path} is not a readable witness key file") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyMaterialError(f"{path} is not an {KEY_FORMAT} file")
    if doc.get("version") != _KEY_VERSION:
        raise KeyMaterialError(
            f"{path} has witness key format version {doc.get('version')!r}; this auditlog reads "
            f"version {_KEY_VERSION}: upgrade auditlog"
        )
    try:
        root_key_id, verifier_key = doc["root_key_id"], doc["verifier_key"]
        wrapped = base64.b64decode(doc["wrapped_signer_key"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise KeyMaterialError(f"{path} is a damaged witness key file") from None
    if not isinstance(root_key_id, str) or not isinstance(verifier_key, str):
        raise KeyMaterialError(f"{path} is a damaged witness key file")
    return _KeyDoc(root_key_id, verifier_key, wrapped)
