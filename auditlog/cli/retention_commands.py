"""The commands on retention: retention set|show, sweep, hold add|list|release, redact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from auditlog.cli._common import (
    ActorOpt,
    NowOpt,
    PassphraseOpt,
    PathArg,
    console,
    days,
    invalid_settings,
    progress_bar,
    usage_error,
    when,
)
from auditlog.cli._common import passphrase as ask_passphrase
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
    """Set a chain's retention floor and ceiling (signed, and logged in the log's events)."""
    floor = days(keep_at_least, "--keep-at-least")
    ceiling = days(delete_after, "--delete-after")
    try:
        policy = RetentionPolicy(keep_at_least=floor, delete_after=ceiling)
    except ValidationError as exc:
        invalid_settings(exc)
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret, chains=[chain]) as log:
        log.retention.set_policy(chain, policy, actor=actor)
    console.print(
        f"chain {chain}: keep at least {policy.keep_at_least}, delete after {policy.delete_after}"
    )


def retention_show(path: PathArg) -> None:
    """Show every chain's retention policy (no passphrase needed)."""
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
    at = when(now)
    secret = ask_passphrase(passphrase)
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
    begin, finish = when(start, "--start"), when(end, "--end")
    expires_at, at = when(expires, "--expires"), when(now)
    if begin is None or finish is None:
        usage_error("--start and --end are required")
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret, chains=chain) as log:
        try:
            hold = log.retention.add_hold(
                case_id,
                chain,
                begin,
                finish,
                actor=actor,
                subjects=subject or (),
                expires_at=expires_at,
                now=at,
            )
        except ValidationError as exc:
            invalid_settings(exc)
    console.print(f"placed {hold.hold_id} for case {hold.case_id}")


def hold_list(path: PathArg, now: NowOpt = None) -> None:
    """List legal holds (no passphrase needed)."""
    at = when(now) or datetime.now(UTC)
    with AuditLog.open(path, mode="read") as log:
        holds = log.retention.holds()
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
    at = when(now)
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret) as log:
        log.retention.release_hold(hold_id, actor=actor, now=at)
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
    at = when(now)
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret) as log:
        done = log.retention.redact(
            subject, reason=reason, actor=actor, now=at, legal_basis=legal_basis
        )
    total = sum(len(v) for v in done.values())
    console.print(f"redacted {total} records in {len(done)} chains")
