"""Regression tests for the six attacks of issue 11, each done as the issue describes.

The attacker can read, write, delete and put back any file of the log directory and of its
backups, and can make Ed25519 keys of their own; they hold neither the passphrase (so no root
key) nor the log's signing key. Every test states the attack and the defence it checks, and
checks the defence concretely: what is refused, with which error and what it tells the operator
to do, and that nothing the attack aimed at (a segment under hold or inside the floor, a data
key) was deleted or shredded. docs/threat-model.md maps each attack to its check and test.

The template log has two chains. ``chat`` holds ten records on each of six UTC days (periods
P+0 to P+5, one sealed segment a day, dictionaries trained) under a floor of two days and a
ceiling of four, with a legal hold on day 0; ``archive`` holds three records a day, no policy.
Checkpoints are signed, and an auditor's trusted state (``trusted.json``) was saved by a
keyless verify that pinned the log's key. At ``NOW`` (day 6, 01:00) a sweep may delete only
P+1: P+0 is held, P+2 and P+3 lie between floor and ceiling, P+4 and P+5 inside the floor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import msgpack
import pytest
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    IntegrityError,
    KeyMaterialError,
    LogConfig,
    StateFileError,
    TrustedState,
    note,
)
from auditlog._statefile import write_state
from auditlog.cli import app
from auditlog.errors import RetentionError, RollbackError
from auditlog.log.retention.journal import SweepJournal, _tombstones_for
from auditlog.records import ChatMessage
from auditlog.retention import ChainSweepPlan, RetentionPolicy
from auditlog.segment.format import ENTRY_SEAL
from auditlog.segment.scan import entry_heads
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, tamper

START = datetime(2026, 2, 1, tzinfo=UTC)
DAY = timedelta(days=1)
P = int(START.timestamp()) // 86_400  # the period of day 0
DAYS = 6
CHAT_PER_DAY = 10  # more than dictionary_samples: every day trains a dictionary
ARCHIVE_PER_DAY = 3
NOW = START + DAYS * DAY + timedelta(hours=1)
POLICY = RetentionPolicy(keep_at_least=2 * DAY, delete_after=4 * DAY)
CONFIG = LogConfig(block_max_records=4, dictionary_samples=8, max_future_seconds=366 * 86_400)
HELD_SEGMENT, FLOOR_SEGMENT = 0, 4  # chat's segments of day 0 (held) and day 4 (in the floor)
SWEPT_SEGMENT = 1  # the one segment a sweep at NOW deletes
KEYED_ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}


def _chat(number: int, index: int) -> ChatMessage:
    """The ``index``-th chat record of day ``number``."""
    return ChatMessage(
        occurred_at=START + number * DAY + timedelta(hours=1 + 2 * index),
        subject=f"user-{index % 3}",
        service="chat",
        message_id=f"m-{number}-{index}",
        conversation_id="c-1",
        sender=f"user-{index % 3}",
        recipients=("erin",),
        operation="send",
        content=f"day {number} message {index}",
        client_ip=IPv4Address("192.0.2.1"),
        client_port=5000 + index,
    )


@dataclass(frozen=True)
class Site:
    """A log and what its operator and auditor keep beside it."""

    root: Path

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def trusted(self) -> Path:
        """The auditor's trusted state, saved before any attack."""
        return self.root / "trusted.json"

    @property
    def key(self) -> str:
        """The log's real verifier key, as an auditor pins it."""
        return (self.root / "verifier.key").read_text("ascii")

    def chat(self, *parts: str) -> Path:
        return self.log.joinpath("chains", "chat", *parts)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = Site(tmp_path_factory.mktemp("attacks") / "template")
    clock = FixedClock(START)
    with AuditLog.create(
        site.log, passphrase=TEST_PASSPHRASE, config=CONFIG, scrypt_n=TEST_SCRYPT_N, clock=clock
    ) as log:
        log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
        for number in range(DAYS):
            clock.set(START + number * DAY + timedelta(hours=23))
            log.append_many([_chat(number, i) for i in range(CHAT_PER_DAY)], chain="chat")
            log.append_many([_chat(number, i) for i in range(ARCHIVE_PER_DAY)], chain="archive")
        clock.set(NOW)
        log.retention.add_hold("case-1", ["chat"], START, START + DAY, actor="court", now=NOW)
        log.proofs.sign_checkpoints()
        key = log.verifier_key
    (site.root / "verifier.key").write_text(key, "ascii")
    with AuditLog.open(site.log, mode="read") as reader:
        reader.verify(keyless=True, trusted=TrustedState(site.trusted), verifier_key=key)
    assert sorted(p.name for p in site.chat("dicts").iterdir()), "no dictionary was trained"
    return site


@pytest.fixture
def site(template: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """A fresh copy of the template; no passphrase in the environment."""
    monkeypatch.delenv("AUDITLOG_PASSPHRASE", raising=False)
    copy = Site(tmp_path / "site")
    shutil.copytree(template.root, copy.root)
    return copy


# -- helpers ------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a log and its bytes, but the LOCK files (a lock taker writes its pid)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "LOCK"
    }


def _segments(site: Site) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(site.chat("segments").iterdir())}


def _keyring(site: Site) -> dict[str, Any]:
    """The chat keyring's wrapped keys and shredded periods, as stored."""
    doc = msgpack.unpackb(site.chat("keyring").read_bytes(), strict_map_key=False)
    return {"keys": doc["keys"], "shredded": doc["shredded"]}


def _verify(site: Site, *, keyless: bool, key: str | None = None) -> int:
    """Verify the log (keyless: no passphrase at all); returns the records counted."""
    passphrase = None if keyless else TEST_PASSPHRASE
    with AuditLog.open(site.log, mode="read", passphrase=passphrase) as reader:
        return reader.verify(keyless=keyless, verifier_key=key).records


def _open_for_write(site: Site) -> None:
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE):
        pass


def _cli(*args: str, keyed: bool = False) -> tuple[int, str]:
    """Run the ``auditlog`` command; its exit code and its output on one line."""
    env = KEYED_ENV if keyed else {"AUDITLOG_PASSPHRASE": ""}
    result = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def _says_what_to_do(message: str, *remedies: str) -> None:
    """The message holds one of the sentences telling the operator what to do."""
    flat = " ".join(message.split()).lower()
    assert any(remedy.lower() in flat for remedy in remedies), message


def _days_read(site: Site) -> dict[int, int]:
    """How many chat records of each day read back with the operator's keys."""
    counts: dict[int, int] = {}
    with AuditLog.open(site.log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        for record in reader.read("chat"):
            number = (record.occurred_at - START) // DAY
            counts[number] = counts.get(number, 0) + 1
    return counts


def _plant_journal(site: Site, signer_key: str, segments: list[int], periods: list[int]) -> None:
    """Plant a sweep journal deleting ``segments`` and shredding ``periods`` of chat, with
    the tombstones a forger computes from the segments' own bytes, signed with ``signer_key``."""
    with AuditLog.open(site.log, mode="read") as reader:
        origin = reader.chain_origin("chat")
        plan = ChainSweepPlan(chain="chat", policy=None, delete_segments=segments)
        tombstones = _tombstones_for(reader._chains, plan, NOW)
    journal = SweepJournal(
        sweep_id="sweep-forged",
        now=int(NOW.timestamp() * 1_000_000),
        actor="retention-sweep",
        delete_segments=segments,
        shred_periods=periods,
        tombstones=[t.text() for t in tombstones],
    )
    signature = note.sign(journal.signed_text(origin), signer_key)
    write_state(site.chat("sweep.journal"), journal.model_copy(update={"signature": signature}))


def _origin(site: Site) -> str:
    origin: str = json.loads((site.log / "manifest.json").read_text("utf-8"))["origin"]
    return origin


# -- attack 1: the manifest's key swapped, a self-signed sweep journal planted -------------


def test_attack1_swapped_key_and_planted_journal_are_refused_and_nothing_is_deleted(
    site: Site,
) -> None:
    """Attack 1: the attacker makes a key of their own, re-signs the manifest (naming their
    key), holds, keyrings, checkpoints and head with it (``tamper.resign_with``), and plants a
    sweep journal signed with it that deletes the held segment of day 0 and the in-floor segment
    of day 4 and shreds their periods. Defence: opening for write (API, and ``auditlog sweep
    --apply``) derives the verifier key from the unwrapped signing key, finds the manifest's
    claim false and refuses with IntegrityError naming manifest.json and telling the operator
    to restore it, before anything is written: no segment deleted, no key shredded, no
    tombstone signed. With the state files restored from a backup the held and in-floor
    records read back."""
    backup = _files(site.log)
    attacker, _ = note.generate_key(_origin(site))
    tamper.resign_with(site.log, attacker)
    _plant_journal(site, attacker, [HELD_SEGMENT, FLOOR_SEGMENT], [P, P + 4])
    attacked = _files(site.log)

    with pytest.raises(IntegrityError) as refused:
        _open_for_write(site)
    assert refused.value.location == {"file": "manifest.json"}
    _says_what_to_do(str(refused.value), "restore manifest.json from a backup")
    assert site.key.split("+")[-1] in str(refused.value)  # it names the log's real key
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 1, output
    _says_what_to_do(output, "restore manifest.json from a backup")

    assert _files(site.log) == attacked  # nothing carried out, nothing re-signed
    assert _segments(site) == {
        name[len("chains/chat/segments/") :]: data
        for name, data in backup.items()
        if name.startswith("chains/chat/segments/")
    }
    before_keys = msgpack.unpackb(backup["chains/chat/keyring"], strict_map_key=False)
    assert _keyring(site) == {"keys": before_keys["keys"], "shredded": {}}
    assert not site.chat("tombstones").exists()

    # The operator restores what the attacker re-signed; the segments, dictionaries and keys
    # are those found after the attack. Everything reads back.
    for name, data in backup.items():
        if not name.startswith(("chains/chat/segments/", "chains/chat/dicts/", "keys/")):
            (site.log / name).write_bytes(data)
    site.chat("sweep.journal").unlink()
    _open_for_write(site)
    assert _days_read(site) == dict.fromkeys(range(DAYS), CHAT_PER_DAY)
    assert _verify(site, keyless=False) == DAYS * (CHAT_PER_DAY + ARCHIVE_PER_DAY)


def test_attack1_verify_with_the_pinned_key_fails(site: Site) -> None:
    """Attack 1, seen by an auditor: after the attacker re-signed the log with their own key
    and planted their journal, keyless verify pinning the log's real public key (API and
    ``auditlog verify --keyless --key``) fails, and keyed verify (which derives the key from
    the signing key) fails naming manifest.json."""
    attacker, _ = note.generate_key(_origin(site))
    tamper.resign_with(site.log, attacker)
    _plant_journal(site, attacker, [HELD_SEGMENT, FLOOR_SEGMENT], [P, P + 4])

    with pytest.raises(IntegrityError):
        _verify(site, keyless=True, key=site.key)
    code, output = _cli("verify", str(site.log), "--keyless", "--key", site.key)
    assert code == 1, output
    with pytest.raises(IntegrityError) as keyed:
        _verify(site, keyless=False)
    assert keyed.value.location == {"file": "manifest.json"}
    code, output = _cli("verify", str(site.log), keyed=True)
    assert code == 1, output
    _says_what_to_do(output, "restore manifest.json from a backup")


def test_attack1_journal_signed_by_another_key_is_never_carried_out(site: Site) -> None:
    """Attack 1 without the key swap: a sweep journal signed with the attacker's own key is
    planted in a log whose manifest is intact. Defence: the writer checks the journal's
    signature with the log's key before any step; opening for write (API and ``auditlog sweep
    --apply``) refuses with IntegrityError saying nothing was carried out and to remove the
    journal; nothing is deleted or shredded, and once it is removed every record reads."""
    attacker, _ = note.generate_key(_origin(site))
    _plant_journal(site, attacker, [HELD_SEGMENT, FLOOR_SEGMENT], [P, P + 4])
    attacked = _files(site.log)

    with pytest.raises(IntegrityError) as refused:
        _open_for_write(site)
    assert refused.value.location == {"chain": "chat", "journal": "sweep.journal"}
    _says_what_to_do(str(refused.value), "remove it if no sweep of yours was interrupted")
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 1, output
    assert "nothing of it was carried out" in output
    assert _files(site.log) == attacked

    site.chat("sweep.journal").unlink()
    _open_for_write(site)
    assert _days_read(site) == dict.fromkeys(range(DAYS), CHAT_PER_DAY)


# -- attack 2: whole chains deleted, the manifest's origin changed ------------------------


def test_attack2_deleted_chain_is_reported_by_plain_and_trusted_verify(site: Site) -> None:
    """Attack 2: the ``archive`` chain's directory is deleted. Defence: the log's signed head
    names every chain, so plain keyless verify (no pinned key, no trusted state), keyed verify
    and opening for write raise RollbackError naming the chain; ``auditlog verify --keyless``
    and ``auditlog verify --keyless --state`` exit 1."""
    shutil.rmtree(site.log / "chains" / "archive")

    for check in (
        lambda: _verify(site, keyless=True),
        lambda: _verify(site, keyless=False),
        lambda: _open_for_write(site),
    ):
        with pytest.raises(RollbackError) as reported:
            check()
        assert reported.value.location == {"chain": "archive"}
        assert "chain 'archive' is gone" in str(reported.value)
        _says_what_to_do(str(reported.value), "restore the files named from a backup")
    for extra in ([], ["--state", str(site.trusted)]):
        code, output = _cli("verify", str(site.log), "--keyless", *extra)
        assert code == 1, output
        assert "'archive'" in output


def test_attack2_changed_origin_is_reported_by_plain_and_trusted_verify(site: Site) -> None:
    """Attack 2: the manifest's origin is changed. Defence: the manifest is signed over its
    origin and content, so keyless verify (with or without the auditor's trusted state)
    refuses with StateFileError naming manifest.json, and opening for writing fails to unwrap
    the signing key, which is bound to the real origin (KeyMaterialError); ``auditlog verify
    --keyless [--state]`` exits 1."""
    manifest = site.log / "manifest.json"
    doc = json.loads(manifest.read_text("utf-8"))
    doc["origin"] = "evil.example/log"
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")

    with pytest.raises(StateFileError) as reported:
        _verify(site, keyless=True)
    assert reported.value.location == {"file": "manifest.json"}
    _says_what_to_do(str(reported.value), "restore it from a backup")
    # The writer unwraps the signing key first, bound to the origin: that fails before the
    # manifest's signature is checked (the message blames the key material, not the manifest).
    with pytest.raises(KeyMaterialError) as refused:
        _open_for_write(site)
    _says_what_to_do(str(refused.value), "restore it from a backup")
    for extra in ([], ["--state", str(site.trusted)]):
        code, output = _cli("verify", str(site.log), "--keyless", *extra)
        assert code == 1, output
        assert "manifest.json" in output


def test_attack2_changed_origin_resigned_with_own_key_is_reported(site: Site) -> None:
    """Attack 2, done thoroughly: the ``archive`` chain deleted, the manifest's origin changed
    and every signed file re-signed with a key the attacker made for the new origin. Defence:
    every segment's hash chain starts from its chain's origin, so plain keyless verify (even
    trusting the manifest's key) fails on chat's first block; with the trusted state, with or
    without the pinned key, ``auditlog verify`` exits 1."""
    shutil.rmtree(site.log / "chains" / "archive")
    manifest = site.log / "manifest.json"
    doc = json.loads(manifest.read_text("utf-8"))
    doc["origin"] = "evil.example/log"
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")
    attacker, _ = note.generate_key("evil.example/log")
    tamper.resign_with(site.log, attacker)

    with pytest.raises(IntegrityError) as reported:
        _verify(site, keyless=True)
    assert reported.value.location.get("chain") == "chat"
    for extra in (
        ["--state", str(site.trusted)],
        ["--state", str(site.trusted), "--key", site.key],
    ):
        code, output = _cli("verify", str(site.log), "--keyless", *extra)
        assert code == 1, output


def test_attack2_deleted_chain_resigned_with_own_key_fails_the_auditor(site: Site) -> None:
    """Attack 2 by a forger who re-signs the head without the deleted chain, with their own
    key (same origin). Defence (the head cannot be trusted without the log's key, so this rests
    on the auditor): verify pinning the real key fails, and ``auditlog verify --state`` fails
    (exit 1) even without ``--key``, as the trusted checkpoints are not signed by the key the
    forged manifest names."""
    shutil.rmtree(site.log / "chains" / "archive")
    attacker, _ = note.generate_key(_origin(site))
    tamper.resign_with(site.log, attacker)

    with pytest.raises(IntegrityError):
        _verify(site, keyless=True, key=site.key)
    for extra in (["--key", site.key], ["--state", str(site.trusted)]):
        code, output = _cli("verify", str(site.log), "--keyless", *extra)
        assert code == 1, output


# -- attack 3: segments a sweep deleted put back ------------------------------------------


def _sweep_keeping_copies(site: Site) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Sweep at NOW as the operator does; what the attacker copied before: every file."""
    before = _files(site.log)
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE, clock=FixedClock(NOW)) as log:
        plan = log.retention.sweep(now=NOW, dry_run=False, actor="dpo")
    assert plan.chains["chat"].delete_segments == [SWEPT_SEGMENT]
    assert plan.chains["chat"].shred_periods == [P + 1]
    return before, _files(site.log)


def _put_back(site: Site, before: dict[str, bytes], prefix: str) -> list[str]:
    """Put back every file under ``prefix`` that the sweep removed; their names."""
    after = _files(site.log)
    restored = [name for name in before if name.startswith(prefix) and name not in after]
    for name in restored:
        (site.log / name).write_bytes(before[name])
        os.chmod(site.log / name, 0o400)
    return restored


def test_attack3_segment_put_back_after_a_sweep_is_reported(site: Site) -> None:
    """Attack 3: the segment a sweep deleted is copied back from a backup. Defence: the
    signed head counts the bytes of the sealed segments, so keyless and keyed verify and
    opening for write refuse with IntegrityError naming chat; ``auditlog verify --keyless``
    with and without ``--state`` exits 1."""
    before, _ = _sweep_keeping_copies(site)
    assert _put_back(site, before, "chains/chat/segments/") == [
        f"chains/chat/segments/{SWEPT_SEGMENT:010d}.seg"
    ]

    for check in (
        lambda: _verify(site, keyless=True),
        lambda: _verify(site, keyless=False),
        lambda: _open_for_write(site),
    ):
        with pytest.raises(IntegrityError) as reported:
            check()
        assert reported.value.location.get("chain") == "chat"
        assert "put back" in str(reported.value)
        _says_what_to_do(str(reported.value), "restore the files named from a backup")
    for extra in ([], ["--state", str(site.trusted)]):
        code, output = _cli("verify", str(site.log), "--keyless", *extra)
        assert code == 1, output


def test_attack3_segment_put_back_with_the_old_head_is_refused(site: Site) -> None:
    """Attack 3 with the pre-sweep head: the swept segment, its period's dictionary and the
    head.note of before the sweep are all put back from a backup. Defence expected: verify
    reports it, and opening for write refuses (a segment inside a signed tombstone's range is
    a resurrection, not a crash), so verify never comes to pass with the segment back."""
    before, _ = _sweep_keeping_copies(site)
    _put_back(site, before, "chains/chat/segments/")
    _put_back(site, before, "chains/chat/dicts/")
    (site.log / "head.note").write_bytes(before["head.note"])

    with pytest.raises(IntegrityError):
        _verify(site, keyless=True)
    with pytest.raises(IntegrityError):
        _open_for_write(site)
    with pytest.raises(IntegrityError):
        _verify(site, keyless=True)


# -- attack 4: the keyring's shredded map edited ------------------------------------------


def _edit_shredded_map(site: Site, *, next_generation: bool) -> None:
    """Mark the held period P and the in-floor period P+4 as shredded in chat's keyring
    (their wrapped keys removed), as someone without the key can: the signature is left."""
    path = site.chat("keyring")
    doc = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
    for period in (P, P + 4):
        del doc["keys"][period]
        doc["shredded"][period] = int(NOW.timestamp() * 1_000_000)
    if next_generation:
        doc["generation"] += 1  # pass it off as a newer version than the head binds
    path.write_bytes(msgpack.packb(doc))


@pytest.mark.parametrize("next_generation", [False, True], ids=["same-generation", "newer"])
def test_attack4_edited_shredded_map_is_refused_everywhere(
    site: Site, next_generation: bool
) -> None:
    """Attack 4: chat's keyring is edited to list the held period and an in-floor period as
    shredded. Defence: the keyring is signed with the log's key and bound by the head. Keyed
    verify and reading refuse the keyring with StateFileError (they do not skip those periods
    as shredded); keyless verify and opening for write report it against the head; ``auditlog
    verify`` exits 1 and ``auditlog sweep --apply`` exits 1 having deleted nothing."""
    _edit_shredded_map(site, next_generation=next_generation)
    attacked = _files(site.log)

    for keyed in (lambda: _verify(site, keyless=False), lambda: _days_read(site)):
        with pytest.raises(StateFileError) as refused:
            keyed()
        assert refused.value.path == Path("chains/chat/keyring")
        _says_what_to_do(str(refused.value), "restore it from a backup")
    for check in (lambda: _verify(site, keyless=True), lambda: _open_for_write(site)):
        with pytest.raises(IntegrityError) as reported:
            check()
        assert reported.value.location == {"file": "chains/chat/keyring"}
        _says_what_to_do(str(reported.value), "restore the files named from a backup")
    for args in (["verify", str(site.log)], ["verify", str(site.log), "--keyless"]):
        code, output = _cli(*args, keyed=True)
        assert code == 1, output
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 1, output
    assert _files(site.log) == attacked


def test_attack4_edited_shredded_map_resigned_with_own_key_is_refused(site: Site) -> None:
    """Attack 4 by a forger who re-signs the edited keyring (and everything else) with their
    own key. Defence: keyed verify, reading and opening for write derive the log's key from the
    signing key and refuse the manifest's claim (IntegrityError naming manifest.json); nothing
    is deleted by ``auditlog sweep --apply``."""
    _edit_shredded_map(site, next_generation=True)
    attacker, _ = note.generate_key(_origin(site))
    tamper.resign_with(site.log, attacker)
    attacked = _files(site.log)

    for check in (
        lambda: _verify(site, keyless=False),
        lambda: _days_read(site),
        lambda: _open_for_write(site),
    ):
        with pytest.raises(IntegrityError) as refused:
            check()
        assert refused.value.location == {"file": "manifest.json"}
    with pytest.raises(IntegrityError):
        _verify(site, keyless=True, key=site.key)
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 1, output
    assert _files(site.log) == attacked


# -- attack 5: bits flipped in tiles and dictionaries -------------------------------------


def _flips() -> list[Any]:
    cases = []
    for chain in ("chat", "_log"):
        for offset in ("first", "31", "32", "middle", "last"):
            cases.append(
                pytest.param(f"chains/{chain}/tiles/level-00", offset, id=f"{chain}-tile-{offset}")
            )
    for offset in ("first", "middle", "last"):
        cases.append(pytest.param("chat-dictionary", offset, id=f"chat-dict-{offset}"))
    return cases


def _offset(path: Path, where: str) -> int:
    size = path.stat().st_size
    named = {"first": 0, "middle": size // 2, "last": size - 1}
    return named[where] if where in named else int(where)


@pytest.mark.parametrize(("target", "where_in_file"), _flips())
def test_attack5_flipped_byte_in_tiles_or_dictionary_is_caught_both_ways(
    site: Site, target: str, where_in_file: str
) -> None:
    """Attack 5: one bit of one byte of ``tiles/level-00`` (of a user chain and of the events
    chain) or of a zstd dictionary is flipped. Defence: verify holds every stored tile node
    against the tree it recomputes, and the signed head binds every dictionary's digest (keyed
    verify also decrypts it): keyless and keyed verify both raise IntegrityError."""
    if target == "chat-dictionary":
        path = sorted(site.chat("dicts").iterdir())[0]
    else:
        path = site.log / target
    tamper.flip_bit(path, _offset(path, where_in_file), 3)

    chain = "chat" if target == "chat-dictionary" else target.split("/")[1]
    for keyless in (True, False):
        with pytest.raises(IntegrityError) as caught:
            _verify(site, keyless=keyless)
        where = caught.value.location
        if target == "chat-dictionary":
            # Keyless: the head names the file; keyed: decrypting it fails in chat's segment.
            assert (
                where.get("file") == f"chains/chat/dicts/{path.name}" or where.get("chain") == chain
            )
        else:
            assert where == {"chain": chain, "tiles": "level-00", "level": 0, "node": where["node"]}
            assert where["node"] == _offset(path, where_in_file) // 32
            _says_what_to_do(str(caught.value), "run `auditlog repair`")
    code, output = _cli("verify", str(site.log), "--keyless")
    assert code == 1, output


# -- attack 6: scrypt parameters raised in keys/root.key ----------------------------------


def _raise_cost(site: Site, field: str, value: int) -> None:
    path = site.log / "keys" / "root.key"
    doc = msgpack.unpackb(path.read_bytes())
    doc[field] = value
    path.write_bytes(msgpack.packb(doc))


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2**30), ("n", 2**21), ("n", 3 * 2**12), ("r", 2**20), ("p", 2**16)],
    ids=lambda v: str(v),
)
def test_attack6_raised_scrypt_cost_is_refused_at_once(site: Site, field: str, value: int) -> None:
    """Attack 6: the scrypt cost in keys/root.key is raised out of bounds. Defence: the file's
    parameters are bounded when it is read, before scrypt runs: opening with the passphrase
    (for writing and for keyed reading) fails at once with StateFileError naming root.key and
    telling the operator to restore it; no hang, no MemoryError. Keyless verify, which needs no
    root key, reports root.key as not the file the signed head binds."""
    _raise_cost(site, field, value)
    for check in (lambda: _open_for_write(site), lambda: _verify(site, keyless=False)):
        started = time.monotonic()
        with pytest.raises(StateFileError) as refused:
            check()
        assert time.monotonic() - started < 2
        assert refused.value.path.name == "root.key"
        assert f"scrypt {field}" in str(refused.value)
        _says_what_to_do(str(refused.value), "restore it from a backup")
    with pytest.raises(IntegrityError) as reported:
        _verify(site, keyless=True)
    assert reported.value.location == {"file": "keys/root.key"}


def test_attack6_the_command_does_not_hang(site: Site) -> None:
    """Attack 6 through the installed command in its own process (bounded by a timeout):
    ``auditlog verify`` on a log whose root.key asks scrypt for 1 TiB exits 1 within seconds,
    with one sentence naming root.key and no traceback."""
    _raise_cost(site, "n", 2**30)
    done = subprocess.run(
        [sys.executable, "-m", "auditlog", "verify", str(site.log)],
        env={**os.environ, **KEYED_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, output
    assert "root.key" in output
    assert "Traceback" not in output
    _says_what_to_do(output, "restore it from a backup")


# -- the refusals say what to do ------------------------------------------


@pytest.mark.parametrize("how", ["pinned-key", "trusted-state"])
def test_refusal_of_a_resigned_log_says_what_to_do(site: Site, how: str) -> None:
    """Attacks 1 and 2 as an auditor sees them: when the checkpoints are not signed by the
    pinned or trusted key, the error says the log was re-signed and what to do."""
    shutil.rmtree(site.log / "chains" / "archive")
    attacker, _ = note.generate_key(_origin(site))
    tamper.resign_with(site.log, attacker)
    extra = ["--key", site.key] if how == "pinned-key" else ["--state", str(site.trusted)]
    code, output = _cli("verify", str(site.log), "--keyless", *extra)
    assert code == 1, output
    _says_what_to_do(output, "restore", "do not trust", "re-signed")


def test_refusal_of_a_damaged_dictionary_says_what_to_do(site: Site) -> None:
    """Attack 5 as the operator sees it: keyed verify of a flipped dictionary says what to do."""
    path = sorted(site.chat("dicts").iterdir())[0]
    tamper.flip_bit(path, path.stat().st_size // 2, 3)
    with pytest.raises(IntegrityError) as caught:
        _verify(site, keyless=False)
    _says_what_to_do(str(caught.value), "restore")


# -- the other state files: changed, deleted or put back without the key ------------------


def _drop_hold(log: Path) -> None:
    holds = log / "holds.json"
    doc = json.loads(holds.read_text("utf-8"))
    doc["holds"] = []
    holds.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")


def _newest(directory: Path) -> Path:
    return sorted(directory.iterdir())[-1]


STATE_TAMPERS: dict[str, Any] = {
    "holds-json-edited": _drop_hold,
    "holds-json-deleted": lambda log: (log / "holds.json").unlink(),
    "head-deleted": lambda log: (log / "head.note").unlink(),
    "newest-checkpoint-deleted": lambda log: _newest(log / "chains/chat/checkpoints").unlink(),
    "every-checkpoint-deleted": lambda log: shutil.rmtree(log / "chains/chat/checkpoints"),
    "checkpoint-key-deleted": lambda log: (log / "keys/checkpoint.key").unlink(),
    "hold-key-deleted": lambda log: (log / "keys/hold.key").unlink(),
    "events-chain-deleted": lambda log: shutil.rmtree(log / "chains/_log"),
    "events-segment-flipped": lambda log: tamper.flip_bit(
        sorted((log / "chains/_log/segments").iterdir())[0], 200, 1
    ),
    "dictionary-deleted": lambda log: sorted((log / "chains/chat/dicts").iterdir())[0].unlink(),
    "newest-segment-deleted": lambda log: _newest(log / "chains/chat/segments").unlink(),
}


@pytest.mark.parametrize(
    "change",
    sorted(STATE_TAMPERS),
)
def test_state_files_changed_without_the_key_are_reported(site: Site, change: str) -> None:
    """The other files that steer the log (holds, head, checkpoints, key files, the events
    chain ``_log``, dictionaries), changed or deleted by someone without the key: keyless and
    keyed verify and opening for write all raise IntegrityError (RollbackError or
    StateFileError where that is the kind) saying what to restore, and the refused write-open
    writes nothing."""
    STATE_TAMPERS[change](site.log)
    attacked = _files(site.log)
    for check in (
        lambda: _verify(site, keyless=True),
        lambda: _verify(site, keyless=False),
        lambda: _open_for_write(site),
    ):
        with pytest.raises(IntegrityError) as reported:
            check()
        _says_what_to_do(str(reported.value), "restore")
    assert _files(site.log) == attacked


def test_an_older_signed_manifest_put_back_is_a_rollback(site: Site) -> None:
    """An older, genuinely signed manifest put back (one with a shorter floor, from before the
    operator lengthened it): the signed head binds the manifest's generation, so keyless verify
    and opening for write raise RollbackError naming manifest.json, and ``auditlog sweep
    --apply`` deletes nothing."""
    manifest = site.log / "manifest.json"
    older = manifest.read_bytes()
    longer = RetentionPolicy(keep_at_least=5 * DAY, delete_after=6 * DAY)
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE, clock=FixedClock(NOW)) as log:
        log.retention.set_policy("chat", longer, actor="dpo", now=NOW)
    manifest.write_bytes(older)
    attacked = _files(site.log)

    for check in (lambda: _verify(site, keyless=True), lambda: _open_for_write(site)):
        with pytest.raises(RollbackError) as reported:
            check()
        assert reported.value.location == {"file": "manifest.json"}
        assert "older copy was put back" in str(reported.value)
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 1, output
    assert _files(site.log) == attacked


# -- a genuinely signed journal replayed: re-checked against the floor and holds ----------


@pytest.mark.parametrize(
    ("segment", "period", "why"),
    [
        (SWEPT_SEGMENT, P + 1, "under legal hold"),
        (FLOOR_SEGMENT, P + 4, "inside the retention floor"),
    ],
    ids=["held-since", "inside-floor"],
)
def test_a_replayed_signed_journal_is_rechecked_against_floor_and_holds(
    site: Site, segment: int, period: int, why: str
) -> None:
    """Attack 1 with a journal the log really signed (one the operator's own sweep once wrote,
    copied from a backup taken mid-sweep) put back when it would delete what must be kept: a
    period placed under hold since, or one inside the floor. Defence: before any step the
    writer re-checks every period of the journal against the signed policy and holds as they
    are now; opening for write refuses with RetentionError saying nothing was carried out and
    to remove the journal; no segment is deleted, no key shredded, no tombstone signed."""
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE, clock=FixedClock(NOW)) as log:
        # The operator's own key signs the journal: this stands for a sweep that wrote it.
        operator_key = tamper.signer_key(log)
        if why == "under legal hold":
            day_one = START + DAY
            log.retention.add_hold("case-2", ["chat"], day_one, day_one + DAY, actor="court")
    _plant_journal(site, operator_key, [segment], [period])
    attacked = _files(site.log)

    with pytest.raises(RetentionError) as refused:
        _open_for_write(site)
    assert why in str(refused.value)
    _says_what_to_do(str(refused.value), "nothing of it was carried out", "sweep again")
    code, output = _cli("sweep", str(site.log), "--apply", "--now", NOW.isoformat(), keyed=True)
    assert code == 2, output
    assert _files(site.log) == attacked


def test_a_replayed_signed_journal_does_not_cover_a_segment_deleted_by_hand(site: Site) -> None:
    """Attack 1 and 3 combined: a journal the log really signed (deleting segment 1, which
    may go) is put back, and segment 0, under legal hold and named by no journal, is deleted.
    Defence expected: the journal excuses only its own segments; opening for write refuses
    the missing segment before the journal is carried out or the head signed again."""
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE, clock=FixedClock(NOW)) as log:
        operator_key = tamper.signer_key(log)  # stands for the sweep that wrote the journal
    _plant_journal(site, operator_key, [SWEPT_SEGMENT], [P + 1])
    victim = site.chat("segments", f"{HELD_SEGMENT:010d}.seg")
    os.chmod(victim, 0o600)
    victim.unlink()
    head = (site.log / "head.note").read_bytes()

    with pytest.raises(IntegrityError) as reported:
        _verify(site, keyless=True)
    assert reported.value.location.get("chain") == "chat"
    with pytest.raises(IntegrityError):
        _open_for_write(site)
    assert (site.log / "head.note").read_bytes() == head


# -- a shortened sealed segment is never read short ---------------------------------------


@pytest.mark.parametrize("cut", ["inside-a-block", "at-a-block-end", "the-seal"])
@pytest.mark.parametrize("segment", [SWEPT_SEGMENT, FLOOR_SEGMENT])
def test_a_shortened_sealed_segment_is_never_read_short(site: Site, cut: str, segment: int) -> None:
    """A sealed segment cut short while a reader reads: the read refuses the segment (it is
    not sealed, or does not reach the next one), never returns short; a reader that opens
    the log afterwards refuses the chain at its first read, against the signed head; and a
    writer refuses to open."""
    path = site.chat("segments", f"{segment:010d}.seg")
    entries = entry_heads(path)
    assert entries[-1].kind == ENTRY_SEAL
    offset = {
        "inside-a-block": entries[-2].offset + entries[-2].size // 2,
        "at-a-block-end": entries[-2].offset,
        "the-seal": entries[-1].offset,
    }[cut]
    with AuditLog.open(site.log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        next(iter(reader.read("chat")))  # the head check of the first read is behind it
        os.chmod(path, 0o600)
        os.truncate(path, offset)
        with pytest.raises(IntegrityError) as short:
            list(reader.read("chat"))
    _says_what_to_do(str(short.value), "restore")
    with AuditLog.open(site.log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        with pytest.raises(IntegrityError) as refused:
            next(iter(reader.read("chat", 0, 1)))
        assert list(reader.read("archive"))  # the other chain reads on
    _says_what_to_do(str(refused.value), "restore")
    assert "shortened" in str(refused.value)
    with pytest.raises(IntegrityError, match="shortened"):
        _open_for_write(site)


# -- an older head put back, a planted chain ------------------------------------------------


def _heads_and_events(site: Site, changes: int) -> list[dict[str, bytes]]:
    """The log's files after each of ``changes`` holds placed (each one event)."""
    copies = [_files(site.log)]
    with AuditLog.open(site.log, passphrase=TEST_PASSPHRASE, clock=FixedClock(NOW)) as log:
        for number in range(changes):
            log.retention.add_hold(f"case-x{number}", ["archive"], START, START + DAY, actor="c")
            copies.append(_files(site.log))
    return copies


@pytest.mark.parametrize("behind", [1, 2])
def test_an_older_head_put_back_with_its_holds_is_refused(site: Site, behind: int) -> None:
    """The head and holds.json of ``behind`` changes ago put back together (each change of
    the holds is one event): the events chain says more happened than the head knows. One
    event behind is what a crash leaves — unless that event was appended under a newer head
    (each event records the head's generation), which is the case here; more than one is a
    rollback. Keyless verify fails, and the write-open refuses with RollbackError, writing
    nothing."""
    copies = _heads_and_events(site, 2)
    older = copies[-1 - behind]
    for name in ("head.note", "holds.json"):
        (site.log / name).write_bytes(older[name])
    attacked = _files(site.log)
    with pytest.raises(IntegrityError):
        _verify(site, keyless=True)
    with pytest.raises(RollbackError) as refused:
        _open_for_write(site)
    _says_what_to_do(str(refused.value), "restore")
    assert ("appended under generation" in str(refused.value)) == (behind == 1)
    assert _files(site.log) == attacked


def test_a_planted_chain_is_refused(site: Site, tmp_path: Path) -> None:
    """A whole chain made in another log of the same origin (the attacker's own key), copied
    into the directory: the head does not name it, and it is not the empty directory a crash
    leaves. Keyless verify fails, and the write-open refuses it (it is never signed in)."""
    other = tmp_path / "other"
    same_origin = CONFIG.model_copy(update={"origin": _origin(site)})
    with AuditLog.create(
        other, passphrase="the attacker's own", config=same_origin, scrypt_n=TEST_SCRYPT_N
    ) as log:
        log.append_many([_chat(0, i) for i in range(3)], chain="planted")
    shutil.copytree(other / "chains" / "planted", site.log / "chains" / "planted")
    attacked = _files(site.log)
    with pytest.raises(IntegrityError, match="planted"):
        _verify(site, keyless=True)
    with pytest.raises(IntegrityError, match="planted"):
        _open_for_write(site)
    assert _files(site.log) == attacked


def test_a_planted_journal_does_not_turn_off_the_readers_check(site: Site) -> None:
    """A file named ``sweep.journal`` that the head does not bind (planted) does not excuse a
    shortened sealed segment: a reader's first read of the chain still refuses it."""
    path = site.chat("segments", f"{FLOOR_SEGMENT:010d}.seg")
    entries = entry_heads(path)
    os.chmod(path, 0o600)
    os.truncate(path, entries[-1].offset)  # the seal cut off
    site.chat("sweep.journal").write_bytes(b"not a journal")
    with (
        AuditLog.open(site.log, mode="read", passphrase=TEST_PASSPHRASE) as reader,
        pytest.raises(IntegrityError, match="shortened"),
    ):
        list(reader.read("chat"))
