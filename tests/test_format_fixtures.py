"""Logs written by earlier versions keep opening, reading, verifying and sweeping.

Each directory under ``tests/fixtures/logs/`` is a log written by an earlier auditlog (how, and
by which commit, is in its ``expected.json`` and in ``tests/fixtures/make_v1_log.py``), with
what it held then. The format is read for years: every later version must read these as they
are, and must not change a byte of them by reading or verifying.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditlog import AuditLog, KeyShreddedError, RecordRedactedError, TrustedState
from auditlog.codec import encode_record
from auditlog.testing import workload

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


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


def test_there_is_a_fixture_of_format_v1() -> None:
    """The fixture of the first format version is in the tests."""
    assert "v1" in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_old_log_verifies_and_reads_as_written(version: str, tmp_path: Path) -> None:
    """Keyed and keyless verification pass with the pinned key, and every record reads back."""
    expected = _expected(version)
    log_dir = _copy(version, tmp_path) / "log"
    before = _digests(log_dir)
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
    assert _digests(log_dir) == before, "reading and verifying changed a file"


@pytest.mark.parametrize("version", VERSIONS)
def test_old_log_trusted_state_still_holds(version: str, tmp_path: Path) -> None:
    """An outsider's trusted state saved when the log was written accepts it today."""
    expected = _expected(version)
    root = _copy(version, tmp_path)
    trusted = TrustedState(root / "trusted.json")
    with AuditLog.open(root / "log", mode="read") as log:
        log.verify(keyless=True, trusted=trusted, verifier_key=expected["verifier_key"])


@pytest.mark.parametrize("version", VERSIONS)
def test_old_log_opens_for_writing_sweeps_and_grows(version: str, tmp_path: Path) -> None:
    """Opening for writing cuts nothing; a later sweep, new records and proofs all work."""
    expected = _expected(version)
    log_dir = _copy(version, tmp_path) / "log"
    segments_before = {
        k: v for k, v in _digests(log_dir).items() if k.endswith(".seg") or k.endswith(".tomb")
    }
    later = datetime(2026, 3, 1, tzinfo=UTC)
    with AuditLog.open(log_dir, passphrase=expected["passphrase"]) as log:
        assert log.recovery == []
        segments_now = {
            k: v for k, v in _digests(log_dir).items() if k.endswith(".seg") or k.endswith(".tomb")
        }
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
