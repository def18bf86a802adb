"""The ``auditlog`` command: init, append, verify, stats, repair, schema."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    ConfigurationError,
    IntegrityError,
    KeyMaterialError,
    LateRecordError,
    LogLockedError,
    NoteError,
    PassphraseError,
    ProofError,
    RecordValidationError,
    RetentionError,
    StateFileError,
)
from auditlog.cli import app
from auditlog.cli._common import exit_code
from auditlog.errors import MigrationRequiredError
from auditlog.records import log_event
from auditlog.testing import TEST_PASSPHRASE, workload

ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}
T0 = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)  # among the workload's records


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
    assert result.exit_code == 2  # bad input, not a log that failed to verify
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


# --- Exit codes and errors: one table for every command --------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IntegrityError("a block does not verify"), 1),
        (StateFileError("the manifest is damaged", path=Path("manifest.json")), 1),
        (ProofError("the proof does not verify"), 1),
        (NoteError("not signed by a known key"), 1),
        (KeyMaterialError("a data key does not unwrap"), 1),
        (PassphraseError("wrong passphrase"), 2),
        (ConfigurationError("no such chain"), 2),
        (MigrationRequiredError("a log of format v1"), 2),
        (RecordValidationError("occurred_at: too far ahead"), 2),
        (LateRecordError("late"), 2),
        (RetentionError("inside the floor"), 2),
        (LogLockedError("another writer"), 3),
        (OSError(errno.ENOSPC, "No space left on device"), 3),
        (PermissionError(errno.EACCES, "Permission denied"), 3),
        (OSError(errno.EROFS, "Read-only file system"), 3),
        (KeyError("a bug"), 70),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_every_error_has_its_exit_code(error: BaseException, code: int) -> None:
    """0 ok, 1 verification failed, 2 bad usage or input, 3 the environment, 70 a bug."""
    assert exit_code(error) == code


def test_a_library_error_caused_by_the_environment_exits_3() -> None:
    """A state file that cannot be read for lack of permission is the environment's doing,
    though a loader reports it as a StateFileError: exit 3, not 1."""
    with pytest.raises(StateFileError) as wrapped:
        _unreadable_state_file()
    assert exit_code(wrapped.value) == 3


def _unreadable_state_file() -> None:
    # As the state-file loader does: the OSError stays the error's context.
    try:
        raise PermissionError(errno.EACCES, "Permission denied")
    except PermissionError:
        raise StateFileError("cannot be read", path=Path("manifest.json")) from None


def test_a_bug_is_reported_without_a_traceback_or_its_text(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception auditlog does not expect exits 70 with a sentence naming its type only (its
    text may hold user data); `auditlog --debug` prints the traceback as well."""

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("secret-user-data")

    monkeypatch.setattr(AuditLog, "open", broken)
    quiet = runner.invoke(app, ["stats", str(tmp_path)])
    assert quiet.exit_code == 70
    assert "internal error (KeyError)" in quiet.output
    assert "secret-user-data" not in quiet.output
    assert "Traceback" not in quiet.output
    loud = runner.invoke(app, ["--debug", "stats", str(tmp_path)])
    assert loud.exit_code == 70
    assert "Traceback" in loud.output
    assert "secret-user-data" in loud.output


def test_debug_shows_the_traceback_of_a_library_error(runner: CliRunner, tmp_path: Path) -> None:
    """A library error is one sentence; with --debug its traceback comes first, same exit code."""
    plain = runner.invoke(app, ["stats", str(tmp_path)])
    debug = runner.invoke(app, ["--debug", "stats", str(tmp_path)])
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback" not in plain.output
    assert "Traceback" in debug.output
    assert "auditlog init" in debug.output


def test_a_refused_record_is_bad_input_and_names_its_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A JSON line of the log's own kind, or dated too far ahead, is refused with exit 2 and
    its line number; nothing of its batch is written."""
    log = tmp_path / "log"
    _init(runner, log)
    lines = _jsonl(3).splitlines()
    forged = log_event(occurred_at=T0, event="sweep", chain="chat", detail="deleted 0-9")
    future = {**json.loads(lines[1]), "occurred_at": "2099-01-01T00:00:00Z"}
    for bad, fragment in (
        (forged.model_dump(mode="json"), "kind 'log'"),
        (future, "max_future_seconds"),
    ):
        source = "\n".join([lines[2], json.dumps(bad)]) + "\n"
        result = runner.invoke(app, ["append", str(log)], input=source, env=ENV)
        assert result.exit_code == 2, result.output
        flat = " ".join(result.output.split())
        assert fragment in flat
        assert "line 2" in flat or "lines 1-2" in flat
        assert "nothing of that batch was written" in flat
    with AuditLog.open(log, mode="read") as opened:
        assert opened.stats().records == 0
