"""Retention policies, legal holds and sweeps: the rules of issue 4, one behaviour per test.

Most tests use one ``chat`` chain with a record a few hours apart on each of six UTC days
(periods P+0 to P+5, one segment each), a floor of two days and a ceiling of four, and sweep at
the start of day 6 (plus an hour): then P+0 and P+1 are past the ceiling, P+2 and P+3 lie
between floor and ceiling, and P+4 and P+5 are inside the floor. Time is always passed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    ConfigurationError,
    KeyShreddedError,
    LogConfig,
    RecordRedactedError,
    TrustedState,
)
from auditlog.cli import app
from auditlog.errors import RetentionError
from auditlog.records import ChatMessage, LogEvent, LogEventType
from auditlog.retention import RetentionPolicy
from auditlog.segment.scan import list_segments, scan_segment
from auditlog.testing import TEST_PASSPHRASE, FixedClock

START = datetime(2026, 2, 1, tzinfo=UTC)
DAY = timedelta(days=1)
P = int(START.timestamp()) // 86_400  # the period of day 0
DAYS = 6
PER_DAY = 6
FLOOR = 2 * DAY
CEILING = 4 * DAY
POLICY = RetentionPolicy(keep_at_least=FLOOR, delete_after=CEILING)
NOW = START + DAYS * DAY + timedelta(hours=1)
# Simulated days are appended while the test's clock still stands at their start.
CONFIG = LogConfig(block_max_records=4, dictionary_samples=8, max_future_seconds=366 * 86_400)
# Subjects: "carol" writes on days 1 and 3 only; "dave" on every day.
CAROL_DAYS = (1, 3)

MakeLog = Callable[..., AuditLog]


def day(number: int, hours: float = 0) -> datetime:
    return START + number * DAY + timedelta(hours=hours)


def chat(number: int, index: int, subject: str) -> ChatMessage:
    """The ``index``-th chat record of day ``number``, about ``subject``."""
    return ChatMessage(
        occurred_at=day(number, 1 + 3 * index),
        subject=subject,
        service="chat",
        message_id=f"m-{number}-{index}",
        conversation_id="c-1",
        sender=subject,
        recipients=("erin",),
        operation="send",
        content=f"day {number} message {index}",
        client_ip=IPv4Address("192.0.2.1"),
        client_port=5000 + index,
    )


def day_records(number: int) -> list[ChatMessage]:
    subjects = ["dave"] * PER_DAY
    if number in CAROL_DAYS:
        subjects[2] = "carol"
    return [chat(number, i, s) for i, s in enumerate(subjects)]


def build(create_log: MakeLog, *, policy: RetentionPolicy | None = POLICY) -> AuditLog:
    """A log whose ``chat`` chain holds six days of records, one segment a day."""
    clock = FixedClock(START)
    log = create_log(CONFIG, clock=clock)
    if policy is not None:
        log.retention.set_policy("chat", policy, actor="dpo", now=START)
    for number in range(DAYS):
        clock.set(day(number, 23))
        log.append_many(day_records(number))
    clock.set(NOW)
    return log


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) and its bytes."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def events(log: AuditLog, chain: str = "chat") -> list[LogEvent]:
    """The log's own events about ``chain``, oldest first (they are in the events chain)."""
    return [event for _, event in log.events() if event.chain == chain]


# -- policies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("floor", "ceiling"),
    [
        (timedelta(days=30), timedelta(days=29)),
        (timedelta(days=1), timedelta(seconds=86_399)),
        (timedelta(days=-1), timedelta(days=1)),
        (timedelta(0), timedelta(0)),
        (timedelta(0), timedelta(days=-1)),
    ],
)
def test_policy_refuses_a_ceiling_below_the_floor_or_not_positive(
    floor: timedelta, ceiling: timedelta
) -> None:
    """A ceiling below the floor, a negative floor or a ceiling of zero or less is refused."""
    with pytest.raises(ValidationError):
        RetentionPolicy(keep_at_least=floor, delete_after=ceiling)


def test_policy_accepts_a_ceiling_equal_to_the_floor_and_nothing_extra() -> None:
    """Floor == ceiling is valid (delete as soon as allowed); unknown fields are refused."""
    policy = RetentionPolicy(keep_at_least=DAY, delete_after=DAY)
    assert policy.delete_after == policy.keep_at_least
    assert RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY).keep_at_least == timedelta(
        0
    )
    with pytest.raises(ValidationError):
        RetentionPolicy.model_validate({"keep_at_least": 1, "delete_after": 2, "grace": 3})


def test_policy_changes_are_stored_in_the_manifest_and_appended_to_the_chain(
    create_log: MakeLog, open_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """Each set_retention rewrites the manifest's policy for the chain and appends a ``policy``
    log record with the actor; a reopened log has the latest policy."""
    log = build(create_log)
    stricter = RetentionPolicy(keep_at_least=3 * DAY, delete_after=10 * DAY)
    log.retention.set_policy("chat", stricter, actor="auditor", now=day(6, 2))
    manifest = json.loads((log_path / "manifest.json").read_text())
    assert RetentionPolicy.model_validate(manifest["retention"]["chat"]) == stricter
    assert log.retention.policy("chat") == stricter
    assert log.retention.policy("network") is None
    policies = [e for e in events(log) if e.event == LogEventType.POLICY]
    assert [(e.actor, e.occurred_at) for e in policies] == [
        ("dpo", START),
        ("auditor", day(6, 2)),
    ]
    assert "10 days" in policies[-1].detail
    log.close()
    assert open_log().retention.policy("chat") == stricter


def test_a_chain_without_policy_is_never_swept(create_log: MakeLog) -> None:
    """Without a policy a sweep deletes nothing of the chain, and asking for periods by hand is
    refused with RetentionError."""
    log = build(create_log, policy=None)
    plan = log.retention.sweep(now=day(400), dry_run=False)
    assert plan.chains["chat"].policy is None
    assert plan.empty
    with pytest.raises(RetentionError, match="no retention policy"):
        log.retention.sweep(now=day(400), periods={"chat": [P]}, dry_run=False)
    assert P in log.keys.status().chains["chat"].live


def test_sweeping_an_unknown_chain_is_a_configuration_error(create_log: MakeLog) -> None:
    """Naming a chain that does not exist is refused before anything is planned."""
    log = build(create_log)
    with pytest.raises(ConfigurationError, match="no such chains"):
        log.retention.sweep(now=NOW, chains=["nope"])


# -- floor and ceiling --------------------------------------------------------------------


def test_the_sweep_deletes_past_the_ceiling_and_keeps_the_rest(create_log: MakeLog) -> None:
    """Past the ceiling is shredded and deleted; between floor and ceiling is kept; inside the
    floor is kept and reported as such."""
    log = build(create_log)
    plan = log.retention.sweep(now=NOW, dry_run=False).chains["chat"]
    assert plan.shred_periods == [P, P + 1]
    assert plan.delete_segments == [0, 1]
    assert plan.kept_periods == [P + 2, P + 3]
    assert plan.floor_periods == [P + 4, P + 5]
    assert sorted(log.keys.status().chains["chat"].shredded) == [P, P + 1]
    assert sorted(os.listdir(log.path / "chains" / "chat" / "segments"))[:2] == [
        "0000000002.seg",
        "0000000003.seg",
    ]


def test_the_ceiling_counts_from_the_end_of_the_period(create_log: MakeLog) -> None:
    """A period goes exactly when its end plus the ceiling is reached, not a microsecond before."""
    log = build(create_log)
    deadline = day(1) + CEILING  # the end of P+0 plus the ceiling
    assert log.retention.sweep(now=deadline - timedelta(microseconds=1)).chains["chat"].empty
    assert log.retention.sweep(now=deadline).chains["chat"].shred_periods == [P]


@pytest.mark.parametrize("dry_run", [True, False])
def test_deleting_inside_the_floor_is_refused_even_by_hand(
    create_log: MakeLog, dry_run: bool
) -> None:
    """Asking for a period inside the floor raises RetentionError naming it, planned or applied,
    and nothing is deleted, not even the other periods asked for alongside it."""
    log = build(create_log)
    before = snapshot(log.path)
    with pytest.raises(RetentionError, match=rf"period {P + 4} .* inside the retention floor"):
        log.retention.sweep(now=NOW, periods={"chat": [P, P + 4]}, dry_run=dry_run)
    # The floor ends exactly at the end of the period plus the floor.
    floor_end = day(5) + FLOOR
    with pytest.raises(RetentionError):
        log.retention.sweep(now=floor_end - timedelta(microseconds=1), periods={"chat": [P + 4]})
    assert snapshot(log.path) == before
    assert log.retention.sweep(now=floor_end, periods={"chat": [P + 4]}).chains[
        "chat"
    ].shred_periods == [P + 4]


def test_between_floor_and_ceiling_only_an_explicit_request_deletes(create_log: MakeLog) -> None:
    """A scheduled sweep keeps a period past the floor but before the ceiling; asking for it by
    hand shreds it and deletes its segment, and only it."""
    log = build(create_log)
    assert P + 2 in log.retention.sweep(now=NOW, dry_run=False).chains["chat"].kept_periods
    assert P + 2 in log.keys.status().chains["chat"].live
    plan = log.retention.sweep(now=NOW, periods={"chat": [P + 2]}, dry_run=False).chains["chat"]
    assert plan.shred_periods == [P + 2]
    assert plan.delete_segments == [2]
    assert sorted(log.keys.status().chains["chat"].shredded) == [P, P + 1, P + 2]
    assert P + 3 in log.keys.status().chains["chat"].live
    report = log.verify().chains["chat"]
    # One tombstone per sweep: segments 0-1, then segment 2 right after them.
    assert report.tombstoned == ((0, 2 * PER_DAY), (2 * PER_DAY, 3 * PER_DAY))


# -- holds ---------------------------------------------------------------------------------


def test_a_hold_keeps_past_the_ceiling_until_released(create_log: MakeLog) -> None:
    """A hold on P+1 keeps it (the plan names the case) while P+0 goes; extended to P+2 it keeps
    that too after its ceiling; once released, the next sweep deletes both."""
    log = build(create_log)
    hold = log.retention.add_hold(
        "case-7", ["chat"], day(1), day(2), actor="counsel", now=day(5, 12)
    )
    assert log.retention.holds() == [hold]
    plan = log.retention.sweep(now=NOW, dry_run=False).chains["chat"]
    assert plan.shred_periods == [P]
    assert plan.held_periods == {P + 1: ["case-7"]}
    extended = log.retention.extend_hold(hold.hold_id, end=day(3), actor="counsel", now=day(6, 2))
    assert extended.end == day(3)
    assert extended.start == hold.start
    later = day(7, 1)  # P+2 is now past the ceiling as well
    plan = log.retention.sweep(now=later, dry_run=False).chains["chat"]
    assert plan.shred_periods == []
    assert plan.held_periods == {P + 1: ["case-7"], P + 2: ["case-7"]}
    released = log.retention.release_hold(hold.hold_id, actor="counsel", now=day(7, 2))
    assert released.released_at == day(7, 2)
    plan = log.retention.sweep(now=day(7, 3), dry_run=False).chains["chat"]
    assert plan.shred_periods == [P + 1, P + 2]
    assert plan.held_periods == {}
    assert sorted(log.keys.status().chains["chat"].shredded) == [P, P + 1, P + 2]
    assert [h.released_at for h in log.retention.holds()] == [
        day(7, 2)
    ]  # released holds stay listed


def test_a_hold_can_only_be_widened(create_log: MakeLog) -> None:
    """Extending a hold to an earlier end or an earlier expiry is refused with RetentionError."""
    log = build(create_log)
    hold = log.retention.add_hold(
        "case-8", ["chat"], day(1), day(3), actor="counsel", expires_at=day(30), now=NOW
    )
    with pytest.raises(RetentionError):
        log.retention.extend_hold(hold.hold_id, end=day(2), actor="counsel", now=NOW)
    with pytest.raises(RetentionError):
        log.retention.extend_hold(hold.hold_id, expires_at=day(20), actor="counsel", now=NOW)
    with pytest.raises(ConfigurationError, match="no legal hold"):
        log.retention.release_hold("hold-000000000000", actor="counsel", now=NOW)
    assert log.retention.holds() == [hold]


def test_a_hold_stops_binding_when_it_expires(create_log: MakeLog) -> None:
    """A hold with an expiry keeps its periods before it and lets them go from it on."""
    log = build(create_log)
    log.retention.add_hold(
        "case-9", ["chat"], day(0), day(2), actor="counsel", expires_at=day(8), now=day(5, 12)
    )
    plan = log.retention.sweep(now=day(8) - timedelta(microseconds=1), dry_run=False).chains["chat"]
    assert plan.shred_periods == [P + 2]
    assert set(plan.held_periods) == {P, P + 1}
    plan = log.retention.sweep(now=day(8), dry_run=False).chains["chat"]
    assert plan.shred_periods == [P, P + 1, P + 3]  # P+3 reaches its ceiling at day 8 too
    assert plan.held_periods == {}


def test_a_hold_on_some_subjects_keeps_only_periods_holding_them(create_log: MakeLog) -> None:
    """A hold on "carol" over days 0 to 4 keeps only the periods with a carol record (days 1
    and 3) past the ceiling; the others in its range go as usual."""
    log = build(create_log)
    log.retention.add_hold(
        "case-10", ["chat"], day(0), day(5), subjects=["carol"], actor="court", now=day(5, 12)
    )
    plan = log.retention.sweep(now=day(9, 1), dry_run=False).chains["chat"]
    assert set(plan.held_periods) == {P + day for day in CAROL_DAYS}
    assert plan.shred_periods == [P, P + 2, P + 4]
    assert sorted(log.keys.status().chains["chat"].live)[:2] == [P + 1, P + 3]
    log.verify()


def test_holds_store_subjects_only_as_keyed_tokens(create_log: MakeLog, log_path: Path) -> None:
    """A subject-scoped hold stores a keyed token, never the subject: holds.json and the hold's
    log record name neither; the token is stable within a log and differs from the subject."""
    log = build(create_log)
    hold = log.retention.add_hold(
        "case-11", ["chat"], day(0), day(5), subjects=["carol"], actor="court", now=NOW
    )
    token = log.retention.subject_token("carol")
    assert hold.subject_tokens == (token,)
    assert token != "carol"
    assert token == log.retention.subject_token("carol") != log.retention.subject_token("dave")
    assert b"carol" not in (log_path / "holds.json").read_bytes()
    added = [e for e in events(log) if e.event == LogEventType.HOLD_ADD]
    assert "carol" not in added[0].detail
    assert token not in added[0].detail


def test_holds_and_policy_changes_are_log_records_in_the_chain(create_log: MakeLog) -> None:
    """Setting the policy, adding, extending and releasing a hold and sweeping each append a
    ``log`` record to the chain, with who did it and when, in order."""
    log = build(create_log)
    hold = log.retention.add_hold(
        "case-12", ["chat"], day(1), day(2), actor="counsel", now=day(6, 1)
    )
    log.retention.extend_hold(hold.hold_id, end=day(3), actor="counsel", now=day(6, 2))
    log.retention.release_hold(hold.hold_id, actor="judge", now=day(6, 3))
    log.retention.sweep(now=day(6, 4), dry_run=False, actor="nightly")
    after_policy = [
        e for e in events(log) if e.event not in (LogEventType.POLICY, LogEventType.CHAIN)
    ]
    found = [(e.event, e.actor, e.occurred_at) for e in after_policy]
    assert found == [
        (LogEventType.HOLD_ADD, "counsel", day(6, 1)),
        (LogEventType.HOLD_EXTEND, "counsel", day(6, 2)),
        (LogEventType.HOLD_RELEASE, "judge", day(6, 3)),
        (LogEventType.SWEEP, "nightly", day(6, 4)),  # the sweep begins ...
        (LogEventType.SWEEP, "nightly", day(6, 4)),  # ... and ends
    ]
    assert all(e.subject == "auditlog" for e in events(log))
    assert "case-12" in after_policy[0].detail


def test_an_explicit_request_does_not_delete_a_held_period(create_log: MakeLog) -> None:
    """Asking by hand for a period under a hold does not delete it: the plan reports it held."""
    log = build(create_log)
    log.retention.add_hold("case-13", ["chat"], day(2), day(3), actor="counsel", now=day(5, 12))
    plan = log.retention.sweep(now=NOW, periods={"chat": [P + 2]}, dry_run=False).chains["chat"]
    assert plan.shred_periods == []
    assert plan.held_periods == {P + 2: ["case-13"]}
    assert P + 2 in log.keys.status().chains["chat"].live


# -- sweeps --------------------------------------------------------------------------------


def test_a_dry_run_changes_no_byte(create_log: MakeLog, log_path: Path) -> None:
    """A dry run (the default) returns the plan and leaves every file byte for byte as it was,
    subject-scoped holds (which decrypt records to decide) included."""
    log = build(create_log)
    log.retention.add_hold(
        "case-14", ["chat"], day(0), day(5), subjects=["carol"], actor="c", now=day(5)
    )
    before = snapshot(log_path)
    plan = log.retention.sweep(now=day(9, 1))
    assert not plan.applied
    assert plan.chains["chat"].shred_periods == [P, P + 2, P + 4]
    assert snapshot(log_path) == before


def test_applying_twice_is_a_no_op_the_second_time(create_log: MakeLog, log_path: Path) -> None:
    """A second sweep at the same time (or later, before anything new expires) plans nothing
    and changes no byte: no second sweep record, tombstone or keyring rewrite."""
    log = build(create_log)
    first = log.retention.sweep(now=NOW, dry_run=False)
    assert not first.empty
    assert first.applied
    after = snapshot(log_path)
    again = log.retention.sweep(now=NOW, dry_run=False)
    assert again.empty
    assert again.chains["chat"].already_shredded == [P, P + 1]
    assert log.retention.sweep(now=NOW + timedelta(hours=20), dry_run=False).empty
    assert snapshot(log_path) == after
    sweeps = [e for e in events(log) if e.event == LogEventType.SWEEP]
    assert len(sweeps) == 2  # one sweep: its beginning and its end


def test_verify_reports_the_deleted_ranges(create_log: MakeLog) -> None:
    """After a sweep both verifications pass and report the deleted index range, the tree size
    (deleted records included) and the records still present."""
    log = build(create_log)
    size = log.stats().chains["chat"].records
    deleted_end = 2 * PER_DAY  # two days of records
    log.retention.sweep(now=NOW, dry_run=False)
    for keyless in (True, False):
        report = log.verify(keyless=keyless).chains["chat"]
        assert report.tombstoned == ((0, deleted_end),)
        assert report.size == size  # the sweep's own records are in the events chain
        assert report.records == report.size - deleted_end
        assert report.segments == DAYS - 2
        assert report.shredded_records == 0


def test_old_checkpoints_inside_deleted_ranges_do_not_fail_verify(
    create_log: MakeLog, tmp_path: Path
) -> None:
    """A checkpoint taken in the middle of a day that is later deleted, stored and trusted by a
    client, still lets verify pass both ways, and stays provably consistent with the new head."""
    clock = FixedClock(START)
    log = create_log(CONFIG, clock=clock)
    log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
    records = day_records(0)
    log.append_many(records[:3])
    old = log.proofs.sign_checkpoints()["chat"]
    old_size = int(old.split("\n")[1])
    trusted = TrustedState(tmp_path / "trusted.json")
    log.verify(trusted=trusted)
    log.append_many(records[3:])
    for number in range(1, DAYS):
        log.append_many(day_records(number))
    log.retention.sweep(now=NOW, dry_run=False)
    head = log.proofs.sign_checkpoints()["chat"]
    for keyless in (True, False):
        report = log.verify(keyless=keyless, trusted=trusted).chains["chat"]
        start, end = report.tombstoned[0]
        assert start < old_size < end
    proof = log.proofs.prove_consistency("chat", old_size)
    assert proof.checkpoint1 == old
    assert proof.checkpoint2 == head


def test_a_late_record_of_a_shredded_period_is_refused(create_log: MakeLog) -> None:
    """Appending a record whose period was shredded raises KeyShreddedError naming the period
    and writes nothing; the chain goes on accepting records of live periods."""
    clock = FixedClock(START)
    log = create_log(CONFIG.model_copy(update={"late_bound_seconds": 10 * 86_400}), clock=clock)
    log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
    for number in range(DAYS):
        log.append_many(day_records(number))
    log.retention.sweep(now=NOW, dry_run=False)
    size = log.stats().chains["chat"].records
    with pytest.raises(KeyShreddedError, match=f"period {P}"):
        log.append(chat(0, 7, "dave"))
    assert log.stats().chains["chat"].records == size
    log.append(chat(5, 7, "dave"))
    log.flush()
    assert log.verify().chains["chat"].size == size + 1
    assert list(log.read("chat", size))[-1] == chat(5, 7, "dave")


def test_the_sweep_record_names_what_went(create_log: MakeLog) -> None:
    """The sweep's log record names the deleted segments, their index range and the shredded
    periods, and no subject or content."""
    log = build(create_log)
    log.retention.sweep(now=NOW, dry_run=False, actor="nightly")
    sweep, finished = [e for e in events(log) if e.event == "sweep"]
    assert "[0, 1]" in sweep.detail
    assert f"[0, {2 * PER_DAY})" in sweep.detail
    assert "finished" in finished.detail
    assert f"{P}, {P + 1}" in sweep.detail
    assert "dave" not in sweep.detail
    assert "carol" not in sweep.detail


def test_opening_a_log_after_a_sweep_finds_it_whole(
    create_log: MakeLog, open_log: Callable[..., AuditLog]
) -> None:
    """A log swept and closed reopens for writing and reading, verifies, and keeps its state."""
    log = build(create_log)
    log.retention.sweep(now=NOW, dry_run=False)
    size = log.stats().chains["chat"].records
    log.close()
    reopened = open_log(clock=FixedClock(NOW))
    assert reopened.recovery == []
    assert sorted(reopened.keys.status().chains["chat"].shredded) == [P, P + 1]
    reopened.append(chat(6, 0, "dave"))
    reopened.flush()
    assert reopened.verify().chains["chat"].size == size + 1
    reader = AuditLog.open(reopened.path, mode="read")
    assert reader.verify(keyless=True).chains["chat"].size == size + 1


def test_a_read_only_handle_plans_but_does_not_apply(
    create_log: MakeLog, open_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """A log opened with mode="read" can plan a sweep (a dry run) but not apply one."""
    build(create_log).close()
    before = snapshot(log_path)
    reader = open_log(mode="read")
    assert reader.retention.sweep(now=NOW).chains["chat"].shred_periods == [P, P + 1]
    with pytest.raises(ConfigurationError, match="mode='read'"):
        reader.retention.sweep(now=NOW, dry_run=False)
    assert snapshot(log_path) == before


def test_an_idle_chain_is_swept_again_and_again(
    create_log: MakeLog, open_log: Callable[..., AuditLog]
) -> None:
    """A chain written on one day only is swept every other day: the first sweep deletes its
    (open) segment, the later ones find nothing more (the sweeps' own records go to the log's
    events chain), and the log still opens and verifies afterwards."""
    clock = FixedClock(START)
    log = create_log(CONFIG, clock=clock)
    log.retention.set_policy(
        "chat",
        RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY),
        actor="dpo",
        now=START,
    )
    clock.set(day(0, 23))
    log.append_many(day_records(0))
    for number in (2, 4, 6):
        clock.set(day(number))
        plan = log.retention.sweep(now=day(number), dry_run=False).chains["chat"]
        assert plan.shred_periods == ([P] if number == 2 else [])
        assert plan.seal_open_segment == (number == 2)
        assert not (log.path / "chains" / "chat" / "sweep.journal").exists()
    size = log.stats().chains["chat"].records
    log.close()
    reopened = open_log(clock=FixedClock(day(6)))
    for keyless in (True, False):
        report = reopened.verify(keyless=keyless).chains["chat"]
        assert report.size == size
        assert report.records == 0  # every record was deleted; a tombstone stands for them


# -- redaction -----------------------------------------------------------------------------


def _frames_of(log: AuditLog, indexes: set[int]) -> dict[int, bytes]:
    """The stored frame (ciphertext) of each of ``indexes`` in ``chat``, read without keys."""
    frames = {}
    for sequence, path in list_segments(log.path / "chains" / "chat" / "segments"):
        scan = scan_segment(path.read_bytes(), path, sequence, chain="chat", allow_torn=True)
        for block in scan.blocks:
            for position in range(block.header.count):
                if block.header.first_index + position in indexes:
                    frames[block.header.first_index + position] = bytes(block.frames[position])
    return frames


def _indexes_of(log: AuditLog, subject: str) -> set[int]:
    return {i for i, r in log.read_indexed("chat") if r.subject == subject}


def test_redaction_erases_a_subjects_frames_and_keeps_every_root(
    create_log: MakeLog, tmp_path: Path
) -> None:
    """Redacting "carol" (past the floor) removes her records' frames from every file, keeps
    every root and checkpoint valid, logs who, when and why without naming her, and reading
    one of her records raises RecordRedactedError while the others still read."""
    log = build(create_log)
    size_before = log.stats().chains["chat"].records
    old = log.proofs.sign_checkpoints()["chat"]
    trusted = TrustedState(tmp_path / "trusted.json")
    roots_before = log.verify(trusted=trusted).chains["chat"].roots
    carol = _indexes_of(log, "carol")
    frames = _frames_of(log, carol)
    assert len(carol) == len(frames) == len(CAROL_DAYS)
    done = log.retention.redact("carol", reason="erasure request 17", actor="dpo", now=NOW)
    assert done == {"chat": sorted(carol)}
    for keyless in (True, False):
        report = log.verify(keyless=keyless, trusted=trusted).chains["chat"]
        assert {s: r for s, r in report.roots.items() if s <= size_before} == roots_before
    assert log.proofs.prove_consistency("chat", size_before).checkpoint1 == old
    for index in carol:
        with pytest.raises(RecordRedactedError):
            list(log.read("chat", index, index + 1))
    assert _indexes_of_readable(log, size_before) == set(range(size_before)) - carol
    found = [
        f"{index} in {path.name}"
        for path, data in snapshot_paths(log.path)
        for index, frame in frames.items()
        if frame in data
    ]
    assert not found, found
    (event,) = [e for e in events(log) if e.event == LogEventType.REDACTION]
    assert (event.actor, event.occurred_at) == ("dpo", NOW)
    assert "erasure request 17" in event.detail
    assert "carol" not in event.detail


def _indexes_of_readable(log: AuditLog, end: int) -> set[int]:
    """Indexes below ``end`` that read, one at a time (a redacted one raises)."""
    readable = set()
    for index in range(end):
        try:
            list(log.read("chat", index, index + 1))
        except RecordRedactedError:
            continue
        readable.add(index)
    return readable


def snapshot_paths(root: Path) -> list[tuple[Path, bytes]]:
    return [(root / name, data) for name, data in snapshot(root).items()]


def test_redaction_inside_the_floor_needs_a_legal_basis(create_log: MakeLog) -> None:
    """A subject with records inside the floor (here in the open segment) is refused with
    RetentionError and nothing changes; with a legal basis the redaction happens, the open
    segment is sealed first, the override is logged, and the chain takes new records after."""
    log = build(create_log)
    log.append(chat(5, 7, "frank"))
    log.flush()
    before = snapshot(log.path)
    with pytest.raises(RetentionError, match="legal_basis"):
        log.retention.redact("frank", reason="erasure request 18", actor="dpo", now=NOW)
    assert snapshot(log.path) == before
    done = log.retention.redact(
        "frank", reason="erasure request 18", actor="dpo", now=NOW, legal_basis="court order 5"
    )
    (index,) = done["chat"]
    with pytest.raises(RecordRedactedError):
        list(log.read("chat", index, index + 1))
    (event,) = [e for e in events(log) if e.event == LogEventType.REDACTION]
    assert "legal basis court order 5" in event.detail
    log.append(chat(5, 8, "dave"))
    log.flush()
    for keyless in (True, False):
        assert log.verify(keyless=keyless).chains["chat"].size == log.stats().chains["chat"].records


def test_redacting_a_subject_without_records_changes_nothing(create_log: MakeLog) -> None:
    """Redacting a subject with no records returns nothing, logs nothing, changes no byte."""
    log = build(create_log)
    before = snapshot(log.path)
    assert log.retention.redact("nobody", reason="request 19", actor="dpo", now=NOW) == {}
    assert snapshot(log.path) == before


def test_a_redacted_period_is_swept_like_any_other(create_log: MakeLog) -> None:
    """Segments with redacted frames are deleted by a sweep from their kept leaves: the
    tombstone joins the chain and both verifications pass."""
    log = build(create_log)
    log.retention.redact("carol", reason="request 20", actor="dpo", now=NOW)
    plan = log.retention.sweep(now=day(8, 1), dry_run=False).chains["chat"]
    assert plan.shred_periods == [P, P + 1, P + 2, P + 3]
    for keyless in (True, False):
        report = log.verify(keyless=keyless).chains["chat"]
        assert report.tombstoned == ((0, 4 * PER_DAY),)


def test_a_sweep_right_after_a_redaction_succeeds(
    create_log: MakeLog, open_log: Callable[..., AuditLog]
) -> None:
    """A sweep whose chain ends in a just-redacted record (and the redaction's own record)
    applies, and the log opens for writing and verifies afterwards."""
    log = build(create_log)
    log.append(chat(5, 7, "frank"))
    log.flush()
    log.retention.redact(
        "frank", reason="request 22", actor="dpo", now=NOW, legal_basis="court order 6"
    )
    assert log.retention.sweep(now=NOW, dry_run=False).chains["chat"].shred_periods == [P, P + 1]
    log.close()
    reopened = open_log()
    for keyless in (True, False):
        assert reopened.verify(keyless=keyless).chains["chat"].tombstoned


# -- the command line -----------------------------------------------------------------------


CLI_ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE, "COLUMNS": "200"}  # wide: no cut cells


def _cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args), env=CLI_ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_sets_policy_places_and_releases_holds_and_sweeps(
    create_log: MakeLog, log_path: Path
) -> None:
    """``auditlog retention set|show``, ``hold add|list|release`` and ``sweep`` (dry run, then
    ``--apply``) act like the API: the dry run changes nothing, the hold keeps its period until
    released."""
    build(create_log, policy=None).close()
    runner = CliRunner()
    path = str(log_path)
    refused = runner.invoke(
        app,
        [
            "retention",
            "set",
            path,
            "--chain",
            "chat",
            "--keep-at-least",
            "5",
            "--delete-after",
            "4",
        ],
        env=CLI_ENV,
    )
    assert refused.exit_code != 0  # a ceiling below the floor
    _cli(
        runner,
        "retention", "set", path, "--chain", "chat",
        "--keep-at-least", "2", "--delete-after", "4d", "--actor", "dpo",
    )  # fmt: skip
    assert "2 days" in _cli(runner, "retention", "show", path)
    added = _cli(
        runner,
        "hold", "add", path, "--case", "case-cli", "--chain", "chat",
        "--start", day(1).isoformat(), "--end", day(2).isoformat(),
        "--now", day(6).isoformat(),
    )  # fmt: skip
    hold_id = added.split()[1]
    assert hold_id.startswith("hold-")
    listed = _cli(runner, "hold", "list", path, "--now", NOW.isoformat())
    assert "case-cli" in listed
    assert "active" in listed
    before = snapshot(log_path)
    planned = _cli(runner, "sweep", path, "--now", NOW.isoformat())
    assert str(P) in planned
    assert "case-cli" in planned
    assert snapshot(log_path) == before
    assert "sweep applied" in _cli(runner, "sweep", path, "--apply", "--now", NOW.isoformat())
    _cli(runner, "hold", "release", path, hold_id, "--now", day(6, 2).isoformat())
    _cli(runner, "sweep", path, "--apply", "--now", day(6, 3).isoformat())
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        assert reader.retention.policy("chat") == POLICY
        assert [h.released_at for h in reader.retention.holds()] == [day(6, 2)]
        live = reader.keys.status().chains["chat"].live
        assert P not in live
        assert P + 1 not in live
        reader.verify(keyless=True)


def test_cli_redacts_a_subject(create_log: MakeLog, log_path: Path) -> None:
    """``auditlog redact`` erases a subject's records past the floor and reports how many."""
    build(create_log).close()
    output = _cli(
        CliRunner(), "redact", str(log_path), "--subject", "carol", "--reason", "request 21",
        "--now", NOW.isoformat(),
    )  # fmt: skip
    assert f"redacted {len(CAROL_DAYS)} records in 1 chains" in output
