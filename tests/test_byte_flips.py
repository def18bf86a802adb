"""Random single-byte flips anywhere in a log's files are caught, by keyless and keyed verify.

Issue 11's acceptance: "60 of 60 random single-byte flips anywhere in a log's files caught,
keyed and keyless". One rich log is built once for the module: six chains of the seeded workload
(every record kind) over two periods, zstd dictionaries, a retention sweep that tombstoned the
first period of ``chat``, a legal hold (on subject tokens too), a redaction, a root-key rotation,
checkpoints signed for every chain and the events chain ``_log``, tiles. For each seed, 60
(file, offset) pairs are drawn uniformly over every byte of every file of the log; each flip is
made in a fresh copy (one byte XORed with a random nonzero value) and verified twice, keylessly
with the pristine log's public key pinned, and with the passphrase.

"Caught" is verify (or opening the log for it) raising an ``AuditLogError``. Verify returning a
report is a miss; any other exception (``UnicodeDecodeError``, ``KeyError``, ...) is a bug of
its own, and is asserted separately so that a loader crashing does not hide a silent miss.

The key files (``keys/*.key``) are in the population and must be caught keylessly too: the
head binds them (``auditlog/log/head.py``), and keyless verify holds the directory against the
head. The only files left out are the ``LOCK`` files: a writer truncates its chain's ``LOCK``
and writes its pid there for people to read, the log's ``LOCK`` stays empty, nothing reads
either (they are only ``flock``ed), so a flip in one changes nothing the log holds;
``test_lock_files_hold_nothing_but_a_pid`` checks that this stays so.

A closed log holds no sweep journal; the last tests kill a sweep (SIGKILL, in a child process)
after it wrote and announced its journal, and flip bytes in that journal.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from auditlog import AuditLog, AuditLogError, IntegrityError, LogConfig
from auditlog.records import Record
from auditlog.retention import RetentionPolicy
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, workload

SEEDS = [0, 1, 2, 3]
FLIPS = 60

START = datetime(2026, 5, 4, tzinfo=UTC)
DAY = timedelta(days=1)
PERIOD_0 = int(START.timestamp()) // 86_400
# Small blocks and segments: a few hundred records make several sealed segments per busy chain;
# 16 samples train a dictionary per busy period. Simulated days are appended while the clock
# still stands at their start.
CONFIG = LogConfig(
    origin="example.com/byte-flips",
    block_max_records=8,
    max_segment_records=32,
    dictionary_samples=16,
    max_future_seconds=366 * 86_400,
)
EVENTS_DIRECTORY = "chains/_log/"

Verdict = Literal["caught", "missed", "escaped"]
Mode = Literal["keyless", "keyed"]


@dataclass(frozen=True, slots=True)
class Pristine:
    """The built log, its public key, and the files flips are drawn from (with their sizes)."""

    path: Path
    verifier_key: str
    files: tuple[tuple[str, int], ...]
    digests: dict[str, str]


@dataclass(frozen=True, slots=True)
class Flip:
    file: str
    offset: int
    old: int
    new: int

    def __str__(self) -> str:
        return f"{self.file} @ {self.offset}: {self.old:#04x} -> {self.new:#04x}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one verification of one flipped copy did."""

    flip: Flip
    mode: Mode
    verdict: Verdict
    detail: str

    def __str__(self) -> str:
        return f"{self.mode} {self.flip}: {self.detail}"


def _build(path: Path) -> str:
    """Build the rich log at ``path``, close it, and return its public key."""
    clock = FixedClock(START)
    day_0 = list(workload(150, seed=1, start=START, span=DAY - timedelta(minutes=10)))
    day_1 = list(workload(150, seed=2, start=START + DAY, span=DAY - timedelta(minutes=10)))
    with AuditLog.create(
        path,
        passphrase=TEST_PASSPHRASE,
        config=CONFIG,
        clock=clock,
        scrypt_n=TEST_SCRYPT_N,
        fsync=False,
    ) as log:
        policy = RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY)
        log.retention.set_policy("chat", policy, actor="dpo")
        log.retention.set_policy("network", policy, actor="dpo")
        clock.set(START + DAY - timedelta(minutes=1))
        log.append_many(day_0)
        clock.set(START + 2 * DAY - timedelta(minutes=1))
        log.append_many(day_1)
        log.retention.add_hold("case-1", ["network"], START, START + DAY, actor="counsel")
        log.retention.add_hold(
            "case-2",
            ["call"],
            START,
            START + 2 * DAY,
            actor="counsel",
            subjects=[_first(day_1, "call").subject],
        )
        clock.set(START + 2 * DAY + timedelta(hours=1))
        plan = log.retention.sweep(dry_run=False)
        assert plan.chains["chat"].shred_periods == [PERIOD_0], plan
        assert PERIOD_0 in plan.chains["network"].held_periods, plan
        redacted = log.retention.redact(
            _first(day_1, "chat").subject, reason="erasure request", actor="dpo"
        )
        assert redacted.get("chat"), redacted
        log.keys.rotate_root_key(actor="admin")
        log.proofs.sign_checkpoints()
        return log.verifier_key


def _first(records: list[Record], kind: str) -> Record:
    return next(record for record in records if record.kind == kind)


def _population(root: Path) -> tuple[tuple[str, int], ...]:
    """Every file flips are drawn from, with its size, in a fixed order.

    The events chain's files come last: its events carry random ids (holds, keys), so its
    segments differ by a few bytes from one build to the next, and last they move no other
    file's offsets, which keeps each seed's flips the same from run to run.
    """
    files = [
        (path.relative_to(root).as_posix(), path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file() and path.name != "LOCK"
    ]
    return tuple(sorted(files, key=lambda item: (item[0].startswith(EVENTS_DIRECTORY), item[0])))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    path = tmp_path_factory.mktemp("byte-flips") / "log"
    verifier_key = _build(path)
    return Pristine(path, verifier_key, _population(path), _digests(path))


def _digests(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``root`` (LOCK files included)."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def _draw(pristine: Pristine, seed: int) -> list[Flip]:
    """``FLIPS`` flips, each a byte drawn uniformly from all bytes of all files."""
    rng = random.Random(seed)
    starts = list(itertools.accumulate((size for _, size in pristine.files), initial=0))
    flips = []
    for _ in range(FLIPS):
        at = rng.randrange(starts[-1])
        position = bisect.bisect_right(starts, at) - 1
        name, offset = pristine.files[position][0], at - starts[position]
        old = (pristine.path / name).read_bytes()[offset]
        flips.append(Flip(name, offset, old, old ^ rng.randrange(1, 256)))
    return flips


def _verify(path: Path, verifier_key: str, mode: Mode) -> tuple[Verdict, str]:
    passphrase = TEST_PASSPHRASE if mode == "keyed" else None
    try:
        with AuditLog.open(path, mode="read", passphrase=passphrase) as reader:
            report = reader.verify(keyless=mode == "keyless", verifier_key=verifier_key)
    except AuditLogError as error:
        return "caught", f"{type(error).__name__}: {error.diagnostics()}"
    except Exception as error:  # noqa: BLE001 - any other exception is what this looks for
        return "escaped", f"{type(error).__name__} escaped: {error}"
    torn = {name: chain.torn_tail_bytes for name, chain in report.chains.items()}
    return "missed", f"verify passed (torn tail bytes {torn})"


def _flip(pristine: Pristine, flip: Flip, work: Path) -> list[Outcome]:
    """Verify a copy of the log with ``flip`` made, both ways.

    The copy is of hard links (verification in read mode writes nothing; the last test checks
    the pristine log is unchanged), but for the flipped file, which is a new file with the
    original's mode: a fresh directory per flip, so that no cache keyed by path sees an
    earlier copy.
    """
    copy = work / "log"
    shutil.copytree(pristine.path, copy, copy_function=os.link)
    try:
        target = copy / flip.file
        data = bytearray(target.read_bytes())
        data[flip.offset] = flip.new
        mode = target.stat().st_mode
        target.unlink()
        target.write_bytes(bytes(data))
        target.chmod(mode)
        outcomes = []
        modes: tuple[Mode, ...] = ("keyless", "keyed")
        for verify_mode in modes:
            verdict, detail = _verify(copy, pristine.verifier_key, verify_mode)
            outcomes.append(Outcome(flip, verify_mode, verdict, detail))
        return outcomes
    finally:
        shutil.rmtree(copy)


@pytest.fixture(scope="module")
def outcomes_of(
    pristine: Pristine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[int], list[Outcome]]]:
    """The outcomes of a seed's flips, computed once for the tests that look at them."""
    computed: dict[int, list[Outcome]] = {}
    work = tmp_path_factory.mktemp("flipped")

    def outcomes(seed: int) -> list[Outcome]:
        if seed not in computed:
            computed[seed] = [
                outcome for flip in _draw(pristine, seed) for outcome in _flip(pristine, flip, work)
            ]
        return computed[seed]

    # Keyless verification must not find a passphrase in the environment.
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AUDITLOG_PASSPHRASE", raising=False)
        yield outcomes


def _report(outcomes: list[Outcome], verdict: Verdict, seed: int) -> str:
    bad = [outcome for outcome in outcomes if outcome.verdict == verdict]
    keyless = sum(outcome.mode == "keyless" for outcome in bad)
    return (
        f"seed {seed}: {keyless} keyless and {len(bad) - keyless} keyed of {FLIPS} flips "
        f"{verdict}:\n" + "\n".join(map(str, bad))
    )


def test_the_pristine_log_is_rich_and_verifies_both_ways(pristine: Pristine) -> None:
    """The log holds every kind of file the flips are meant to hit, and verifies keyless and
    keyed: otherwise every flip would count as caught."""
    names = [name for name, _ in pristine.files]
    for pattern in (
        r"manifest\.json",
        r"head\.note",
        r"holds\.json",
        r"keys/root\.key",
        r"keys/checkpoint\.key",
        r"keys/hold\.key",
        r"chains/chat/keyring",
        r"chains/chat/tombstones/.*\.tomb",
        r"chains/chat/redactions/.*\.note",
        r"chains/chat/dicts/.*\.zdict",
        r"chains/chat/tiles/level-00",
        r"chains/chat/checkpoints/.*\.note",
        r"chains/_log/checkpoints/.*\.note",
        r"chains/_log/segments/.*\.seg",
    ):
        assert any(re.fullmatch(pattern, name) for name in names), pattern
    chains = {name.split("/")[1] for name in names if name.startswith("chains/")}
    assert chains == {"_log", "access", "activity", "call", "chat", "identity", "network"}
    for keyless in (True, False):
        passphrase = None if keyless else TEST_PASSPHRASE
        with AuditLog.open(pristine.path, mode="read", passphrase=passphrase) as reader:
            report = reader.verify(keyless=keyless, verifier_key=pristine.verifier_key)
        assert set(report.chains) == chains - {"_log"}
        assert report.events is not None
        assert all(chain.torn_tail_bytes == 0 for chain in report.chains.values())


def test_lock_files_hold_nothing_but_a_pid(pristine: Pristine) -> None:
    """The files left out of the flips are the LOCK files, which hold a writer's pid or
    nothing: they carry no state of the log."""
    locks = sorted(pristine.path.rglob("LOCK"))
    assert locks
    for lock in locks:
        assert re.fullmatch(rb"(\d+\n)?", lock.read_bytes()), lock


@pytest.mark.parametrize("seed", SEEDS)
def test_no_flip_goes_unnoticed(outcomes_of: Callable[[int], list[Outcome]], seed: int) -> None:
    """Verification never passes on a copy of the log with one byte flipped, whatever the file
    and offset, keyless (public key pinned) or keyed."""
    outcomes = outcomes_of(seed)
    assert len(outcomes) == 2 * FLIPS
    assert not any(o.verdict == "missed" for o in outcomes), _report(outcomes, "missed", seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_flip_is_refused_with_a_library_error(
    outcomes_of: Callable[[int], list[Outcome]], seed: int
) -> None:
    """Each flip makes opening or verifying raise an AuditLogError, never a bare Python
    exception (KeyError, TypeError, UnicodeDecodeError, ...)."""
    outcomes = outcomes_of(seed)
    assert not any(o.verdict == "escaped" for o in outcomes), _report(outcomes, "escaped", seed)


def test_flips_hit_many_kinds_of_file(pristine: Pristine) -> None:
    """The seeds' flips land in segments and in state files alike (the draw is over all bytes,
    and segments are most of them)."""
    hit = {flip.file for seed in SEEDS for flip in _draw(pristine, seed)}
    assert any(name.endswith(".seg") for name in hit)
    assert any(not name.endswith(".seg") for name in hit)


def test_verifying_the_flipped_copies_left_the_pristine_log_unchanged(pristine: Pristine) -> None:
    """The copies share the pristine log's files (hard links): verification in read mode wrote
    none of them, so each flip was checked against the log as built."""
    assert _digests(pristine.path) == pristine.digests


_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.mark.parametrize(
    "file",
    [
        "head.note",
        "chains/chat/checkpoints/00000000000000000110.note",
        "chains/chat/tombstones/0000000000-0000000001.tomb",
    ],
)
def test_a_flip_in_the_unused_bits_of_a_signature_is_caught(
    pristine: Pristine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str
) -> None:
    """A one-byte change to a signed note's last base64 character that leaves the decoded
    signature the same (it touches only the character's unused low bits) is a changed file
    all the same: verification fails both ways. Random flips hit this one byte in ~1 of 10^5."""
    monkeypatch.delenv("AUDITLOG_PASSPHRASE", raising=False)
    copy = tmp_path / "log"
    shutil.copytree(pristine.path, copy, copy_function=os.link)
    target = copy / file
    data = bytearray(target.read_bytes())
    # The signature line ends "<base64 of 68 bytes>=\n": its last character before the padding
    # carries two unused bits.
    assert data.endswith(b"=\n"), file
    assert not data.endswith(b"==\n"), file
    at = len(data) - 3
    changed = _BASE64[_BASE64.index(chr(data[at])) ^ 1]
    encoded = bytes(data[data.rindex(b" ") + 1 : -1])
    assert binascii.a2b_base64(encoded) == binascii.a2b_base64(
        encoded[:-2] + changed.encode() + b"="
    )
    data[at] = ord(changed)
    target.unlink()
    target.write_bytes(bytes(data))
    modes: tuple[Mode, ...] = ("keyless", "keyed")
    for mode in modes:
        verdict, detail = _verify(copy, pristine.verifier_key, mode)
        assert verdict == "caught", f"{mode}: {detail}"


# -- a pending sweep journal ---------------------------------------------------------------------

JOURNAL = "chains/chat/sweep.journal"
JOURNAL_FLIPS = 20
SWEEP_CHILD = Path(__file__).with_name("sweep_child.py")


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """A small log whose chat sweep was killed (SIGKILL) right after it announced itself:
    its signed journal is on disk, bound by the head, and nothing of it is carried out."""
    path = tmp_path_factory.mktemp("journaled") / "log"
    clock = FixedClock(START)
    with AuditLog.create(
        path,
        passphrase=TEST_PASSPHRASE,
        config=CONFIG,
        clock=clock,
        scrypt_n=TEST_SCRYPT_N,
        fsync=False,
    ) as log:
        policy = RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY)
        log.retention.set_policy("chat", policy, actor="dpo")
        clock.set(START + DAY - timedelta(minutes=1))
        log.append_many(workload(80, seed=1, start=START, span=DAY - timedelta(minutes=10)))
        clock.set(START + 2 * DAY - timedelta(minutes=1))
        log.append_many(workload(80, seed=2, start=START + DAY, span=DAY - timedelta(minutes=10)))
        log.proofs.sign_checkpoints()
        verifier_key = log.verifier_key
    environment = {**os.environ, "AUDITLOG_CRASHPOINT": "sweep-announced"}
    environment.pop("AUDITLOG_PASSPHRASE", None)
    sweep_at = (START + 2 * DAY + timedelta(hours=1)).isoformat()
    child = subprocess.run(
        [sys.executable, str(SWEEP_CHILD), str(path), sweep_at],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert (path / JOURNAL).is_file()
    return Pristine(path, verifier_key, ((JOURNAL, (path / JOURNAL).stat().st_size),), {})


def _flipped_journals(journaled: Pristine) -> list[Flip]:
    rng = random.Random(0)
    data = (journaled.path / JOURNAL).read_bytes()
    flips = []
    for _ in range(JOURNAL_FLIPS):
        offset = rng.randrange(len(data))
        flips.append(Flip(JOURNAL, offset, data[offset], data[offset] ^ rng.randrange(1, 256)))
    return flips


def test_a_log_with_an_interrupted_sweep_verifies(journaled: Pristine) -> None:
    """A sweep killed after writing its journal leaves a log that verifies both ways (so that
    the flips below are the journal's doing)."""
    modes: tuple[Mode, ...] = ("keyless", "keyed")
    for mode in modes:
        verdict, detail = _verify(journaled.path, journaled.verifier_key, mode)
        assert verdict == "missed", detail  # "missed" here: verify passed


def test_flips_in_a_sweep_journal_are_caught_by_verify(journaled: Pristine) -> None:
    """A pending sweep journal with one byte flipped fails keyless and keyed verification (the
    head binds the journal's bytes)."""
    work = journaled.path.parent / "work"
    work.mkdir(exist_ok=True)
    bad = []
    for flip in _flipped_journals(journaled):
        bad += [str(o) for o in _flip(journaled, flip, work) if o.verdict != "caught"]
    assert not bad, f"{len(bad)} of {2 * JOURNAL_FLIPS}:\n" + "\n".join(bad)


def test_flips_in_a_sweep_journal_are_refused_when_the_log_is_opened(
    journaled: Pristine, tmp_path: Path
) -> None:
    """A journal with a flipped byte is refused by the next open for writing (IntegrityError),
    before any of it is carried out."""
    for flip in _flipped_journals(journaled):
        copy = tmp_path / f"log-{flip.offset}-{flip.new}"
        shutil.copytree(journaled.path, copy)
        data = bytearray((copy / JOURNAL).read_bytes())
        data[flip.offset] = flip.new
        (copy / JOURNAL).write_bytes(bytes(data))
        with pytest.raises(IntegrityError):
            AuditLog.open(copy, passphrase=TEST_PASSPHRASE).close()
        shutil.rmtree(copy)
