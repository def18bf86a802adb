"""Appending to a fresh log, then again to the same log (its chains and periods made).

Prints one JSON line: records per second of each ``append_many`` of the same 100,000 workload
records. Run it from each of two trees in turn to compare them::

    PYTHONPATH=/path/to/tree python -m benchmarks.append_again
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from auditlog import AuditLog
from auditlog.testing import workload


def main() -> None:
    records = list(workload(100_000, seed=7))
    directory = Path(tempfile.mkdtemp())
    try:
        with AuditLog.create(
            directory / "log", passphrase="bench-passphrase", scrypt_n=2**10
        ) as log:
            started = time.perf_counter()
            log.append_many(records)
            middle = time.perf_counter()
            log.append_many(records)
            ended = time.perf_counter()
        rates = {
            "fresh": len(records) / (middle - started),
            "again": len(records) / (ended - middle),
        }
        print(json.dumps({k: round(v) for k, v in rates.items()}))
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
