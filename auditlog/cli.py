"""Layer 7: the ``auditlog`` command, a thin shell over the public API.

Exit codes: 0 success; 1 the log did not verify (or records were refused); 2 usage or
configuration errors. Errors print their diagnostics, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from auditlog._cli_common import (
    PassphraseOpt,
    console,
    errors,
    fail,
    open_text_input,
    read_text_input,
    usage_error,
)
from auditlog._cli_common import passphrase as ask_passphrase
from auditlog._cli_witness import witness_app
from auditlog.checkpoints import TrustedState
from auditlog.errors import AuditLogError, RecordValidationError
from auditlog.log import AuditLog, LogConfig
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from auditlog.records import Record, parse_record
from auditlog.retention import RetentionPolicy, SweepPlan

app = typer.Typer(
    name="auditlog",
    help="Private, tamper-evident, retention-bound audit logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(witness_app, name="witness")

PathArg = Annotated[Path, typer.Argument(help="The log directory.")]


@app.command()
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


@app.command()
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


@app.command()
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
        with log, _progress() as progress:
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


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )


@app.command()
def checkpoint(
    path: PathArg,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Sign and store a checkpoint of every chain (or one), and print the signed notes."""
    secret = ask_passphrase(passphrase)
    try:
        with AuditLog.open(path, passphrase=secret, chains=[chain] if chain else None) as log:
            notes = log.checkpoint(chain)
            key = log.verifier_key
    except AuditLogError as exc:
        fail(exc)
    # Plain print: notes and keys are copied by hand and must not be re-wrapped by rich.
    for signed in notes.values():
        print(signed, end="")
    print(f"verifier key: {key}")


@app.command()
def prove(
    path: PathArg,
    chain: Annotated[str, typer.Option(help="The chain of the record.")],
    index: Annotated[int, typer.Option(help="The record's index in its chain.")],
    size: Annotated[
        int | None, typer.Option(help="Tree size of the checkpoint to prove to (default: newest).")
    ] = None,
) -> None:
    """Print a JSON inclusion proof of one record, with its signed checkpoint (no keys needed)."""
    try:
        with AuditLog.open(path, mode="read") as log:
            proof = log.prove(chain, index, size)
    except AuditLogError as exc:
        fail(exc)
    print(proof.to_json())


@app.command("prove-consistency")
def prove_consistency(
    path: PathArg,
    chain: Annotated[str, typer.Option(help="The chain.")],
    old: Annotated[int, typer.Option("--from", help="The older checkpoint's tree size.")],
    new: Annotated[
        int | None, typer.Option("--to", help="The newer checkpoint's size (default: newest).")
    ] = None,
) -> None:
    """Print a JSON consistency proof between two stored checkpoints (no keys needed)."""
    try:
        with AuditLog.open(path, mode="read") as log:
            proof = log.prove_consistency(chain, old, new)
    except AuditLogError as exc:
        fail(exc)
    print(proof.to_json())


@app.command("verify-proof")
def verify_proof(
    proof_file: Annotated[str, typer.Argument(help="A proof document (JSON); '-' for stdin.")],
    key: Annotated[str, typer.Option("--key", help="The log's verifier key.")],
) -> None:
    """Check an inclusion or consistency proof offline, with nothing but the log's public key."""
    text = read_text_input(proof_file)
    try:
        kind = json.loads(text).get("format") if text.strip().startswith("{") else None
        if kind == "auditlog-consistency-proof":
            first, second = verify_consistency_proof(ConsistencyProof.from_json(text), key)
            console.print(
                f"consistent: {second.origin} at size {second.size} extends size {first.size}"
            )
        else:
            checkpoint_ = verify_inclusion_proof(InclusionProof.from_json(text), key)
            console.print(
                f"included: the leaf is in {checkpoint_.origin} at tree size {checkpoint_.size}"
            )
    except AuditLogError as exc:
        fail(exc)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        usage_error(f"not an ISO 8601 time: {value!r} (e.g. 2026-07-01T00:00:00+00:00)")
    if moment.tzinfo is None:
        usage_error(f"give a time zone with {value!r} (e.g. +00:00 or Z)")
    return moment


def _days(value: str) -> timedelta:
    try:
        return timedelta(days=float(value.removesuffix("d")))
    except ValueError:
        usage_error(f"not a number of days: {value!r} (e.g. 180 or 180d)")


NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="The time to act at (ISO 8601; default: now). For simulations."),
]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who is doing this (logged).")]

retention_app = typer.Typer(
    help="Retention policies: floor and ceiling per chain.", no_args_is_help=True
)
hold_app = typer.Typer(
    help="Legal holds: keep what they cover past the ceiling.", no_args_is_help=True
)
keys_app = typer.Typer(help="Root key status and rotation.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")
app.add_typer(keys_app, name="keys")


@retention_app.command("set")
def retention_set(
    path: PathArg,
    chain: Annotated[str, typer.Option(help="The chain.")],
    keep_at_least: Annotated[str, typer.Option(help="The floor, in days.")],
    delete_after: Annotated[str, typer.Option(help="The ceiling, in days.")],
    actor: ActorOpt = "operator",
    passphrase: PassphraseOpt = None,
) -> None:
    """Set a chain's retention floor and ceiling (logged in the chain)."""
    secret = ask_passphrase(passphrase)
    try:
        policy = RetentionPolicy(
            keep_at_least=_days(keep_at_least), delete_after=_days(delete_after)
        )
    except ValueError as exc:
        usage_error(str(exc))
    try:
        with AuditLog.open(path, passphrase=secret, chains=[chain]) as log:
            log.set_retention(chain, policy, actor=actor)
    except AuditLogError as exc:
        fail(exc)
    console.print(
        f"chain {chain}: keep at least {policy.keep_at_least}, delete after {policy.delete_after}"
    )


@retention_app.command("show")
def retention_show(path: PathArg) -> None:
    """Show every chain's retention policy (no passphrase needed)."""
    try:
        with AuditLog.open(path, mode="read") as log:
            table = Table(title="retention")
            for column in ("chain", "keep at least (floor)", "delete after (ceiling)"):
                table.add_column(column)
            for chain in log.chains():
                policy = log.retention(chain)
                table.add_row(
                    chain,
                    str(policy.keep_at_least) if policy else "-",
                    str(policy.delete_after) if policy else "never (no policy)",
                )
    except AuditLogError as exc:
        fail(exc)
    console.print(table)


@app.command()
def sweep(
    path: PathArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--apply", help="Only show the plan (default), or apply it.")
    ] = True,
    now: NowOpt = None,
    actor: ActorOpt = "retention-sweep",
    passphrase: PassphraseOpt = None,
) -> None:
    """Show (or apply) what retention deletes, shreds and holds."""
    secret = ask_passphrase(passphrase)
    when = _when(now)
    try:
        with AuditLog.open(path, passphrase=secret, mode="read" if dry_run else "write") as log:
            plan = log.sweep(when, dry_run=True)
            _print_plan(plan)
            if dry_run or plan.empty:
                return
            with _progress() as progress:
                task = progress.add_task("sweeping", total=len(plan.chains))
                for chain in plan.chains:
                    log.sweep(when, dry_run=False, chains=[chain], actor=actor)
                    progress.advance(task)
    except AuditLogError as exc:
        fail(exc)
    console.print("sweep applied")


def _print_plan(plan: SweepPlan) -> None:
    table = Table(title=f"sweep at {plan.now.isoformat()}")
    for column in ("chain", "delete segments", "shred periods", "held (cases)", "floor", "kept"):
        table.add_column(column)
    for name, chain in plan.chains.items():
        held = ", ".join(f"{p} ({'/'.join(c)})" for p, c in chain.held_periods.items())
        table.add_row(
            name,
            ", ".join(map(str, chain.delete_segments)) or "-",
            ", ".join(map(str, chain.shred_periods)) or "-",
            held or "-",
            str(len(chain.floor_periods)),
            str(len(chain.kept_periods)) if chain.policy else "no policy",
        )
    console.print(table)


@hold_app.command("add")
def hold_add(
    path: PathArg,
    case_id: Annotated[str, typer.Option("--case", help="The case or order id.")],
    chain: Annotated[list[str], typer.Option("--chain", help="A chain it covers (repeat).")],
    start: Annotated[str, typer.Option(help="Start of the covered time range (ISO 8601).")],
    end: Annotated[str, typer.Option(help="End of the covered time range (ISO 8601).")],
    subject: Annotated[
        list[str] | None,
        typer.Option("--subject", help="Only this subject (repeat; stored as a token)."),
    ] = None,
    expires: Annotated[str | None, typer.Option(help="When the hold lapses (ISO 8601).")] = None,
    actor: ActorOpt = "legal",
    now: NowOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Place a legal hold."""
    secret = ask_passphrase(passphrase)
    begin, finish = _when(start), _when(end)
    if begin is None or finish is None:
        usage_error("--start and --end are required")
    try:
        with AuditLog.open(path, passphrase=secret, chains=chain) as log:
            hold = log.add_hold(
                case_id,
                chain,
                begin,
                finish,
                actor=actor,
                subjects=subject or (),
                expires_at=_when(expires),
                now=_when(now),
            )
    except AuditLogError as exc:
        fail(exc)
    except ValueError as exc:
        usage_error(str(exc))
    console.print(f"placed {hold.hold_id} for case {hold.case_id}")


@hold_app.command("list")
def hold_list(path: PathArg, now: NowOpt = None) -> None:
    """List legal holds (no passphrase needed)."""
    when = _when(now) or datetime.now(UTC)
    try:
        with AuditLog.open(path, mode="read") as log:
            holds = log.holds()
    except AuditLogError as exc:
        fail(exc)
    table = Table(title="legal holds")
    for column in ("hold", "case", "chains", "from", "to", "subjects", "expires", "state"):
        table.add_column(column)
    for hold in holds:
        table.add_row(
            hold.hold_id,
            hold.case_id,
            ", ".join(hold.chains),
            hold.start.isoformat(),
            hold.end.isoformat(),
            str(len(hold.subject_tokens)) if hold.subject_tokens else "all",
            hold.expires_at.isoformat() if hold.expires_at else "-",
            "active" if hold.active(when) else "released/expired",
        )
    console.print(table)


@hold_app.command("release")
def hold_release(
    path: PathArg,
    hold_id: Annotated[str, typer.Argument(help="The hold to release.")],
    actor: ActorOpt = "legal",
    now: NowOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Release a legal hold (logged)."""
    secret = ask_passphrase(passphrase)
    try:
        with AuditLog.open(path, passphrase=secret) as log:
            log.release_hold(hold_id, actor=actor, now=_when(now))
    except AuditLogError as exc:
        fail(exc)
    console.print(f"released {hold_id}")


@app.command()
def redact(
    path: PathArg,
    subject: Annotated[str, typer.Option(help="The subject whose records are erased.")],
    reason: Annotated[str, typer.Option(help="Why (logged; no user data here).")],
    legal_basis: Annotated[
        str | None, typer.Option(help="Provision overriding the retention floor, if needed.")
    ] = None,
    actor: ActorOpt = "dpo",
    now: NowOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Erase one subject's records (frames removed, leaves kept: the log still verifies)."""
    secret = ask_passphrase(passphrase)
    try:
        with AuditLog.open(path, passphrase=secret) as log:
            done = log.redact(
                subject, reason=reason, actor=actor, now=_when(now), legal_basis=legal_basis
            )
    except AuditLogError as exc:
        fail(exc)
    total = sum(len(v) for v in done.values())
    console.print(f"redacted {total} records in {len(done)} chains")


@keys_app.command("status")
def keys_status(path: PathArg, passphrase: PassphraseOpt = None) -> None:
    """Show the root key id and each chain's live and shredded periods."""
    secret = ask_passphrase(passphrase)
    try:
        with AuditLog.open(path, mode="read", passphrase=secret) as log:
            status = log.key_status()
    except AuditLogError as exc:
        fail(exc)
    console.print(
        f"root key {status.root_key_id} ({status.provider})"
        + (
            " — a rotation is pending: run `auditlog keys rotate` again"
            if status.rotation_pending
            else ""
        )
    )
    table = Table()
    for column in ("chain", "live period keys", "shredded periods"):
        table.add_column(column)
    for chain, (live, shredded) in status.chains.items():
        table.add_row(chain, str(len(live)), str(len(shredded)))
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(
    path: PathArg, actor: ActorOpt = "operator", passphrase: PassphraseOpt = None
) -> None:
    """Rewrap every data key under a new root key; the old root key is destroyed."""
    secret = ask_passphrase(passphrase)
    try:
        with AuditLog.open(path, passphrase=secret) as log:
            new = log.rotate_root_key(actor=actor, passphrase=secret)
    except AuditLogError as exc:
        fail(exc)
    console.print(f"root key rotated; now {new}")


@app.command()
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


@app.command()
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


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(help="Record kind: chat, call, network, ...")],
) -> None:
    """Print the JSON Schema of a record kind."""
    from auditlog.records import record_json_schema

    try:
        console.print_json(json.dumps(record_json_schema(kind)))
    except AuditLogError as exc:
        fail(exc)


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Directory for the demo log (must not exist).")],
    records: Annotated[int, typer.Option(help="How many records to write.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 0,
) -> None:
    """Run the end-to-end demo: write a realistic workload, verify, read back, summarize."""
    from auditlog._demo import run_demo

    try:
        run_demo(path, records=records, seed=seed, console=console)
    except AuditLogError as exc:
        fail(exc)


def main() -> None:
    """Entry point of the ``auditlog`` console script."""
    app()
