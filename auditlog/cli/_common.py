"""What every ``auditlog`` sub-command shares: consoles, options, parsing times, failing well.

Every command runs inside ``AuditLogCommands.invoke``, the one place where an error becomes a
message and an exit code (``exit_code``): 0 success; 1 verification failed; 2 bad usage or
input; 3 the environment (I/O, permissions, a full disk, a lock); 70 a bug in auditlog. No
traceback is printed unless ``auditlog --debug`` asked for one.
"""

from __future__ import annotations

import errno
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Final, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from typer.core import TyperGroup

from auditlog.clock import aware_utc
from auditlog.crypto.providers import PASSPHRASE_ENV
from auditlog.errors import (
    AuditLogError,
    ConfigurationError,
    IntegrityError,
    KeyMaterialError,
    LogLockedError,
    NoteError,
    OldSizeMismatchError,
    PassphraseError,
    ProofError,
)

if TYPE_CHECKING:
    # The click that typer vendors, whose Context the group's invoke takes.
    from typer._click import Context as ClickContext

console = Console()
errors = Console(stderr=True)

PassphraseOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        envvar=PASSPHRASE_ENV,
        help=f"Passphrase of the root key (default: ${PASSPHRASE_ENV}; prompted if unset).",
        show_default=False,
    ),
]

EXIT_OK: Final = 0
EXIT_VERIFICATION_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_ENVIRONMENT: Final = 3
EXIT_INTERNAL: Final = 70  # EX_SOFTWARE of sysexits.h: a bug in auditlog

# Exit 1: stored data, a proof, a signature or stored key material did not check out.
VERIFICATION_FAILURES: Final = (
    IntegrityError,
    ProofError,
    NoteError,
    OldSizeMismatchError,
    KeyMaterialError,
)
# Errors of the environment, wherever they surface: exit 3.
_ENVIRONMENT_ERRNOS: Final = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.EAGAIN,
    }
)


def _environment_cause(exc: BaseException) -> OSError | None:
    """The OSError of the environment that ``exc`` is, or that it was raised while handling.

    A loader may turn an unreadable file into a library error (a state file "cannot be read:
    Permission denied"); that is still the environment's doing, not damage, so it exits 3.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and (
            current is exc or current.errno in _ENVIRONMENT_ERRNOS
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def exit_code(
    exc: BaseException, refusals: tuple[type[AuditLogError], ...] = VERIFICATION_FAILURES
) -> int:
    """The exit code of a command that failed with ``exc`` (see the module docstring).

    ``refusals`` are the errors that mean "did not verify" (exit 1); the witness's commands
    pass their own. A wrong passphrase is the caller's mistake (2), though a key error.
    """
    if isinstance(exc, LogLockedError) or _environment_cause(exc) is not None:
        return EXIT_ENVIRONMENT
    if isinstance(exc, PassphraseError):
        return EXIT_BAD_INPUT
    if isinstance(exc, refusals):
        return EXIT_VERIFICATION_FAILED
    if isinstance(exc, AuditLogError):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def environment_message(exc: OSError) -> str:
    """What went wrong with the file system, and what to do, in a sentence."""
    where = f" ({exc.filename})" if exc.filename else ""
    what = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        advice = (
            "run auditlog as the user who owns the log (its files are 0600 and its "
            "directories 0700), or give that user access"
        )
    elif exc.errno == errno.EROFS:
        advice = "the file system is read-only: remount it read-write, or work on a copy"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = (
            "the disk is full or a size limit was reached: free space (or raise the limit) and "
            "run the command again; what was not reported as done was not written"
        )
    elif exc.errno == errno.EIO:
        advice = "the storage reported an I/O error: check the disk, then verify the log"
    else:
        advice = "check the path and the file system, then run the command again"
    return f"{what}{where}: {advice}"


def report(exc: BaseException) -> None:
    """Print what ``exc`` means for the user, never a traceback (see ``--debug``)."""
    if isinstance(exc, AuditLogError):
        message = exc.diagnostics()
    elif isinstance(exc, OSError):
        message = environment_message(exc)
    else:
        # A bug: the exception's text may hold anything, user data included; its type not.
        message = (
            f"internal error ({type(exc).__name__}): this is a bug in auditlog; run the "
            "command again with `auditlog --debug ...` to see where, and report it"
        )
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def fail(
    exc: AuditLogError, *, refusals: tuple[type[AuditLogError], ...] = VERIFICATION_FAILURES
) -> NoReturn:
    """Print an error's diagnostics (never a traceback) and exit with its code.

    A command group whose refusals differ (the witness's) passes its own; every other error
    reaches ``AuditLogCommands.invoke``, which calls this.
    """
    code = exit_code(exc, refusals)
    report(exc)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    """Print a usage problem and exit 2."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def invalid_settings(exc: ValidationError) -> NoReturn:
    """A usage error (exit 2) naming each bad option of a settings model, never pydantic's raw
    text (which quotes the input): ``--period-seconds: Input should be ...``."""
    problems = exc.errors(include_input=False, include_url=False, include_context=False)
    lines = []
    for problem in problems:
        fields = [str(part) for part in problem["loc"]]
        option = ", ".join("--" + name.replace("_", "-") for name in fields)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{option}: {message}" if option else message)
    usage_error("; ".join(lines) + "; see --help for what each option takes")


class AuditLogCommands(TyperGroup):
    """The ``auditlog`` command group: every sub-command runs inside ``invoke``, which turns
    whatever it raises into a message and an exit code (``exit_code``)."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, and usage errors the parser reports itself with exit 2
        except Exception as exc:  # noqa: BLE001 - every error becomes a message and a code
            code = exit_code(exc)
            if ctx.params.get("debug"):
                traceback.print_exception(exc, file=sys.stderr)
            report(exc)
            raise typer.Exit(code) from None


def open_binary_input(source: str) -> BinaryIO:
    """Standard input for '-', else the file opened for reading bytes; exit 2 if it cannot be."""
    if source == "-":
        return typer.get_binary_stream("stdin")
    try:
        return open(source, "rb")
    except OSError as exc:
        usage_error(f"cannot read {source}: {exc.strerror or exc}")


def read_input(source: str) -> bytes:
    """A file's bytes, or standard input's for '-'; a clear error (exit 2) if it cannot be read."""
    if source == "-":
        return typer.get_binary_stream("stdin").read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        usage_error(f"cannot read {source}: {exc.strerror or exc}")


def read_text_input(source: str) -> str:
    """``read_input`` as UTF-8 text."""
    try:
        return read_input(source).decode("utf-8")
    except UnicodeDecodeError:
        usage_error(f"cannot read {source}: it is not UTF-8 text")


def passphrase(value: str | None, *, confirm: bool = False) -> str:
    """The passphrase given, or prompted for on a terminal; a clear error otherwise."""
    if value:
        return value
    if not sys.stdin.isatty():
        usage_error(f"no passphrase: set {PASSPHRASE_ENV} or pass --passphrase")
    entered: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return entered


# The log opens the directory itself: an unreadable one is the environment's problem (exit 3),
# not a usage error, so the parser does not check it.
PathArg = Annotated[Path, typer.Argument(help="The log directory.", readable=False)]

NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="The time to act at (ISO 8601; default: now). For simulations."),
]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who is doing this (logged).")]


# Times given on the command line: from the Unix epoch (nothing in a log is older) to a year
# before datetime's last day, so that no sum of a time and a retention period overflows.
_FIRST_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC)
# Retention periods: up to a century, which no law asks more than.
MAX_DAYS: Final = 36_525


def when(value: str | None, option: str = "--now") -> datetime | None:
    """An ISO 8601 time with a time zone, in UTC, or None; exit 2 on anything else."""
    if value is None:
        return None
    example = "e.g. 2026-07-01T00:00:00+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        usage_error(f"{option}: not an ISO 8601 time from year 1970 to 9000 ({example})")
    if moment.tzinfo is None:
        usage_error(f"{option}: give the time with a time zone, +00:00 or Z ({example})")
    try:
        utc = aware_utc(moment, option)
    except ConfigurationError as exc:
        usage_error(str(exc))
    if not _FIRST_TIME <= utc < _LAST_TIME:
        usage_error(f"{option}: give a time from year 1970 to 9000 ({example})")
    return utc


def days(value: str, option: str) -> timedelta:
    """A number of days (``180`` or ``180d``) from 0 to ``MAX_DAYS``; exit 2 on anything else."""
    try:
        number = float(value.strip().removesuffix("d"))
    except ValueError:
        number = float("nan")
    if not 0 <= number <= MAX_DAYS:  # also refuses nan
        usage_error(f"{option}: give a number of days from 0 to {MAX_DAYS}, e.g. 180 or 180d")
    return timedelta(days=number)


def progress_bar() -> Progress:
    """A transient progress bar on standard error, in bytes."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )
