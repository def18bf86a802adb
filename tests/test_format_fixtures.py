"""Logs written by earlier versions are refused with a clear message, or migrated once and then
read, verified and swept as they were written.

Each directory under ``tests/fixtures/logs/`` is a log written by an earlier auditlog (how, and
by which commit, is in its ``expected.json`` and in ``tests/fixtures/make_v1_log.py``), with
what it held then. The format is read for years: a refusal changes nothing, the migration
rewrites no segment, and every record reads back as it was written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    ConfigurationError,
    IntegrityError,
    KeyShreddedError,
    MigrationRequiredError,
    RecordRedactedError,
    TrustedState,
)
from auditlog.cli import app
from auditlog.codec import encode_record
from auditlog.testing import workload

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
# Written before migration and never rewritten by it.
KEPT = (".seg", ".tomb", ".note", ".zdict")


def _expected(version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / version / "expected.json").read_text())
    return loaded


def _copy(version: str, tmp_path: Path) -> Path:
    target = tmp_path / version
    shutil.copytree(FIXTURES / version, target)
    return target


def _digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file of a log but its lock files (which hold a writer's pid)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


def _migrated(version: str, tmp_path: Path) -> Path:
    log_dir = _copy(version, tmp_path) / "log"
    AuditLog.migrate(log_dir, passphrase=_expected(version)["passphrase"])
    return log_dir


def test_there_is_a_fixture_of_format_v1() -> None:
    """The fixture of the first format version is in the tests."""
    assert "v1" in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", ["read", "write"])
def test_an_old_log_is_refused_until_migrated_and_nothing_changes(
    version: str, mode: str, tmp_path: Path
) -> None:
    """Opening a v1 log (to read or to write) raises MigrationRequiredError saying how to
    migrate, and leaves every file as it was."""
    log_dir = _copy(version, tmp_path) / "log"
    before = _digests(log_dir)
    with pytest.raises(MigrationRequiredError, match="auditlog migrate"):
        AuditLog.open(log_dir, mode=mode, passphrase=_expected(version)["passphrase"])  # type: ignore[arg-type]
    assert _digests(log_dir) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_a_migrated_log_verifies_and_reads_as_written(version: str, tmp_path: Path) -> None:
    """After migration, keyed and keyless verification pass with the pinned key, every record
    reads back as written, and no segment, checkpoint, tombstone, redaction note or dictionary
    was rewritten."""
    expected = _expected(version)
    original = _digests(FIXTURES / version / "log")
    log_dir = _migrated(version, tmp_path)
    now = _digests(log_dir)
    for name, sha in original.items():
        if name.endswith(KEPT):
            assert now[name] == sha, f"migration rewrote {name}"
    with AuditLog.open(log_dir, mode="read", passphrase=expected["passphrase"]) as log:
        assert log.verifier_key == expected["verifier_key"]
        for keyless in (True, False):
            report = log.verify(keyless=keyless, verifier_key=expected["verifier_key"])
            assert sorted(report.chains) == sorted(expected["chains"])
            for chain, want in expected["chains"].items():
                got = report.chains[chain]
                assert got.size == want["size"]
                assert got.records == want["records"]
                assert got.root.hex() == want["root"]
                assert [list(r) for r in got.tombstoned] == want["tombstoned"]
        for chain, want in expected["chains"].items():
            digest = hashlib.sha256()
            readable = redacted = deleted = 0
            for index in range(want["size"]):
                try:
                    (record,) = log.read(chain, index, index + 1)
                except RecordRedactedError:
                    redacted += 1
                    continue
                except KeyShreddedError:
                    deleted += 1
                    continue
                readable += 1
                digest.update(index.to_bytes(8, "big") + encode_record(record))
            assert (readable, redacted, deleted) == (
                want["readable"],
                want["redacted"],
                want["deleted"],
            )
            assert digest.hexdigest() == want["records_sha256"]
        (event,) = [e for _, e in log.events() if e.event == "migrated"]
        assert "verified with keys" in event.detail


@pytest.mark.parametrize("version", VERSIONS)
def test_migration_happens_once(version: str, tmp_path: Path) -> None:
    """Migrating a log that was migrated already is refused and changes nothing."""
    log_dir = _migrated(version, tmp_path)
    before = _digests(log_dir)
    with pytest.raises(ConfigurationError, match="format v2 already"):
        AuditLog.migrate(log_dir, passphrase=_expected(version)["passphrase"])
    assert _digests(log_dir) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_a_migration_stopped_before_its_head_is_finished_by_running_it_again(
    version: str, tmp_path: Path
) -> None:
    """A migration stopped after the manifest was signed and before the first head was
    written is finished by migrating again."""
    expected = _expected(version)
    log_dir = _migrated(version, tmp_path)
    (log_dir / "head.note").unlink()
    shutil.rmtree(log_dir / "chains" / "_log")
    AuditLog.migrate(log_dir, passphrase=expected["passphrase"])
    with AuditLog.open(log_dir, mode="read") as log:
        log.verify(keyless=True, verifier_key=expected["verifier_key"])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_v2_log_passed_off_as_v1_is_not_migrated(version: str, tmp_path: Path) -> None:
    """Putting a v1 manifest back into a migrated log (to get its state signed unverified) is
    refused: the events chain (or the v2 key files) give it away, and nothing changes."""
    expected = _expected(version)
    log_dir = _migrated(version, tmp_path)
    shutil.copy(FIXTURES / version / "log" / "manifest.json", log_dir / "manifest.json")
    before = _digests(log_dir)
    with pytest.raises(IntegrityError, match="pass the log off as v1"):
        AuditLog.migrate(log_dir, passphrase=expected["passphrase"])
    assert _digests(log_dir) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_trusted_state_still_holds_after_migration(version: str, tmp_path: Path) -> None:
    """An outsider's trusted state saved when the log was written accepts it once migrated."""
    expected = _expected(version)
    root = _copy(version, tmp_path)
    AuditLog.migrate(root / "log", passphrase=expected["passphrase"])
    trusted = TrustedState(root / "trusted.json")
    with AuditLog.open(root / "log", mode="read") as log:
        log.verify(keyless=True, trusted=trusted, verifier_key=expected["verifier_key"])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_migrated_log_opens_for_writing_sweeps_and_grows(version: str, tmp_path: Path) -> None:
    """After migration, opening for writing cuts nothing; a later sweep, new records and proofs
    all work."""
    expected = _expected(version)
    log_dir = _migrated(version, tmp_path)
    segments_before = {k: v for k, v in _digests(log_dir).items() if k.endswith((".seg", ".tomb"))}
    later = datetime(2026, 3, 1, tzinfo=UTC)
    with AuditLog.open(log_dir, passphrase=expected["passphrase"]) as log:
        assert log.recovery == []
        segments_now = {k: v for k, v in _digests(log_dir).items() if k.endswith((".seg", ".tomb"))}
        assert segments_now == segments_before, "opening for writing changed a segment"
        plan = log.retention.sweep(later, dry_run=False)
        assert plan.applied
        assert plan.chains["chat"].delete_segments, "the rest of chat is past its ceiling"
        result = log.append_many(workload(50, seed=99, start=later, span=timedelta(hours=1)))
        assert result.durable
        log.proofs.sign_checkpoints()
        proof = log.proofs.prove_inclusion("chat", log.stats().chains["chat"].records - 1)
        assert proof.size == log.stats().chains["chat"].records
        report = log.verify(verifier_key=expected["verifier_key"])
        assert report.chains["chat"].size > expected["chains"]["chat"]["size"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_cli_refuses_an_old_log_then_migrates_it(version: str, tmp_path: Path) -> None:
    """``auditlog verify`` of a v1 log exits 2 naming ``auditlog migrate``; ``auditlog
    migrate`` verifies every record, signs the state and says so; the log then verifies."""
    log_dir = _copy(version, tmp_path) / "log"
    env = {"AUDITLOG_PASSPHRASE": _expected(version)["passphrase"]}
    runner = CliRunner()
    refused = runner.invoke(app, ["verify", str(log_dir)], env=env)
    assert refused.exit_code == 2, refused.output
    assert "auditlog migrate" in " ".join(refused.output.split())
    migrated = runner.invoke(app, ["migrate", str(log_dir)], env=env)
    assert migrated.exit_code == 0, migrated.output
    said = " ".join(migrated.output.split())
    assert "from format v1 to v2" in said
    assert "records verified with keys" in said
    again = runner.invoke(app, ["migrate", str(log_dir)], env=env)
    assert again.exit_code == 2, again.output  # once only: a v2 log is not migrated
    assert "format v2 already" in " ".join(again.output.split())
    assert runner.invoke(app, ["verify", str(log_dir)], env=env).exit_code == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_a_log_made_before_holds_existed_migrates_with_a_new_hold_key(
    version: str, tmp_path: Path
) -> None:
    """A v1 log without ``keys/hold.key`` (made before legal holds existed, so no hold names
    subjects) migrates and gets a hold key; one whose holds name subjects but whose hold key
    is gone is refused before anything is written."""
    expected = _expected(version)
    log_dir = _copy(version, tmp_path) / "log"
    (log_dir / "keys" / "hold.key").unlink()
    before = _digests(log_dir)
    with pytest.raises(IntegrityError, match=r"hold\.key is missing"):
        AuditLog.migrate(log_dir, passphrase=expected["passphrase"])
    assert _digests(log_dir) == before
    (log_dir / "holds.json").unlink()
    AuditLog.migrate(log_dir, passphrase=expected["passphrase"])
    with AuditLog.open(log_dir, passphrase=expected["passphrase"]) as log:
        assert len(log.retention.subject_token("alice")) == 32
        log.verify(verifier_key=expected["verifier_key"])
