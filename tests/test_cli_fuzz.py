"""The command line fuzzed: random JSON lines to ``auditlog append`` and random option values to
the other commands. Whatever comes in, the command exits 0, 1, 2 or 3, never with a traceback,
and the log still verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _bad_input_helpers import ENV, json_line, records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from auditlog import AuditLog
from auditlog.cli import app
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N

SAMPLES = records(40, seed=11)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=8,
)
times = st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat)


@st.composite
def lines(draw: st.DrawFn) -> str:
    """One input line: a good record, a record with one field changed, or anything at all."""
    record = draw(st.sampled_from(SAMPLES))
    choice = draw(st.integers(min_value=0, max_value=5))
    if choice == 0:
        return json_line(record)
    document: dict[str, Any] = json.loads(json_line(record))
    if choice == 1:
        document["occurred_at"] = draw(times)
    elif choice == 2:
        field = draw(st.sampled_from(sorted(document)) | st.text(max_size=12))
        document[field] = draw(json_values)
    elif choice == 3:
        document.pop(draw(st.sampled_from(sorted(document))))
    elif choice == 4:
        return json.dumps(draw(json_values)) + "\n"
    else:
        return draw(st.text(max_size=60).map(lambda text: text.replace("\n", " "))) + "\n"
    return json.dumps(document) + "\n"


chain_names = st.sampled_from(["chat", "network", "audit.eu-1", "_log", "Chat", ""]) | st.text(
    max_size=8
)
option_text = (
    st.sampled_from(["0", "-1", "1", "180d", "inf", "nan", "1e400", "36525", "", " "])
    | times
    | st.integers(min_value=-(2**65), max_value=2**65).map(str)
    | st.text(max_size=16)
)


@pytest.fixture(scope="module")
def fuzzed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One log all the fuzzing goes to (it grows as inputs are taken)."""
    path = tmp_path_factory.mktemp("fuzz") / "log"
    with AuditLog.create(path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N) as log:
        log.append_many(SAMPLES[:10])
    return path


def _check(args: list[str], stdin: str, log: Path) -> None:
    result = CliRunner().invoke(app, args, input=stdin, env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[:2]} let an exception escape") from result.exception
    assert result.exit_code in (0, 1, 2, 3), result.output
    assert "Traceback" not in result.output
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as opened:
        opened.verify(keyless=True)


@FUZZ
@given(
    body=st.lists(lines(), min_size=1, max_size=8).map("".join),
    batch_size=st.integers(min_value=-2, max_value=4) | st.just(10_000),
    chain=st.none() | chain_names,
)
def test_random_json_lines_never_crash_append(
    body: str, batch_size: int, chain: str | None, fuzzed_log: Path
) -> None:
    """Whatever the JSON lines, batch size and chain, append exits 0, 1, 2 or 3 without a
    traceback, and the log verifies afterwards."""
    args = ["append", str(fuzzed_log), "--batch-size", str(batch_size)]
    _check(args + ([] if chain is None else ["--chain", chain]), body, fuzzed_log)


@FUZZ
@given(
    command=st.sampled_from(
        [
            ["sweep", "{log}", "--now", "{a}"],
            ["sweep", "{log}", "--apply", "--now", "{a}"],
            [
                *("retention", "set", "{log}", "--chain", "{c}"),
                *("--keep-at-least", "{a}", "--delete-after", "{b}"),
            ],
            [
                *("hold", "add", "{log}", "--case", "{a}", "--chain", "{c}"),
                *("--start", "{a}", "--end", "{b}"),
            ],
            ["hold", "list", "{log}", "--now", "{a}"],
            ["hold", "release", "{log}", "{a}"],
            ["redact", "{log}", "--subject", "{a}", "--reason", "{b}", "--now", "{b}"],
            ["prove", "{log}", "--chain", "{c}", "--index", "{a}"],
            ["prove-consistency", "{log}", "--chain", "{c}", "--from", "{a}", "--to", "{b}"],
            ["verify", "{log}", "--key", "{a}"],
            ["checkpoint", "{log}", "--chain", "{c}"],
            ["init", "{new}", "--period-seconds", "{a}", "--origin", "{b}"],
            ["schema", "{a}"],
        ]
    ),
    a=option_text,
    b=option_text,
    c=chain_names,
)
def test_random_option_values_never_crash_a_command(
    command: list[str], a: str, b: str, c: str, fuzzed_log: Path, tmp_path_factory: Any
) -> None:
    """Whatever the option values, each command exits 0, 1, 2 or 3 without a traceback, and
    the log verifies afterwards."""
    new = tmp_path_factory.mktemp("new") / "log"
    values = {"{log}": str(fuzzed_log), "{new}": str(new), "{a}": a, "{b}": b, "{c}": c}
    _check([values.get(part, part) for part in command], "", fuzzed_log)


def test_the_fuzzed_log_is_read_in_full_with_its_keys(fuzzed_log: Path) -> None:
    """After the fuzzing, the log verifies with its keys too: every record decrypts."""
    with AuditLog.open(fuzzed_log, mode="read", passphrase=TEST_PASSPHRASE) as log:
        assert log.verify().records >= 10
