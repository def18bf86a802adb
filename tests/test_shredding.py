"""Crypto-shredding done properly: after a sweep, nothing of a shredded period can be read.

One log, swept once: ``chat`` holds a day of marker-laden records (period P0, enough for a
dictionary), then a day of others (P1) with one late record of P0 among them, so that after the
sweep P0's own segment is deleted while the late record's ciphertext survives in P1's segment.
Before the sweep the test takes P0's raw data key (``auditlog.testing.tamper``), its
derived subkeys and its wrapped form, and opens a second, read-only handle that reads P0. After
the sweep every byte of every file of the log directory (the keyring and root key included) is
searched for the markers and the key material, and every way of reading P0 must fail with
``KeyShreddedError`` naming the period.

The second handle is opened with ``key_cache_seconds=0``: unwrapped keys are cached for
``DEFAULT_CACHE_SECONDS`` (300 s, on the monotonic clock, which a test cannot advance without
sleeping), so with the default a handle opened before a sweep can decrypt a shredded period for
up to five minutes after it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
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
    EnvKeyProvider,
    KeyMaterialError,
    KeyShreddedError,
    LogConfig,
    PassphraseError,
    PassphraseKeyProvider,
)
from auditlog.cli import app
from auditlog.codec import encode_record
from auditlog.crypto.keys import ChainKeyring, derive_subkey
from auditlog.records import ChatMessage, LogEventType
from auditlog.retention import RetentionPolicy
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, settle, tamper

START = datetime(2026, 5, 4, tzinfo=UTC)
DAY = timedelta(days=1)
P0 = int(START.timestamp()) // 86_400
P1 = P0 + 1
RECORDS_PER_DAY = 24  # beyond dictionary_samples: P0 and P1 both train a dictionary
# Simulated days are appended while the test's clock still stands at their start.
CONFIG = LogConfig(block_max_records=8, dictionary_samples=16, max_future_seconds=366 * 86_400)
POLICY = RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY)
SWEEP_AT = START + 2 * DAY + timedelta(hours=1)  # P0 is past the ceiling, P1 is not
TOKEN = secrets.token_hex(4)  # markers unique to this run, so no stray file can match them


def _marker(kind: str, index: int) -> str:
    return f"qz{kind}{TOKEN}n{index:03d}"


def _chat(kind: str, index: int, at: datetime) -> ChatMessage:
    """A chat record all of whose text fields carry the marker of ``kind`` and ``index``."""
    return ChatMessage(
        occurred_at=at,
        subject=_marker(kind + "Subject", index % 3),
        service="chat",
        message_id=_marker(kind + "Message", index),
        conversation_id=_marker(kind + "Conversation", index % 2),
        sender=_marker(kind + "Subject", index % 3),
        recipients=(_marker(kind + "Recipient", index % 4),),
        operation="send",
        content=f"{_marker(kind + 'Content', index)} meet me at the usual place at nine",
        client_ip=IPv4Address("198.51.100.77"),
        client_port=40_000 + index,
    )


def _markers_of(record: ChatMessage) -> set[str]:
    fields = [record.subject, record.message_id, record.conversation_id, *record.recipients]
    assert record.content is not None
    return {*fields, record.content.split()[0]}


@dataclass
class Swept:
    """The log after the sweep, and what was taken from it before."""

    path: Path
    log: AuditLog
    early: AuditLog  # opened (and used to read P0) before the sweep
    markers: list[str]
    key_material: dict[str, bytes]
    late_index: int
    p0_end: int  # P0's records in its own (deleted) segment are [0, p0_end)
    dictionary_existed: bool
    wrapped_seen_before: bool


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """Write P0, P1 and a late P0 record, take P0's keys, open a second handle, then sweep."""
    path = tmp_path_factory.mktemp("shredding") / "log"
    clock = FixedClock(START)
    log = AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, config=CONFIG, clock=clock, scrypt_n=TEST_SCRYPT_N
    )
    log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
    shred = [_chat("Shred", i, START + i * timedelta(minutes=30)) for i in range(RECORDS_PER_DAY)]
    keep = [_chat("Keep", i, START + DAY + i * timedelta(minutes=30)) for i in range(24)]
    late = _chat("Late", 0, START + DAY - timedelta(minutes=5))
    clock.set(START + DAY - timedelta(minutes=1))
    log.append_many(shred)
    p0_end = log.stats().chains["chat"].records
    clock.set(START + 2 * DAY - timedelta(minutes=1))
    log.append_many(keep[:12])
    late_index = log.append(late).index  # late, so it joins P1's segment under P0's key
    log.append_many(keep[12:])
    log.flush()
    settle(log)  # both periods' dictionaries are stored
    data_key = tamper.period_data_key(log, "chat", P0)
    wrapped = bytes(_keyring_doc(path)["keys"][P0][1])
    key_material = {
        "data key": data_key,
        "data key (hex)": data_key.hex().encode(),
        "data key (base64)": base64.b64encode(data_key),
        "wrapped data key": wrapped,
        "dictionary key": derive_subkey(data_key, b"dictionary"),
        "leaf-salt key": derive_subkey(data_key, b"leaf-salt"),
    }
    wrapped_seen_before = wrapped in (path / "chains" / "chat" / "keyring").read_bytes()
    dictionary_existed = (path / "chains" / "chat" / "dicts" / f"{P0:010d}.zdict").exists()
    # See the module docstring for key_cache_seconds=0.
    early = AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read", key_cache_seconds=0)
    assert list(early.read("chat", late_index, late_index + 1)) == [late]
    assert next(iter(early.read("chat", 0, 1))) == next(iter(log.read("chat", 0, 1)))
    plan = log.retention.sweep(now=SWEEP_AT, dry_run=False)
    assert plan.chains["chat"].shred_periods == [P0]
    # Every marker of every record, each checked to be in the bytes that were encrypted.
    written = b"".join(encode_record(r) for r in [*shred, *keep, late])
    markers = sorted({m for r in [*shred, *keep, late] for m in _markers_of(r)})
    assert all(m.encode() in written for m in markers)
    yield Swept(
        path,
        log,
        early,
        markers,
        key_material,
        late_index,
        p0_end,
        dictionary_existed,
        wrapped_seen_before,
    )
    early.close()
    log.close()


def _every_file(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every regular file under ``root``, hidden and leftover files included, with its bytes."""
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                yield path, path.read_bytes()


def test_no_marker_and_no_byte_of_a_shredded_key_remains_on_disk(swept: Swept) -> None:
    """After the sweep no file of the log holds a record marker (in UTF-8 or UTF-16) or P0's data
    key, its subkeys or its wrapped form, which the keyring did hold before the sweep."""
    assert swept.wrapped_seen_before  # the search below would have found it
    needles = {f"marker {m}": m.encode() for m in swept.markers}
    needles |= {f"marker {m} (UTF-16)": m.encode("utf-16-le") for m in swept.markers[:3]}
    needles |= swept.key_material
    files = list(_every_file(swept.path))
    names = {p.relative_to(swept.path).as_posix() for p, _ in files}
    assert {"chains/chat/keyring", "keys/root.key", "manifest.json"} <= names
    assert any(name.startswith("chains/chat/tombstones/") for name in names)
    found = [
        f"{label} in {path.relative_to(swept.path)}"
        for path, data in files
        for label, needle in needles.items()
        if needle in data
    ]
    assert not found, found


def test_reading_a_shredded_period_raises_naming_it(swept: Swept) -> None:
    """The late record of P0, which sits in a surviving segment, and P0's deleted records both
    raise KeyShreddedError naming P0; P1's records still read."""
    log = swept.log
    with pytest.raises(KeyShreddedError, match=f"period {P0}"):
        list(log.read("chat", swept.late_index, swept.late_index + 1))
    with pytest.raises(KeyShreddedError, match=str(P0)):
        list(log.read("chat", 0, swept.p0_end))
    with pytest.raises(KeyShreddedError, match=f"period {P0}"):
        tamper.period_data_key(log, "chat", P0)
    records = list(log.read("chat", swept.late_index + 1))
    assert [r.message_id for r in records if isinstance(r, ChatMessage)][:1] == [
        _marker("KeepMessage", 12)
    ]


def test_the_dictionary_of_a_shredded_period_is_destroyed(swept: Swept) -> None:
    """P0's dictionary file existed before the sweep and is gone after it; P1's remains."""
    dicts = swept.path / "chains" / "chat" / "dicts"
    assert swept.dictionary_existed
    assert not (dicts / f"{P0:010d}.zdict").exists()
    assert (dicts / f"{P1:010d}.zdict").exists()
    assert sorted(os.listdir(dicts)) == [f"{P1:010d}.zdict"]


def test_a_handle_opened_before_the_sweep_cannot_read_the_shredded_period(swept: Swept) -> None:
    """A second handle that read P0 before the sweep (its key cached) gets KeyShreddedError
    once its cache entry expires, for the late record and for the deleted range."""
    early = swept.early
    with pytest.raises(KeyShreddedError, match=f"period {P0}"):
        list(early.read("chat", swept.late_index, swept.late_index + 1))
    with pytest.raises(KeyShreddedError, match=str(P0)):
        list(early.read("chat", 0, 1))
    assert P0 in early.keys.status().chains["chat"].shredded


def test_a_shred_is_recorded_in_the_chain(swept: Swept) -> None:
    """The sweep appended ``log`` records naming the shredded period to the log's events chain
    (its beginning and its end), and a keyed and a keyless verify both pass, counting the late
    record as shredded."""
    log = swept.log
    events = [e for _, e in log.events() if e.chain == "chat" and e.event == LogEventType.SWEEP]
    assert len(events) == 2
    assert str(P0) in events[0].detail
    assert "finished" in events[1].detail
    keyed = log.verify().chains["chat"]
    keyless = log.verify(keyless=True).chains["chat"]
    assert keyed.tombstoned == keyless.tombstoned == ((0, swept.p0_end),)
    assert keyed.shredded_records == 1


# -- root keys -----------------------------------------------------------------------------


def _small_log(path: Path, **kwargs: Any) -> AuditLog:
    """A log with three days of chat records, the first day shredded."""
    clock = FixedClock(START)
    log = AuditLog.create(
        path,
        passphrase=kwargs.pop("passphrase", TEST_PASSPHRASE),
        config=CONFIG,
        clock=clock,
        scrypt_n=TEST_SCRYPT_N,
        **kwargs,
    )
    log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
    for number in range(3):
        clock.set(START + number * DAY + timedelta(hours=23))
        log.append_many(_chat("Day", i, START + number * DAY + i * MINUTE) for i in range(20))
    log.retention.sweep(now=SWEEP_AT, dry_run=False)
    return log


MINUTE = timedelta(minutes=1)


def _keyring_doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = msgpack.unpackb(
        (path / "chains" / "chat" / "keyring").read_bytes(), strict_map_key=False
    )
    return doc


def test_root_key_rotation_rewraps_every_key_and_rewrites_no_segment(tmp_path: Path) -> None:
    """Rotating the root key rewraps every live data key (same keys, new wrapping, new root key
    id), keeps shredded periods shredded, rewrites no segment, leaves no old wrapped key or old
    root key file behind, and is logged on every chain."""
    path = tmp_path / "log"
    log = _small_log(path)
    old_id = log.keys.status().root_key_id
    keys = {
        p: tamper.period_data_key(log, "chat", p) for p in log.keys.status().chains["chat"].live
    }
    old_wrapped = [bytes(e[1]) for e in _keyring_doc(path)["keys"].values()]
    old_root_file = (path / "keys" / "root.key").read_bytes()
    segments = {p.name: p.read_bytes() for p in (path / "chains/chat/segments").iterdir()}
    size = log.stats().chains["chat"].records
    new_id = log.keys.rotate_root_key(actor="ops", now=SWEEP_AT + MINUTE)
    assert new_id != old_id
    status = log.keys.status()
    assert (status.root_key_id, status.provider, status.rotation_pending) == (
        new_id,
        "passphrase",
        False,
    )
    assert status.chains["chat"] == (tuple(sorted(keys)), (P0,))
    doc = _keyring_doc(path)
    assert {e[0] for e in doc["keys"].values()} == {new_id}
    assert set(doc["shredded"]) == {P0}
    for name, data in segments.items():  # the open segment only grew (the rotation's record)
        assert (path / "chains/chat/segments" / name).read_bytes()[: len(data)] == data
    leftovers = [
        str(p.relative_to(path))
        for p, data in _every_file(path)
        if old_root_file in data or any(blob in data for blob in old_wrapped)
    ]
    assert not leftovers, leftovers
    assert not (path / "keys" / "root.key.next").exists()
    assert log.stats().chains["chat"].records == size  # the rotation is an event of the log's own
    (event,) = [e for _, e in log.events() if e.event == LogEventType.KEY_ROTATION]
    assert new_id in event.detail
    log.close()
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read") as reopened:
        assert {p: tamper.period_data_key(reopened, "chat", p) for p in keys} == keys
        reopened.verify()
        reopened.proofs.stored_checkpoints(
            "chat"
        )  # the checkpoint key was rewrapped too: it still signs
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as writer:
        writer.proofs.sign_checkpoints()
        writer.retention.add_hold("case-r", ["chat"], START, START + DAY, subjects=["x"], actor="c")


def test_an_interrupted_rotation_is_finished_by_running_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation that fails after rewrapping the data keys leaves the log readable (both root
    keys unwrap), key_status says a rotation is pending, and rotating again completes it."""
    path = tmp_path / "log"
    log = _small_log(path)
    old_id = log.keys.status().root_key_id

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr("auditlog.log.key_material.KeyMaterial.rewrap_log_keys", fail)
    with pytest.raises(RuntimeError, match="power cut"):
        log.keys.rotate_root_key(actor="ops", now=SWEEP_AT + MINUTE)
    monkeypatch.undo()
    log.close()
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        assert reader.keys.status().rotation_pending
        reader.verify()
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as writer:
        new_id = writer.keys.rotate_root_key(actor="ops", now=SWEEP_AT + 2 * MINUTE)
        assert new_id != old_id
        assert not writer.keys.status().rotation_pending
        assert {e[0] for e in _keyring_doc(path)["keys"].values()} == {new_id}
        writer.retention.add_hold("case-r", ["chat"], START, START + DAY, subjects=["x"], actor="c")
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        assert reader.keys.status().root_key_id == new_id
        reader.verify()


def test_changing_the_passphrase_rewraps_only_the_root_key(tmp_path: Path) -> None:
    """After change_passphrase the new passphrase opens the log and the old one does not; the
    root key id, the keyring and the segments are unchanged, and the old root key file's bytes
    are gone."""
    path = tmp_path / "log"
    log = _small_log(path)
    root_id = log.keys.status().root_key_id
    keyring = (path / "chains/chat/keyring").read_bytes()
    old_root_file = (path / "keys" / "root.key").read_bytes()
    log.keys.change_passphrase("a new passphrase, long enough")
    log.close()
    assert (path / "chains/chat/keyring").read_bytes() == keyring
    assert all(old_root_file not in data for _, data in _every_file(path))
    with pytest.raises(PassphraseError):
        AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read").keys.status()
    with AuditLog.open(path, passphrase="a new passphrase, long enough", mode="read") as reader:
        assert reader.keys.status().root_key_id == root_id
        reader.verify()


def test_rotation_between_external_key_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a KMS-like provider, rotate_root_key(new_provider=...) rewraps everything under the
    new key, records it in the manifest, and the old key is then no longer needed."""
    monkeypatch.setenv("AUDITLOG_TEST_KEY_A", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("AUDITLOG_TEST_KEY_B", base64.b64encode(secrets.token_bytes(32)).decode())
    old, new = EnvKeyProvider("AUDITLOG_TEST_KEY_A"), EnvKeyProvider("AUDITLOG_TEST_KEY_B")
    path = tmp_path / "log"
    log = _small_log(path, key_provider=old)
    keys = {
        p: tamper.period_data_key(log, "chat", p) for p in log.keys.status().chains["chat"].live
    }
    assert log.keys.rotate_root_key(actor="ops", new_provider=new, now=SWEEP_AT) == new.key_id
    log.close()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["key_provider"] == {"type": "external", "key_id": new.key_id}
    monkeypatch.delenv("AUDITLOG_TEST_KEY_A")  # the old key is destroyed in the "KMS"
    with AuditLog.open(path, key_provider=new, mode="read") as reader:
        assert {p: tamper.period_data_key(reader, "chat", p) for p in keys} == keys
        reader.verify()
    with (
        pytest.raises(KeyMaterialError),
        AuditLog.open(path, key_provider=old, mode="read") as stale,
    ):
        tamper.period_data_key(stale, "chat", min(keys))


def test_an_old_keyring_copy_with_its_root_key_undoes_a_shred(tmp_path: Path) -> None:
    """The limit docs/retention.md warns about, shown: a copy of the keyring taken before a
    sweep, with the root key file and passphrase of that time, still unwraps the shredded key
    (shredding cannot reach copies; short-lived key backups or a KMS must)."""
    path = tmp_path / "log"
    clock = FixedClock(START)
    log = AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, config=CONFIG, clock=clock, scrypt_n=TEST_SCRYPT_N
    )
    log.retention.set_policy("chat", POLICY, actor="dpo", now=START)
    log.append_many(_chat("Backup", i, START + i * MINUTE) for i in range(10))
    data_key = tamper.period_data_key(log, "chat", P0)
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(path / "chains/chat/keyring", backup / "keyring")
    shutil.copy(path / "keys/root.key", backup / "root.key")
    log.retention.sweep(now=SWEEP_AT, dry_run=False)
    with pytest.raises(KeyShreddedError):
        tamper.period_data_key(log, "chat", P0)
    provider = PassphraseKeyProvider.open(backup / "root.key", TEST_PASSPHRASE)
    restored = ChainKeyring(backup / "keyring", provider, log.chain_origin("chat"))
    assert restored.get(P0)._data_key == data_key
    log.close()


def test_cli_shows_key_status_and_rotates(tmp_path: Path) -> None:
    """``auditlog keys status`` names the root key and counts live and shredded periods;
    ``auditlog keys rotate`` replaces the root key."""
    path = tmp_path / "log"
    _small_log(path).close()
    runner = CliRunner()
    env = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE, "COLUMNS": "200"}
    status = runner.invoke(app, ["keys", "status", str(path)], env=env)
    assert status.exit_code == 0, status.output
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        old_id = reader.keys.status().root_key_id
        live = len(reader.keys.status().chains["chat"][0])
    assert old_id in status.output
    (row,) = [line for line in status.output.splitlines() if " chat " in line]
    assert re.findall(r"\d+", row) == [str(live), "1"]  # live and shredded periods
    rotated = runner.invoke(app, ["keys", "rotate", str(path)], env=env)
    assert rotated.exit_code == 0, rotated.output
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, mode="read") as reader:
        new_id = reader.keys.status().root_key_id
    assert new_id != old_id
    assert new_id in rotated.output
