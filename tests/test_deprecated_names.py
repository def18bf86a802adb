"""The names ``AuditLog`` had before its sub-APIs still work for one release, and say so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditlog import AuditLog, RetentionPolicy, note
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, workload

START = datetime(2026, 4, 1, tzinfo=UTC)


def test_every_old_method_warns_and_does_what_its_new_name_does(tmp_path: Path) -> None:
    """Each former method of AuditLog raises a DeprecationWarning naming its replacement and
    gives the same result as the replacement."""
    clock = FixedClock(START + timedelta(hours=1))  # the workload's hour has happened
    with AuditLog.create(
        tmp_path / "log", passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N, clock=clock
    ) as log:
        log.append_many(workload(300, seed=5, start=START, span=timedelta(hours=1)))
        policy = RetentionPolicy(keep_at_least=timedelta(0), delete_after=timedelta(days=1))

        def old(expected_new: str) -> pytest.WarningsRecorder:
            return pytest.warns(DeprecationWarning, match=re.escape(expected_new))

        with old("log.keys.status()"):
            assert log.key_status() == log.keys.status()
        with old("log.proofs.sign_checkpoints()"):
            notes = log.checkpoint("chat")
        assert notes["chat"] in log.proofs.stored_checkpoints("chat")
        with old("log.proofs.stored_checkpoints()"):
            assert log.checkpoints("chat") == log.proofs.stored_checkpoints("chat")
        with old("log.proofs.prove_inclusion()"):
            assert log.prove("chat", 1) == log.proofs.prove_inclusion("chat", 1)
        size = int(notes["chat"].split("\n")[1])
        with old("log.proofs.prove_consistency()"):
            assert log.prove_consistency("chat", size) == log.proofs.prove_consistency("chat", size)
        with old("log.retention.set_policy()"):
            log.set_retention("chat", policy, actor="t", now=START)
        with old("log.retention.policy(chain)"):
            assert log.retention("chat") == policy == log.retention.policy("chat")
        with old("log.retention.subject_token()"):
            assert log.subject_token("s") == log.retention.subject_token("s")
        with old("log.retention.add_hold()"):
            hold = log.add_hold("c-1", ["chat"], START, START + timedelta(hours=1), actor="t")
        with old("log.retention.extend_hold()"):
            log.extend_hold(hold.hold_id, end=START + timedelta(hours=2), actor="t")
        with old("log.retention.release_hold()"):
            log.release_hold(hold.hold_id, actor="t")
        with old("log.retention.holds()"):
            assert log.holds() == log.retention.holds()
        later = START + timedelta(days=3)
        with old("log.retention.sweep()"):
            assert log.sweep(later) == log.retention.sweep(later)
        subject = next(iter(log.read("chat", 0, 1))).subject
        with old("log.retention.redact()"):
            assert log.redact(subject, reason="r", actor="t", chains=["chat"], now=later)
        with old("log.keys.rotate_root_key()"):
            new_id = log.rotate_root_key(actor="t")
        assert log.keys.status().root_key_id == new_id
        with old("log.keys.change_passphrase()"):
            log.change_passphrase("another passphrase")
    with AuditLog.open(tmp_path / "log", passphrase="another passphrase", mode="read") as reader:
        reader.verify()


def test_note_open_warns_and_is_open_note() -> None:
    """``note.open``, which shadowed the builtin, warns and is ``note.open_note``."""
    signer, verifier = note.generate_key("example.com/log")
    signed = note.sign("hello\n", signer)
    with pytest.warns(DeprecationWarning, match="open_note"):
        opened = note.open(signed, [verifier])
    assert opened == note.open_note(signed, [verifier]) == "hello\n"
