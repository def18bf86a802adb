"""Crash safety of sweeps with real processes: killed at every journal step, rerun, same end.

A template log has two chains of eight daily periods, a floor of two days, a ceiling of three
and a hold on one period of ``chat``, so a sweep at day 8 shreds five periods of each chain but
one (nine in all), deletes nine segments and stores three tombstones (``chat`` loses two runs of
segments around the held one). A child process (``sweep_child.py``) opens a copy of the
template and sweeps; ``AUDITLOG_CRASHPOINT=<step>#<n>`` makes it SIGKILL itself the n-th time
it reaches a step. For every step and every n it can reach, the parent kills one child there,
runs the sweep again in a fresh child, and then checks the copy against a reference copy swept
without a crash: the same segment files, keyring periods and shred times, dictionaries,
checkpoints and tombstones (byte for byte), one sweep record per chain, and ``verify`` passing
with and without keys. Between the crash and the rerun nothing outside the plan may have been
touched; after the rerun no tombstone names a period whose key survived and no segment is left
whose periods were all shredded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

import auditlog
from auditlog import AuditLog, IntegrityError, LogConfig
from auditlog.records import LogEventType
from auditlog.retention import RetentionPolicy
from auditlog.segment.scan import list_segments, scan_segment
from auditlog.segment.tombstone import TombstoneStore
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, workload

CHILD = Path(__file__).with_name("sweep_child.py")
LIBRARY_ROOT = Path(auditlog.__file__).resolve().parent.parent
CHAINS = ("chat", "network")
START = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
DAYS = 8
NOW = START + DAYS * DAY + timedelta(hours=1)
POLICY = RetentionPolicy(keep_at_least=2 * DAY, delete_after=3 * DAY)
HELD_DAY = 3  # chat's period of day 3 is under a hold: its two neighbours' runs are separate
# Simulated days are appended while the test's clock still stands at their start.
CONFIG = LogConfig(block_max_records=8, dictionary_samples=8, max_future_seconds=366 * 86_400)
# The steps of a sweep in the order it takes them (auditlog/_sweep.py), and how often one sweep
# of the template reaches each: once per chain, once per tombstone, once per deleted segment,
# once per shredded period.
STEPS = {
    "sweep-journal-written": 2,
    "sweep-announced": 2,
    "sweep-tombstone-stored": 3,
    "sweep-segment-deleted": 9,
    "sweep-dictionary-destroyed": 9,
    "sweep-key-shredded": 9,
    "sweep-end-recorded": 2,
    "sweep-journal-removed": 2,
    "sweep-finished": 2,
}
KILL_POINTS = [f"{step}#{n}" for step, count in STEPS.items() for n in range(1, count + 1)]
EXPECTED_SHRED = {"chat": [0, 1, 2, 4], "network": [0, 1, 2, 3, 4]}  # days since START


def _day(number: int) -> datetime:
    return START + number * DAY


def _period(number: int) -> int:
    return int(_day(number).timestamp()) // 86_400


def _build_template(path: Path) -> None:
    """The log every case starts from: eight days of chat and network records, policies, a
    hold on chat's day 3; closed, nothing swept yet."""
    clock = FixedClock(START)
    records = [
        r
        for r in workload(DAYS * 32, seed=7, start=START, span=DAYS * DAY - timedelta(hours=1))
        if r.kind in CHAINS
    ]
    with AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, config=CONFIG, clock=clock, scrypt_n=TEST_SCRYPT_N
    ) as log:
        for chain in CHAINS:
            log.retention.set_policy(chain, POLICY, actor="dpo", now=START)
        for number in range(DAYS):
            clock.set(_day(number) + timedelta(hours=23))
            log.append_many(r for r in records if (r.occurred_at - START).days == number)
            if number == 0:  # a hold names chains that exist
                log.retention.add_hold(
                    "case-crash",
                    ["chat"],
                    _day(HELD_DAY),
                    _day(HELD_DAY + 1),
                    actor="court",
                    now=START,
                )


def _run_child(
    log: Path, crash_point: str | None, now: datetime = NOW
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(LIBRARY_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.pop("AUDITLOG_PASSPHRASE", None)
    env.pop("AUDITLOG_CRASHPOINT", None)
    if crash_point is not None:
        env["AUDITLOG_CRASHPOINT"] = crash_point
    return subprocess.run(
        [sys.executable, str(CHILD), str(log), now.isoformat()],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class ChainState:
    """Everything a sweep decides about one chain, as the files on disk say."""

    segments: tuple[str, ...]
    keys: tuple[int, ...]
    shredded: tuple[tuple[int, int], ...]  # (period, when shredded)
    dictionaries: tuple[str, ...]
    checkpoints: tuple[str, ...]
    tombstones: tuple[tuple[str, bytes], ...]
    journal: bool


def _names(directory: Path, suffix: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(n for n in os.listdir(directory) if n.endswith(suffix)))
    except FileNotFoundError:
        return ()


def _chain_state(log: Path, chain: str) -> ChainState:
    directory = log / "chains" / chain
    keyring = msgpack.unpackb((directory / "keyring").read_bytes(), strict_map_key=False)
    return ChainState(
        segments=_names(directory / "segments", ".seg"),
        keys=tuple(sorted(int(p) for p in keyring["keys"])),
        shredded=tuple(sorted((int(p), int(t)) for p, t in keyring["shredded"].items())),
        dictionaries=_names(directory / "dicts", ".zdict"),
        checkpoints=_names(directory / "checkpoints", ".note"),
        tombstones=tuple(
            (name, (directory / "tombstones" / name).read_bytes())
            for name in _names(directory / "tombstones", ".tomb")
        ),
        journal=(directory / "sweep.journal").exists(),
    )


def _state(log: Path) -> dict[str, ChainState]:
    return {chain: _chain_state(log, chain) for chain in sorted(os.listdir(log / "chains"))}


def _check_invariants(log: Path) -> dict[str, Any]:
    """No tombstoned period keeps its key, no segment of shredded periods only is left, the
    log verifies both ways; returns, per chain, its sweep records, size and deleted ranges."""
    found: dict[str, Any] = {}
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        keyless = reader.verify(keyless=True)
        keyed = reader.verify()
        events = [e for _, e in reader.events() if e.event == LogEventType.SWEEP]
        for chain in reader.chains():
            directory = log / "chains" / chain
            keyring = msgpack.unpackb((directory / "keyring").read_bytes(), strict_map_key=False)
            shredded = {int(p) for p in keyring["shredded"]}
            store = TombstoneStore(
                directory / "tombstones", reader.chain_origin(chain), reader.verifier_key
            )
            tombstones = store.load().values()
            for tombstone in tombstones:
                assert set(tombstone.periods) <= shredded, "a deleted segment's key survived"
            for sequence, path in list_segments(directory / "segments"):
                scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=True)
                periods = {b.header.period for b in scan.blocks}
                assert not periods <= shredded, f"segment {sequence} of shredded periods remains"
            assert keyless.chains[chain].size == keyed.chains[chain].size
            assert keyless.chains[chain].tombstoned == keyed.chains[chain].tombstoned
            # A sweep of a chain leaves two events, its beginning and its end, even when killed
            # and run again (the rerun finds the beginning it recorded).
            sweeps = [e for e in events if e.chain == chain]
            assert len(sweeps) % 2 == 0, f"chain {chain}: {len(sweeps)} sweep events"
            found[chain] = (
                len(sweeps) // 2,
                keyed.chains[chain].size,
                keyed.chains[chain].tombstoned,
            )
    return found


@dataclass(frozen=True)
class Reference:
    template: Path
    state: dict[str, ChainState]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The template log, and a copy of it swept by a child that was not killed."""
    root = tmp_path_factory.mktemp("sweep-crash")
    template = root / "template"
    _build_template(template)
    swept = root / "reference"
    shutil.copytree(template, swept)
    run = _run_child(swept, None)
    assert run.returncode == 0, run.stderr
    expected = {c: ",".join(str(_period(d)) for d in days) for c, days in EXPECTED_SHRED.items()}
    assert run.stdout.split() == ["swept", *(f"{c}:{expected[c]}" for c in CHAINS)]
    yield Reference(template, _state(swept), _check_invariants(swept))
    shutil.rmtree(root, ignore_errors=True)


def _crash_and_rerun(
    reference: Reference, point: str, workdir: Path, *, zero_journals: bool = False
) -> None:
    """Kill a sweep at ``point``, rerun it in a fresh process, compare with the reference
    (``zero_journals``: first overwrite the journals left with zeros, as ``secure_delete``
    killed before it removed them would)."""
    log = workdir / point.replace("#", "-")
    shutil.copytree(reference.template, log)
    before = _state(log)
    crashed = _run_child(log, point)
    assert crashed.returncode == -signal.SIGKILL, (
        f"{point}: the child was not killed there (exit {crashed.returncode}):\n{crashed.stderr}"
    )
    for journal in log.glob("chains/*/sweep.journal") if zero_journals else ():
        journal.write_bytes(bytes(journal.stat().st_size))
    # Killed mid-sweep: only what the plan names may have changed, and nothing beyond it; the
    # steps counted so far show that the child died where it was told to.
    middle = _state(log)
    step, _, nth = point.partition("#")
    progress = {
        "sweep-tombstone-stored": sum(len(middle[c].tombstones) for c in CHAINS),
        "sweep-segment-deleted": sum(
            len(set(before[c].segments) - set(middle[c].segments)) for c in CHAINS
        ),
        "sweep-key-shredded": sum(len(middle[c].shredded) for c in CHAINS),
        "sweep-dictionary-destroyed": sum(len(middle[c].shredded) for c in CHAINS) + 1,
    }
    if step in progress:
        assert progress[step] == int(nth), point
    for chain in CHAINS:
        done, start, end = reference.state[chain], before[chain], middle[chain]
        assert set(start.segments) - set(end.segments) <= set(start.segments) - set(done.segments)
        assert set(end.segments) - set(start.segments) <= set(done.segments) - set(start.segments)
        assert set(start.keys) - set(end.keys) <= set(start.keys) - set(done.keys), point
        assert set(end.shredded) <= set(done.shredded), point
        assert set(end.tombstones) <= set(done.tombstones), point
    rerun = _run_child(log, None)
    assert rerun.returncode == 0, f"{point}: the rerun failed:\n{rerun.stderr}"
    after = _state(log)
    for chain in CHAINS:
        assert after[chain] == reference.state[chain], f"{point}: {chain} differs"
    assert _check_invariants(log) == reference.summary, point
    shutil.rmtree(log)


@pytest.mark.slow
def test_sweep_killed_at_any_step_ends_as_if_never_killed(
    reference: Reference, tmp_path: Path
) -> None:
    """A sweep killed at any step of its journal and run again in a fresh process ends in the
    same state as one never killed, verifies both ways, and never leaves a deleted segment's
    key or a shredded key's segment behind."""
    assert len(KILL_POINTS) >= 20
    for chain, days in EXPECTED_SHRED.items():
        state = reference.state[chain]
        assert [p for p, _ in state.shredded] == [_period(d) for d in days]
        assert not state.journal
        count, _, deleted = reference.summary[chain]
        assert count == 1
        assert len(deleted) == (2 if chain == "chat" else 1)
    failures = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {p: pool.submit(_crash_and_rerun, reference, p, tmp_path) for p in KILL_POINTS}
        for point, future in futures.items():
            error = future.exception()
            if error is not None:
                failures.append(f"{point}: {error!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "point",
    [
        "sweep-announced#1",
        "sweep-tombstone-stored#1",
        "sweep-segment-deleted#1",
        "sweep-key-shredded#1",
    ],
)
def test_sweep_of_a_chains_newest_segment_killed_midway_is_finished(
    tmp_path: Path, point: str
) -> None:
    """A sweep that seals and deletes a chain's open segment (the chain got nothing newer),
    killed midway, is finished by the next process and ends as an uncrashed one does."""
    template = tmp_path / "template"
    clock = FixedClock(START)
    with AuditLog.create(
        template, passphrase=TEST_PASSPHRASE, config=CONFIG, clock=clock, scrypt_n=TEST_SCRYPT_N
    ) as log:
        log.retention.set_policy(
            "chat", RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY), actor="dpo"
        )
        clock.set(START + timedelta(hours=20))
        log.append_many(r for r in workload(40, seed=3, start=START) if r.kind == "chat")
    now = START + 2 * DAY
    expected = tmp_path / "reference"
    shutil.copytree(template, expected)
    assert _run_child(expected, None, now).returncode == 0
    log_path = tmp_path / "crashed"
    shutil.copytree(template, log_path)
    assert _run_child(log_path, point, now).returncode == -signal.SIGKILL
    rerun = _run_child(log_path, None, now)
    assert rerun.returncode == 0, rerun.stderr
    assert _state(log_path) == _state(expected)
    assert _check_invariants(log_path) == _check_invariants(expected)


def test_a_log_killed_mid_sweep_is_not_reported_as_tampered(
    reference: Reference, tmp_path: Path
) -> None:
    """Killed between deleting two segments of one run, the log verified read-only (so without
    finishing the sweep) either passes or says that a sweep is unfinished; it does not report
    a missing segment as if the log had been tampered with."""
    log = tmp_path / "log"
    shutil.copytree(reference.template, log)
    assert _run_child(log, "sweep-segment-deleted#2").returncode == -signal.SIGKILL
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        for keyless in (True, False):
            error = _verify_error(reader, keyless=keyless)
            assert error is None or "sweep" in str(error).lower(), error and error.diagnostics()


def _verify_error(log: AuditLog, *, keyless: bool) -> IntegrityError | None:
    """The IntegrityError ``verify`` raises, or None when the log verifies."""
    try:
        log.verify(keyless=keyless)
    except IntegrityError as exc:
        return exc
    return None


def test_a_journal_not_signed_by_the_log_is_not_carried_out(
    reference: Reference, tmp_path: Path
) -> None:
    """A sweep journal planted by someone who can write files but holds no key (here: the
    reference sweep's own journal with one more segment added) deletes and shreds nothing:
    opening the log for writing refuses it with IntegrityError."""
    log = tmp_path / "log"
    shutil.copytree(reference.template, log)
    assert _run_child(log, "sweep-journal-written#1").returncode == -signal.SIGKILL
    journal_path = log / "chains" / "chat" / "sweep.journal"
    journal = msgpack.unpackb(journal_path.read_bytes())
    journal["delete_segments"] = [*journal["delete_segments"], 5]
    journal_path.write_bytes(msgpack.packb(journal))
    before = _state(log)
    with pytest.raises(IntegrityError, match="not signed by this log"):
        AuditLog.open(log, passphrase=TEST_PASSPHRASE).close()
    assert _state(log) == before


def test_sweep_killed_while_its_done_journal_is_zeroed_is_finished(
    reference: Reference, tmp_path: Path
) -> None:
    """Killed inside the removal of a finished chain's journal (overwritten with zeros, not
    yet removed): the next write-open removes it and the sweep ends as if never killed."""
    point = "sweep-end-recorded#1"  # chat's journal is removed next
    _crash_and_rerun(reference, point, tmp_path, zero_journals=True)
