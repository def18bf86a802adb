"""A log and its witnesses end to end: cosigning, then catching a cut or a fork after it.

The log is a real ``AuditLog``; the witnesses are real ``Witness`` directories fed the log's own
checkpoints and consistency proofs, the way a log operator feeds them after each checkpoint.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from _integrity_helpers import SMALL_CONFIG
from test_checkpoints import CHAIN, fork_chain, records, verify_read_only

from auditlog import AuditLog, TrustedState, merkle, note
from auditlog.errors import ForkError, NoteError, RollbackError
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, settle
from auditlog.witness import Witness, verify_witnessed

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: cosignature timestamps are passed in


@dataclass
class Setup:
    """A closed log of 100 records in ``CHAIN`` and three witnesses that follow the chain."""

    path: Path
    origin: str
    key: str
    witnesses: list[Witness]
    older: Path
    """A copy of the whole log when it held 96 records, for putting back (rollbacks, forks)."""

    @property
    def witness_keys(self) -> list[str]:
        return [w.verifier_key for w in self.witnesses]


@pytest.fixture
def setup(tmp_path: Path, log_path: Path) -> Setup:
    """The log, created and closed, and three fresh witnesses following its chain."""
    older = tmp_path / "older"
    with AuditLog.create(
        log_path,
        passphrase=TEST_PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
        config=SMALL_CONFIG,
        fsync=False,
    ) as log:
        log.append_many(records(100)[:96], chain=CHAIN)
        settle(log)  # no dictionary is being stored while the directory is copied
        shutil.copytree(log_path, older)
        log.append_many(records(100)[96:], chain=CHAIN)
        log.proofs.sign_checkpoints()
        origin, key = log.chain_origin(CHAIN), log.verifier_key
    witnesses = [
        Witness.init(
            tmp_path / f"w{i}", f"witness.example/w{i}", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N
        )
        for i in range(3)
    ]
    for witness in witnesses:
        witness.add_log(origin, key)
    return Setup(log_path, origin, key, witnesses, older)


def newest_checkpoint(path: Path) -> str:
    with AuditLog.open(path, mode="read") as log:
        return log.proofs.stored_checkpoints(CHAIN)[-1]


def submit(setup: Setup, witness: Witness, signed: str) -> str:
    """Send ``signed`` to ``witness`` with a proof from the size it knows, as the log would;
    return the cosignature line."""
    known = witness.latest_checkpoint(setup.origin)
    size = note.Checkpoint.from_text(note.open_note(signed, [setup.key])).size
    proof: list[bytes] = []
    old_size = 0 if known is None else known.size
    if 0 < old_size < size:
        with AuditLog.open(setup.path, mode="read") as log:
            proof = list(log.proofs.prove_consistency(CHAIN, old_size, size).proof)
    return witness.add_checkpoint(signed, old_size=old_size, proof=proof, timestamp=NOW)


def cosign(setup: Setup, signed: str, witnesses: list[Witness]) -> str:
    """``signed`` with the cosignature lines of ``witnesses`` appended."""
    return signed + "".join(submit(setup, w, signed) for w in witnesses)


def test_a_log_checkpoint_is_cosigned_by_two_witnesses(setup: Setup) -> None:
    """Two witnesses cosign the log's newest checkpoint; the note then meets a 2-of-3 policy and
    still opens as a plain checkpoint for readers that know only the log's key."""
    signed = newest_checkpoint(setup.path)
    witnessed = cosign(setup, signed, setup.witnesses[:2])
    checkpoint = verify_witnessed(witnessed, setup.key, setup.witness_keys, 2)
    assert (checkpoint.origin, checkpoint.size) == (setup.origin, 100)
    assert note.open_note(witnessed, [setup.key]) == note.open_note(signed, [setup.key])
    for witness in setup.witnesses[:2]:
        assert witness.latest_checkpoint(setup.origin) == checkpoint
    verify_read_only(setup.path)


def test_witnesses_follow_the_log_as_it_grows(setup: Setup) -> None:
    """Each new checkpoint reaches the witnesses with a consistency proof from what they know."""
    witness = setup.witnesses[0]
    submit(setup, witness, newest_checkpoint(setup.path))
    for start, end in [(100, 140), (140, 200), (200, 260)]:
        with AuditLog.open(setup.path, passphrase=TEST_PASSPHRASE, fsync=False) as log:
            log.append_many(records(end)[start:], chain=CHAIN)
            signed = log.proofs.sign_checkpoints(CHAIN)[CHAIN]
        line = submit(setup, witness, signed)
        latest = witness.latest_checkpoint(setup.origin)
        assert latest is not None
        assert latest.size == end
        verify_witnessed(signed + line, setup.key, [witness.verifier_key], 1)


def test_a_block_cut_after_a_witnessed_checkpoint_is_detected(setup: Setup, tmp_path: Path) -> None:
    """After a witnessed checkpoint, putting back a copy of the log from one block earlier (self-
    consistent, its signed head included) fails verification against that checkpoint, and the
    witnesses refuse to cosign the shorter log."""
    witnessed = cosign(setup, newest_checkpoint(setup.path), setup.witnesses[:2])
    verify_witnessed(witnessed, setup.key, setup.witness_keys, 2)
    state = TrustedState(tmp_path / "trusted.json")
    state.update(setup.origin, witnessed)
    cut = 96
    shutil.rmtree(setup.path)
    shutil.copytree(setup.older, setup.path)
    verify_read_only(setup.path)  # self-consistent: the cut needs the witnessed checkpoint
    with pytest.raises(RollbackError) as info:
        verify_read_only(setup.path, trusted=TrustedState(tmp_path / "trusted.json"))
    assert (info.value.location["size"], info.value.location["trusted_size"]) == (cut, 100)
    with AuditLog.open(setup.path, passphrase=TEST_PASSPHRASE, fsync=False) as log:
        shorter = log.proofs.sign_checkpoints(CHAIN)[CHAIN]
    for witness in setup.witnesses[:2]:
        with pytest.raises(RollbackError):
            witness.add_checkpoint(shorter, old_size=100, proof=[], timestamp=NOW)
        latest = witness.latest_checkpoint(setup.origin)
        assert latest is not None
        assert latest.size == 100


def test_a_forked_history_of_the_same_size_is_refused_and_kept(setup: Setup) -> None:
    """A tail rewritten to the witnessed size gets a validly signed checkpoint from the log, but
    no cosignature: each witness raises ForkError and keeps both checkpoints."""
    witness = setup.witnesses[0]
    original = newest_checkpoint(setup.path)
    submit(setup, witness, original)
    forked = fork_chain(setup.older, setup.path, CHAIN, records(4, seed=99))
    assert forked != original
    with pytest.raises(ForkError):
        witness.add_checkpoint(forked, old_size=100, proof=[], timestamp=NOW)
    evidence = list((witness.directory / "evidence").iterdir())
    assert len(evidence) == 1
    kept = evidence[0].read_text("utf-8")
    assert all(line in kept for line in original.splitlines() + forked.splitlines())


def test_a_forked_history_that_grew_past_the_witness_is_refused(setup: Setup) -> None:
    """A rewritten tail that grew beyond the witnessed size has no consistency proof from the
    witnessed tree: the proof the log can produce fails, and the witness raises ForkError."""
    witness = setup.witnesses[0]
    submit(setup, witness, newest_checkpoint(setup.path))
    forked = fork_chain(setup.older, setup.path, CHAIN, records(40, seed=99))
    with AuditLog.open(setup.path, mode="read") as log:
        assert log.proofs.stored_checkpoints(CHAIN)[-1] == forked
        leaves = [log.proofs.prove_inclusion(CHAIN, i, 136).leaf_hash for i in range(136)]
    proof = merkle.consistency_proof(100, 136, leaves)
    with pytest.raises(ForkError):
        witness.add_checkpoint(forked, old_size=100, proof=proof, timestamp=NOW)
    latest = witness.latest_checkpoint(setup.origin)
    assert latest is not None
    assert latest.size == 100


def test_a_witness_refuses_a_rollback_even_with_an_old_genuine_checkpoint(setup: Setup) -> None:
    """Replaying an older checkpoint the log really signed is still a rollback to a witness."""
    with AuditLog.open(setup.path, mode="read") as log:
        older = log.proofs.stored_checkpoints(CHAIN)[0]
    witness = setup.witnesses[0]
    submit(setup, witness, newest_checkpoint(setup.path))
    with pytest.raises(RollbackError):
        witness.add_checkpoint(older, old_size=100, proof=[], timestamp=NOW)


@pytest.mark.parametrize(
    ("cosigners", "threshold", "accepted"),
    [
        (2, 1, True),
        (2, 2, True),
        (2, 3, False),
        (3, 3, True),
        (1, 2, False),
        (0, 1, False),
    ],
)
def test_a_k_of_n_witness_policy_end_to_end(
    setup: Setup, cosigners: int, threshold: int, accepted: bool
) -> None:
    """A client's "k of these n witnesses" policy accepts a checkpoint exactly when at least k
    of them cosigned it, and fails closed with NoteError otherwise."""
    witnessed = cosign(setup, newest_checkpoint(setup.path), setup.witnesses[:cosigners])
    check: Callable[[], object] = lambda: verify_witnessed(  # noqa: E731
        witnessed, setup.key, setup.witness_keys, threshold
    )
    if accepted:
        check()
    else:
        with pytest.raises(NoteError):
            check()


def test_a_witness_policy_is_not_fooled_by_reused_or_foreign_cosignatures(setup: Setup) -> None:
    """Cosignatures on another checkpoint, one witness listed twice, or a witness the policy does
    not name, do not count towards the threshold."""
    with AuditLog.open(setup.path, mode="read") as log:
        older, newest = log.proofs.stored_checkpoints(CHAIN)[-2:]
    first, second, outsider = setup.witnesses
    older_line = first.add_checkpoint(older, old_size=0, proof=[], timestamp=NOW)
    # The line from the older checkpoint, pasted under the newest one, is a bad signature.
    with pytest.raises(NoteError):
        verify_witnessed(newest + older_line, setup.key, [first.verifier_key], 1)
    older_size = int(older.split("\n")[1])
    with AuditLog.open(setup.path, mode="read") as log:
        proof = log.proofs.prove_consistency(CHAIN, older_size, 100).proof
    line = first.add_checkpoint(newest, old_size=older_size, proof=proof, timestamp=NOW)
    twice = newest + line + line
    with pytest.raises(NoteError):
        verify_witnessed(twice, setup.key, [first.verifier_key, second.verifier_key], 2)
    foreign = newest + line + submit(setup, outsider, newest)
    with pytest.raises(NoteError):
        verify_witnessed(foreign, setup.key, [first.verifier_key, second.verifier_key], 2)
    verify_witnessed(foreign, setup.key, [first.verifier_key, outsider.verifier_key], 2)
