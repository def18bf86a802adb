"""Signed checkpoints in a log: when they are made, what they say, and what they catch.

Attacks are played as an attacker with write access to the log's files would play them: cut
segment files at block boundaries, delete checkpoint files that would give the cut away, rewrite
the tail with other records, re-sign checkpoints. The defences under test are the stored
checkpoints, a client's ``TrustedState`` file and a pinned verifier key.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from _integrity_helpers import SMALL_CONFIG, scan_chain

from auditlog import AuditLog, note
from auditlog.errors import ForkError, IntegrityError, RollbackError
from auditlog.proofs import TrustedState, open_checkpoint, sign_checkpoint
from auditlog.records import Record
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.storage.layout import EVENTS_CHAIN
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, tamper, workload

CHAIN = "main"

LogFactory = Callable[..., AuditLog]


@functools.cache
def records(n: int, seed: int = 1) -> tuple[Record, ...]:
    """``n`` workload records, generated once per (n, seed) for the whole test session."""
    return tuple(workload(n, seed))


def write_log(create_log: LogFactory, n: int, *, checkpoint: bool = True) -> AuditLog:
    """A new log (small blocks and segments) with ``n`` records in ``CHAIN``, still open."""
    log = create_log(SMALL_CONFIG, fsync=False)
    log.append_many(records(n), chain=CHAIN)
    if checkpoint:
        log.proofs.sign_checkpoints()
    return log


def checkpoint_dir(log_path: Path, chain: str = CHAIN) -> Path:
    return log_path / "chains" / chain / "checkpoints"


def checkpoint_sizes(log_path: Path, chain: str = CHAIN) -> list[int]:
    return CheckpointStore(checkpoint_dir(log_path, chain)).sizes()


def cut_chain(log_path: Path, chain: str, size: int) -> None:
    """Cut ``chain`` back to its first ``size`` records (a block end), sealed segments included."""
    for scan in scan_chain(log_path, chain):
        if scan.first_index >= size:
            scan.path.unlink()
        elif scan.end_index > size:
            block = next(b for b in scan.blocks if b.header.first_index == size)
            os.chmod(scan.path, 0o600)
            os.truncate(scan.path, block.offset)
    # The tiles (derived data, level n holding a 32-byte node per 2**n leaves) would show the
    # cut too: a careful forger cuts them as well.
    tiles = log_path / "chains" / chain / "tiles"
    for level in tiles.iterdir() if tiles.is_dir() else ():
        kept = (size >> int(level.name.removeprefix("level-"))) * 32
        os.truncate(level, min(kept, level.stat().st_size))


def drop_checkpoints_above(log_path: Path, chain: str, size: int) -> None:
    """Delete the checkpoint files that would show the chain was once longer than ``size``."""
    for path in checkpoint_dir(log_path, chain).iterdir():
        if int(path.name[:20]) > size:
            path.unlink()


def block_ends(log_path: Path, chain: str = CHAIN) -> list[int]:
    """The tree size after every block of the chain, in order."""
    return [b.header.tree_size for scan in scan_chain(log_path, chain) for b in scan.blocks]


def fork_chain(older: Path, log_path: Path, chain: str, replacement: Iterable[Record]) -> str:
    """What an insider with the keys can do: put back the copy ``older`` of the whole log,
    append ``replacement`` to ``chain`` and sign a checkpoint of the new head with the log's
    key (the log's own head and checkpoints are then self-consistent)."""
    shutil.rmtree(log_path)
    shutil.copytree(older, log_path)
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE, fsync=False) as log:
        log.append_many(replacement, chain=chain)
        return log.proofs.sign_checkpoints(chain)[chain]


def verify_read_only(
    log_path: Path, *, trusted: TrustedState | None = None, verifier_key: str | None = None
) -> None:
    """Verify the log as an auditor does: read mode, keyless, nothing changed on disk."""
    with AuditLog.open(log_path, mode="read") as log:
        log.verify(keyless=True, trusted=trusted, verifier_key=verifier_key)


# -- when checkpoints are made ------------------------------------------------------------------


def test_a_checkpoint_is_stored_at_every_seal_and_on_demand(
    create_log: LogFactory, log_path: Path
) -> None:
    """Each sealed segment leaves a checkpoint of its end; ``checkpoint()`` adds the head's."""
    log = write_log(create_log, 100, checkpoint=False)
    sealed = [scan.end_index for scan in scan_chain(log_path, CHAIN) if scan.seal is not None]
    assert len(sealed) >= 3
    assert checkpoint_sizes(log_path) == sealed
    notes = log.proofs.sign_checkpoints()
    assert checkpoint_sizes(log_path) == [*sealed, 100]
    assert notes[CHAIN] == CheckpointStore(checkpoint_dir(log_path)).get(100)
    assert set(notes) == {CHAIN, EVENTS_CHAIN}  # the log's own events are signed too
    assert log.proofs.stored_checkpoints(CHAIN)[-1] == notes[CHAIN]


def test_checkpoint_signs_the_head_of_every_chain(create_log: LogFactory, log_path: Path) -> None:
    """``checkpoint()`` without a chain signs one checkpoint per chain, at its record count."""
    log = create_log(SMALL_CONFIG, fsync=False)
    log.append_many(records(200))
    notes = log.proofs.sign_checkpoints()
    assert set(notes) == {*log.chains(), EVENTS_CHAIN}
    report = log.verify(keyless=True)
    events = notes.pop(EVENTS_CHAIN)
    checkpoint = open_checkpoint(events, log.verifier_key, log.chain_origin(EVENTS_CHAIN))
    assert report.events is not None
    assert (checkpoint.size, checkpoint.root_hash) == (report.events.records, report.events.root)
    for chain, signed in notes.items():
        checkpoint = open_checkpoint(signed, log.verifier_key, log.chain_origin(chain))
        assert checkpoint.size == report.chains[chain].records
        assert checkpoint.root_hash == report.chains[chain].root


def test_every_stored_checkpoint_opens_and_matches_the_verified_root(
    create_log: LogFactory,
) -> None:
    """Every stored checkpoint opens with the verifier key and says the recomputed root."""
    log = write_log(create_log, 150)
    report = log.verify()
    roots = report.chains[CHAIN].roots
    signed_notes = log.proofs.stored_checkpoints(CHAIN)
    assert len(signed_notes) >= 5
    for signed in signed_notes:
        checkpoint = open_checkpoint(signed, log.verifier_key, log.chain_origin(CHAIN))
        assert checkpoint.root_hash == roots[checkpoint.size]
        assert note.open_with_signatures(signed, [log.verifier_key])[1] == [log.origin]


# -- altered checkpoint files -------------------------------------------------------------------


def _resign_with_another_key(signed: str, log: AuditLog) -> str:
    signer, _ = note.generate_key(log.origin)
    text = signed[: signed.rfind("\n\n") + 1]
    return note.sign(text, signer)


def _damage_signature(signed: str, log: AuditLog) -> str:
    text, _, line = signed[:-1].rpartition("\n")
    prefix, _, encoded = line.rpartition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01
    return f"{text}\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


@pytest.mark.parametrize("alter", [_resign_with_another_key, _damage_signature])
def test_a_checkpoint_not_signed_by_the_log_is_an_integrity_error(
    create_log: LogFactory, log_path: Path, alter: Callable[[str, AuditLog], str]
) -> None:
    """A checkpoint file whose signature is not the log's is refused, and not taken for a fork."""
    log = write_log(create_log, 100)
    path = CheckpointStore(checkpoint_dir(log_path)).path(64)
    path.write_text(alter(path.read_text("utf-8"), log), "utf-8")
    with pytest.raises(IntegrityError, match="does not verify") as info:
        log.verify()
    assert type(info.value) is IntegrityError
    assert info.value.location == {"chain": CHAIN, "checkpoint": 64}


def test_a_checkpoint_signed_for_another_root_is_a_fork(
    create_log: LogFactory, log_path: Path
) -> None:
    """A validly signed checkpoint whose root is not the chain's at that size is a ForkError."""
    log = write_log(create_log, 100)
    path = CheckpointStore(checkpoint_dir(log_path)).path(64)
    other_root = bytes(32)
    path.write_text(
        sign_checkpoint(tamper.signer_key(log), log.chain_origin(CHAIN), 64, other_root), "utf-8"
    )
    with pytest.raises(ForkError) as info:
        log.verify(keyless=True)
    assert info.value.location["size"] == 64


def test_a_checkpoint_filed_under_another_size_is_refused(
    create_log: LogFactory, log_path: Path
) -> None:
    """A checkpoint file renamed to another tree size does not pass for that size."""
    log = write_log(create_log, 100)
    store = CheckpointStore(checkpoint_dir(log_path))
    store.path(64).unlink()
    store.path(32).rename(store.path(64))
    with pytest.raises(IntegrityError, match="another tree size"):
        log.verify(keyless=True)


# -- truncation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(64, id="whole-segments"),
        pytest.param(40, id="blocks-of-a-sealed-segment"),
        pytest.param(96, id="the-open-segment-file"),
    ],
)
def test_a_chain_cut_below_a_stored_checkpoint_is_a_rollback(
    create_log: LogFactory, log_path: Path, keep: int
) -> None:
    """Cutting whole blocks or segments below a stored checkpoint names both sizes."""
    write_log(create_log, 100).close()
    assert keep in block_ends(log_path)
    cut_chain(log_path, CHAIN, keep)
    assert block_ends(log_path)[-1] == keep
    with pytest.raises(RollbackError) as info:
        verify_read_only(log_path)
    stored = min(size for size in checkpoint_sizes(log_path) if size > keep)
    assert info.value.location["size"] == keep
    assert info.value.location["trusted_size"] == stored
    assert f"{keep} < {stored}" in str(info.value)


def test_one_block_cut_with_its_checkpoints_deleted_is_caught_by_the_head(
    create_log: LogFactory, log_path: Path
) -> None:
    """One block cut off the open tail, with every checkpoint file the cut would contradict
    deleted too, is a RollbackError: the log's signed head counts the checkpoints."""
    write_log(create_log, 100).close()
    cut = block_ends(log_path)[-2]
    assert cut == 96
    cut_chain(log_path, CHAIN, cut)
    drop_checkpoints_above(log_path, CHAIN, cut)
    with pytest.raises(RollbackError, match="checkpoints were deleted"):
        verify_read_only(log_path)


def test_a_whole_log_put_back_from_an_older_copy_is_caught_only_by_a_trusted_state(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """A copy of the whole directory from before the last block is self-consistent (its head
    included), so only a checkpoint trusted since catches it being put back."""
    log = create_log(SMALL_CONFIG, fsync=False)
    log.append_many(records(100)[:96], chain=CHAIN)
    log.proofs.sign_checkpoints()
    older = tmp_path / "older"
    shutil.copytree(log_path, older)
    log.append_many(records(100)[96:], chain=CHAIN)
    log.proofs.sign_checkpoints()
    log.close()
    state_path = tmp_path / "trusted.json"
    verify_read_only(log_path, trusted=TrustedState(state_path))
    shutil.rmtree(log_path)
    shutil.copytree(older, log_path)
    verify_read_only(log_path)  # without outside state, the older log is self-consistent
    with pytest.raises(RollbackError) as info:
        verify_read_only(log_path, trusted=TrustedState(state_path))
    assert (info.value.location["size"], info.value.location["trusted_size"]) == (96, 100)
    assert "96" in str(info.value)


def test_a_chain_that_disappeared_after_being_trusted_is_a_rollback(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """Deleting a whole chain (segments and checkpoints) does not escape a trusted state."""
    log = create_log(SMALL_CONFIG, fsync=False)
    log.append_many(records(100), chain=CHAIN)
    log.append_many(records(20, seed=2), chain="other")
    log.proofs.sign_checkpoints()
    log.close()
    state = tmp_path / "trusted.json"
    verify_read_only(log_path, trusted=TrustedState(state))
    shutil.rmtree(log_path / "chains" / "other")
    with pytest.raises(RollbackError, match="gone"):
        verify_read_only(log_path, trusted=TrustedState(state))


# -- forks --------------------------------------------------------------------------------------


def _trusted_then_forked(
    create_log: LogFactory, log_path: Path, state_path: Path, keep: int, replacement: int
) -> tuple[str, str]:
    """A log of 100 records trusted in ``state_path``, then forked after ``keep`` records with
    ``replacement`` other ones; returns the trusted checkpoint and the fork's new one."""
    log = create_log(SMALL_CONFIG, fsync=False)
    log.append_many(records(100)[:keep], chain=CHAIN)
    older = state_path.parent / "older"
    shutil.copytree(log_path, older)
    log.append_many(records(100)[keep:], chain=CHAIN)
    log.proofs.sign_checkpoints()
    origin = log.chain_origin(CHAIN)
    log.close()
    verify_read_only(log_path, trusted=TrustedState(state_path))
    trusted = TrustedState(state_path).checkpoints[origin]
    forked = fork_chain(older, log_path, CHAIN, records(replacement, seed=99))
    return trusted, forked


def test_a_forked_tail_of_the_same_size_is_a_fork_with_evidence(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """A tail rewritten with other records to the trusted size is a ForkError, and both
    checkpoints are kept next to the state file."""
    state_path = tmp_path / "trusted.json"
    trusted, forked = _trusted_then_forked(create_log, log_path, state_path, 96, 4)
    assert trusted != forked
    assert checkpoint_sizes(log_path)[-1] == 100
    verify_read_only(log_path)  # the fork is self-consistent: only outside state can tell
    with pytest.raises(ForkError) as info:
        verify_read_only(log_path, trusted=TrustedState(state_path))
    assert info.value.location["size"] == 100
    evidence = list(tmp_path.glob("trusted.json.fork-*"))
    assert len(evidence) == 1
    assert str(evidence[0]) in str(info.value)
    kept = evidence[0].read_text("utf-8")
    assert trusted in kept
    assert forked in kept


def test_a_forked_tail_with_other_block_ends_is_a_fork_with_evidence(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """A rewritten tail whose blocks do not end at the trusted size is still a ForkError with
    evidence, not a bare IntegrityError: the trusted size lies inside a block of the fork."""
    state_path = tmp_path / "trusted.json"
    _trusted_then_forked(create_log, log_path, state_path, 96, 8)
    assert 100 not in block_ends(log_path)
    with pytest.raises(ForkError) as info:
        verify_read_only(log_path, trusted=TrustedState(state_path))
    assert info.value.location["size"] == 100
    assert len(list(tmp_path.glob("trusted.json.fork-*"))) == 1


def test_checkpointing_a_rewritten_tail_over_a_stored_note_keeps_both(log_path: Path) -> None:
    """A chain cut below its own checkpoint refuses write-open; a second checkpoint of a stored
    size with another root raises ForkError and both notes are kept."""
    with AuditLog.create(
        log_path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N, config=SMALL_CONFIG
    ) as log:
        log.append_many(records(100), chain=CHAIN)
        original = log.proofs.sign_checkpoints(CHAIN)[CHAIN]
        signer = tamper.signer_key(log)
        origin = log.chain_origin(CHAIN)
    cut_chain(log_path, CHAIN, 96)
    with pytest.raises(RollbackError, match="96 < 100"):
        AuditLog.open(log_path, passphrase=TEST_PASSPHRASE, fsync=False)
    store = CheckpointStore(checkpoint_dir(log_path))
    other = sign_checkpoint(signer, origin, 100, bytes(32))
    with pytest.raises(ForkError):
        store.save(other, 100, bytes(32))
    assert store.get(100) == original
    forks = list(checkpoint_dir(log_path).glob("00000000000000000100.fork-*.note"))
    assert len(forks) == 1
    assert forks[0].read_text("utf-8") == other
    with pytest.raises(RollbackError):
        verify_read_only(log_path)


# -- the trusted state ---------------------------------------------------------------------------


def test_trusted_state_advances_only_forward(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """The state follows the newest checkpoint as the log grows, and never moves back."""
    log = write_log(create_log, 100)
    origin, key = log.chain_origin(CHAIN), log.verifier_key
    state_path = tmp_path / "trusted.json"

    def trusted_size() -> int | None:
        checkpoint = TrustedState(state_path).trusted(origin, key)
        return None if checkpoint is None else checkpoint.size

    assert trusted_size() is None
    log.verify(trusted=TrustedState(state_path))
    assert trusted_size() == 100
    log.append_many(records(140)[100:], chain=CHAIN)
    log.proofs.sign_checkpoints()
    log.close()
    verify_read_only(log_path, trusted=TrustedState(state_path))
    assert trusted_size() == 140
    drop_checkpoints_above(log_path, CHAIN, 100)  # the chain is intact; only notes went
    with pytest.raises(RollbackError, match="checkpoints were deleted"):
        verify_read_only(log_path, trusted=TrustedState(state_path))
    assert trusted_size() == 140
    doc = json.loads(state_path.read_text("utf-8"))
    assert (doc["format"], doc["version"]) == ("auditlog-trusted-checkpoints", 1)


def test_a_damaged_trusted_state_is_refused(tmp_path: Path) -> None:
    """A state file that cannot be read is an IntegrityError, never an empty state."""
    state_path = tmp_path / "trusted.json"
    state_path.write_text('{"format": "auditlog-trusted-checkpoints", "version"', "utf-8")
    with pytest.raises(IntegrityError):
        TrustedState(state_path)
    state_path.write_text('{"format": "something-else", "version": 1}', "utf-8")
    with pytest.raises(IntegrityError):
        TrustedState(state_path)


# -- keys -----------------------------------------------------------------------------------------


def test_the_signing_key_is_never_on_disk_in_clear(
    create_log: LogFactory, log_path: Path, tmp_path: Path
) -> None:
    """No file of the log or of a trusted state holds the checkpoint signer key in any encoding."""
    log = write_log(create_log, 100)
    log.verify(trusted=TrustedState(tmp_path / "trusted.json"))
    signer = tamper.signer_key(log)
    log.close()
    encoded = signer.split("+", 4)[4]  # PRIVATE+KEY+<name>+<hash>+<base64, may hold '+'>
    key_bytes = base64.b64decode(encoded)
    assert key_bytes[0] == 0x01
    assert len(key_bytes) == 33
    seed = key_bytes[1:]
    needles = [
        signer.encode(),
        encoded.encode(),
        seed,
        base64.b64encode(seed),
        base64.b64encode(seed).rstrip(b"="),
        seed.hex().encode(),
        seed.hex().upper().encode(),
    ]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "checkpoint.key" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path.relative_to(tmp_path)} holds the signer key"


def test_verifying_with_another_verifier_key_fails(create_log: LogFactory) -> None:
    """A pinned verifier key that is not the log's makes verification fail."""
    log = write_log(create_log, 100)
    log.verify(verifier_key=log.verifier_key)
    _, other = note.generate_key(log.origin)
    with pytest.raises(IntegrityError, match="does not verify"):
        log.verify(verifier_key=other)


def test_a_swapped_manifest_key_is_caught_only_by_pinning(
    create_log: LogFactory, log_path: Path
) -> None:
    """An attacker who replaces the manifest's key and re-signs every signed file with their own
    key fools a keyless verifier that reads the key from the log, not one that pinned it, nor
    the operator, whose key provider yields the real key."""
    log = write_log(create_log, 100)
    pinned = log.verifier_key
    log.close()
    signer, _ = note.generate_key(log.origin)
    tamper.resign_with(log_path, signer)
    verify_read_only(log_path)
    with pytest.raises(IntegrityError, match=r"does not verify|not signed by this log"):
        verify_read_only(log_path, verifier_key=pinned)
    with pytest.raises(IntegrityError, match="not the one of the log's signing key"):
        AuditLog.open(log_path, passphrase=TEST_PASSPHRASE)
