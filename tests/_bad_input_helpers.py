"""Helpers of the bad-input tests: records dated around the real clock, a fingerprint of a log's
files, and the ``auditlog`` command run in a real process that the file system may refuse.

A process that the file system refuses has to be an ordinary one: root reads and writes
whatever the file modes say. When the tests run as root, the child gives up the three
capabilities that let root ignore file modes (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``,
``CAP_FOWNER``) before it starts the interpreter, and so obeys the modes like the files' owner;
where root cannot drop capabilities, the child runs as ``nobody`` instead. A full disk is a
file-size limit (``RLIMIT_FSIZE``): writes past it fail with ``EFBIG``, as on a full disk they
fail with ``ENOSPC``.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import pwd
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditlog.records import Record
from auditlog.testing import TEST_PASSPHRASE, workload

ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}

# Records are dated from the real clock: the command line appends with the machine's clock, and
# a record more than five minutes ahead of it is refused.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
"""An hour boundary at least an hour before the real now: the time of the template's records."""


def records(n: int, seed: int = 0, *, start: datetime | None = None) -> list[Record]:
    """``n`` workload records dated in the ten minutes from ``start`` (default ``NOW``)."""
    return list(workload(n, seed=seed, start=start or NOW, span=timedelta(minutes=10)))


def json_line(record: Record, **changes: Any) -> str:
    """The record as one JSON line, with some fields replaced (``None`` removes a field)."""
    document = json.loads(record.model_dump_json(exclude_none=True))
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return json.dumps(document) + "\n"


def fingerprint(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path, but the lock files (taking a lock
    writes the holder's pid into them) — two equal fingerprints mean nothing changed."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "LOCK"
    }


def set_modes(root: Path, *, directories: int, files: int) -> None:
    """chmod every directory and file under ``root`` (``root`` included)."""
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(directories)
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(files)


def restore_modes(root: Path) -> None:
    """Make everything under ``root`` the owner's again (0700/0600), so it can be removed."""
    root.chmod(0o700)
    for path in root.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


# -- a real process that obeys file modes ------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_SETPCAP = 8
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root ignore file modes.
_MODE_CAPABILITIES = (1, 2, 3)
# Resolved here: the child, between fork and exec, only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _effective_capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _root_can_drop_capabilities() -> bool:
    return os.geteuid() == 0 and bool(_effective_capabilities() >> _CAP_SETPCAP & 1)


def _child_setup(obey_modes: bool, file_size_limit: int | None) -> Callable[[], None]:
    def setup() -> None:  # runs in the child, between fork and exec
        if obey_modes:
            for capability in _MODE_CAPABILITIES:
                # Gone from the bounding set, a capability is not regained at exec, root or not.
                if _prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                    os._exit(121)
        if file_size_limit is not None:
            # Writes past the limit fail with EFBIG instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return setup


def run_cli(
    args: list[str],
    *,
    obey_modes: bool = False,
    file_size_limit: int | None = None,
    stdin: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m auditlog <args>`` in a real process.

    ``obey_modes``: as an ordinary user would, the process is refused what the file modes
    refuse (see the module docstring). ``file_size_limit``: no file can grow past that many
    bytes, as on a full disk.
    """
    environment = {k: v for k, v in os.environ.items() if k != "AUDITLOG_PASSPHRASE"}
    environment.update(ENV if env is None else env)
    environment["COLUMNS"] = "200"  # one message per line, whatever the terminal
    user = None
    if obey_modes and os.geteuid() == 0 and not _root_can_drop_capabilities():
        user = "nobody"
    drop = obey_modes and user is None and os.geteuid() == 0
    return subprocess.run(
        [sys.executable, "-m", "auditlog", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
        user=user,
        group=pwd.getpwnam(user).pw_gid if user is not None else None,
        extra_groups=[] if user is not None else None,
        preexec_fn=_child_setup(drop, file_size_limit),
    )


def iter_lines(text: str) -> Iterator[str]:
    """The non-empty lines of ``text``."""
    return (line for line in text.splitlines() if line.strip())
