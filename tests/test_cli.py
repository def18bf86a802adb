"""The ``auditlog`` command: init, append, verify, stats, repair, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditlog import AuditLog
from auditlog.cli import app
from auditlog.testing import TEST_PASSPHRASE, workload

ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _jsonl(n: int, seed: int = 0) -> str:
    return "".join(r.model_dump_json() + "\n" for r in workload(n, seed=seed))


def _init(runner: CliRunner, path: Path) -> None:
    result = runner.invoke(app, ["init", str(path)], env=ENV)
    assert result.exit_code == 0, result.output


def test_init_append_verify_stats(runner: CliRunner, tmp_path: Path) -> None:
    """Records appended from JSON lines verify both ways and show up in stats."""
    log = tmp_path / "log"
    _init(runner, log)
    source = tmp_path / "in.jsonl"
    source.write_text(_jsonl(300), encoding="utf-8")
    result = runner.invoke(app, ["append", str(log), str(source)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "appended 300 records" in result.output
    full = runner.invoke(app, ["verify", str(log)], env=ENV)
    assert full.exit_code == 0, full.output
    assert "300 records" in full.output
    keyless = runner.invoke(app, ["verify", str(log), "--keyless"], env={})
    assert keyless.exit_code == 0, keyless.output
    stats = runner.invoke(app, ["stats", str(log)])
    assert stats.exit_code == 0
    assert "network" in stats.output


def test_append_refuses_a_batch_with_a_bad_line(runner: CliRunner, tmp_path: Path) -> None:
    """A bad line is reported with its number, without its content, and its batch is not written."""
    log = tmp_path / "log"
    _init(runner, log)
    lines = _jsonl(5).splitlines()
    bad = json.loads(lines[2])
    bad["subject"] = "secret-subject-marker"
    bad["occurred_at"] = "2026-01-01T00:00:00"  # naive: refused
    lines[2] = json.dumps(bad)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["append", str(log), str(source)], env=ENV)
    assert result.exit_code == 1
    assert "line 3" in result.output
    assert "secret-subject-marker" not in result.output
    with AuditLog.open(log, mode="read") as opened:
        assert opened.stats().records == 0


def test_append_reads_stdin(runner: CliRunner, tmp_path: Path) -> None:
    """'-' (the default) reads JSON lines from standard input."""
    log = tmp_path / "log"
    _init(runner, log)
    result = runner.invoke(app, ["append", str(log)], input=_jsonl(20), env=ENV)
    assert result.exit_code == 0, result.output
    assert "appended 20 records" in result.output


def test_verify_reports_damage_with_location(runner: CliRunner, tmp_path: Path) -> None:
    """A flipped byte makes verify exit 1 and print chain, segment and offset."""
    log = tmp_path / "log"
    _init(runner, log)
    runner.invoke(app, ["append", str(log)], input=_jsonl(50), env=ENV)
    segment = next((log / "chains" / "chat" / "segments").iterdir())
    data = bytearray(segment.read_bytes())
    data[-40] ^= 0x01
    segment.write_bytes(bytes(data))
    for args, env in ((["--keyless"], {}), ([], ENV)):
        result = runner.invoke(app, ["verify", str(log), *args], env=env)
        assert result.exit_code == 1, result.output
        assert "chain=chat" in result.output
        assert "segment=0" in result.output


def test_missing_passphrase_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    """Without a passphrase in a non-interactive run, the error says how to give one."""
    log = tmp_path / "log"
    _init(runner, log)
    result = runner.invoke(app, ["verify", str(log)], env={"AUDITLOG_PASSPHRASE": ""})
    assert result.exit_code == 2
    assert "AUDITLOG_PASSPHRASE" in result.output


def test_not_a_log_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    """Pointing the command at a directory that is not a log says how to make one."""
    result = runner.invoke(app, ["stats", str(tmp_path)])
    assert result.exit_code == 2
    assert "auditlog init" in result.output


def test_schema_prints_json_schema(runner: CliRunner) -> None:
    """`auditlog schema network` prints the JSON Schema of network records."""
    result = runner.invoke(app, ["schema", "network"])
    assert result.exit_code == 0
    assert "source_ip" in result.output
    assert runner.invoke(app, ["schema", "nope"]).exit_code == 2


def test_repair_with_nothing_to_repair(runner: CliRunner, tmp_path: Path) -> None:
    """Repair on an intact log changes nothing and says so."""
    log = tmp_path / "log"
    _init(runner, log)
    runner.invoke(app, ["append", str(log)], input=_jsonl(10), env=ENV)
    result = runner.invoke(app, ["repair", str(log)], env=ENV)
    assert result.exit_code == 0
    assert "nothing to repair" in result.output


def test_console_script_keyless_verify_needs_no_passphrase(tmp_path: Path) -> None:
    """The installed command verifies keylessly in a process with no passphrase at all."""
    log = tmp_path / "log"
    with AuditLog.create(log, passphrase=TEST_PASSPHRASE, scrypt_n=2**10) as created:
        created.append_many(workload(100))
    env = {k: v for k, v in os.environ.items() if k != "AUDITLOG_PASSPHRASE"}
    done = subprocess.run(
        [sys.executable, "-m", "auditlog", "verify", str(log), "--keyless"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "100 records" in done.stdout


def test_a_missing_input_file_is_a_usage_error_not_a_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    """append and verify-proof name a file they cannot read and exit 2; nothing is written."""
    log = tmp_path / "log"
    _init(runner, log)
    missing = tmp_path / "nowhere.jsonl"
    appended = runner.invoke(app, ["append", str(log), str(missing)], env=ENV)
    assert appended.exit_code == 2
    assert "cannot read" in appended.output
    assert appended.exception is None or isinstance(appended.exception, SystemExit)
    checked = runner.invoke(app, ["verify-proof", str(missing), "--key", "k"])
    assert checked.exit_code == 2
    assert "cannot read" in checked.output
    binary = tmp_path / "proof.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    undecodable = runner.invoke(app, ["verify-proof", str(binary), "--key", "k"])
    assert undecodable.exit_code == 2
    assert "not UTF-8" in undecodable.output
    with AuditLog.open(log, mode="read") as opened:
        assert opened.stats().records == 0
