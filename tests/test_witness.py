"""Tests of auditlog.witness: a witness that cosigns only consistent checkpoints, the
c2sp.org/tlog-witness request format, k-of-n witness policies, and the ``witness`` commands.

Checkpoints come from trees of random leaves signed with throwaway keys; the request example is
the one published in c2sp.org/tlog-witness.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import random
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from auditlog import merkle, note
from auditlog._statefile import StateFile, read_state, state_bytes
from auditlog.cli.witness_commands import witness_app
from auditlog.crypto.providers import PassphraseKeyProvider
from auditlog.errors import (
    ConfigurationError,
    ForkError,
    IntegrityError,
    KeyMaterialError,
    MigrationRequiredError,
    NoteError,
    PassphraseError,
    ProofError,
    RollbackError,
    StateFileError,
)
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N
from auditlog.witness import (
    MAX_PROOF_LINES,
    STATE_FORMAT,
    OldSizeMismatchError,
    Witness,
    format_add_checkpoint_request,
    parse_add_checkpoint_request,
    parse_proof_lines,
    verify_witnessed,
)
from auditlog.witness.state import (
    WitnessEvidence,
    WitnessKeyFile,
    WitnessStateFile,
    WitnessStateFileV1,
    _read_v1_followed_logs,
    _sealed,
    _signer_key_file,
    state_mac_key,
)

ORIGIN = "auditlog.example/log/chat-1"
WITNESS_NAME = "witness.example/w1"
TIME = 1767225600  # 2026-01-01T00:00:00Z
ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}

# The example request body of c2sp.org/tlog-witness, section "add-checkpoint".
SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks"
    "+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()

# witness.key and state.json as the hand-written encoder wrote them before the files became
# StateFile models (commit 253e28e): a witness named "witness.example/w\u00e9\u20141" following
# three logs, two of them cosigned at size 12 (one with a non-ASCII origin), one not yet.
OLD_WITNESS_KEY = (
    "{\n"
    '  "format": "auditlog-witness-key",\n'
    '  "root_key_id": "root-4b620ada",\n'
    '  "verifier_key": "witness.example/w\u00e9\u20141+42b661e4+BIpyueG8TUHvGzdeEuknJ'
    'n3l11rEU7FJb00a5JACSLh3",\n'
    '  "version": 1,\n'
    '  "wrapped_signer_key": "UB8GxTG44W7MvEk/IHkfZrHNI2E/3gmepZFBc5Y9MioAl'
    "wscgHu0R1a5NjiGmiUjTv+gw+t3BOBNkMHOMysIcoar6h6rtGiJfskJmNKjANniLmHjLVF"
    'ctWZr9872bwvt+0EYg1MZNRslaMrJu9PYBTh782V+"\n'
    "}\n"
).encode()
OLD_STATE = (
    "{\n"
    '  "format": "auditlog-witness-state",\n'
    '  "logs": {\n'
    '    "a.example/log": {\n'
    '      "checkpoint": "a.example/log\\n12\\nVrNUfg+M9oq27v+++NH6S0WoRXK/6B'
    "Tg9R0hZXmM1iU=\\n\\n\u2014 a.example/log s8c0bpXRvnCkggnwIC0bWYJBt06MyLeUd3yQ"
    'mbzGN7tG3T+roDJtr/kJa1m+KEaZsIzjltgkLBX0zbG3TDAd8HNVIAk=\\n",\n'
    '      "verifier_key": "a.example/log+b3c7346e+AaYZwAAOOkBrhGyOtk+3n8/9'
    'hojGUbsGwwbspv2Wyy+i"\n'
    "    },\n"
    '    "z.example/empty": {\n'
    '      "checkpoint": null,\n'
    '      "verifier_key": "z.example/empty+18a0511d+Ad2iNjnYhlhg1KAs4E6DbW'
    'HoERDHXMPw0QkCSEqmLvkY"\n'
    "    },\n"
    '    "\u00fc.example/l\u00f6g\u20142": {\n'
    '      "checkpoint": "\u00fc.example/l\u00f6g\u20142\\n12\\nVrNUfg+M9oq27v+++NH6S0WoRXK/'
    "6BTg9R0hZXmM1iU=\\n\\n\u2014 \u00fc.example/l\u00f6g\u20142 UUq62jMvH6Le/eRR3OIaF4JRwatSVoSc"
    'k82cd9h9cJXEFU5ICRt8p8JsVTIB/ICqF5qSImcfK5LE9dzCLiMqEKQrOwg=\\n",\n'
    '      "verifier_key": "\u00fc.example/l\u00f6g\u20142+514abada+AdZIIDOxYYrGnc4pZmM5f5'
    'hlVcs2DkXrmPgeMVZKGARd"\n'
    "    }\n"
    "  },\n"
    '  "version": 1,\n'
    '  "witness": "witness.example/w\u00e9\u20141+42b661e4+BIpyueG8TUHvGzdeEuknJn3l11'
    'rEU7FJb00a5JACSLh3"\n'
    "}\n"
).encode()


class FakeLog:
    """A log's tree of random leaves and its signing key, producing signed checkpoints."""

    def __init__(self, seed: int = 0, origin: str = ORIGIN, size: int = 64) -> None:
        rng = random.Random(seed)
        self.origin = origin
        self.leaves = [merkle.leaf_hash(rng.randbytes(16)) for _ in range(size)]
        self.signer, self.verifier = note.generate_key(origin)

    def checkpoint_text(self, size: int) -> str:
        return note.Checkpoint(self.origin, size, merkle.root(self.leaves[:size])).to_text()

    def checkpoint(self, size: int) -> str:
        return note.sign(self.checkpoint_text(size), self.signer)

    def proof(self, old_size: int, size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, size, self.leaves)

    def fork(self, seed: int, from_index: int) -> FakeLog:
        """The same log (same key) with its leaves from ``from_index`` on replaced."""
        other = FakeLog(seed, self.origin, len(self.leaves))
        other.leaves[:from_index] = self.leaves[:from_index]
        other.signer, other.verifier = self.signer, self.verifier
        return other


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    return tmp_path / "witness"


@pytest.fixture
def witness(witness_dir: Path, log: FakeLog) -> Witness:
    created = Witness.init(witness_dir, WITNESS_NAME, TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    created.add_log(log.origin, log.verifier)
    return created


def _state(witness: Witness) -> bytes:
    return (witness.directory / "state.json").read_bytes()


def _resealed(witness: Witness, doc: dict[str, object]) -> bytes:
    """``doc`` as the state file the witness's key holder would write (a valid MAC): a state
    whose content is wrong, not one forged without the key."""
    key = state_mac_key(witness._signer_key, witness.verifier_key)
    model = WitnessStateFile.model_validate(doc)
    return state_bytes(_sealed(model, key, model.generation))


def _as_version_1(witness: Witness) -> None:
    """Rewrite the witness's state file as format version 1 wrote it (no MAC)."""
    path = witness.directory / "state.json"
    doc = json.loads(path.read_bytes())
    old = WitnessStateFileV1(witness=doc["witness"], logs=doc["logs"])
    path.write_bytes(state_bytes(old))


def _evidence(witness: Witness) -> list[dict[str, object]]:
    directory = witness.directory / "evidence"
    if not directory.is_dir():
        return []
    return [json.loads(path.read_text("utf-8")) for path in sorted(directory.iterdir())]


# --- cosigning --------------------------------------------------------------------------------


def test_first_checkpoint_is_trusted_on_first_use(witness: Witness, log: FakeLog) -> None:
    """A log's first checkpoint is cosigned with old size 0 and no proof, and remembered."""
    line = witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    assert note.verify_cosignature(log.checkpoint_text(5), line, witness.verifier_key) == TIME
    assert witness.latest_checkpoint(ORIGIN) == note.Checkpoint.from_text(log.checkpoint_text(5))


def test_growth_with_a_valid_proof_is_cosigned(witness: Witness, log: FakeLog) -> None:
    """A bigger checkpoint with a consistency proof from the known size is cosigned and kept."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    line = witness.add_checkpoint(
        log.checkpoint(13), old_size=5, proof=log.proof(5, 13), timestamp=TIME + 1
    )
    assert line.startswith(f"\u2014 {WITNESS_NAME} ")
    assert line.endswith("\n")
    assert note.verify_cosignature(log.checkpoint_text(13), line, witness.verifier_key) == TIME + 1
    assert note.open_note(log.checkpoint(13) + line, [log.verifier, witness.verifier_key])
    latest = witness.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 13


def test_the_known_checkpoint_is_cosigned_again(witness: Witness, log: FakeLog) -> None:
    """The checkpoint already known is cosigned again (a fresher timestamp) without a write."""
    witness.add_checkpoint(log.checkpoint(8), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)
    line = witness.add_checkpoint(log.checkpoint(8), old_size=8, proof=[], timestamp=TIME + 60)
    assert note.verify_cosignature(log.checkpoint_text(8), line, witness.verifier_key) == TIME + 60
    assert _state(witness) == before


def test_growth_from_an_empty_tree_needs_no_proof(witness: Witness, log: FakeLog) -> None:
    """After a cosigned empty tree, any size follows with an empty proof (nothing to prove)."""
    witness.add_checkpoint(log.checkpoint(0), old_size=0, proof=[], timestamp=TIME)
    witness.add_checkpoint(log.checkpoint(9), old_size=0, proof=[], timestamp=TIME)
    latest = witness.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 9


def test_the_cosignature_covers_extension_lines(witness: Witness, log: FakeLog) -> None:
    """A checkpoint with extension lines is cosigned over its whole text."""
    text = note.Checkpoint(ORIGIN, 3, merkle.root(log.leaves[:3]), ("ext line",)).to_text()
    line = witness.add_checkpoint(note.sign(text, log.signer), old_size=0, proof=[], timestamp=1)
    assert note.verify_cosignature(text, line, witness.verifier_key) == 1


def test_default_timestamp_is_now(witness: Witness, log: FakeLog) -> None:
    """Without a timestamp, the cosignature carries the current POSIX time."""
    before = int(time.time())
    line = witness.add_checkpoint(log.checkpoint(2), old_size=0, proof=[])
    stamp = note.verify_cosignature(log.checkpoint_text(2), line, witness.verifier_key)
    assert before <= stamp <= int(time.time())


# --- refusals ---------------------------------------------------------------------------------


def test_rollback_is_refused_and_state_unchanged(witness: Witness, log: FakeLog) -> None:
    """A checkpoint smaller than the known one raises RollbackError naming both sizes."""
    witness.add_checkpoint(log.checkpoint(20), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)
    for old_size in (20, 0, 7):
        with pytest.raises(RollbackError) as caught:
            witness.add_checkpoint(log.checkpoint(7), old_size=old_size, proof=[], timestamp=TIME)
        assert "size 7" in str(caught.value)
        assert "size 20" in str(caught.value)
        assert caught.value.location["known_size"] == 20
    assert _state(witness) == before
    assert _evidence(witness) == []


def test_same_size_fork_is_refused_with_evidence(witness: Witness, log: FakeLog) -> None:
    """Another root at the known size raises ForkError and keeps both signed checkpoints."""
    witness.add_checkpoint(log.checkpoint(10), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)
    forked = log.fork(seed=99, from_index=4)
    with pytest.raises(ForkError) as caught:
        witness.add_checkpoint(forked.checkpoint(10), old_size=10, proof=[], timestamp=TIME)
    assert isinstance(caught.value, IntegrityError)
    assert _state(witness) == before
    [evidence] = _evidence(witness)
    assert evidence["reason"] == "same-size-fork"
    assert evidence["known_checkpoint"] == log.checkpoint(10)
    assert evidence["offered_checkpoint"] == forked.checkpoint(10)
    assert caught.value.location["evidence"] == str(
        next((witness.directory / "evidence").iterdir())
    )
    # The same contradiction submitted again is kept once.
    with pytest.raises(ForkError):
        witness.add_checkpoint(forked.checkpoint(10), old_size=10, proof=[], timestamp=TIME)
    assert len(_evidence(witness)) == 1


def test_same_size_fork_is_refused_whatever_the_old_size(witness: Witness, log: FakeLog) -> None:
    """A same-size fork is a fork even when the request's old size is wrong."""
    witness.add_checkpoint(log.checkpoint(10), old_size=0, proof=[], timestamp=TIME)
    with pytest.raises(ForkError):
        witness.add_checkpoint(log.fork(1, 3).checkpoint(10), old_size=0, proof=[], timestamp=TIME)


def test_bigger_tree_not_extending_the_known_one_is_a_fork(witness: Witness, log: FakeLog) -> None:
    """A bigger checkpoint whose history differs from the known one raises ForkError."""
    witness.add_checkpoint(log.checkpoint(6), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)
    forked = log.fork(seed=7, from_index=3)  # shares 3 leaves, not the 6 the witness knows
    with pytest.raises(ForkError) as caught:
        witness.add_checkpoint(
            forked.checkpoint(17), old_size=6, proof=forked.proof(6, 17), timestamp=TIME
        )
    assert isinstance(caught.value.__cause__, ProofError)
    assert _state(witness) == before
    [evidence] = _evidence(witness)
    assert evidence["reason"] == "inconsistent"
    assert evidence["known_checkpoint"] == log.checkpoint(6)
    assert evidence["offered_checkpoint"] == forked.checkpoint(17)
    assert evidence["old_size"] == 6
    assert len(evidence["proof"]) == len(forked.proof(6, 17))  # type: ignore[arg-type]


def test_a_wrong_proof_is_refused(witness: Witness, log: FakeLog) -> None:
    """A proof that does not lead to the offered root, or is missing, raises ForkError."""
    witness.add_checkpoint(log.checkpoint(6), old_size=0, proof=[], timestamp=TIME)
    proof = log.proof(6, 17)
    proof[0] = bytes(32)
    with pytest.raises(ForkError):
        witness.add_checkpoint(log.checkpoint(17), old_size=6, proof=proof, timestamp=TIME)
    with pytest.raises(ForkError):
        witness.add_checkpoint(log.checkpoint(17), old_size=6, proof=[], timestamp=TIME)
    # The honest request still succeeds afterwards.
    witness.add_checkpoint(log.checkpoint(17), old_size=6, proof=log.proof(6, 17), timestamp=TIME)


def test_wrong_old_size_is_refused_with_the_known_size(witness: Witness, log: FakeLog) -> None:
    """An old size other than the known one raises OldSizeMismatchError carrying the known size."""
    with pytest.raises(OldSizeMismatchError) as first:
        witness.add_checkpoint(log.checkpoint(5), old_size=3, proof=log.proof(3, 5), timestamp=1)
    assert first.value.known_size == 0
    assert first.value.old_size == 3
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)
    with pytest.raises(OldSizeMismatchError) as caught:
        witness.add_checkpoint(log.checkpoint(9), old_size=4, proof=log.proof(4, 9), timestamp=1)
    assert caught.value.known_size == 5
    assert "has size 5" in str(caught.value)
    assert _state(witness) == before


def test_a_proof_for_a_first_checkpoint_is_refused(witness: Witness, log: FakeLog) -> None:
    """With old size 0 the proof must be empty (c2sp.org/tlog-witness)."""
    with pytest.raises(ProofError):
        witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[bytes(32)], timestamp=1)
    assert witness.latest_checkpoint(ORIGIN) is None


def test_a_malformed_proof_or_size_is_refused(witness: Witness, log: FakeLog) -> None:
    """Hashes of the wrong length, a non-sequence proof and a negative old size are refused."""
    for proof in ([b"short"], b"x" * 32, None):
        with pytest.raises(ProofError):
            witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=proof, timestamp=1)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        witness.add_checkpoint(log.checkpoint(5), old_size=-1, proof=[], timestamp=1)


def test_bad_log_signature_is_refused(witness: Witness, log: FakeLog) -> None:
    """A checkpoint signed by another key, or altered after signing, raises NoteError."""
    impostor = FakeLog(origin=ORIGIN)
    with pytest.raises(NoteError):
        witness.add_checkpoint(impostor.checkpoint(5), old_size=0, proof=[], timestamp=1)
    altered = log.checkpoint(5).replace(f"{ORIGIN}\n5\n", f"{ORIGIN}\n6\n", 1)
    with pytest.raises(NoteError):
        witness.add_checkpoint(altered, old_size=0, proof=[], timestamp=1)
    with pytest.raises(NoteError):
        witness.add_checkpoint(log.checkpoint_text(5), old_size=0, proof=[], timestamp=1)
    assert witness.latest_checkpoint(ORIGIN) is None


def test_unknown_origin_is_refused(witness: Witness) -> None:
    """A checkpoint of a log the witness does not follow raises ConfigurationError."""
    other = FakeLog(origin="other.example/log")
    with pytest.raises(ConfigurationError, match="does not follow"):
        witness.add_checkpoint(other.checkpoint(5), old_size=0, proof=[], timestamp=1)
    with pytest.raises(ConfigurationError):
        witness.latest_checkpoint("other.example/log")


def test_concurrent_requests_are_serialized(witness: Witness, log: FakeLog) -> None:
    """A request waits for the directory lock, so checking and storing are one atomic step."""
    fd = os.open(witness.directory / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    results: list[str] = []
    worker = threading.Thread(
        target=lambda: results.append(
            witness.add_checkpoint(log.checkpoint(4), old_size=0, proof=[], timestamp=1)
        )
    )
    worker.start()
    worker.join(timeout=0.2)
    assert worker.is_alive()
    assert results == []
    os.close(fd)
    worker.join()
    assert len(results) == 1


# --- logs followed ----------------------------------------------------------------------------


def test_add_log_is_idempotent_and_keeps_its_key(witness: Witness, log: FakeLog) -> None:
    """Adding a log again with its key does nothing; another key for it is refused."""
    witness.add_checkpoint(log.checkpoint(3), old_size=0, proof=[], timestamp=1)
    witness.add_log(ORIGIN, log.verifier)
    assert witness.followed_logs() == {ORIGIN: log.verifier}
    latest = witness.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 3
    with pytest.raises(ConfigurationError, match="another key"):
        witness.add_log(ORIGIN, FakeLog(origin=ORIGIN).verifier)


def test_add_log_refuses_bad_origins_and_keys(witness: Witness) -> None:
    """Origins must be checkpoint origin lines, and log keys Ed25519 note keys (type 0x01)."""
    _, witness_key = note.generate_witness_key("w")
    with pytest.raises(NoteError):
        witness.add_log("a.example/log", witness_key)
    _, log_key = note.generate_key("a.example/log")
    for origin in ("", "two\nlines"):
        with pytest.raises(NoteError):
            witness.add_log(origin, log_key)
    with pytest.raises(NoteError):
        witness.add_log("a.example/log", "not a key")


# --- the witness directory --------------------------------------------------------------------


def test_signer_key_is_never_in_clear_on_disk(
    tmp_path: Path, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file of the witness directory holds the signer key's seed, raw or encoded."""
    generated: list[tuple[str, str]] = []
    original = note.generate_witness_key

    def capture(name: str) -> tuple[str, str]:
        generated.append(original(name))
        return generated[-1]

    monkeypatch.setattr(note, "generate_witness_key", capture)
    directory = tmp_path / "w"
    witness = Witness.init(directory, WITNESS_NAME, TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    witness.add_log(ORIGIN, log.verifier)
    witness.add_checkpoint(log.checkpoint(4), old_size=0, proof=[], timestamp=1)
    with pytest.raises(ForkError):
        witness.add_checkpoint(log.fork(5, 1).checkpoint(4), old_size=4, proof=[], timestamp=1)
    [(signer_key, verifier_key)] = generated
    assert witness.verifier_key == verifier_key
    seed = note.parse_signer_key(signer_key).seed
    encoded = signer_key.split("+", 4)[4]
    needles = [
        seed,
        seed.hex().encode(),
        base64.b64encode(seed),
        base64.b64encode(seed).rstrip(b"="),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
        encoded.encode(),
        encoded.rstrip("=").encode(),
        b"PRIVATE+KEY",
    ]
    files = [path for path in directory.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"root.key", "witness.key", "state.json"}
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, path.name


def test_directory_and_files_are_private(witness: Witness, log: FakeLog) -> None:
    """The witness directory is 0700 and every file in it 0600."""
    witness.add_checkpoint(log.checkpoint(4), old_size=0, proof=[], timestamp=1)
    with pytest.raises(ForkError):
        witness.add_checkpoint(log.fork(5, 1).checkpoint(4), old_size=4, proof=[], timestamp=1)
    assert stat.S_IMODE(witness.directory.stat().st_mode) == 0o700
    for path in witness.directory.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_state_survives_reopen(witness: Witness, log: FakeLog) -> None:
    """A reopened witness has the same key and state and goes on from the known size."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    reopened = Witness.open(witness.directory, TEST_PASSPHRASE)
    assert reopened.verifier_key == witness.verifier_key
    assert reopened.name == WITNESS_NAME
    assert reopened.followed_logs() == {ORIGIN: log.verifier}
    assert reopened.latest_checkpoint(ORIGIN) == witness.latest_checkpoint(ORIGIN)
    line = reopened.add_checkpoint(
        log.checkpoint(12), old_size=5, proof=log.proof(5, 12), timestamp=TIME
    )
    assert note.verify_cosignature(log.checkpoint_text(12), line, witness.verifier_key) == TIME
    with pytest.raises(RollbackError):
        reopened.add_checkpoint(log.checkpoint(5), old_size=12, proof=[], timestamp=TIME)


def test_state_file_is_versioned(witness: Witness, log: FakeLog) -> None:
    """The state file names its format and version and keeps each signed checkpoint as received."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    doc = json.loads(_state(witness))
    assert doc["format"] == STATE_FORMAT
    assert doc["version"] == 2
    assert doc["generation"] == 3  # created, the log added, the checkpoint cosigned
    assert len(bytes.fromhex(doc["mac"])) == 32
    assert doc["witness"] == witness.verifier_key
    assert doc["logs"] == {ORIGIN: {"verifier_key": log.verifier, "checkpoint": log.checkpoint(5)}}


def test_reopen_needs_the_passphrase(witness: Witness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong or missing passphrase does not open the witness."""
    with pytest.raises(PassphraseError):
        Witness.open(witness.directory, "not the passphrase")
    monkeypatch.delenv("AUDITLOG_PASSPHRASE", raising=False)
    with pytest.raises(ConfigurationError, match="passphrase"):
        Witness.open(witness.directory)
    monkeypatch.setenv("AUDITLOG_PASSPHRASE", TEST_PASSPHRASE)
    assert Witness.open(witness.directory).verifier_key == witness.verifier_key


def test_crash_before_rename_leaves_the_old_state(
    witness: Witness, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the new state is written but before the rename leaves the old state."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    before = _state(witness)

    def crash(*args: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)  # what _fs.atomic_replace renames with
    with pytest.raises(OSError, match="simulated crash"):
        witness.add_checkpoint(
            log.checkpoint(12), old_size=5, proof=log.proof(5, 12), timestamp=TIME
        )
    monkeypatch.undo()
    leftover = witness.directory / ".state.json.tmp"
    assert leftover.exists()
    assert leftover.read_bytes() != before
    assert _state(witness) == before
    reopened = Witness.open(witness.directory, TEST_PASSPHRASE)
    latest = reopened.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 5
    # The next request starts from the old state and clears the leftover.
    reopened.add_checkpoint(log.checkpoint(12), old_size=5, proof=log.proof(5, 12), timestamp=1)
    assert not leftover.exists()


def test_corrupt_state_is_an_error_never_a_reset(witness: Witness, log: FakeLog) -> None:
    """A damaged state file makes every use fail with a StateFileError; it is never replaced."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    path = witness.directory / "state.json"
    good = path.read_bytes()
    doc = json.loads(good)
    altered = json.loads(good)
    altered["logs"][ORIGIN]["checkpoint"] = log.checkpoint(5).replace("\n5\n", "\n2\n", 1)
    foreign = json.loads(good)
    foreign["witness"] = note.generate_witness_key("other")[1]
    extra = json.loads(good)
    extra["logs"][ORIGIN]["size"] = 5
    other_log = FakeLog(seed=1, origin="other.example/log")
    misfiled = json.loads(good)
    misfiled["logs"]["other.example/log"] = {
        "verifier_key": other_log.verifier,
        "checkpoint": note.sign(log.checkpoint_text(5), other_log.signer),
    }
    damaged = {
        "is not valid JSON": good[: len(good) // 2],
        "is not UTF-8": b"\xff" + good,
        "is not an? auditlog-witness-state file": b"[]",
        # Edited without the key: refused before any of it is looked at.
        "not authenticated by this witness's key": json.dumps(altered).encode(),
        # Wrong content under a valid MAC: still caught by what it says.
        r"damaged \(the checkpoint of .* does not verify": _resealed(witness, altered),
        r"damaged \(the checkpoint filed under .* is of another log": _resealed(witness, misfiled),
        r"damaged \(it belongs to another witness key": _resealed(witness, foreign),
        "damaged: logs.*size": json.dumps(extra).encode(),
        "damaged: logs.*verifier_key": json.dumps(
            {**doc, "logs": {ORIGIN: {"verifier_key": 5, "checkpoint": None}}}
        ).encode(),
        "damaged: logs.*checkpoint": json.dumps(
            {**doc, "logs": {ORIGIN: {"verifier_key": log.verifier}}}
        ).encode(),
    }
    for reason, content in damaged.items():
        path.write_bytes(content)
        with pytest.raises(StateFileError, match=reason) as caught:
            Witness.open(witness.directory, TEST_PASSPHRASE)
        assert caught.value.path == path
        assert "restore it from a backup" in str(caught.value)
        with pytest.raises(StateFileError):
            witness.add_checkpoint(log.checkpoint(5), old_size=5, proof=[], timestamp=TIME)
        with pytest.raises(StateFileError):
            witness.add_log("new.example/log", log.verifier)
        with pytest.raises(StateFileError):
            witness.followed_logs()
        assert path.read_bytes() == content
    path.write_bytes(json.dumps({**doc, "version": 3}).encode())
    with pytest.raises(StateFileError, match=r"version 3.*upgrade auditlog"):
        Witness.open(witness.directory, TEST_PASSPHRASE)
    path.unlink()
    with pytest.raises(StateFileError, match=r"state\.json.*is missing"):
        witness.followed_logs()


def _files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` and its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _damaged_copies(raw: bytes) -> dict[str, bytes]:
    """A JSON state file made truncated, not JSON, of an unknown version, or missing a field."""
    doc = json.loads(raw)
    copies = {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "not JSON": b"format: auditlog-witness\n",
        "version 3": json.dumps({**doc, "version": 3}).encode(),
        "version 0": json.dumps({**doc, "version": 0}).encode(),
        "version '1'": json.dumps({**doc, "version": "1"}).encode(),
    }
    for field in doc:
        copies[f"no {field}"] = json.dumps({k: v for k, v in doc.items() if k != field}).encode()
    return copies


@pytest.mark.parametrize("name", ["witness.key", "state.json"])
def test_a_damaged_witness_file_is_a_state_file_error_naming_it(
    witness: Witness, log: FakeLog, name: str
) -> None:
    """A truncated, non-JSON, unknown-version or incomplete witness.key or state.json fails to
    open with a StateFileError naming the file, and nothing in the directory changes."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    path = witness.directory / name
    good = path.read_bytes()
    for what, content in _damaged_copies(good).items():
        path.write_bytes(content)
        before = _files(witness.directory)
        with pytest.raises(StateFileError) as caught:
            Witness.open(witness.directory, TEST_PASSPHRASE)
        assert caught.value.path == path, what
        assert f"({path})" in str(caught.value), what
        if what == "version 3":
            assert "upgrade auditlog" in str(caught.value)
        if name == "state.json":
            with pytest.raises(StateFileError):
                witness.add_checkpoint(log.checkpoint(9), old_size=5, proof=log.proof(5, 9))
        assert _files(witness.directory) == before, what
    path.write_bytes(good)
    reopened = Witness.open(witness.directory, TEST_PASSPHRASE)
    latest = reopened.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 5


def test_a_key_file_with_bad_base64_is_a_state_file_error(witness: Witness) -> None:
    """A wrapped signer key that is not base64 text is a StateFileError naming the field."""
    path = witness.directory / "witness.key"
    doc = json.loads(path.read_bytes())
    for bad in ["not base64!", 12]:
        path.write_text(json.dumps({**doc, "wrapped_signer_key": bad}), "utf-8")
        with pytest.raises(StateFileError, match="wrapped_signer_key"):
            Witness.open(witness.directory, TEST_PASSPHRASE)


def test_a_key_file_holding_another_signer_is_refused(witness: Witness) -> None:
    """A witness.key whose wrapped signer key does not derive its verifier key is refused."""
    path = witness.directory / "witness.key"
    path.unlink()
    other_signer, _ = note.generate_witness_key(WITNESS_NAME)
    provider = PassphraseKeyProvider.open(witness.directory / "root.key", TEST_PASSPHRASE)
    _signer_key_file(path, witness.verifier_key).create(
        other_signer.encode("utf-8"), provider, verifier_key=witness.verifier_key
    )
    with pytest.raises(KeyMaterialError, match="does not match its name"):
        Witness.open(witness.directory, TEST_PASSPHRASE)


def _reencoded(path: Path, model: type[StateFile]) -> bytes:
    return state_bytes(read_state(path, model))


def test_files_written_before_the_models_reencode_byte_for_byte(tmp_path: Path) -> None:
    """witness.key and state.json as the hand-written encoder wrote them read and re-encode
    to the same bytes, and the state's checkpoints still verify."""
    key_path, state_path = tmp_path / "witness.key", tmp_path / "state.json"
    key_path.write_bytes(OLD_WITNESS_KEY)
    state_path.write_bytes(OLD_STATE)
    key = read_state(key_path, WitnessKeyFile)
    assert _reencoded(key_path, WitnessKeyFile) == OLD_WITNESS_KEY
    assert _reencoded(state_path, WitnessStateFileV1) == OLD_STATE
    logs = _read_v1_followed_logs(state_path, key.verifier_key)
    assert sorted(logs) == ["a.example/log", "z.example/empty", "\u00fc.example/l\u00f6g\u20142"]
    assert [log.latest.checkpoint.size if log.latest else None for log in logs.values()] == [
        12,
        None,
        12,
    ]


def test_witness_files_are_written_as_before(tmp_path: Path) -> None:
    """state.json, witness.key and evidence files are JSON with two-space indent, sorted keys,
    UTF-8 kept as such and a final newline, with the fields they always had."""
    name, origin = "witness.example/w\u00e9", "\u00fc.example/l\u00f6g"
    witness = Witness.init(tmp_path / "w", name, TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    log = FakeLog(origin=origin)
    witness.add_log(origin, log.verifier)
    quiet = FakeLog(origin="z.example/log")
    witness.add_log(quiet.origin, quiet.verifier)
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    witness.add_checkpoint(log.checkpoint(9), old_size=5, proof=log.proof(5, 9), timestamp=TIME)
    forked = log.fork(3, 1)
    with pytest.raises(ForkError):
        witness.add_checkpoint(
            forked.checkpoint(12), old_size=9, proof=forked.proof(9, 12), timestamp=TIME
        )
    directory = witness.directory
    [evidence] = (directory / "evidence").iterdir()
    files: list[tuple[Path, type[StateFile], set[str]]] = [
        (
            directory / "witness.key",
            WitnessKeyFile,
            {"format", "version", "root_key_id", "verifier_key", "wrapped_signer_key"},
        ),
        (
            directory / "state.json",
            WitnessStateFile,
            {"format", "version", "witness", "logs", "generation", "mac"},
        ),
        (
            evidence,
            WitnessEvidence,
            {
                "format",
                "version",
                "reason",
                "detected_at",
                "known_checkpoint",
                "offered_checkpoint",
                "old_size",
                "proof",
            },
        ),
    ]
    for path, model, fields in files:
        raw = path.read_bytes()
        doc = json.loads(raw)
        old_encoding = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert raw == old_encoding.encode("utf-8"), path.name
        assert _reencoded(path, model) == raw, path.name
        assert set(doc) == fields, path.name
        assert not raw.isascii(), path.name  # non-ASCII text is kept as UTF-8, not escaped
    state = json.loads((directory / "state.json").read_bytes())
    assert state["logs"] == {
        origin: {"verifier_key": log.verifier, "checkpoint": log.checkpoint(9)},
        quiet.origin: {"verifier_key": quiet.verifier, "checkpoint": None},
    }
    kept = json.loads(evidence.read_bytes())
    assert kept["proof"] == [base64.b64encode(h).decode() for h in forked.proof(9, 12)]
    assert kept["proof"]


def test_init_refuses_a_used_directory(tmp_path: Path, witness: Witness) -> None:
    """init refuses an existing witness or a non-empty directory, and accepts an empty one."""
    with pytest.raises(ConfigurationError, match="not an empty directory"):
        Witness.init(witness.directory, "w2", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    created = Witness.init(empty, "w2", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700
    assert created.followed_logs() == {}
    with pytest.raises(NoteError):
        Witness.init(tmp_path / "bad", "bad name", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    assert not (tmp_path / "bad").exists()


def test_open_refuses_what_is_not_a_witness(tmp_path: Path, witness: Witness) -> None:
    """Opening a directory without a state file, or with mismatched key files, fails clearly."""
    with pytest.raises(ConfigurationError, match="not a witness directory"):
        Witness.open(tmp_path, TEST_PASSPHRASE)
    other = Witness.init(tmp_path / "other", "w2", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    (witness.directory / "root.key").write_bytes((other.directory / "root.key").read_bytes())
    with pytest.raises(KeyMaterialError, match="root key"):
        Witness.open(witness.directory, TEST_PASSPHRASE)


def test_key_file_bound_to_its_verifier_key(tmp_path: Path, witness: Witness) -> None:
    """Swapping the public key recorded in witness.key makes the key fail to unwrap."""
    path = witness.directory / "witness.key"
    doc = json.loads(path.read_text("utf-8"))
    doc["verifier_key"] = note.generate_witness_key(WITNESS_NAME)[1]
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(KeyMaterialError, match="unwrap"):
        Witness.open(witness.directory, TEST_PASSPHRASE)


def test_repr_shows_no_secret(witness: Witness) -> None:
    """The repr names the directory and the public key only."""
    assert "PRIVATE" not in repr(witness)
    assert witness.verifier_key in repr(witness)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=5))
def test_any_growth_sequence_is_cosigned(sizes: list[int]) -> None:
    """Checkpoints of growing sizes, each with its proof, are all cosigned; shrinking is refused."""
    sizes = sorted(sizes)
    log = FakeLog(seed=sizes[0])
    with tempfile.TemporaryDirectory() as tmp:
        witness = Witness.init(Path(tmp) / "w", "w", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
        witness.add_log(ORIGIN, log.verifier)
        known = 0
        for size in sizes:
            proof = log.proof(known, size) if known else []
            line = witness.add_checkpoint(log.checkpoint(size), old_size=known, proof=proof)
            note.verify_cosignature(log.checkpoint_text(size), line, witness.verifier_key)
            known = size
        if known > 1:
            with pytest.raises(RollbackError):
                witness.add_checkpoint(log.checkpoint(known - 1), old_size=known, proof=[])


# --- witness policies -------------------------------------------------------------------------


@pytest.fixture
def witnesses() -> list[tuple[str, str]]:
    return [note.generate_witness_key(f"witness.example/w{i}") for i in range(1, 4)]


def _cosigned(log: FakeLog, size: int, signers: list[str], timestamp: int = TIME) -> str:
    text = log.checkpoint_text(size)
    return log.checkpoint(size) + "".join(note.cosign(text, s, timestamp) for s in signers)


def _alias(verifier_key: str, name: str) -> str:
    """Another name for the same witness public key, with the key hash that name implies."""
    key = note.parse_verifier_key(verifier_key)
    data = bytes([key.algorithm]) + key.public_key
    key_hash = int.from_bytes(hashlib.sha256(name.encode() + b"\n" + data).digest()[:4], "big")
    return note.VerifierKey(name, key_hash, key.algorithm, key.public_key).to_text()


def test_policy_met_with_enough_cosignatures(
    log: FakeLog, witnesses: list[tuple[str, str]]
) -> None:
    """Two valid cosignatures meet a 2-of-3 policy and the checkpoint is returned."""
    signed = _cosigned(log, 7, [witnesses[0][0], witnesses[2][0]])
    keys = [verifier for _, verifier in witnesses]
    checkpoint = verify_witnessed(signed, log.verifier, keys, 2)
    assert checkpoint == note.Checkpoint.from_text(log.checkpoint_text(7))
    assert verify_witnessed(signed, log.verifier, keys, 1) == checkpoint


def test_policy_refused_with_too_few_cosignatures(
    log: FakeLog, witnesses: list[tuple[str, str]]
) -> None:
    """Two cosignatures do not meet 3 of 3; none at all do not meet 1 of 3."""
    keys = [verifier for _, verifier in witnesses]
    signed = _cosigned(log, 7, [witnesses[0][0], witnesses[1][0]])
    with pytest.raises(NoteError, match="2 of the trusted witnesses, fewer than the 3"):
        verify_witnessed(signed, log.verifier, keys, 3)
    with pytest.raises(NoteError, match="0 of the trusted"):
        verify_witnessed(log.checkpoint(7), log.verifier, keys, 1)
    unknown = note.generate_witness_key("stranger")[0]
    with pytest.raises(NoteError):
        verify_witnessed(_cosigned(log, 7, [unknown]), log.verifier, keys, 1)


def test_policy_counts_duplicate_keys_once(log: FakeLog, witnesses: list[tuple[str, str]]) -> None:
    """A key listed twice, or one public key under two names, counts as one witness."""
    w1_signer, w1 = witnesses[0]
    signed = _cosigned(log, 7, [w1_signer, w1_signer])
    with pytest.raises(NoteError, match="can never"):
        verify_witnessed(signed, log.verifier, [w1, w1], 2)
    alias = _alias(w1, "witness.example/alias")
    line = note.cosign(log.checkpoint_text(7), w1_signer, TIME)
    stamped = base64.b64decode(line.split(" ")[2])[4:]
    alias_hash = note.parse_verifier_key(alias).key_hash.to_bytes(4, "big")
    relabeled = f"\u2014 witness.example/alias {base64.b64encode(alias_hash + stamped).decode()}\n"
    signed = log.checkpoint(7) + line + relabeled
    assert note.verify_cosignature(log.checkpoint_text(7), relabeled, alias) == TIME
    with pytest.raises(NoteError, match="can never"):
        verify_witnessed(signed, log.verifier, [w1, alias], 2)
    keys = [w1, alias, witnesses[1][1]]
    with pytest.raises(NoteError, match="fewer than the 2"):
        verify_witnessed(signed, log.verifier, keys, 2)


def test_policy_refuses_a_forged_cosignature(
    log: FakeLog, witnesses: list[tuple[str, str]]
) -> None:
    """One forged cosignature by a trusted key fails the check, even with enough valid ones."""
    keys = [verifier for _, verifier in witnesses]
    text = log.checkpoint_text(7)
    forged = note.cosign(text, witnesses[2][0], TIME)
    raw = bytearray(base64.b64decode(forged.split(" ")[2]))
    raw[-1] ^= 1
    forged = f"\u2014 witness.example/w3 {base64.b64encode(bytes(raw)).decode()}\n"
    signed = _cosigned(log, 7, [witnesses[0][0], witnesses[1][0]]) + forged
    with pytest.raises(NoteError, match="invalid signature"):
        verify_witnessed(signed, log.verifier, keys, 2)
    # A cosignature of another checkpoint is a forgery on this one.
    other = note.cosign(log.checkpoint_text(8), witnesses[2][0], TIME)
    signed = _cosigned(log, 7, [witnesses[0][0], witnesses[1][0]]) + other
    with pytest.raises(NoteError):
        verify_witnessed(signed, log.verifier, keys, 2)


def test_policy_needs_the_log_signature(log: FakeLog, witnesses: list[tuple[str, str]]) -> None:
    """Cosignatures without the log's own valid signature are refused."""
    keys = [verifier for _, verifier in witnesses]
    text = log.checkpoint_text(7)
    only_cosigned = text + "\n" + "".join(note.cosign(text, s, TIME) for s, _ in witnesses)
    with pytest.raises(NoteError):
        verify_witnessed(only_cosigned, log.verifier, keys, 1)
    impostor = FakeLog(origin=ORIGIN)
    with pytest.raises(NoteError):
        verify_witnessed(_cosigned(log, 7, [witnesses[0][0]]), impostor.verifier, keys, 1)


@pytest.mark.parametrize("threshold", [0, -1, 4, True, 1.0])
def test_policy_refuses_impossible_thresholds(
    log: FakeLog, witnesses: list[tuple[str, str]], threshold: object
) -> None:
    """A threshold of 0, below 0, above the number of keys, or not an int fails closed."""
    keys = [verifier for _, verifier in witnesses]
    signed = _cosigned(log, 7, [s for s, _ in witnesses])
    with pytest.raises(NoteError):
        verify_witnessed(signed, log.verifier, keys, threshold)  # type: ignore[arg-type]


def test_policy_refuses_bad_key_lists_and_lines(
    log: FakeLog, witnesses: list[tuple[str, str]]
) -> None:
    """No keys, one key string, a log key among witness keys and malformed lines are refused."""
    signed = _cosigned(log, 7, [witnesses[0][0]])
    with pytest.raises(NoteError):
        verify_witnessed(signed, log.verifier, [], 1)
    with pytest.raises(NoteError):
        verify_witnessed(signed, log.verifier, witnesses[0][1], 1)
    with pytest.raises(NoteError):
        verify_witnessed(signed, log.verifier, [log.verifier], 1)
    with pytest.raises(NoteError):
        verify_witnessed(signed, witnesses[0][1], [witnesses[0][1]], 1)
    for bad in ("\u2014 witness.example/w1 !!!\n", "garbage\n", "\u2014 witness.example/w1\n"):
        with pytest.raises(NoteError):
            verify_witnessed(signed + bad, log.verifier, [witnesses[0][1]], 1)


def test_policy_with_real_witnesses(tmp_path: Path, log: FakeLog) -> None:
    """Cosignatures from witness directories meet a 2-of-2 policy over the signed checkpoint."""
    lines = []
    keys = []
    for i in (1, 2):
        witness = Witness.init(
            tmp_path / f"w{i}", f"w{i}.example", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N
        )
        witness.add_log(ORIGIN, log.verifier)
        lines.append(witness.add_checkpoint(log.checkpoint(9), old_size=0, proof=[]))
        keys.append(witness.verifier_key)
    signed = log.checkpoint(9) + "".join(lines)
    assert verify_witnessed(signed, log.verifier, keys, 2).size == 9


# --- the add-checkpoint wire format -----------------------------------------------------------


def test_spec_example_request_parses_and_formats_back() -> None:
    """The request body published in c2sp.org/tlog-witness parses and formats byte for byte."""
    old_size, proof, signed = parse_add_checkpoint_request(SPEC_REQUEST)
    assert old_size == 20852014
    assert len(proof) == 4
    assert proof[0] == base64.b64decode("PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=")
    assert signed.startswith("example.com/behind-the-sofa\n20852163\n")
    assert format_add_checkpoint_request(old_size, proof, signed) == SPEC_REQUEST


def test_request_round_trip(log: FakeLog) -> None:
    """A formatted request parses back to the same old size, proof and checkpoint."""
    for old_size, size in ((0, 5), (5, 13), (13, 13), (1, 64)):
        proof = log.proof(old_size, size) if old_size else []
        body = format_add_checkpoint_request(old_size, proof, log.checkpoint(size))
        assert parse_add_checkpoint_request(body) == (old_size, proof, log.checkpoint(size))
        assert body.startswith(f"old {old_size}\n".encode())


@settings(max_examples=50)
@given(
    old_size=st.integers(min_value=0, max_value=2**64 - 1),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_LINES),
)
def test_request_round_trip_property(old_size: int, proof: list[bytes]) -> None:
    """Any old size and proof of at most 63 hashes survive a format/parse round trip."""
    signed = SPEC_REQUEST.split(b"\n\n", 1)[1].decode()
    body = format_add_checkpoint_request(old_size, proof, signed)
    assert parse_add_checkpoint_request(body) == (old_size, proof, signed)


def _spec_with(head: str) -> bytes:
    return head.encode() + b"\n" + SPEC_REQUEST.split(b"\n\n", 1)[1]


HASH_LINE = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", NoteError),
        (b"old 5\n", NoteError),
        (_spec_with("old 05\n"), NoteError),
        (_spec_with("old -5\n"), NoteError),
        (_spec_with("old  5\n"), NoteError),
        (_spec_with("Old 5\n"), NoteError),
        (_spec_with("old 5 \n"), NoteError),
        (_spec_with("old\n"), NoteError),
        (_spec_with(f"old {2**64}\n"), NoteError),
        (_spec_with(f"{HASH_LINE}\n"), NoteError),
        (SPEC_REQUEST.replace(b"\n", b"\r\n"), NoteError),
        (b"\xff" + SPEC_REQUEST, NoteError),
        (_spec_with(f"old 5\n{HASH_LINE[:-2]}=\n"), ProofError),
        (_spec_with("old 5\nAAAA\n"), ProofError),
        (_spec_with(f"old 5\n{HASH_LINE[:-2]}x=\n"), ProofError),  # non-canonical last char
        (_spec_with(f"old 5\n{HASH_LINE} \n"), ProofError),
        (_spec_with(f"old 5\n{HASH_LINE.rstrip('=')}\n"), ProofError),
        (_spec_with("old 5\n" + f"{HASH_LINE}\n" * (MAX_PROOF_LINES + 1)), ProofError),
        (b"old 5\n\nexample.com/behind-the-sofa\n20852163\n", NoteError),
        (b"old 5\n\nexample.com/behind-the-sofa\n20852163\n\n", NoteError),
        (b"old 5\n\nnot a checkpoint\n\n\xe2\x80\x94 a AAAAAAAA\n", NoteError),
        (SPEC_REQUEST[:-1], NoteError),
    ],
)
def test_request_rejections(body: bytes, error: type[Exception]) -> None:
    """Malformed request bodies are refused with NoteError, or ProofError for proof lines."""
    with pytest.raises(error):
        parse_add_checkpoint_request(body)


def test_request_with_63_proof_lines_is_accepted() -> None:
    """Exactly 63 proof lines is the most a request may carry, and is accepted."""
    _, proof, _ = parse_add_checkpoint_request(_spec_with("old 5\n" + f"{HASH_LINE}\n" * 63))
    assert len(proof) == MAX_PROOF_LINES


def test_format_rejections(log: FakeLog) -> None:
    """The formatter refuses what the parser would refuse."""
    signed = log.checkpoint(5)
    for old_size in (-1, 2**64, True):
        with pytest.raises(ProofError):
            format_add_checkpoint_request(old_size, [], signed)
    for proof in ([b"x" * 31], [bytes(32)] * (MAX_PROOF_LINES + 1), "abc"):
        with pytest.raises(ProofError):
            format_add_checkpoint_request(1, proof, signed)  # type: ignore[arg-type]
    for bad_note in (log.checkpoint_text(5), signed[:-1], "", b"x"):
        with pytest.raises(NoteError):
            format_add_checkpoint_request(1, [], bad_note)  # type: ignore[arg-type]


def test_parse_proof_lines() -> None:
    """Proof lines parse to hashes and report the first bad line by number."""
    assert parse_proof_lines([HASH_LINE, HASH_LINE]) == [base64.b64decode(HASH_LINE)] * 2
    assert parse_proof_lines([]) == []
    with pytest.raises(ProofError, match="line 2"):
        parse_proof_lines([HASH_LINE, "AAAA"])
    with pytest.raises(ProofError):
        parse_proof_lines(HASH_LINE)


def test_request_drives_a_witness(witness: Witness, log: FakeLog) -> None:
    """A parsed request is exactly what Witness.add_checkpoint takes."""
    witness.add_checkpoint(log.checkpoint(3), old_size=0, proof=[], timestamp=1)
    body = format_add_checkpoint_request(3, log.proof(3, 30), log.checkpoint(30))
    old_size, proof, signed = parse_add_checkpoint_request(body)
    line = witness.add_checkpoint(signed, old_size=old_size, proof=proof, timestamp=2)
    assert note.verify_cosignature(log.checkpoint_text(30), line, witness.verifier_key) == 2


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _said(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_cli_init_and_add_log(runner: CliRunner, tmp_path: Path, log: FakeLog) -> None:
    """init prints the verifier key; add-log follows a log; a second init is refused."""
    directory = tmp_path / "w"
    result = runner.invoke(witness_app, ["init", str(directory), "--name", WITNESS_NAME], env=ENV)
    assert result.exit_code == 0, result.output
    verifier_key = result.stdout.strip()
    assert note.parse_verifier_key(verifier_key).name == WITNESS_NAME
    added = runner.invoke(
        witness_app,
        ["add-log", str(directory), "--origin", ORIGIN, "--key", log.verifier],
        env=ENV,
    )
    assert added.exit_code == 0, added.output
    assert Witness.open(directory, TEST_PASSPHRASE).followed_logs() == {ORIGIN: log.verifier}
    again = runner.invoke(witness_app, ["init", str(directory), "--name", WITNESS_NAME], env=ENV)
    assert again.exit_code == 2
    assert "not an empty directory" in _said(again.output)
    assert "Traceback" not in again.output


def test_cli_add_checkpoint(
    runner: CliRunner, tmp_path: Path, witness: Witness, log: FakeLog
) -> None:
    """add-checkpoint reads a request from a file or stdin and prints only the cosignature."""
    directory = str(witness.directory)
    request = tmp_path / "request"
    request.write_bytes(format_add_checkpoint_request(0, [], log.checkpoint(5)))
    first = runner.invoke(witness_app, ["add-checkpoint", directory, str(request)], env=ENV)
    assert first.exit_code == 0, first.output
    note.verify_cosignature(log.checkpoint_text(5), first.stdout, witness.verifier_key)
    assert first.stdout.count("\n") == 1
    body = format_add_checkpoint_request(5, log.proof(5, 40), log.checkpoint(40))
    grown = runner.invoke(witness_app, ["add-checkpoint", directory, "-"], input=body, env=ENV)
    assert grown.exit_code == 0, grown.output
    note.verify_cosignature(log.checkpoint_text(40), grown.stdout, witness.verifier_key)


def test_cli_add_checkpoint_refusals(
    runner: CliRunner, tmp_path: Path, witness: Witness, log: FakeLog
) -> None:
    """Rollback, fork, bad proof and old-size conflicts exit 1 with the reason, no traceback."""
    witness.add_checkpoint(log.checkpoint(10), old_size=0, proof=[], timestamp=1)
    directory = str(witness.directory)
    forked = log.fork(3, 2)
    bad_proof = log.proof(10, 20)
    bad_proof[-1] = bytes(32)
    cases = [
        (format_add_checkpoint_request(10, [], log.checkpoint(4)), "rollback"),
        (format_add_checkpoint_request(10, [], forked.checkpoint(10)), "two different"),
        (format_add_checkpoint_request(10, bad_proof, log.checkpoint(20)), "not proven"),
        (format_add_checkpoint_request(4, log.proof(4, 20), log.checkpoint(20)), "has size 10"),
    ]
    for body, reason in cases:
        result = runner.invoke(witness_app, ["add-checkpoint", directory, "-"], input=body, env=ENV)
        assert result.exit_code == 1, result.output
        assert reason in _said(result.output)
        assert result.stdout == ""
        assert "Traceback" not in result.output
    latest = witness.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 10


def test_cli_usage_errors(runner: CliRunner, tmp_path: Path, witness: Witness) -> None:
    """Malformed requests, unknown origins, missing files and passphrases exit 2."""
    directory = str(witness.directory)
    other = FakeLog(origin="other.example/log")
    cases: list[tuple[list[str], bytes | None, Mapping[str, str | None], str]] = [
        (["add-checkpoint", directory, "-"], b"old 0\n", ENV, "no empty line"),
        (
            ["add-checkpoint", directory, "-"],
            format_add_checkpoint_request(0, [], other.checkpoint(3)),
            ENV,
            "does not follow",
        ),
        (["add-checkpoint", directory, str(tmp_path / "missing")], None, ENV, "cannot read"),
        (["add-checkpoint", str(tmp_path), "-"], SPEC_REQUEST, ENV, "not a witness directory"),
        (
            ["add-log", directory, "--origin", "o", "--key", "k"],
            None,
            {"AUDITLOG_PASSPHRASE": None},
            "no passphrase",
        ),
        (
            ["add-log", directory, "--origin", "o", "--key", "k"],
            None,
            {"AUDITLOG_PASSPHRASE": "wrong"},
            "passphrase does not open",
        ),
    ]
    for args, stdin, env, reason in cases:
        result = runner.invoke(witness_app, args, input=stdin, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert reason in _said(result.output), result.output
        assert "Traceback" not in result.output


def test_cli_cosign(runner: CliRunner, tmp_path: Path, witness: Witness, log: FakeLog) -> None:
    """cosign takes a signed checkpoint, --old-size and a proof file of base64 lines."""
    directory = str(witness.directory)
    first = tmp_path / "5.note"
    first.write_text(log.checkpoint(5), "utf-8")
    result = runner.invoke(witness_app, ["cosign", directory, str(first)], env=ENV)
    assert result.exit_code == 0, result.output
    note.verify_cosignature(log.checkpoint_text(5), result.stdout, witness.verifier_key)
    proof_file = tmp_path / "proof"
    proof_file.write_text(
        "".join(base64.b64encode(h).decode() + "\n" for h in log.proof(5, 33)), "utf-8"
    )
    args = ["cosign", directory, "-", "--old-size", "5", "--proof-file", str(proof_file)]
    grown = runner.invoke(witness_app, args, input=log.checkpoint(33), env=ENV)
    assert grown.exit_code == 0, grown.output
    note.verify_cosignature(log.checkpoint_text(33), grown.stdout, witness.verifier_key)
    signed = log.checkpoint(33) + grown.stdout
    assert verify_witnessed(signed, log.verifier, [witness.verifier_key], 1).size == 33
    rollback = runner.invoke(witness_app, ["cosign", directory, str(first)], env=ENV)
    assert rollback.exit_code == 1
    assert "rollback" in _said(rollback.output)
    proof_file.write_text("not base64\n", "utf-8")
    args = ["cosign", directory, "-", "--old-size", "33", "--proof-file", str(proof_file)]
    malformed = runner.invoke(witness_app, args, input=log.checkpoint(40), env=ENV)
    assert malformed.exit_code == 2
    assert "proof line 1" in _said(malformed.output)


# -- state.json is authenticated (format version 2) --------------------------------------------


def test_a_log_planted_in_the_state_without_the_key_is_refused(
    witness: Witness, log: FakeLog
) -> None:
    """Someone who can write the witness directory but holds no passphrase adds a log of their
    own, or swaps a followed log's key for theirs: the witness refuses the whole file rather
    than cosign for them."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    path = witness.directory / "state.json"
    good = json.loads(path.read_bytes())
    attacker = FakeLog(seed=9, origin="evil.example/log")
    planted = json.loads(json.dumps(good))
    planted["logs"][attacker.origin] = {"verifier_key": attacker.verifier, "checkpoint": None}
    swapped = json.loads(json.dumps(good))
    thief = FakeLog(seed=9, origin=ORIGIN)
    swapped["logs"][ORIGIN] = {"verifier_key": thief.verifier, "checkpoint": thief.checkpoint(2)}
    for forged in (planted, swapped):
        path.write_text(json.dumps(forged, indent=2, sort_keys=True) + "\n", "utf-8")
        with pytest.raises(StateFileError, match="not authenticated"):
            Witness.open(witness.directory, TEST_PASSPHRASE)
        with pytest.raises(StateFileError, match="not authenticated"):
            witness.add_checkpoint(attacker.checkpoint(3), old_size=0, proof=[], timestamp=TIME)
        with pytest.raises(StateFileError, match="not authenticated"):
            witness.add_checkpoint(thief.checkpoint(3), old_size=2, proof=[], timestamp=TIME)
    # A state of another witness, with its own valid MAC, is no good here either.
    other = Witness.init(
        witness.directory.parent / "other",
        "other.example/w",
        TEST_PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
    )
    path.write_bytes((other.directory / "state.json").read_bytes())
    with pytest.raises(StateFileError):
        Witness.open(witness.directory, TEST_PASSPHRASE)


def test_an_older_state_put_back_while_the_witness_runs_is_a_rollback(
    witness: Witness, log: FakeLog
) -> None:
    """An older, genuine state.json put back under a running witness would let a log roll
    back; the witness remembers the newest generation it read and refuses."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    path = witness.directory / "state.json"
    older = path.read_bytes()
    witness.add_checkpoint(log.checkpoint(12), old_size=5, proof=log.proof(5, 12), timestamp=TIME)
    path.write_bytes(older)
    with pytest.raises(RollbackError, match="went back from generation 4 to 3"):
        witness.add_checkpoint(log.checkpoint(5), old_size=5, proof=[], timestamp=TIME)
    assert path.read_bytes() == older  # nothing was written over it


def test_a_version_1_state_is_refused_until_migrated_once(witness: Witness, log: FakeLog) -> None:
    """A witness directory of format version 1 opens only after an explicit migration, which
    checks the file, authenticates it and keeps every followed log and checkpoint."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    _as_version_1(witness)
    before = _files(witness.directory)
    with pytest.raises(MigrationRequiredError, match="auditlog witness migrate"):
        Witness.open(witness.directory, TEST_PASSPHRASE)
    assert _files(witness.directory) == before
    migrated = Witness.migrate(witness.directory, TEST_PASSPHRASE)
    assert migrated.followed_logs() == {ORIGIN: log.verifier}
    latest = migrated.latest_checkpoint(ORIGIN)
    assert latest is not None
    assert latest.size == 5
    doc = json.loads(_state(witness))
    assert (doc["version"], doc["generation"]) == (2, 1)
    again = Witness.migrate(witness.directory, TEST_PASSPHRASE)  # already done: unchanged
    assert json.loads(_state(witness)) == doc
    again.add_checkpoint(log.checkpoint(12), old_size=5, proof=log.proof(5, 12), timestamp=TIME)
    # A version 1 file with a checkpoint that does not verify is not migrated.
    _as_version_1(witness)
    path = witness.directory / "state.json"
    old = json.loads(path.read_bytes())
    old["logs"][ORIGIN]["checkpoint"] = log.checkpoint(12).replace("\n12\n", "\n13\n", 1)
    path.write_text(json.dumps(old), "utf-8")
    with pytest.raises(StateFileError, match="does not verify"):
        Witness.migrate(witness.directory, TEST_PASSPHRASE)


def test_cli_migrates_a_version_1_witness(witness: Witness, log: FakeLog) -> None:
    """``auditlog witness migrate`` does the migration; before it, commands exit 2 saying so."""
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    _as_version_1(witness)
    runner = CliRunner()
    env = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}
    add = ["add-log", str(witness.directory), "--origin", "b.example/log", "--key", log.verifier]
    refused = runner.invoke(witness_app, add, env=env)
    assert refused.exit_code == 2, refused.output
    assert "auditlog witness migrate" in " ".join(refused.output.split())
    done = runner.invoke(witness_app, ["migrate", str(witness.directory)], env=env)
    assert done.exit_code == 0, done.output
    assert Witness.open(witness.directory, TEST_PASSPHRASE).followed_logs() == {
        ORIGIN: log.verifier
    }


V1_WITNESS = Path(__file__).parent / "fixtures" / "witness" / "v1"


def test_the_format_v1_witness_fixture_migrates_and_keeps_cosigning(tmp_path: Path) -> None:
    """A witness directory written by format version 1 (tests/fixtures/witness/v1) is refused
    with a clear message, migrates once, and then cosigns the next checkpoint of the log it
    followed, refusing a rollback as before."""
    directory = tmp_path / "witness"
    shutil.copytree(V1_WITNESS, directory)
    with pytest.raises(MigrationRequiredError, match="format version 1"):
        Witness.open(directory, TEST_PASSPHRASE)
    witness = Witness.migrate(directory, TEST_PASSPHRASE)
    origin = "fixture.example/log"
    latest = witness.latest_checkpoint(origin)
    assert latest is not None
    assert latest.size == 5
    signer = (directory / "log.signer").read_text("utf-8").strip()
    leaves = [bytes.fromhex(line) for line in (directory / "leaves.hex").read_text().split()]

    def signed(size: int) -> str:
        return note.sign(
            note.Checkpoint(origin, size, merkle.root(leaves[:size])).to_text(), signer
        )

    line = witness.add_checkpoint(
        signed(9), old_size=5, proof=merkle.consistency_proof(5, 9, leaves), timestamp=TIME
    )
    assert (
        note.verify_cosignature(
            note.Checkpoint(origin, 9, merkle.root(leaves[:9])).to_text(),
            line,
            witness.verifier_key,
        )
        == TIME
    )
    with pytest.raises(RollbackError):
        Witness.open(directory, TEST_PASSPHRASE).add_checkpoint(
            signed(5), old_size=9, proof=[], timestamp=TIME
        )


def _rfc5869_hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 with no salt, written out from RFC 5869 (an independent implementation)."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def test_the_state_mac_follows_docs_witness_md(witness: Witness, log: FakeLog) -> None:
    """An independent verifier computes state.json's MAC from the specification alone; the
    HKDF it uses is first checked against RFC 5869's test case 3 (no salt, no info)."""
    ikm = bytes.fromhex("0b" * 22)
    okm = _rfc5869_hkdf_sha256(ikm, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )
    witness.add_checkpoint(log.checkpoint(5), old_size=0, proof=[], timestamp=TIME)
    raw = _state(witness)
    doc = json.loads(raw)
    seed = note.parse_signer_key(witness._signer_key).seed
    key = _rfc5869_hkdf_sha256(
        seed, b"auditlog/v2 witness state mac\0" + witness.verifier_key.encode(), 32
    )
    unsigned = json.dumps({**doc, "mac": ""}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    expected = hmac.new(
        key, b"auditlog-witness-state/v2\n" + unsigned.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    assert doc["mac"] == expected
