"""The :class:`Witness`: a witness directory, unlocked, that cosigns consistent checkpoints.

It checks each offered checkpoint against the one it last cosigned for the log (rollback,
same-size fork, consistency proof), keeps contradicting pairs under ``evidence/``, and updates
the state under the directory's lock before it answers with a cosignature line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from auditlog import merkle, note
from auditlog._fs import DIR_MODE, exclusive_lock, make_private_dir
from auditlog._statefile import create_state, read_state, write_state
from auditlog.crypto.providers import DEFAULT_SCRYPT_N, PassphraseKeyProvider
from auditlog.errors import (
    ConfigurationError,
    ForkError,
    KeyMaterialError,
    MigrationRequiredError,
    NoteError,
    OldSizeMismatchError,
    ProofError,
    RollbackError,
)
from auditlog.witness.protocol import (
    _b64,
    _quote,
    _require_origin,
    _require_proof_hashes,
    _require_size,
)
from auditlog.witness.state import (
    WitnessEvidence,
    WitnessKeyFile,
    _Cosigned,
    _FollowedLog,
    _read_followed_logs,
    _read_v1_followed_logs,
    _signer_key_file,
    _state_file,
    state_mac_key,
)

__all__ = ["Witness"]

_ROOT_KEY_FILE: Final = "root.key"
_SIGNER_KEY_FILE: Final = "witness.key"
_STATE_FILE: Final = "state.json"
_LOCK_FILE: Final = "lock"
_EVIDENCE_DIR: Final = "evidence"


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
        self._mac_key = state_mac_key(signer_key, verifier_key)
        self._generation = 0  # the newest generation of state.json this process has read

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
        _signer_key_file(directory / _SIGNER_KEY_FILE, verifier_key).create(
            signer_key.encode("utf-8"), provider, verifier_key=verifier_key
        )
        # The state comes last: its presence marks a complete witness directory.
        mac_key = state_mac_key(signer_key, verifier_key)
        create_state(directory / _STATE_FILE, _state_file(verifier_key, {}, mac_key, 1))
        return cls(directory, signer_key, verifier_key)

    @classmethod
    def open(cls, directory: Path, passphrase: str | None = None) -> Witness:
        """Unlock the witness in ``directory`` with its passphrase (or ``AUDITLOG_PASSPHRASE``).

        A state file of format version 1 raises ``MigrationRequiredError``: see :meth:`migrate`.
        """
        directory = Path(directory)
        witness = cls(directory, *_unlock(directory, passphrase))
        witness._read_state()  # a damaged state file or one of another witness fails here
        return witness

    @classmethod
    def migrate(cls, directory: Path, passphrase: str | None = None) -> Witness:
        """Authenticate the version 1 ``state.json`` of the witness in ``directory`` (once).

        Version 1 state files carry no MAC: whoever could write the directory could have added
        a log or changed a log's key in them. Migration checks what can be checked (the file is
        this witness's, every checkpoint verifies under its log's key), writes the state again
        as version 2 under the witness's MAC key and returns the unlocked witness. Check the
        followed logs it lists (``followed_logs()``) against your records. A state file that is
        already of version 2 is left as it is.
        """
        directory = Path(directory)
        witness = cls(directory, *_unlock(directory, passphrase))
        with witness._locked():
            path = directory / _STATE_FILE
            try:
                witness._read_state()
            except MigrationRequiredError:
                logs = _read_v1_followed_logs(path, witness._verifier_key)
                witness._write_state(logs)
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
            offered = note.Checkpoint.from_text(note.open_note(note_text, [log.verifier_key]))
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
        reason: Literal["same-size-fork", "inconsistent"],
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
        evidence = WitnessEvidence(
            reason=reason,
            detected_at=now,
            known_checkpoint=known_note,
            offered_checkpoint=offered_note,
            old_size=old_size,
            proof=[_b64(h) for h in proof],
        )
        # If the file exists, the same contradiction was kept before; the first copy stays.
        with contextlib.suppress(FileExistsError):
            create_state(path, evidence)
        return str(path)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the directory's lock: checking a request and storing its result is one step."""
        return exclusive_lock(self._directory / _LOCK_FILE)

    def _read_state(self) -> dict[str, _FollowedLog]:
        logs, generation = _read_followed_logs(
            self._directory / _STATE_FILE,
            self._verifier_key,
            self._mac_key,
            seen_generation=self._generation,
        )
        self._generation = generation
        return logs

    def _write_state(self, logs: dict[str, _FollowedLog]) -> None:
        """Write the state one generation on from the one last read (under the lock)."""
        generation = self._generation + 1
        state = _state_file(self._verifier_key, logs, self._mac_key, generation)
        write_state(self._directory / _STATE_FILE, state)
        self._generation = generation


def _unlock(directory: Path, passphrase: str | None) -> tuple[str, str]:
    """The signer and verifier keys of the witness in ``directory``."""
    if not (directory / _STATE_FILE).is_file():
        raise ConfigurationError(
            f"{directory} is not a witness directory (no {_STATE_FILE}): create one with "
            "`auditlog witness init`"
        )
    key_path = directory / _SIGNER_KEY_FILE
    # The key is wrapped under a context naming the verifier key the file holds, so the
    # file is read before its WrappedKeyFile, which needs the context, can be made.
    key_doc = read_state(key_path, WitnessKeyFile)
    key_file = _signer_key_file(key_path, key_doc.verifier_key)
    provider = PassphraseKeyProvider.open(directory / _ROOT_KEY_FILE, passphrase)
    if provider.key_id != key_doc.root_key_id:
        raise KeyMaterialError(
            f"{key_path} was wrapped by root key {key_doc.root_key_id!r}, but "
            f"{_ROOT_KEY_FILE} holds {provider.key_id!r}: restore both files from one backup"
        )
    signer_key = key_file.unwrap(provider, key_doc).decode("utf-8")
    if note.verifier_from_signer(signer_key) != key_doc.verifier_key:
        raise KeyMaterialError(f"{key_path} holds a signer key that does not match its name")
    return signer_key, key_doc.verifier_key


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


def _note_body(signed: str) -> str:
    return signed[: signed.rfind("\n\n") + 1]
