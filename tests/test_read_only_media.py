"""A log on read-only media (an inspector's copy on a read-only mount) opens, reads and
verifies, keyed and keyless: the log lock is taken where the directory can be written only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditlog import AuditLog
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, workload


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """A log copied onto a tmpfs mounted read-only (needs root, as CI is)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a file system: run the suite as root (CI does)")
    source = tmp_path / "log"
    with AuditLog.create(source, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N) as log:
        log.append_many(list(workload(600, seed=3)))
        log.proofs.sign_checkpoints()
    mount = tmp_path / "media"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], check=True)
    try:
        shutil.copytree(source, mount / "log")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "log"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_log_on_read_only_media_reads_and_verifies(read_only_copy: Path) -> None:
    """Keyless and keyed verify pass, records read back, and nothing can be or is written."""
    with pytest.raises(OSError, match="Read-only file system"):
        (read_only_copy / "probe").write_bytes(b"")
    with AuditLog.open(read_only_copy, mode="read", passphrase=TEST_PASSPHRASE) as log:
        assert log.verify(keyless=True).records == 600
        assert log.verify().records == 600
        assert sum(1 for _ in log.read("chat")) > 0
