"""The commands on retention: retention set|show, sweep, hold add|list|release, redact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from auditlog.cli._common import (
    ActorOpt,
    NowOpt,
    PassphraseOpt,
    PathArg,
    console,
    days,
    fail,
    progress_bar,
    usage_error,
    when,
)
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.errors import AuditLogError
from auditlog.log import AuditLog
from auditlog.retention import RetentionPolicy, SweepPlan

__all__ = [
    "hold_add",
    "hold_list",
    "hold_release",
    "redact",
    "retention_set",
    "retention_show",
    "sweep",
]


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
        policy = RetentionPolicy(keep_at_least=days(keep_at_least), delete_after=days(delete_after))
    except ValueError as exc:
        usage_error(str(exc))
    try:
        with AuditLog.open(path, passphrase=secret, chains=[chain]) as log:
            log.retention.set_policy(chain, policy, actor=actor)
    except AuditLogError as exc:
        fail(exc)
    console.print(
        f"chain {chain}: keep at least {policy.keep_at_least}, delete after {policy.delete_after}"
    )


def retention_show(path: PathArg) -> None:
    """Show every chain's retention policy (no passphrase needed)."""
    try:
        with AuditLog.open(path, mode="read") as log:
            table = Table(title="retention")
            for column in ("chain", "keep at least (floor)", "delete after (ceiling)"):
                table.add_column(column)
            for chain in log.chains():
                policy = log.retention.policy(chain)
                table.add_row(
                    chain,
                    str(policy.keep_at_least) if policy else "-",
                    str(policy.delete_after) if policy else "never (no policy)",
                )
    except AuditLogError as exc:
        fail(exc)
    console.print(table)


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
    at = when(now)
    try:
        with AuditLog.open(path, passphrase=secret, mode="read" if dry_run else "write") as log:
            plan = log.retention.sweep(at, dry_run=True)
            _print_plan(plan)
            if dry_run or plan.empty:
                return
            with progress_bar() as progress:
                task = progress.add_task("sweeping", total=len(plan.chains))
                for chain in plan.chains:
                    log.retention.sweep(at, dry_run=False, chains=[chain], actor=actor)
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
    begin, finish = when(start), when(end)
    if begin is None or finish is None:
        usage_error("--start and --end are required")
    try:
        with AuditLog.open(path, passphrase=secret, chains=chain) as log:
            hold = log.retention.add_hold(
                case_id,
                chain,
                begin,
                finish,
                actor=actor,
                subjects=subject or (),
                expires_at=when(expires),
                now=when(now),
            )
    except AuditLogError as exc:
        fail(exc)
    except ValueError as exc:
        usage_error(str(exc))
    console.print(f"placed {hold.hold_id} for case {hold.case_id}")


def hold_list(path: PathArg, now: NowOpt = None) -> None:
    """List legal holds (no passphrase needed)."""
    at = when(now) or datetime.now(UTC)
    try:
        with AuditLog.open(path, mode="read") as log:
            holds = log.retention.holds()
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
            "active" if hold.active(at) else "released/expired",
        )
    console.print(table)


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
            log.retention.release_hold(hold_id, actor=actor, now=when(now))
    except AuditLogError as exc:
        fail(exc)
    console.print(f"released {hold_id}")


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
            done = log.retention.redact(
                subject, reason=reason, actor=actor, now=when(now), legal_basis=legal_basis
            )
    except AuditLogError as exc:
        fail(exc)
    total = sum(len(v) for v in done.values())
    console.print(f"redacted {total} records in {len(done)} chains")
