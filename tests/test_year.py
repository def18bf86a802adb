"""A simulated year of retention on a passed-in clock: issue 4's "Done when", day by day.

Two chains (``chat``, ``network``) get 20 to 40 workload records a day for 365 UTC days under a
six-month floor and a seven-month ceiling. Every day the test appends, takes a checkpoint and
sweeps with ``dry_run=False``; two legal holds start and end mid-year (one on every subject:
placed, extended, released; one on one subject: placed, expires), and the root key is rotated
once in between. After every sweep the test compares the plan and what exists on disk (segment
files, the keyring's live and shredded periods, dictionaries, tombstones) with what it computes
on its own from the policy and the holds. At the end every checkpoint taken during the year is
proved consistent with the final tree.

``verify`` (keyless and keyed, with a trusted state carried from one check to the next) runs on
every day that is out of the ordinary and the day after it (a hold or key action, a sweep whose
shape differs from the day before's, several periods going at once) and every 30 days besides.
Not every day: each ``verify`` re-reads every segment and re-checks the signature of every
stored checkpoint and tombstone, so 365 daily pairs cost O(days^2) — measured at about five
minutes on two cores, against this test's budget of 90 seconds.

fsync is a no-op for this test only: durability is test_sweep_crash.py's subject, and several
syncs per sweep for 365 days would make the year take minutes.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgpack
import pytest

from auditlog import AuditLog, LogConfig, Record, TrustedState
from auditlog.proofs import verify_consistency_proof
from auditlog.retention import RetentionPolicy
from auditlog.segment.tombstone import TombstoneStore
from auditlog.storage.layout import EVENTS_CHAIN
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, tamper, workload

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 365
DAY = timedelta(days=1)
FLOOR = timedelta(days=182)  # six months
CEILING = timedelta(days=212)  # seven months
CHAINS = ("chat", "network")
# Small blocks, so a day is several blocks; a dictionary on the busier days only (training one
# costs tens of milliseconds), so that some swept periods have one to destroy and some do not.
CONFIG = LogConfig(block_max_records=8, dictionary_samples=16)
WORKLOAD_SIZE = DAYS * 40  # about 75 % of the workload is chat or network: ~30 a day
SEED = 4
T = TypeVar("T")

# The holds and the rotation: (day of the year, hour) of each action.
HOLD_A_PLACED = 90  # Apr 1: both chains, every subject, Feb 1 to Feb 15
HOLD_A_EXTENDED = 151  # Jun 1: extended to Feb 20
HOLD_A_RELEASED = 262  # Sep 20: released, after the ceiling of everything it covers
HOLD_B_PLACED = 120  # May 1: chat only, one subject, Mar 1 to Mar 22, expires Nov 1
HOLD_B_EXPIRES = 304
ROTATION_DAY = 200  # Jul 20
ACTION_DAYS = {HOLD_A_PLACED, HOLD_A_EXTENDED, HOLD_A_RELEASED, HOLD_B_PLACED, ROTATION_DAY}
# Besides the action days, the day after each, and every sweep out of the ordinary and the day
# after it, the log is verified both ways every VERIFY_EVERY days (see the module docstring).
VERIFY_EVERY = 30


def day(number: int) -> datetime:
    """Midnight UTC at the start of day ``number`` of the year (0 is Jan 1)."""
    return YEAR_START + number * DAY


def period_of(moment: datetime) -> int:
    """The UTC-day period of ``moment``, computed here rather than asked of the library."""
    return int(moment.timestamp()) // 86_400


def period_start(period: int) -> datetime:
    return datetime.fromtimestamp(period * 86_400, UTC)


@dataclass
class HoldModel:
    """The test's own account of one hold, from the schedule above (not from LegalHold)."""

    chains: tuple[str, ...]
    start: datetime
    ends: list[tuple[datetime, datetime]]  # (from when, the range's end)
    placed: datetime
    released: datetime | None = None
    expires: datetime | None = None
    subject: str | None = None

    def binds(self, chain: str, period: int, now: datetime, subjects: set[str]) -> bool:
        """Whether this hold keeps ``period`` of ``chain`` at ``now``."""
        if now < self.placed or chain not in self.chains:
            return False
        if self.released is not None and self.released <= now:
            return False
        if self.expires is not None and self.expires <= now:
            return False
        end = [until for since, until in self.ends if since <= now][-1]
        first = period_start(period)
        if not (self.start < first + DAY and first < end):
            return False
        return self.subject is None or self.subject in subjects


@dataclass
class ChainModel:
    """What the test expects of one chain: its periods, which are shredded, its segments."""

    periods: set[int] = field(default_factory=set)
    shredded: set[int] = field(default_factory=set)
    segment_period: dict[int, int] = field(default_factory=dict)
    subjects: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    dictionaries_seen: set[int] = field(default_factory=set)

    def live(self) -> set[int]:
        return self.periods - self.shredded

    def segments(self) -> set[int]:
        return {s for s, p in self.segment_period.items() if p not in self.shredded}


class Year:
    """The log, the test's model of it, and the operations of a day that keep both in step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = FixedClock(YEAR_START)
        self.log = AuditLog.create(
            path,
            passphrase=TEST_PASSPHRASE,
            config=CONFIG,
            clock=self.clock,
            scrypt_n=TEST_SCRYPT_N,
        )
        self.models = {chain: ChainModel() for chain in CHAINS}
        self.holds: list[HoldModel] = []
        self.notes: list[tuple[str, int, str]] = []  # (chain, size, signed note) taken daily
        self.held_seen: dict[str, set[int]] = {chain: set() for chain in CHAINS}
        self.held_now: dict[str, set[int]] = {}
        self.verified = 0

    def segment_files(self, chain: str) -> set[int]:
        try:
            names = os.listdir(self.path / "chains" / chain / "segments")
        except FileNotFoundError:
            return set()
        return {int(name[:10]) for name in names if name.endswith(".seg")}

    def track(self, chains: Iterable[str], moment: datetime, action: Callable[[], T]) -> T:
        """Run ``action``, which writes records of ``moment``'s period to ``chains``: that
        period now has a key, and a segment it opens holds that period."""
        before = {chain: self.segment_files(chain) for chain in chains}
        result = action()
        for chain in chains:
            model = self.models[chain]
            model.periods.add(period_of(moment))
            created = self.segment_files(chain) - before[chain]
            assert len(created) <= 1, f"one write opened {len(created)} segments"
            for sequence in created:
                model.segment_period[sequence] = period_of(moment)
        return result

    def append_day(self, number: int, records: list[Record]) -> None:
        """Append one day's records, each chain's in one ``append_many``."""
        for chain in CHAINS:
            mine = [r for r in records if r.kind == chain]
            assert mine, f"day {number} has no {chain} records"
            assert {period_of(r.occurred_at) for r in mine} == {period_of(day(number))}
            for record in mine:
                self.models[chain].subjects[period_of(record.occurred_at)].add(record.subject)
            self.track((chain,), day(number), functools.partial(self.log.append_many, mine))

    def expected_sweep(self, now: datetime) -> dict[str, tuple[set[int], set[int]]]:
        """Per chain, the periods a sweep at ``now`` must shred and those holds must keep."""
        expected = {}
        for chain, model in self.models.items():
            shred, held = set(), set()
            for period in model.live():
                end = period_start(period) + DAY
                if now < end + CEILING:
                    continue
                if any(h.binds(chain, period, now, model.subjects[period]) for h in self.holds):
                    held.add(period)
                else:
                    shred.add(period)
            expected[chain] = (shred, held)
        return expected

    def sweep(self, now: datetime) -> bool:
        """Sweep at ``now`` and check the plan against the model, which then takes it in.

        Returns whether the sweep was out of the ordinary: the first deletion, holds starting
        or ceasing to keep something, or more than one period going at once.
        """
        expected = self.expected_sweep(now)
        before = {chain: self.segment_files(chain) for chain in CHAINS}
        self.clock.set(now)
        plan = self.log.retention.sweep(now=now, dry_run=False)
        assert plan.applied
        unusual = False
        held_before = self.held_now
        self.held_now = {}
        for chain, (shred, held) in expected.items():
            chain_plan = plan.chains[chain]
            assert set(chain_plan.shred_periods) == shred, (now, chain)
            assert set(chain_plan.held_periods) == held, (now, chain)
            model = self.models[chain]
            assert set(chain_plan.delete_segments) == {
                s for s, p in model.segment_period.items() if p in shred
            }
            model.shredded |= shred
            self.held_seen[chain] |= held
            # The sweep's own records go to the log's events chain: no segment is created.
            assert self.segment_files(chain) <= before[chain]
            self.held_now[chain] = held
            before_held = held_before.get(chain, set())
            firsts = shred and not model.shredded - shred
            if len(shred) > 1 or firsts or bool(held) != bool(before_held) or before_held - held:
                unusual = True
        return unusual

    def check_files(self) -> None:
        """Exactly the expected segments, live and shredded keys, dictionaries and tombstones
        exist, as the files on disk say."""
        for chain, model in self.models.items():
            directory = self.path / "chains" / chain
            assert self.segment_files(chain) == model.segments(), chain
            keyring = msgpack.unpackb((directory / "keyring").read_bytes(), strict_map_key=False)
            assert {int(p) for p in keyring["keys"]} == model.live(), chain
            assert {int(p) for p in keyring["shredded"]} == model.shredded, chain
            dictionaries = {int(p.name[:10]) for p in (directory / "dicts").glob("*.zdict")}
            assert dictionaries <= model.live()
            model.dictionaries_seen |= dictionaries
            # Signatures are checked by verify; here only which periods the tombstones name.
            store = TombstoneStore(directory / "tombstones", self.log.chain_origin(chain), None)
            tombstones = store.load().values()
            assert {p for t in tombstones for p in t.periods} == model.shredded

    def check_verify(self, trusted: TrustedState) -> None:
        """The log verifies with and without keys, also against the checkpoints trusted at the
        last check, and reports exactly the expected segments and deleted ranges."""
        keyless = self.log.verify(keyless=True)
        keyed = self.log.verify(trusted=trusted)
        self.verified += 1
        for report in (keyless, keyed):
            for chain, model in self.models.items():
                found = report.chains[chain]
                assert found.size == self.log.stats().chains[chain].records
                assert found.segments == len(model.segments())
                assert found.shredded_records == 0
                ranges = list(found.tombstoned)
                assert ranges == sorted(ranges)
                assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
                assert found.records == found.size - sum(e - s for s, e in ranges)


def _records_by_day() -> dict[int, list[Record]]:
    days: dict[int, list[Record]] = defaultdict(list)
    moments = workload(WORKLOAD_SIZE, seed=SEED, start=YEAR_START, span=DAYS * DAY)
    for record in moments:
        if record.kind in CHAINS:
            days[(record.occurred_at - YEAR_START).days].append(record)
    return days


def _held_subject(days: dict[int, list[Record]], first: int, last: int) -> str:
    """A chat subject with records on some, but far from all, days in [first, last)."""
    counts: dict[str, set[int]] = defaultdict(set)
    for number in range(first, last):
        for record in days[number]:
            if record.kind == "chat":
                counts[record.subject].add(number)
    span = last - first
    fitting = sorted(
        (-len(found), subject)
        for subject, found in counts.items()
        if span // 4 <= len(found) <= span * 3 // 4
    )
    assert fitting, "the workload has no subject for the subject-scoped hold"
    return fitting[0][1]


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn fsync and fdatasync into no-ops for one test (see the module docstring)."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)


@pytest.mark.slow
@pytest.mark.usefixtures("no_fsync")
def test_a_year_of_daily_sweeps_keeps_exactly_what_policy_and_holds_say(tmp_path: Path) -> None:
    """Over a simulated year each daily sweep leaves exactly the segments and keys the floor,
    ceiling and holds call for, the log verifies both ways on every eventful day and monthly,
    and every checkpoint of the year is consistent with the final tree."""
    days = _records_by_day()
    held_subject = _held_subject(days, 59, 80)
    year = Year(tmp_path / "log")
    log = year.log
    trusted = TrustedState(tmp_path / "trusted.json")
    policy = RetentionPolicy(keep_at_least=FLOOR, delete_after=CEILING)
    for chain in CHAINS:
        year.track(
            (chain,),
            YEAR_START,
            functools.partial(log.retention.set_policy, chain, policy, actor="dpo", now=YEAR_START),
        )
    hold_a = hold_b = ""
    rotated: tuple[str, str, int, bytes] | None = None
    was_unusual = False
    for number in range(DAYS):
        at = day(number) + timedelta(hours=1)  # when the day's hold or key action happens
        year.clock.set(at)
        if number == HOLD_A_PLACED:
            year.holds.append(HoldModel(CHAINS, day(31), [(at, day(45))], at))
            hold_a = year.track(
                CHAINS,
                at,
                partial(
                    log.retention.add_hold,
                    "case-A",
                    CHAINS,
                    day(31),
                    day(45),
                    actor="counsel",
                    now=at,
                ),
            ).hold_id
        elif number == HOLD_A_EXTENDED:
            year.holds[0].ends.append((at, day(50)))
            year.track(
                CHAINS,
                at,
                partial(log.retention.extend_hold, hold_a, end=day(50), actor="counsel", now=at),
            )
        elif number == HOLD_A_RELEASED:
            year.holds[0].released = at
            year.track(
                CHAINS, at, partial(log.retention.release_hold, hold_a, actor="counsel", now=at)
            )
        elif number == HOLD_B_PLACED:
            expires = day(HOLD_B_EXPIRES)
            year.holds.append(
                HoldModel(("chat",), day(59), [(at, day(80))], at, None, expires, held_subject)
            )
            hold_b = year.track(
                ("chat",),
                at,
                partial(
                    log.retention.add_hold,
                    "case-B",
                    ["chat"],
                    day(59),
                    day(80),
                    subjects=[held_subject],
                    expires_at=expires,
                    actor="regulator",
                    now=at,
                ),
            ).hold_id
        elif number == ROTATION_DAY:
            rotated = _rotate(year, at)
        year.clock.set(day(number) + timedelta(hours=23, minutes=59))
        year.append_day(number, days[number])
        for chain, signed in log.proofs.sign_checkpoints().items():
            year.notes.append((chain, int(signed.split("\n")[1]), signed))
        unusual = year.sweep(day(number + 1))
        year.check_files()
        if (
            unusual
            or was_unusual
            or {number, number - 1} & ACTION_DAYS
            or number % VERIFY_EVERY == 0
            or number == DAYS - 1
        ):
            year.check_verify(trusted)
        was_unusual = unusual

    # The year went as planned: deletions began at the ceiling and ran daily, hold A kept its
    # periods past their ceiling until released, hold B kept only its subject's periods until
    # it expired, and some swept periods had a dictionary.
    chat, network = year.models["chat"], year.models["network"]
    first = period_of(YEAR_START)
    last_swept = period_of(day(DAYS) - CEILING) - 1
    assert chat.shredded == network.shredded == set(range(first, last_swept + 1))
    assert year.held_seen["network"] == set(range(first + 31, first + 50))
    subject_periods = {first + n for n in range(59, 80) if held_subject in chat.subjects[first + n]}
    assert 0 < len(subject_periods) < 21
    assert year.held_seen["chat"] == set(range(first + 31, first + 50)) | subject_periods
    assert chat.dictionaries_seen & chat.shredded, "no swept period ever had a dictionary"
    assert {h.hold_id for h in log.retention.holds()} == {hold_a, hold_b}
    assert rotated is not None
    assert year.verified >= 24  # the verification schedule of the module docstring ran

    # Every checkpoint of the year, the daily ones and those written at seals, is consistent
    # with the final tree, by proof and by verify's checkpoint checks, also from a new handle.
    final = {
        chain: int(note.split("\n")[1]) for chain, note in log.proofs.sign_checkpoints().items()
    }
    for chain in CHAINS:
        stored = {int(note.split("\n")[1]): note for note in log.proofs.stored_checkpoints(chain)}
        daily = [(size, note) for c, size, note in year.notes if c == chain]
        assert len(daily) == DAYS
        for size, note in daily:
            assert stored[size] == note  # a checkpoint, once taken, is never rewritten
        for size, note in stored.items():
            if 0 < size < final[chain]:
                proof = log.proofs.prove_consistency(chain, size, final[chain])
                verify_consistency_proof(proof, log.verifier_key)
                assert proof.checkpoint1 == note
    log.close()
    with AuditLog.open(year.path, passphrase=TEST_PASSPHRASE, mode="read") as reopened:
        reopened.verify(keyless=True)
        report = reopened.verify(trusted=trusted)
        assert report.events is not None  # the log's own events are checked like any chain
        sizes = {c: r.size for c, r in report.chains.items()}
        assert {**sizes, EVENTS_CHAIN: report.events.size} == final
        _, new_root, period, data_key = rotated
        assert reopened.keys.status().root_key_id == new_root
        if period not in chat.shredded:
            assert tamper.period_data_key(reopened, "chat", period) == data_key


def _rotate(year: Year, at: datetime) -> tuple[str, str, int, bytes]:
    """Rotate the root key mid-year and check that only the wrapping changed."""
    log = year.log
    period = max(year.models["chat"].live())
    data_key = tamper.period_data_key(log, "chat", period)
    old_root = log.keys.status().root_key_id
    segments = {path: path.read_bytes() for path in year.path.glob("chains/*/segments/*.seg")}
    new_root = year.track(CHAINS, at, lambda: log.keys.rotate_root_key(actor="ops", now=at))
    assert new_root != old_root
    assert log.keys.status().root_key_id == new_root
    for path, data in segments.items():  # no segment is rewritten (the open ones grow)
        assert path.read_bytes()[: len(data)] == data
    for chain in CHAINS:
        keyring = msgpack.unpackb(
            (year.path / "chains" / chain / "keyring").read_bytes(), strict_map_key=False
        )
        assert {entry[0] for entry in keyring["keys"].values()} == {new_root}
    assert not (year.path / "keys" / "root.key.next").exists()
    with AuditLog.open(year.path, passphrase=TEST_PASSPHRASE, mode="read") as fresh:
        assert tamper.period_data_key(fresh, "chat", period) == data_key
    return old_root, new_root, period, data_key
