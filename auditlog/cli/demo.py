"""The demo job behind ``make demo`` / ``auditlog demo``: the library end to end, measured.

It writes a realistic workload spread over ten simulated days, verifies the log both ways,
reads records back, signs a checkpoint and proves one record to an outsider who has only the
public key, then runs a retention sweep on a simulated clock, with a legal hold in force, and
verifies again. Every step prints what it measured.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from auditlog.cli._common import console as stdout
from auditlog.crypto.providers import PASSPHRASE_ENV
from auditlog.errors import KeyShreddedError
from auditlog.log import AuditLog, VerifyReport
from auditlog.proofs import InclusionProof, verify_inclusion_proof
from auditlog.records import Record
from auditlog.retention import RetentionPolicy
from auditlog.testing import FixedClock

DEMO_PASSPHRASE = "auditlog demo passphrase"  # noqa: S105 - a demo log of synthetic records
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 10


def _json_line(record: Record) -> bytes:
    return (record.model_dump_json(exclude_none=True) + "\n").encode()


def _report_table(title: str, report: VerifyReport, seconds: float) -> Table:
    table = Table(title=f"{title}: intact in {seconds:.2f} s")
    for column in ("chain", "records", "tree size", "blocks", "segments", "deleted ranges", "root"):
        table.add_column(column, justify="left" if column == "chain" else "right")
    for name, chain in report.chains.items():
        table.add_row(
            name,
            f"{chain.records:,}",
            f"{chain.size:,}",
            f"{chain.blocks:,}",
            f"{chain.segments:,}",
            str(len(chain.tombstoned)),
            chain.root[:8].hex(),
        )
    return table


def _verify_both(console: Console, path: Path, passphrase: str, when: str) -> VerifyReport:
    with AuditLog.open(path, mode="read") as reader:
        started = time.perf_counter()
        keyless = reader.verify(keyless=True)
        seconds = time.perf_counter() - started
        console.print(_report_table(f"keyless verification {when} (no key read)", keyless, seconds))
        console.print(
            f"keyless: {keyless.records / seconds:,.0f} records/s, "
            f"{keyless.bytes / seconds / 1e6:,.1f} MB/s"
        )
    with AuditLog.open(path, mode="read", passphrase=passphrase) as reader:
        started = time.perf_counter()
        full = reader.verify()
        seconds = time.perf_counter() - started
        console.print(
            f"full verification {when} (decrypt and re-hash every record): intact, "
            f"{full.records:,} records in {seconds:.2f} s = {full.records / seconds:,.0f} records/s"
        )
    return full


def run_demo(path: Path, *, records: int, seed: int, console: Console) -> None:
    """Write ``records`` workload records to a new log at ``path`` and exercise everything."""
    from auditlog.testing import workload

    passphrase = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    console.rule("[bold]auditlog demo")
    console.print(f"log directory: {path}  (passphrase from ${PASSPHRASE_ENV} or a demo default)")

    started = time.perf_counter()
    batch = list(workload(records, seed=seed, start=START, span=timedelta(days=DAYS)))
    generated = time.perf_counter() - started
    json_bytes = sum(len(_json_line(r)) for r in batch)
    kinds: dict[str, int] = {}
    for record in batch:
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    console.print(
        f"workload: {len(batch):,} validated records over {DAYS} simulated days in "
        f"{generated:.2f} s ({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))})"
    )

    clock = FixedClock(START + timedelta(days=DAYS))
    with AuditLog.create(path, passphrase=passphrase, clock=clock) as log:
        started = time.perf_counter()
        result = log.append_many(batch)
        written = time.perf_counter() - started
        console.print(
            "append_many (encode, salt, leaf, tree, compress, encrypt, write, fsync per block): "
            f"{result.count:,} records in {written:.2f} s = "
            f"[bold]{result.count / written:,.0f} records/s[/]"
        )
        stats = log.stats()
        console.print(
            f"segments on disk: {stats.bytes:,} bytes = [bold]{stats.bytes / stats.records:.1f} "
            f"bytes/record[/] (the same records as JSON lines: {json_bytes / len(batch):.1f} "
            f"bytes/record; ratio {stats.bytes / json_bytes:.2f})"
        )
        notes = log.proofs.sign_checkpoints()
        verifier_key = log.verifier_key
        console.print(
            f"signed checkpoints of {len(notes)} chains; the log's public key: {verifier_key}"
        )

    _verify_both(console, path, passphrase, "after writing")

    with AuditLog.open(path, mode="read", passphrase=passphrase) as reader:
        console.rule("a few records read back (decrypted)")
        for chain in reader.chains():
            for index, record in reader.read_indexed(chain, 0, 1):
                shown = json.loads(record.model_dump_json(exclude_none=True))
                if "content" in shown:
                    shown["content"] = shown["content"][:60]
                console.print(f"{chain}[{index}]: {json.dumps(shown, ensure_ascii=False)[:240]}")
        console.rule("an inclusion proof for an outsider")
        index = reader.stats().chains["chat"].records // 2
        started = time.perf_counter()
        proof = reader.proofs.prove_inclusion("chat", index)
        proved = time.perf_counter() - started
    document = proof.to_json()
    checkpoint = verify_inclusion_proof(InclusionProof.from_json(document), verifier_key)
    console.print(
        f"chat record {index}: proof of {len(proof.proof)} hashes ({len(proof.proof) * 32} bytes) "
        f"made in {proved * 1000:.1f} ms, verified offline with only the public key against "
        f"the signed checkpoint of size {checkpoint.size}"
    )

    console.rule("retention on a simulated clock")
    policy = RetentionPolicy(keep_at_least=timedelta(days=3), delete_after=timedelta(days=5))
    sweep_at = START + timedelta(days=DAYS + 2)
    clock.set(sweep_at)
    with AuditLog.open(path, passphrase=passphrase, clock=clock) as log:
        for chain in log.chains():
            log.retention.set_policy(chain, policy, actor="demo-dpo")
        hold = log.retention.add_hold(
            "demo-case-1",
            ["chat"],
            START + timedelta(days=2),
            START + timedelta(days=3),
            actor="demo-legal",
            expires_at=sweep_at + timedelta(days=30),
        )
        plan = log.retention.sweep(sweep_at, dry_run=True)
        to_delete = sum(len(c.delete_segments) for c in plan.chains.values())
        to_shred = sum(len(c.shred_periods) for c in plan.chains.values())
        held = sorted({p for c in plan.chains.values() for p in c.held_periods})
        console.print(
            f"policy: keep at least {policy.keep_at_least.days} days, delete after "
            f"{policy.delete_after.days} days; hold {hold.hold_id} ({hold.case_id}) on chat, "
            "day 2. "
            f"Dry run at {sweep_at.date()}: delete {to_delete} segments, shred {to_shred} period "
            f"keys, keep {len(held)} held period(s)"
        )
        started = time.perf_counter()
        log.retention.sweep(sweep_at, dry_run=False, actor="demo-sweep")
        swept = time.perf_counter() - started
        console.print(
            f"sweep applied in {swept:.2f} s; signed tombstones stand for what was deleted"
        )
        try:
            next(iter(log.read("network", 0, 1)))
        except KeyShreddedError as exc:
            console.print(f"reading a swept record: KeyShreddedError: {exc}")
        again = log.retention.sweep(sweep_at, dry_run=True)
        console.print(f"a second sweep finds {'nothing' if again.empty else 'more'} to do")

    full = _verify_both(console, path, passphrase, "after the sweep")
    summary = Table(title="summary")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("records written", f"{len(batch):,}")
    summary.add_row("write throughput", f"{len(batch) / written:,.0f} records/s")
    summary.add_row("bytes per record (segments)", f"{stats.bytes / stats.records:.1f}")
    summary.add_row("vs JSON lines", f"{stats.bytes / json_bytes:.2f}x")
    summary.add_row("records left after the sweep", f"{full.records:,}")
    summary.add_row(
        "deleted ranges (tombstones)", str(sum(len(c.tombstoned) for c in full.chains.values()))
    )
    console.print(summary)
    console.rule("[bold green]demo finished: all checks passed")


def demo(
    path: Annotated[Path, typer.Argument(help="Directory for the demo log (must not exist).")],
    records: Annotated[int, typer.Option(min=10, help="How many records to write.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 0,
) -> None:
    """Run the end-to-end demo: write a realistic workload, verify, read back, summarize."""
    run_demo(path, records=records, seed=seed, console=stdout)
