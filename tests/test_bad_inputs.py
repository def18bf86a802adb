"""The bad-input matrix: each bad input to the API or the command line, the error it gets, and
the log left exactly as it was.

Each case runs on its own copy of one template log. An API case names the error class it must
raise, a command-line case the exit code (0 ok, 1 verification failed, 2 bad usage or input,
3 environment); both name a fragment of the message. Afterwards every file of the log but the
lock files has the bytes it had before. A case whose input is a damaged file damages it before
the log is fingerprinted. Command-line cases run in-process, but those the file system must
refuse (permission denied, read-only files, a full disk), which run in a real process that obeys
file modes (see ``_bad_input_helpers``).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
from _bad_input_helpers import (
    ENV,
    NOW,
    fingerprint,
    json_line,
    records,
    restore_modes,
    run_cli,
    set_modes,
)
from pydantic import ValidationError
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    ConfigurationError,
    LateRecordError,
    PassphraseError,
    RecordValidationError,
    StateFileError,
    parse_record,
)
from auditlog.cli import app
from auditlog.records import Activity, ChatMessage, LogEvent, LogEventType, Record, log_event
from auditlog.retention import RetentionPolicy
from auditlog.storage.layout import EVENTS_CHAIN
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock

TEMPLATE_RECORDS = records(60, seed=3)
CHAT = next(r for r in TEMPLATE_RECORDS if isinstance(r, ChatMessage))
ACTIVITY = next(r for r in TEMPLATE_RECORDS if isinstance(r, Activity))
LATER = NOW + timedelta(minutes=20)  # after every template record, before the real now
Y2099 = datetime(2099, 1, 1, tzinfo=UTC)


def at(moment: datetime, record: Record = CHAT) -> Record:
    """``record`` dated ``moment``."""
    return record.model_copy(update={"occurred_at": moment})


GOOD = at(LATER)
GOOD_LINE = json_line(GOOD)
FORGED_EVENT = log_event(occurred_at=LATER, event="sweep", chain="chat", detail="deleted 0-9")

Outcome = tuple[int, str] | None
Prepare = Callable[[Path], None] | None


@dataclass(frozen=True)
class Case:
    """One bad input: what is done to a copy of the template log, and what must come of it."""

    name: str
    run: Callable[[Path], Outcome]
    expect: type[BaseException] | int
    fragment: str
    prepare: Prepare = None
    """The damage that is the input (a changed file), done before the log is fingerprinted."""


CASES: list[Case] = []


def api_call(
    name: str,
    expect: type[BaseException],
    fragment: str,
    call: Callable[[Path], object],
    prepare: Prepare = None,
) -> None:
    """A case of the Python API: ``call`` gets the log's path and must raise ``expect``."""

    def run(path: Path) -> None:
        call(path)

    CASES.append(Case(name, run, expect, fragment, prepare))


def api(
    name: str, expect: type[BaseException], fragment: str, act: Callable[[AuditLog], object]
) -> None:
    """A case of the Python API on the log opened for writing with the test passphrase."""

    def call(path: Path) -> None:
        with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as log:
            act(log)

    api_call(name, expect, fragment, call)


def invoke(args: list[str], stdin: str | bytes = "", env: dict[str, str] | None = None) -> Outcome:
    """Run the command in-process: its exit code and its output (stdout and stderr)."""
    result = CliRunner().invoke(app, args, input=stdin, env=ENV if env is None else env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[0]} let an exception escape") from result.exception
    return result.exit_code, result.output


def arguments(template: list[str], path: Path) -> list[str]:
    """The command's arguments: ``{log}`` is the log's path, ``{new}`` a path beside it."""
    return [
        part.replace("{log}", str(path)).replace("{new}", str(path.parent / "new"))
        for part in template
    ]


def cli(
    name: str,
    args: list[str],
    code: int,
    fragment: str,
    *,
    stdin: str | bytes = "",
    env: dict[str, str] | None = None,
    prepare: Prepare = None,
) -> None:
    """A case of the command line, run in-process (``args`` as for ``arguments``)."""

    def run(path: Path) -> Outcome:
        return invoke(arguments(args, path), stdin, env)

    CASES.append(Case(name, run, code, fragment, prepare))


def append_lines(name: str, lines: str | bytes, fragment: str, *options: str) -> None:
    """``auditlog append`` of JSON lines on standard input, refused as bad input (2)."""
    cli(name, ["append", "{log}", *options], 2, fragment, stdin=lines)


def _append(record: object, log: AuditLog) -> object:
    return log.append(cast("Record", record))


def _append_many(records: object, log: AuditLog, chain: str | None = None) -> object:
    return log.append_many(cast("list[Record]", records), chain=chain)


def _append_dated(moment: Callable[[], datetime], log: AuditLog) -> object:
    return log.append(at(moment()))


def _append_many_ending(moment: Callable[[], datetime], log: AuditLog) -> object:
    return log.append_many([GOOD, at(LATER, ACTIVITY), at(moment())])


def _append_parsed(line: str, log: AuditLog) -> object:
    return log.append(parse_record(line))


def _create_with_cost(n: int, path: Path) -> None:
    AuditLog.create(path.parent / "new", passphrase=TEST_PASSPHRASE, scrypt_n=n).close()


# -- the API: what append takes --------------------------------------------------------------

for label, value in [("dict", {"kind": "chat"}), ("none", None), ("json-text", "{}"), ("int", 1)]:
    api(
        f"api-append-{label}",
        RecordValidationError,
        "parse_record(dict)",
        partial(_append, value),
    )
api(
    "api-append-many-dicts",
    RecordValidationError,
    "records[0]",
    partial(_append_many, [CHAT.model_dump()]),
)
api(
    "api-append-many-good-then-dict",
    RecordValidationError,
    "records[1]",
    partial(_append_many, [GOOD, {"kind": "chat"}]),
)
api(
    "api-append-many-tuple-with-a-str",
    RecordValidationError,
    "not a record",
    partial(_append_many, (GOOD, "chat")),
)
api(
    "api-append-log-kind", RecordValidationError, "kind 'log'", lambda log: log.append(FORGED_EVENT)
)
api(
    "api-append-log-kind-to-a-users-chain",
    RecordValidationError,
    "kind 'log'",
    lambda log: log.append(FORGED_EVENT, chain="chat"),
)
api(
    "api-append-many-log-kind",
    RecordValidationError,
    "records[1]",
    lambda log: log.append_many([GOOD, FORGED_EVENT]),
)
api(
    "api-append-parsed-log-kind",
    RecordValidationError,
    "the log's own events",
    lambda log: log.append(parse_record(FORGED_EVENT.model_dump_json())),
)
api(
    "api-append-to-the-events-chain",
    ConfigurationError,
    "invalid chain id",
    lambda log: log.append(GOOD, chain="_log"),
)
api(
    "api-append-bad-chain-id",
    ConfigurationError,
    "invalid chain id",
    lambda log: log.append(GOOD, chain="Chat Room"),
)
api(
    "api-append-chain-not-a-str",
    ConfigurationError,
    "chain must be",
    lambda log: log.append(GOOD, chain=cast("Any", 7)),
)
api(
    "api-append-many-chain-not-a-str",
    ConfigurationError,
    "chain must be",
    lambda log: log.append_many([GOOD], chain=cast("Any", b"chat")),
)

# -- the API: time bounds --------------------------------------------------------------------

FUTURES: dict[str, Callable[[], datetime]] = {
    "a-day-ahead": lambda: datetime.now(UTC) + timedelta(days=1),
    "six-minutes-ahead": lambda: datetime.now(UTC) + timedelta(minutes=6),
    "2099": lambda: Y2099,
    "9999-01-01": lambda: datetime(9999, 1, 1, tzinfo=UTC),
    "datetime-max": lambda: datetime.max.replace(tzinfo=UTC),
    "9999-12-31-west-of-utc": lambda: datetime.fromisoformat("9999-12-31T18:00:00-05:00"),
}
for label, moment in FUTURES.items():
    api(
        f"api-append-{label}",
        RecordValidationError,
        "max_future_seconds",
        partial(_append_dated, moment),
    )
    api(
        f"api-append-many-{label}-last",
        RecordValidationError,
        "occurred_at",
        partial(_append_many_ending, moment),
    )
api(
    "api-append-many-future-in-another-chain",
    RecordValidationError,
    "max_future_seconds",
    lambda log: log.append_many([GOOD, at(Y2099, ACTIVITY)]),
)
api(
    "api-append-many-future-after-a-full-block",
    RecordValidationError,
    "max_future_seconds",
    lambda log: log.append_many([GOOD] * 5000 + [at(Y2099)], chain="chat"),
)
api(
    "api-append-many-future-from-a-generator",
    RecordValidationError,
    "max_future_seconds",
    lambda log: log.append_many(at(moment) for moment in (LATER, Y2099)),
)
api(
    "api-append-future-to-a-new-chain",
    RecordValidationError,
    "max_future_seconds",
    lambda log: log.append(at(Y2099), chain="newchain"),
)
for label, past in {
    "1969": datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
    "year-1": datetime.min.replace(tzinfo=UTC),
}.items():
    api(f"api-append-{label}", RecordValidationError, "1970", partial(_append, at(past)))
    api(
        f"api-append-many-{label}-to-a-new-chain",
        RecordValidationError,
        "1970",
        partial(_append_many, [at(past)], chain="newchain"),
    )
api(
    "api-append-late",
    LateRecordError,
    "older than the newest record",
    lambda log: log.append(at(NOW - timedelta(days=3))),
)


class _NaiveClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1)  # naive on purpose


def _with_naive_clock(path: Path) -> None:
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, clock=_NaiveClock()) as log:
        log.append(GOOD)


api_call("api-append-with-a-naive-clock", ConfigurationError, "naive", _with_naive_clock)

_NAIVE = datetime(2026, 1, 1)  # naive on purpose
api("api-sweep-naive-now", ConfigurationError, "naive", lambda log: log.retention.sweep(now=_NAIVE))
api(
    "api-hold-naive-now",
    ConfigurationError,
    "naive",
    lambda log: log.retention.add_hold(
        "case-1", chains=["chat"], start=NOW - timedelta(days=1), end=NOW, actor="a", now=_NAIVE
    ),
)
api(
    "api-rotate-naive-now",
    ConfigurationError,
    "naive",
    lambda log: log.keys.rotate_root_key(actor="a", now=_NAIVE),
)
api(
    "api-policy-of-a-thousand-years-and-more",
    ValidationError,
    "legal hold",
    lambda log: RetentionPolicy(
        keep_at_least=timedelta(days=1), delete_after=timedelta(days=400_000)
    ),
)

# -- the API: records ------------------------------------------------------------------------

BLANKS = {
    "space": " ",
    "tabs": "\t\n",
    "nbsp": "\u00a0",
    "ideographic-space": "\u3000",
    "empty": "",
}
for label, blank in BLANKS.items():
    api(
        f"api-parse-subject-{label}",
        RecordValidationError,
        "subject",
        partial(_append_parsed, json_line(GOOD, subject=blank)),
    )
api(
    "api-parse-naive-occurred-at",
    RecordValidationError,
    "naive",
    lambda log: log.append(parse_record(json_line(GOOD, occurred_at="2026-01-01T00:00:00"))),
)
api(
    "api-model-blank-subject",
    ValidationError,
    "subject",
    lambda log: log.append(ChatMessage(**{**GOOD.model_dump(), "subject": "   "})),
)

# -- the API: opening and creating -----------------------------------------------------------

api_call(
    "api-open-wrong-passphrase",
    PassphraseError,
    "passphrase",
    lambda p: AuditLog.open(p, passphrase="not the passphrase").close(),
)
api_call(
    "api-open-empty-passphrase",
    ConfigurationError,
    "passphrase",
    lambda p: AuditLog.open(p, passphrase="").close(),
)
api_call(
    "api-open-a-file",
    ConfigurationError,
    "not an auditlog log",
    lambda p: AuditLog.open(p / "manifest.json", passphrase=TEST_PASSPHRASE).close(),
)
api_call(
    "api-open-a-chain-directory",
    ConfigurationError,
    "not an auditlog log",
    lambda p: AuditLog.open(p / "chains" / "chat", passphrase=TEST_PASSPHRASE).close(),
)
api_call(
    "api-create-over-a-log",
    ConfigurationError,
    "not empty",
    lambda p: AuditLog.create(p, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close(),
)


def _create_without_passphrase(path: Path) -> None:
    new = path.parent / "new"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AUDITLOG_PASSPHRASE", raising=False)
        try:
            AuditLog.create(new, scrypt_n=TEST_SCRYPT_N).close()
        finally:
            assert not new.exists()  # nothing half made is left


api_call(
    "api-create-without-passphrase", ConfigurationError, "passphrase", _create_without_passphrase
)
for label, n in {"too-big": 2**21, "not-a-power-of-two": 3000, "too-small": 2**9}.items():
    api_call(
        f"api-create-scrypt-n-{label}",
        ConfigurationError,
        "scrypt n",
        partial(_create_with_cost, n),
    )


def _root_key_with(**fields: int) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        root_key = path / "keys" / "root.key"
        document = msgpack.unpackb(root_key.read_bytes())
        document.update(fields)
        root_key.write_bytes(msgpack.packb(document))

    return change


SCRYPT_COSTS: dict[str, dict[str, int]] = {
    "n-2**21": {"n": 2**21},
    "n-2**40": {"n": 2**40},
    "n-not-a-power-of-two": {"n": 3 * 2**12},
    "n-2**9": {"n": 2**9},
    "r-0": {"r": 0},
    "r-33": {"r": 33},
    "p-0": {"p": 0},
    "p-17": {"p": 17},
    "memory-over-1-gib": {"n": 2**20, "r": 16},
}
for label, fields in SCRYPT_COSTS.items():
    api_call(
        f"api-open-root-key-scrypt-{label}",
        StateFileError,
        "scrypt",
        lambda p: AuditLog.open(p, passphrase=TEST_PASSPHRASE).close(),
        prepare=_root_key_with(**fields),
    )

# -- the command line: append ----------------------------------------------------------------

for label, value in {"0": "0", "negative": "-5", "not-a-number": "many"}.items():
    append_lines(f"cli-append-batch-size-{label}", GOOD_LINE, "--batch-size", "--batch-size", value)

BAD_LINES: dict[str, tuple[str | bytes, str]] = {
    "not-json": ("{kind: chat\n", "line 1"),
    "json-array": ("[]\n", "line 1"),
    "json-null": ("null\n", "line 1"),
    "json-number": ("42\n", "line 1"),
    "empty-object": ("{}\n", "kind"),
    "unknown-kind": (json_line(GOOD, kind="fax"), "kind"),
    "log-kind": (FORGED_EVENT.model_dump_json() + "\n", "kind 'log'"),
    "log-kind-second": (GOOD_LINE + FORGED_EVENT.model_dump_json() + "\n", "line 2"),
    "space-subject": (json_line(GOOD, subject="  "), "subject"),
    "tab-subject": (json_line(GOOD, subject="\t"), "subject"),
    "empty-subject": (json_line(GOOD, subject=""), "subject"),
    "no-subject": (json_line(GOOD, subject=None), "subject"),
    "naive-occurred-at": (json_line(GOOD, occurred_at="2026-01-01T00:00:00"), "naive"),
    "epoch-seconds": (json_line(GOOD, occurred_at=1767225600), "occurred_at"),
    "year-10000": (json_line(GOOD, occurred_at="10000-01-01T00:00:00Z"), "occurred_at"),
    "9999-01-01": (json_line(GOOD, occurred_at="9999-01-01T00:00:00Z"), "max_future_seconds"),
    "2099": (json_line(GOOD, occurred_at="2099-01-01T00:00:00Z"), "max_future_seconds"),
    "1969": (json_line(GOOD, occurred_at="1969-07-20T20:17:00Z"), "1970"),
    "unknown-field": (json_line(GOOD, colour="red"), "colour"),
    "good-then-2099": (
        GOOD_LINE + json_line(GOOD, occurred_at="2099-01-01T00:00:00Z"),
        "nothing of that batch was written",
    ),
    "good-then-2099-in-another-chain": (
        GOOD_LINE + json_line(at(LATER, ACTIVITY), occurred_at="2099-01-01T00:00:00Z"),
        "max_future_seconds",
    ),
    "late": (json_line(GOOD, occurred_at=(NOW - timedelta(days=3)).isoformat()), "late"),
    "not-utf8": (GOOD_LINE.encode() + b"\xff\xfe{}\n", "line 2"),
    "binary": (b"\x00\x01\x02\n", "line 1"),
}
for label, (lines, fragment) in BAD_LINES.items():
    append_lines(f"cli-append-{label}", lines, fragment)
append_lines("cli-append-to-the-events-chain", GOOD_LINE, "invalid chain id", "--chain", "_log")
append_lines("cli-append-bad-chain", GOOD_LINE, "invalid chain id", "--chain", "Chat!")
cli(
    "cli-append-missing-file",
    ["append", "{log}", "{log}/nowhere.jsonl"],
    2,
    "cannot read",
)
cli(
    "cli-append-input-is-a-directory",
    ["append", "{log}", "{log}/chains"],
    2,
    "cannot read",
)
cli(
    "cli-append-to-a-file",
    ["append", "{log}/manifest.json"],
    2,
    "not an auditlog log",
    stdin=GOOD_LINE,
)
cli(
    "cli-append-wrong-passphrase",
    ["append", "{log}"],
    2,
    "passphrase",
    stdin=GOOD_LINE,
    env={"AUDITLOG_PASSPHRASE": "not the passphrase"},
)
cli(
    "cli-append-no-passphrase",
    ["append", "{log}"],
    2,
    "AUDITLOG_PASSPHRASE",
    stdin=GOOD_LINE,
    env={"AUDITLOG_PASSPHRASE": ""},
)

# -- the command line: what is not a log, bad options ----------------------------------------

for command in (["verify"], ["verify", "--keyless"], ["stats"], ["retention", "show"]):
    name = "-".join(part.strip("-") for part in command)
    cli(
        f"cli-{name}-of-a-file",
        [*command, "{log}/manifest.json"],
        2,
        "not an auditlog log",
    )
    cli(
        f"cli-{name}-of-a-chain-directory",
        [*command, "{log}/chains"],
        2,
        "not an auditlog log",
    )
cli("cli-unknown-command", ["frobnicate", "{log}"], 2, "No such command")
cli("cli-unknown-option", ["stats", "{log}", "--colour"], 2, "No such option")
cli("cli-schema-unknown-kind", ["schema", "fax"], 2, "unknown record kind")
cli(
    "cli-verify-proof-missing",
    ["verify-proof", "{log}/no.json", "--key", "k"],
    2,
    "cannot read",
)
cli(
    "cli-prove-negative-index",
    ["prove", "{log}", "--chain", "chat", "--index", "-1"],
    2,
    "--index",
)
cli(
    "cli-prove-consistency-from-0",
    ["prove-consistency", "{log}", "--chain", "chat", "--from", "0"],
    2,
    "--from",
)
cli(
    "cli-keys-status-wrong-passphrase",
    ["keys", "status", "{log}"],
    2,
    "passphrase",
    env={"AUDITLOG_PASSPHRASE": "not the passphrase"},
)
cli("cli-init-over-a-log", ["init", "{log}"], 2, "not empty")
for label, options in {
    "period-5": ["--period-seconds", "5"],
    "period-huge": ["--period-seconds", str(10**12)],
    "max-future-negative": ["--max-future-seconds", "-1"],
    "origin-with-a-space": ["--origin", "my log"],
}.items():
    cli(
        f"cli-init-{label}",
        ["init", "{new}", *options],
        2,
        options[0],
    )
cli(
    "cli-init-without-passphrase",
    ["init", "{new}"],
    2,
    "AUDITLOG_PASSPHRASE",
    env={"AUDITLOG_PASSPHRASE": ""},
)

# -- the command line: retention, holds and times --------------------------------------------

DAYS: dict[str, tuple[str, str, str]] = {
    "ceiling-below-floor": ("10", "5", "delete_after"),
    "negative": ("-1", "5", "--keep-at-least"),
    "infinite": ("inf", "5", "--keep-at-least"),
    "nan": ("nan", "5", "--keep-at-least"),
    "overflowing": ("1", "1e400", "--delete-after"),
    "beyond-a-century": ("1", "36526", "--delete-after"),
    "not-a-number": ("a week", "5", "--keep-at-least"),
    "empty": ("", "5", "--keep-at-least"),
    "zero-ceiling": ("0", "0", "delete_after"),
}
for label, (floor, ceiling, fragment) in DAYS.items():
    cli(
        f"cli-retention-set-{label}",
        [
            *("retention", "set", "{log}", "--chain", "chat"),
            *("--keep-at-least", floor, "--delete-after", ceiling),
        ],
        2,
        fragment,
    )
cli(
    "cli-retention-set-bad-chain",
    [
        *("retention", "set", "{log}", "--chain", "Chat!"),
        *("--keep-at-least", "1", "--delete-after", "2"),
    ],
    2,
    "invalid chain id",
)

TIMES = {
    "year-10000": "10000-01-01T00:00:00+00:00",
    "9999-12-31": "9999-12-31T23:59:59+00:00",
    "9999-12-31-west-of-utc": "9999-12-31T23:59:59-05:00",
    "year-1-east-of-utc": "0001-01-01T00:00:00+05:00",
    "1969": "1969-12-31T23:59:59+00:00",
    "naive": "2026-01-01T00:00:00",
    "date-only": "2026-01-01",
    "not-a-time": "tomorrow",
    "empty": "",
}
for label, value in TIMES.items():
    for mode in ("--dry-run", "--apply"):
        cli(
            f"cli-sweep-{mode[2:]}-now-{label}",
            ["sweep", "{log}", mode, "--now", value],
            2,
            "--now",
        )
for option in ("--start", "--end", "--expires", "--now"):
    for label in ("naive", "year-10000"):
        times = {"--start": "2026-01-01T00:00:00Z", "--end": "2026-01-02T00:00:00Z"}
        times[option] = TIMES[label]
        cli(
            f"cli-hold-add-{option[2:]}-{label}",
            [
                *("hold", "add", "{log}", "--case", "c-1", "--chain", "chat"),
                *[part for pair in times.items() for part in pair],
            ],
            2,
            option,
        )
cli(
    "cli-hold-list-naive-now",
    ["hold", "list", "{log}", "--now", TIMES["naive"]],
    2,
    "--now",
)
cli(
    "cli-redact-naive-now",
    ["redact", "{log}", "--subject", "s", "--reason", "r", "--now", TIMES["naive"]],
    2,
    "--now",
)

# -- the command line: damaged state, and the environment ------------------------------------


def _manifest_of(content: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        (path / "manifest.json").write_bytes(content)

    return damage


MANIFESTS = {"list": b"[]\n", "empty": b"", "binary": b"\xff\x00", "string": b'"auditlog"\n'}
for label, content in MANIFESTS.items():
    for command in (["verify", "--keyless"], ["stats"], ["append"]):
        cli(
            f"cli-{command[0]}-manifest-{label}",
            [*command, "{log}"],
            1,
            "manifest",
            stdin=GOOD_LINE,
            prepare=_manifest_of(content),
        )


def _append_while_locked(path: Path) -> Outcome:
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE):  # holds every chain's lock
        return invoke(["append", str(path)], GOOD_LINE)


CASES.append(Case("cli-append-while-the-log-is-locked", _append_while_locked, 3, "another writer"))


def _append_failing_with(code: int) -> Callable[[Path], Outcome]:
    def run(path: Path) -> Outcome:
        def refuse(*args: object) -> None:
            raise OSError(code, os.strerror(code))

        with pytest.MonkeyPatch.context() as patch:
            # The one place a chain's blocks are written: the file system refuses it.
            patch.setattr("auditlog.segment.sink.write_all", refuse)
            return invoke(["append", str(path)], GOOD_LINE)

    return run


CASES.append(Case("cli-append-read-only-fs", _append_failing_with(errno.EROFS), 3, "read-only"))
CASES.append(Case("cli-append-io-error", _append_failing_with(errno.EIO), 3, "I/O error"))
CASES.append(Case("cli-append-no-space", _append_failing_with(errno.ENOSPC), 3, "disk is full"))


def process(
    name: str,
    args: list[str],
    fragment: str,
    refuse: Callable[[Path], None] | None = None,
    *,
    file_size_limit: int | None = None,
) -> None:
    """A command in a real process that obeys file modes; ``refuse`` changes the modes first
    (and they are restored before the log is compared)."""

    def run(path: Path) -> Outcome:
        if refuse is not None:
            refuse(path)
        try:
            done = run_cli(
                arguments(args, path),
                stdin=GOOD_LINE,
                obey_modes=True,
                file_size_limit=file_size_limit,
            )
        finally:
            restore_modes(path)
        return done.returncode, done.stdout + done.stderr

    CASES.append(Case(name, run, 3, fragment))


def _read_only(path: Path) -> None:
    set_modes(path, directories=0o555, files=0o444)


RETENTION_SET = ["--chain", "chat", "--keep-at-least", "1", "--delete-after", "2"]
process(
    "process-stats-unreadable-manifest",
    ["stats", "{log}"],
    "Permission denied",
    lambda p: (p / "manifest.json").chmod(0),
)
process(
    "process-verify-unreadable-log",
    ["verify", "--keyless", "{log}"],
    "Permission denied",
    lambda p: p.chmod(0),
)
process("process-append-read-only", ["append", "{log}"], "Permission denied", _read_only)
process(
    "process-retention-set-read-only",
    ["retention", "set", "{log}", *RETENTION_SET],
    "Permission denied",
    _read_only,
)
process("process-append-disk-full", ["append", "{log}"], "disk is full", file_size_limit=1)
process(
    "process-retention-set-disk-full",
    ["retention", "set", "{log}", *RETENTION_SET],
    "disk is full",
    file_size_limit=1,
)


# -- the matrix ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of a few records of every kind, dated an hour or more before the real now."""
    path = tmp_path_factory.mktemp("template") / "log"
    with AuditLog.create(path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N) as log:
        log.append_many(TEMPLATE_RECORDS)
    return path


def test_the_matrix_has_at_least_a_hundred_cases() -> None:
    """The matrix holds at least a hundred bad inputs, each under its own name."""
    names = [case.name for case in CASES]
    assert len(names) >= 100
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input(case: Case, template: Path, tmp_path: Path) -> None:
    """The bad input gets its error (its class or exit code, and a message naming what is
    wrong, never a traceback), and every file of the log keeps its bytes."""
    path = tmp_path / "log"
    shutil.copytree(template, path)
    if case.prepare is not None:
        case.prepare(path)
    before = fingerprint(path)
    if isinstance(case.expect, int):
        outcome = case.run(path)
        assert outcome is not None
        code, output = outcome
        text = " ".join(output.split())  # messages are wrapped to the terminal's width
        assert (code, case.fragment in text) == (case.expect, True), text
        assert "Traceback" not in output
    else:
        with pytest.raises(case.expect) as raised:
            case.run(path)
        assert case.fragment in str(raised.value)
    assert fingerprint(path) == before


def test_the_log_still_writes_its_own_events(tmp_path: Path) -> None:
    """Users cannot append the log kind, but the log writes its own events as before, dated when
    it says, even ahead of its clock (a policy set, then a sweep, at simulated times)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    later = start + timedelta(days=30)
    with AuditLog.create(
        tmp_path / "log",
        passphrase=TEST_PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
        clock=FixedClock(start),
    ) as log:
        log.append_many(records(20, start=start - timedelta(hours=1)))
        with pytest.raises(RecordValidationError, match="kind 'log'"):
            log.append(log_event(occurred_at=start, event="policy", chain="chat", detail="x"))
        policy = RetentionPolicy(keep_at_least=timedelta(days=1), delete_after=timedelta(days=2))
        log.retention.set_policy("chat", policy, actor="dpo", now=later)
        log.retention.sweep(now=later, dry_run=False)
        events = [event for event in log.read(EVENTS_CHAIN) if isinstance(event, LogEvent)]
        assert {(event.event, event.occurred_at) for event in events} >= {
            (LogEventType.POLICY, later),
            (LogEventType.SWEEP, later),
        }
        log.verify()
