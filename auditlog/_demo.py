"""The demo job behind ``make demo`` / ``auditlog demo``: the library end to end, measured."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from auditlog.crypto.providers import PASSPHRASE_ENV
from auditlog.log import AuditLog, VerifyReport
from auditlog.records import Record

DEMO_PASSPHRASE = "auditlog demo passphrase"  # noqa: S105 - a demo log of synthetic records


def _json_line(record: Record) -> bytes:
    return (record.model_dump_json(exclude_none=True) + "\n").encode()


def _report_table(title: str, report: VerifyReport, seconds: float) -> Table:
    table = Table(title=f"{title}: intact in {seconds:.2f} s")
    for column in ("chain", "records", "blocks", "segments", "bytes", "root (first 8 bytes)"):
        table.add_column(column, justify="left" if column == "chain" else "right")
    for name, chain in report.chains.items():
        table.add_row(
            name,
            f"{chain.records:,}",
            f"{chain.blocks:,}",
            f"{chain.segments:,}",
            f"{chain.bytes:,}",
            chain.root[:8].hex(),
        )
    return table


def run_demo(path: Path, *, records: int, seed: int, console: Console) -> None:
    """Write ``records`` workload records to a new log at ``path``, verify, read back, report."""
    from auditlog.testing import workload

    passphrase = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    console.rule("[bold]auditlog demo")
    console.print(f"log directory: {path}  (passphrase from ${PASSPHRASE_ENV} or a demo default)")

    started = time.perf_counter()
    batch = list(workload(records, seed=seed))
    generated = time.perf_counter() - started
    json_bytes = sum(len(_json_line(r)) for r in batch)
    kinds: dict[str, int] = {}
    for record in batch:
        kinds[record.kind] = kinds.get(record.kind, 0) + 1
    console.print(
        f"workload: {len(batch):,} validated records in {generated:.2f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))})"
    )

    with AuditLog.create(path, passphrase=passphrase) as log:
        started = time.perf_counter()
        result = log.append_many(batch)
        written = time.perf_counter() - started
        console.print(
            f"append_many (encode, salt, leaf, tree, compress, encrypt, write, fsync per block): "
            f"{result.count:,} records in {written:.2f} s = "
            f"[bold]{result.count / written:,.0f} records/s[/]"
        )
        stats = log.stats()
        console.print(
            f"on disk: {stats.bytes:,} bytes of segments = [bold]{stats.bytes / stats.records:.1f}"
            f" bytes/record[/] (the same records as JSON lines: {json_bytes / len(batch):.1f} "
            f"bytes/record; ratio {stats.bytes / json_bytes:.2f})"
        )

    with AuditLog.open(path, mode="read") as reader:
        started = time.perf_counter()
        keyless = reader.verify(keyless=True)
        keyless_s = time.perf_counter() - started
        console.print(_report_table("keyless verification (no key read)", keyless, keyless_s))
        console.print(
            f"keyless: {keyless.records / keyless_s:,.0f} records/s, "
            f"{keyless.bytes / keyless_s / 1e6:,.1f} MB/s"
        )

    with AuditLog.open(path, mode="read", passphrase=passphrase) as reader:
        started = time.perf_counter()
        full = reader.verify()
        full_s = time.perf_counter() - started
        console.print(
            _report_table("full verification (decrypt, re-hash every record)", full, full_s)
        )
        console.print(f"full: {full.records / full_s:,.0f} records/s")
        if full.records != len(batch):
            raise SystemExit(f"expected {len(batch)} records, verified {full.records}")

        console.rule("a few records read back (decrypted)")
        for chain in reader.chains():
            for index, record in reader.read_indexed(chain, 0, 1):
                shown = json.loads(record.model_dump_json(exclude_none=True))
                if "content" in shown:
                    shown["content"] = shown["content"][:60]
                console.print(f"{chain}[{index}]: {json.dumps(shown, ensure_ascii=False)[:300]}")
    console.rule("[bold green]demo finished: all checks passed")
