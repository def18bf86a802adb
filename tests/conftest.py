"""Shared fixtures: logs in pytest's temporary directories, opened with the test passphrase."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditlog import AuditLog, LogConfig
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where a test's log lives (not created yet)."""
    return tmp_path / "log"


@pytest.fixture
def create_log(log_path: Path) -> Iterator[Callable[..., AuditLog]]:
    """A factory for a new log at ``log_path`` with the test passphrase; closed after the test."""
    opened: list[AuditLog] = []

    def make(config: LogConfig | None = None, **kwargs: Any) -> AuditLog:
        log = AuditLog.create(
            log_path, passphrase=TEST_PASSPHRASE, config=config, scrypt_n=TEST_SCRYPT_N, **kwargs
        )
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def open_log(log_path: Path) -> Iterator[Callable[..., AuditLog]]:
    """A factory that opens the log at ``log_path`` with the test passphrase; closed after."""
    opened: list[AuditLog] = []

    def reopen(**kwargs: Any) -> AuditLog:
        kwargs.setdefault("passphrase", TEST_PASSPHRASE)
        log = AuditLog.open(log_path, **kwargs)
        opened.append(log)
        return log

    yield reopen
    for log in opened:
        log.close()
