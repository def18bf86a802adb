"""The child process of test_sweep_crash.py: open a log for writing and apply one sweep.

Usage: ``python sweep_child.py LOG NOW`` (``NOW`` in ISO 8601). Opening the log finishes any
sweep an earlier child was killed in; the child then sweeps at ``NOW`` with ``dry_run=False``
on a clock standing at ``NOW``, and prints one line, ``swept <chain>:<periods shredded> ...``.
The parent sets ``AUDITLOG_CRASHPOINT`` to make the child kill itself at a step of the sweep.
"""

from __future__ import annotations

import sys
from datetime import datetime

from auditlog import AuditLog
from auditlog.testing import TEST_PASSPHRASE, FixedClock


def main() -> int:
    path, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, clock=FixedClock(now)) as log:
        plan = log.retention.sweep(now=now, dry_run=False, actor="sweep-child")
    shredded = " ".join(
        f"{chain}:{','.join(map(str, p.shred_periods))}" for chain, p in plan.chains.items()
    )
    print(f"swept {shredded}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
