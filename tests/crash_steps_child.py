"""The child process of test_rotation_crash.py and test_redaction_crash.py.

Usage: ``python crash_steps_child.py LOG NOW OPERATION [ARGUMENT]``, ``NOW`` in ISO 8601:

- ``rotate``: rotate the root key, print ``rotated <new key id>``;
- ``rotate-to VARIABLE``: rotate to the external root key in ``VARIABLE``
  (``EnvKeyProvider``), print ``rotated <new key id>``;
- ``passphrase NEW``: change the passphrase to ``NEW``, print ``changed``;
- ``redact SUBJECT``: redact ``SUBJECT`` in every chain, print ``redacted <json>``;
- ``rotate-loop``: print ``ready``, then rotate again and again until killed;
- ``redact-loop S1,S2,...``: print ``ready``, then redact the subjects one after another, print
  ``redacted <subject>`` after each and ``done`` at the end.

The log is opened for writing with ``CRASH_PASSPHRASE`` (default ``TEST_PASSPHRASE``), or with
the external root key in the variable ``CRASH_KEY_VARIABLE`` names if set, on a clock standing
at ``NOW``; opening binds what an earlier, killed child left.

Two ways to be killed, both a real ``SIGKILL`` of this process:

- ``AUDITLOG_CRASHPOINT=<step>#<n>``: the library's crash points (``auditlog._testhooks``);
- ``CRASH_FS_STEP=<n>``: after the n-th change to the file system that ``auditlog._fs`` makes
  once the operation has begun (a link, a rename, an unlink, a file synced), so that the
  states inside an atomic replacement or an exclusive creation are reached too. With
  ``CRASH_FS_COUNT=1`` the child prints ``fs-steps <count>`` (closing the log counts) and
  ``crashpoints <step>#<n> ...``, the crash points it passed in order (those are counted only
  when ``AUDITLOG_CRASHPOINT`` is set: set it to a step that does not exist);
  ``CRASH_FS_TRACE=1`` names each change on stderr as it is counted.

``python crash_steps_child.py serve`` is a fork server for campaigns of many kills: it imports
the library once, then for each JSON line ``{"argv": [LOG, NOW, OPERATION, ...], "env": {...}}``
read from stdin forks a child that sets ``env`` and runs as above (its output goes to
``LOG.out``), waits for it and answers one line, the child's exit status as ``subprocess``
gives it (``-9`` for SIGKILL). Each child is a separate process, killed as the others are.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import types
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import auditlog._fs
import auditlog._testhooks
from auditlog import AuditLog
from auditlog.crypto.providers import EnvKeyProvider
from auditlog.testing import TEST_PASSPHRASE, FixedClock

_MUTATIONS = ("link", "replace", "rename", "unlink", "fsync")


class _CountingOs(types.ModuleType):
    """``os`` for ``auditlog._fs``: counts its changes to the file system, dies at one.

    A change is a link, a rename or an unlink, or a file's bytes made whole (its fsync; the
    fsync of a directory changes nothing a killed process leaves behind, and is not counted).
    """

    def __init__(self, kill_at: int | None) -> None:
        super().__init__("os")
        self.count = 0
        self.armed = False
        self.kill_at = kill_at
        self.trace = bool(os.environ.get("CRASH_FS_TRACE"))

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name not in _MUTATIONS:
            return real

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if name == "fsync" and stat.S_ISDIR(os.fstat(args[0]).st_mode):
                return result
            if self.armed:
                self.count += 1
                if self.trace:
                    print(f"fs-{self.count} {name}{_names(args)}", file=sys.stderr, flush=True)
                if self.count == self.kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return result

        return counted


class _Reached(Counter[str]):
    """``auditlog._testhooks``' count of the crash points reached, also keeping their order."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def __setitem__(self, name: str, count: int) -> None:
        super().__setitem__(name, count)
        self.order.append(f"{name}#{count}")


def _names(args: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(os.path.basename(a) if isinstance(a, str | os.PathLike) else "fd" for a in args)


def _operation(log: AuditLog, now: datetime, name: str, argument: str) -> Callable[[], str]:
    def rotate() -> str:
        return "rotated " + log.keys.rotate_root_key(actor="ops", now=now)

    def rotate_to() -> str:
        new = EnvKeyProvider(argument)
        return "rotated " + log.keys.rotate_root_key(actor="ops", new_provider=new, now=now)

    def passphrase() -> str:
        log.keys.change_passphrase(argument)
        return "changed"

    def redact() -> str:
        done = log.retention.redact(argument, reason="erasure request", actor="dpo", now=now)
        return "redacted " + json.dumps(done, sort_keys=True)

    operations = {
        "rotate": rotate,
        "rotate-to": rotate_to,
        "passphrase": passphrase,
        "redact": redact,
    }
    if name not in operations:
        raise SystemExit(f"unknown operation {name!r}")
    return operations[name]


def _loop(log: AuditLog, now: datetime, name: str, argument: str, out: TextIO) -> None:
    print("ready", file=out, flush=True)
    if name == "rotate-loop":
        while True:
            log.keys.rotate_root_key(actor="ops", now=now)
    for subject in argument.split(","):
        log.retention.redact(subject, reason="erasure request", actor="dpo", now=now)
        print(f"redacted {subject}", file=out, flush=True)
    print("done", file=out, flush=True)


def run(argv: list[str], out: TextIO) -> int:
    """Open the log, run the operation ``argv`` names, print what it did to ``out``."""
    path, now, name = argv[0], datetime.fromisoformat(argv[1]), argv[2]
    argument = argv[3] if len(argv) > 3 else ""
    step = os.environ.get("CRASH_FS_STEP")
    counting = _CountingOs(int(step) if step else None)
    auditlog._fs.os = counting  # type: ignore[attr-defined]
    reached = _Reached()
    auditlog._testhooks._reached = reached
    variable = os.environ.get("CRASH_KEY_VARIABLE")
    provider = EnvKeyProvider(variable) if variable else None
    passphrase = None if variable else os.environ.get("CRASH_PASSPHRASE", TEST_PASSPHRASE)
    with AuditLog.open(
        path, passphrase=passphrase, key_provider=provider, clock=FixedClock(now)
    ) as log:
        if name.endswith("-loop"):
            _loop(log, now, name, argument, out)
            return 0
        operation = _operation(log, now, name, argument)
        counting.armed = True
        print(operation(), file=out, flush=True)
    if os.environ.get("CRASH_FS_COUNT"):
        print(f"fs-steps {counting.count}", file=out, flush=True)
        print("crashpoints", *reached.order, file=out, flush=True)
    return 0


def serve() -> int:
    """Fork one child per request line; answer each with the child's exit status."""
    for line in sys.stdin:
        request = json.loads(line)
        argv: list[str] = request["argv"]
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 70
            try:
                os.environ.update(request["env"])
                with open(argv[0] + ".out", "w", encoding="utf-8") as out:
                    code = run(argv, out)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
                with open(argv[0] + ".out", "a", encoding="utf-8") as out:
                    print(f"error {exc!r}", file=out, flush=True)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(code, flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        sys.exit(serve())
    sys.exit(run(sys.argv[1:], sys.stdout))
