"""What every ``auditlog`` sub-command shares: consoles, options, parsing times, failing well."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn, TextIO

import typer
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

from auditlog.crypto.providers import PASSPHRASE_ENV
from auditlog.errors import (
    AuditLogError,
    IntegrityError,
    NoteError,
    OldSizeMismatchError,
    ProofError,
    RecordValidationError,
)

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

# Exit 1: the data or a proof did not check out (or records were refused); exit 2: usage.
_REFUSALS = (IntegrityError, RecordValidationError, ProofError, NoteError, OldSizeMismatchError)


def fail(exc: AuditLogError, *, refusals: tuple[type[AuditLogError], ...] = _REFUSALS) -> NoReturn:
    """Print an error's diagnostics (never a traceback); exit 1 for ``refusals``, else 2 (usage).

    A command group whose refusals differ (the witness's) passes its own.
    """
    errors.print(f"[bold red]error:[/] {escape(exc.diagnostics())}", highlight=False)
    raise typer.Exit(1 if isinstance(exc, refusals) else 2)


def usage_error(message: str) -> NoReturn:
    """Print a usage problem and exit 2."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


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


def open_text_input(source: str) -> TextIO:
    """Standard input for '-', else the file opened as UTF-8 text; exit 2 if it cannot be."""
    if source == "-":
        return sys.stdin
    try:
        return open(source, encoding="utf-8")
    except OSError as exc:
        usage_error(f"cannot read {source}: {exc.strerror or exc}")


def passphrase(value: str | None, *, confirm: bool = False) -> str:
    """The passphrase given, or prompted for on a terminal; a clear error otherwise."""
    if value:
        return value
    if not sys.stdin.isatty():
        usage_error(f"no passphrase: set {PASSPHRASE_ENV} or pass --passphrase")
    entered: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return entered


PathArg = Annotated[Path, typer.Argument(help="The log directory.")]

NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="The time to act at (ISO 8601; default: now). For simulations."),
]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who is doing this (logged).")]


def when(value: str | None) -> datetime | None:
    """An ISO 8601 time with a time zone, or None; exit 2 on anything else."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        usage_error(f"not an ISO 8601 time: {value!r} (e.g. 2026-07-01T00:00:00+00:00)")
    if moment.tzinfo is None:
        usage_error(f"give a time zone with {value!r} (e.g. +00:00 or Z)")
    return moment


def days(value: str) -> timedelta:
    """A number of days (``180`` or ``180d``); exit 2 on anything else."""
    try:
        return timedelta(days=float(value.removesuffix("d")))
    except ValueError:
        usage_error(f"not a number of days: {value!r} (e.g. 180 or 180d)")


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
