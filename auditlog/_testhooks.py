"""Crash points for the crash tests: a process kills itself at a named step when asked to.

Set ``AUDITLOG_CRASHPOINT`` to ``name`` or ``name#n`` (the n-th time that step is reached,
from 1) and the process sends itself SIGKILL there: the crash tests run real processes and
kill them between the durable steps of a sweep, exactly where a power cut could. Unset (as in
production) this costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def crashpoint(name: str) -> None:
    """Die here if the environment asks for a crash at this step."""
    wanted = os.environ.get("AUDITLOG_CRASHPOINT")
    if not wanted:
        return
    _reached[name] += 1
    target, _, nth = wanted.partition("#")
    if target == name and _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
