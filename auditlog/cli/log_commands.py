"""The commands on a log as a whole: init, append, verify, stats, repair, migrate, schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from auditlog.cli._common import (
    PassphraseOpt,
    PathArg,
    console,
    errors,
    invalid_settings,
    open_binary_input,
    progress_bar,
)
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.errors import AuditLogError, RecordValidationError
from auditlog.log import AuditLog, LogConfig
from auditlog.proofs import TrustedState
from auditlog.records import Record, parse_record, record_json_schema

__all__ = ["append", "init", "migrate", "repair", "schema", "stats", "verify"]


def init(
    path: PathArg,
    passphrase: PassphraseOpt = None,
    origin: Annotated[
        str | None, typer.Option(help="Log origin for checkpoints, e.g. example.com/audit.")
    ] = None,
    period_seconds: Annotated[int, typer.Option(help="Length of a key period.")] = 86_400,
    max_future_seconds: Annotated[
        int, typer.Option(help="How far ahead of the clock a record may be dated.")
    ] = 300,
) -> None:
    """Create a new, empty log at PATH."""
    try:
        config = LogConfig(
            origin=origin, period_seconds=period_seconds, max_future_seconds=max_future_seconds
        )
    except ValidationError as exc:
        invalid_settings(exc)
    secret = ask_passphrase(passphrase, confirm=True)
    with AuditLog.create(path, passphrase=secret, config=config) as log:
        console.print(f"created log [bold]{log.origin}[/] at {path}")


_RECORD_AT = re.compile(r"records\[(\d+)\]")


def _read_batches(lines: Iterable[bytes], batch_size: int) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
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
        int,
        typer.Option(min=1, help="Lines validated together; a bad line refuses its whole batch."),
    ] = 10_000,
    passphrase: PassphraseOpt = None,
) -> None:
    """Validate JSON-lines records and append them, durably, a batch at a time.

    A batch with a bad line is refused whole (exit 2); the batches before it are durable.
    """
    secret = ask_passphrase(passphrase)
    handle = open_binary_input(source)
    written = 0
    try:
        with (
            handle if source != "-" else nullcontext(),
            AuditLog.open(path, passphrase=secret) as log,
        ):
            for batch in _read_batches(handle, batch_size):
                records: list[Record] = []
                problems: list[str] = []
                for number, line in batch:
                    try:
                        records.append(parse_record(line))
                    except RecordValidationError as exc:
                        problems.append(f"line {number}: {exc}")
                if not problems:
                    try:
                        written += log.append_many(records, chain=chain).count
                        continue
                    except RecordValidationError as exc:
                        problems.append(_refusal(exc, batch))
                _refuse_batch(problems, batch, written)
    except (AuditLogError, OSError) as exc:
        if written and not isinstance(exc, RecordValidationError):
            errors.print(f"{written} records from earlier batches were appended (durable)")
        raise
    console.print(f"appended {written} records (durable)")


def _refusal(exc: RecordValidationError, batch: list[tuple[int, bytes]]) -> str:
    """The problem of a batch the log refused, by line number where the error names a record."""
    found = _RECORD_AT.match(exc.fields[0]) if exc.fields else None
    if found is None:
        return f"lines {batch[0][0]}-{batch[-1][0]}: {exc}"
    number = batch[int(found.group(1))][0]
    return f"line {number}: {_RECORD_AT.sub('record', str(exc), count=1)}"


def _refuse_batch(problems: list[str], batch: list[tuple[int, bytes]], written: int) -> None:
    for problem in problems[:20]:
        errors.print(f"[red]{escape(problem)}[/]", highlight=False)
    if len(problems) > 20:
        errors.print(f"... and {len(problems) - 20} more bad lines")
    raise RecordValidationError(
        f"refused lines {batch[0][0]}-{batch[-1][0]}: nothing of that batch was written "
        f"({written} records from earlier batches were); fix the lines and append from there"
    )


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
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes verifying chains side by side (default: one per core, for a log "
            "of 64 MiB or more; 1 verifies in this process).",
        ),
    ] = None,
) -> None:
    """Verify every chain: exit 0 when intact, 1 with the location of the first problem.

    Chains are verified side by side in worker processes; with keys, each worker receives
    its chain's data keys from this process through a pipe (never a file or an argument)."""
    log = AuditLog.open(
        path, mode="read", passphrase=None if keyless else ask_passphrase(passphrase)
    )
    with log:
        trusted = TrustedState(state) if state is not None else None
        with progress_bar() as progress:
            task = progress.add_task("verifying", total=log.total_bytes())
            report = log.verify(
                keyless=keyless,
                progress=lambda n: progress.advance(task, n),
                trusted=trusted,
                verifier_key=key,
                workers=workers,
            )
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
    with AuditLog.open(path, mode="read") as log:
        result = log.stats()
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
    reports = AuditLog.repair(path, passphrase=secret, chain=chain)
    if not reports:
        console.print("nothing to repair: every chain's open tail is intact")
        return
    for report in reports:
        console.print(
            f"chain {report.chain}: cut {report.bytes_cut} bytes from segment {report.segment} "
            f"at offset {report.offset} (records from index {report.first_lost_index} on); "
            f"kept in {report.quarantine}"
        )


def migrate(path: PathArg, passphrase: PassphraseOpt = None) -> None:
    """Migrate a log of format v1 (auditlog 0.1) to format v2, once: verify every record with
    keys, then sign its state files and head. Killed half-way, run it again to finish."""
    secret = ask_passphrase(passphrase)
    total = sum(
        segment.stat().st_size
        for segment in Path(path).glob("chains/*/segments/*")
        if segment.is_file()
    )
    with progress_bar() as progress:
        task = progress.add_task("verifying before migrating", total=total)
        report = AuditLog.migrate(
            path, passphrase=secret, progress=lambda n: progress.advance(task, n)
        )
    records = sum(report.chains.values())
    console.print(
        f"migrated {path} from format v{report.from_version} to v{report.to_version}: "
        f"{len(report.chains)} chains, {records:,} records verified with keys; "
        f"{len(report.signed)} files signed"
    )


def schema(
    kind: Annotated[str, typer.Argument(help="Record kind: chat, call, network, ...")],
) -> None:
    """Print the JSON Schema of a record kind."""
    console.print_json(json.dumps(record_json_schema(kind)))
