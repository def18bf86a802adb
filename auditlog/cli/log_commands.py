"""The commands on a log as a whole: init, append, verify, stats, repair, schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from auditlog.cli._common import (
    PassphraseOpt,
    PathArg,
    console,
    errors,
    fail,
    open_text_input,
    progress_bar,
    usage_error,
)
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.errors import AuditLogError, RecordValidationError
from auditlog.log import AuditLog, LogConfig
from auditlog.proofs import TrustedState
from auditlog.records import Record, parse_record, record_json_schema

__all__ = ["append", "init", "repair", "schema", "stats", "verify"]


def init(
    path: PathArg,
    passphrase: PassphraseOpt = None,
    origin: Annotated[
        str | None, typer.Option(help="Log origin for checkpoints, e.g. example.com/audit.")
    ] = None,
    period_seconds: Annotated[int, typer.Option(help="Length of a key period.")] = 86_400,
) -> None:
    """Create a new, empty log at PATH."""
    secret = ask_passphrase(passphrase, confirm=True)
    try:
        config = LogConfig(origin=origin, period_seconds=period_seconds)
        with AuditLog.create(path, passphrase=secret, config=config) as log:
            console.print(f"created log [bold]{log.origin}[/] at {path}")
    except AuditLogError as exc:
        fail(exc)
    except ValueError as exc:
        usage_error(str(exc))


def _read_batches(lines: Iterator[str], batch_size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            batch.append((number, line))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def append(
    path: PathArg,
    source: Annotated[
        str, typer.Argument(help="A file of JSON lines, one record each; '-' for stdin.")
    ] = "-",
    chain: Annotated[
        str | None, typer.Option(help="Chain to write to (default: each record's kind).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Lines validated together; a bad line refuses its whole batch.")
    ] = 10_000,
    passphrase: PassphraseOpt = None,
) -> None:
    """Validate JSON-lines records and append them, durably, a batch at a time."""
    handle = open_text_input(source)
    secret = ask_passphrase(passphrase)
    written = 0
    try:
        with AuditLog.open(path, passphrase=secret) as log:
            for batch in _read_batches(iter(handle), batch_size):
                records: list[Record] = []
                problems: list[str] = []
                for number, line in batch:
                    try:
                        records.append(parse_record(line))
                    except RecordValidationError as exc:
                        problems.append(f"line {number}: {exc}")
                if problems:
                    for problem in problems[:20]:
                        errors.print(f"[red]{escape(problem)}[/]", highlight=False)
                    if len(problems) > 20:
                        errors.print(f"... and {len(problems) - 20} more bad lines")
                    errors.print(
                        f"[bold red]error:[/] refused lines {batch[0][0]}-{batch[-1][0]}: nothing "
                        f"of that batch was written ({written} records from earlier batches "
                        "were); fix the lines and append from there",
                        highlight=False,
                    )
                    raise typer.Exit(1)
                result = log.append_many(records, chain=chain)
                written += result.count
    except AuditLogError as exc:
        fail(exc)
    finally:
        if handle is not sys.stdin:
            handle.close()
    console.print(f"appended {written} records (durable)")


KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The log's verifier key to pin (default: the one in the log's manifest).",
        show_default=False,
    ),
]


def verify(
    path: PathArg,
    keyless: Annotated[
        bool, typer.Option("--keyless", help="Check without keys: no passphrase needed.")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            help="A file of checkpoints trusted before: refuse a log cut back or forked since, "
            "then remember the newest checkpoint.",
        ),
    ] = None,
    key: KeyOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Verify every chain: exit 0 when intact, 1 with the location of the first problem."""
    try:
        log = AuditLog.open(
            path, mode="read", passphrase=None if keyless else ask_passphrase(passphrase)
        )
        trusted = TrustedState(state) if state is not None else None
        with log, progress_bar() as progress:
            task = progress.add_task("verifying", total=log.total_bytes())
            report = log.verify(
                keyless=keyless,
                progress=lambda n: progress.advance(task, n),
                trusted=trusted,
                verifier_key=key,
            )
    except AuditLogError as exc:
        fail(exc)
    table = Table(title=f"{'keyless' if keyless else 'full'} verification: intact")
    for column in ("chain", "records", "blocks", "segments", "bytes", "root"):
        table.add_column(column, justify="right" if column != "chain" else "left")
    for name, chain in report.chains.items():
        table.add_row(
            name,
            f"{chain.records:,}",
            f"{chain.blocks:,}",
            f"{chain.segments:,}",
            f"{chain.bytes:,}",
            chain.root.hex()[:16] + "…",
        )
        if chain.torn_tail_bytes:
            errors.print(
                f"[yellow]note:[/] chain {name} ends in {chain.torn_tail_bytes} bytes of an "
                "unfinished block (a crash or a writer mid-write); opening it for writing cuts them"
            )
    console.print(table)
    console.print(f"{report.records:,} records in {report.bytes:,} bytes verified")


def stats(path: PathArg) -> None:
    """Record, segment and byte counts per chain (no passphrase needed)."""
    try:
        with AuditLog.open(path, mode="read") as log:
            result = log.stats()
    except AuditLogError as exc:
        fail(exc)
    table = Table(title=f"log {result.origin}")
    for column in ("chain", "records", "segments", "sealed", "bytes", "bytes/record", "periods"):
        table.add_column(column, justify="right" if column != "chain" else "left")
    for name, chain in result.chains.items():
        per = f"{chain.bytes / chain.records:.1f}" if chain.records else "-"
        table.add_row(
            name,
            f"{chain.records:,}",
            str(chain.segments),
            str(chain.sealed_segments),
            f"{chain.bytes:,}",
            per,
            str(chain.periods),
        )
    console.print(table)


def repair(
    path: PathArg,
    chain: Annotated[str | None, typer.Option(help="Repair only this chain.")] = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Cut damaged blocks off chains' open tails (kept in quarantine) and log the cut."""
    secret = ask_passphrase(passphrase)
    try:
        reports = AuditLog.repair(path, passphrase=secret, chain=chain)
    except AuditLogError as exc:
        fail(exc)
    if not reports:
        console.print("nothing to repair: every chain's open tail is intact")
        return
    for report in reports:
        console.print(
            f"chain {report.chain}: cut {report.bytes_cut} bytes from segment {report.segment} "
            f"at offset {report.offset} (records from index {report.first_lost_index} on); "
            f"kept in {report.quarantine}"
        )


def schema(
    kind: Annotated[str, typer.Argument(help="Record kind: chat, call, network, ...")],
) -> None:
    """Print the JSON Schema of a record kind."""
    try:
        console.print_json(json.dumps(record_json_schema(kind)))
    except AuditLogError as exc:
        fail(exc)
