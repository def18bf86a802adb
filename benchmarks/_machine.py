"""A description of the machine a run happened on, stored with every result.

Numbers mean little without the machine: cores (and how many this process may use), CPU model,
memory, the file system that took the fsyncs, Python, and the versions of every library on the
write path. The load average is kept too, because a busy machine makes every number noisy.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import ssl
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from auditlog import _fast

# auditlog's own dependencies (pyproject.toml), then what the peers and the plots need.
_PACKAGES = (
    "auditlog",
    "cryptography",
    "msgpack",
    "zstandard",
    "pydantic",
    "pydantic-core",
    "typer",
    "rich",
    "chatterbot-corpus",
    "pymerkle",
    "matplotlib",
)


def describe_machine(scratch: Path) -> dict[str, Any]:
    """Facts about this machine and process that a reader needs to weigh the numbers."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "filesystem": _filesystem_of(scratch),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(platform.python_build()),
        "openssl": ssl.OPENSSL_VERSION,
        "cryptography_openssl": _cryptography_openssl(),
        "sqlite": sqlite3.sqlite_version,
        "zstd": _zstd_version(),
        "packages": {name: _version(name) for name in _PACKAGES},
        # Whether auditlog's hashing loops ran in C (auditlog._speedups) or in pure Python.
        "auditlog_native": _fast.NATIVE,
        "load_average": list(os.getloadavg()),
        "argv": sys.argv[1:],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def _filesystem_of(path: Path) -> str:
    """The mount point and type holding ``path``, from /proc/mounts (longest matching prefix)."""
    target = path.resolve()
    while not target.exists():
        target = target.parent
    best = ("", "unknown")
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount, kind = fields[1], fields[2]
        if (str(target) == mount or str(target).startswith(mount.rstrip("/") + "/")) and len(
            mount
        ) > len(best[0]):
            best = (mount, kind)
    return f"{best[1]} (mounted at {best[0]})"


def _cryptography_openssl() -> str:
    from cryptography.hazmat.backends.openssl import backend

    return str(backend.openssl_version_text())


def _zstd_version() -> str:
    import zstandard

    return ".".join(str(part) for part in zstandard.ZSTD_VERSION)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
