"""Every state-file loader, fuzzed: a bad file gives a library error saying what to do.

Issue 11, item 9: "a hypothesis-driven fuzz of every state-file loader". One small log (with a
sweep's tombstone, legal holds, a redaction, signed checkpoints and dictionaries), a signed
sweep journal, a witness, a trusted state, proof documents and a log of format v1 are made once
for the module. Each target names one of their files and the entry point that loads it (the
public one where it is cheap: ``AuditLog.open`` and verify, ``auditlog verify`` with and without
``--state``, ``Witness.open``, ``TrustedState``, reading, proving; else the private loader, as
the log calls it); each example writes a fuzzed version of the file in its place, loads it, and
puts the original back. The ``-signed`` targets sign each fuzzed note with the log's key before
it is loaded, to reach the parsers behind the signature check.

Two strategies per target: arbitrary bytes, and mutations of the valid file (a JSON or msgpack
document with a field dropped, retyped, made a huge integer or nested thousands deep; a line of
a note dropped, doubled or changed; the file truncated, a byte flipped, garbage appended). The
property: the loader returns, or raises an ``AuditLogError`` whose message says what to do
(``REMEDY``), within ``SLOW`` seconds; never a bare Python exception.

The examples are derandomized, so that the suite gives the same verdict every run; the fuzzing
that found the bugs below ran the same properties with random seeds and six times the examples.
Every bug found is fixed; its minimal input is a regression test in ``FIXED``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from auditlog import (
    AuditLog,
    AuditLogError,
    KeyShreddedError,
    LogConfig,
    NoteError,
    RecordRedactedError,
    TrustedState,
)
from auditlog._statefile import read_state, state_bytes
from auditlog.cli import app
from auditlog.crypto.keys import ChainKeyring
from auditlog.crypto.providers import PassphraseKeyProvider
from auditlog.crypto.signed import StateSigner
from auditlog.log import migration
from auditlog.log.head import HeadStore
from auditlog.log.holds_file import HoldsFileV1
from auditlog.log.key_material import checkpoint_key_file, hold_key_file
from auditlog.log.manifest import read_manifest_v1
from auditlog.log.retention.holds import load_holds
from auditlog.log.retention.journal import SweepJournal
from auditlog.note import sign
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    open_checkpoint,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from auditlog.records import ChatMessage
from auditlog.retention import RetentionPolicy
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.format import Tombstone
from auditlog.segment.redaction import RedactionStore
from auditlog.segment.tiles import unchecked_tombstones
from auditlog.segment.tombstone import TombstoneStore
from auditlog.storage.layout import LogLayout
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, tamper
from auditlog.witness import Witness

V1_FIXTURE = Path(__file__).parent / "fixtures" / "logs" / "v1"
START = datetime(2026, 5, 4, tzinfo=UTC)
DAY = timedelta(days=1)
PER_DAY = 16
CONFIG = LogConfig(
    origin="example.com/state-fuzz",
    block_max_records=4,
    max_segment_records=8,
    dictionary_samples=8,
    max_future_seconds=366 * 86_400,
)
SLOW: Final = 5.0
"""Seconds a load may take: more is taken for a hang (an unbounded scrypt cost, say)."""

REMEDY: Final = re.compile(
    r"\b(restore|remove|delete|migrate|upgrade|check|ask|open|run|re-run|use|give|pass|"
    r"rebuild|repair|make|create|finish|verify|keep|install|set|fetch|sign|contact|report)\b",
    re.IGNORECASE,
)
"""A verb of a sentence saying what to do."""


@dataclass(frozen=True, slots=True)
class World:
    """Everything the targets load, made once."""

    root: Path
    log: Path
    verifier_key: str
    origin: str
    chat_origin: str
    provider: PassphraseKeyProvider
    kept_index: int
    """The first index of ``chat`` the sweep kept (its records are read and proved)."""
    checkpoint_size: int
    """The size of a stored checkpoint of ``chat``."""
    v1: Path
    v1_origin: str
    v1_provider: PassphraseKeyProvider
    witness: Path
    signer_key: str
    """The log's signing key: re-signed targets sign their mutated notes with it, to reach the
    parsers behind the signature check."""


Encoding = Literal["json", "msgpack", "text", "binary"]


@dataclass(frozen=True, slots=True)
class Target:
    """A file and the entry point that loads it."""

    name: str
    file: Callable[[World], Path]
    encoding: Encoding
    load: Callable[[World, Path], object]
    examples: int = 150
    resign: bool = False
    """Sign each fuzzed file with the log's key before loading it (a note's text; a sweep
    journal's fields), to reach the parsers behind the signature check."""


# -- the world ---------------------------------------------------------------------------------


def _chat(index: int, at: datetime) -> ChatMessage:
    return ChatMessage(
        occurred_at=at,
        subject=f"user-{index % 3}",
        service="chat",
        message_id=f"m-{index}",
        conversation_id=f"c-{index % 2}",
        sender=f"user-{index % 3}",
        recipients=(f"user-{(index + 1) % 3}",),
        operation="send",
        content=f"message {index} " + "lorem ipsum " * (index % 4),
    )


def _build(root: Path) -> World:
    path = root / "log"
    clock = FixedClock(START)
    with AuditLog.create(
        path,
        passphrase=TEST_PASSPHRASE,
        config=CONFIG,
        clock=clock,
        scrypt_n=TEST_SCRYPT_N,
        fsync=False,
    ) as log:
        log.retention.set_policy(
            "chat", RetentionPolicy(keep_at_least=timedelta(0), delete_after=DAY), actor="dpo"
        )
        clock.set(START + DAY - timedelta(minutes=1))
        log.append_many(_chat(i, START + i * timedelta(minutes=80)) for i in range(PER_DAY))
        clock.set(START + 2 * DAY - timedelta(minutes=1))
        log.append_many(
            _chat(i, START + DAY + (i - PER_DAY) * timedelta(minutes=80))
            for i in range(PER_DAY, 2 * PER_DAY)
        )
        log.retention.add_hold(
            "case", ["chat"], START + DAY, START + 2 * DAY, actor="counsel", subjects=["user-1"]
        )
        clock.set(START + 2 * DAY + timedelta(hours=1))
        log.retention.sweep(dry_run=False)
        log.retention.redact("user-2", reason="erasure", actor="dpo", legal_basis="art. 17")
        log.proofs.sign_checkpoints()
        verifier_key, origin = log.verifier_key, log.origin
        chat_origin = log.chain_origin("chat")
        size = log.stats().chains["chat"].records
        inclusion = log.proofs.prove_inclusion("chat", PER_DAY, size)
        sizes = [int(p.name[:20]) for p in (path / "chains/chat/checkpoints").glob("*.note")]
        consistency = log.proofs.prove_consistency("chat", min(sizes), size)
        # A signed journal of a sweep (what a sweep killed half-way leaves): kept outside the
        # log, so that verifying the log does not find it pending.
        tombstone = next((path / "chains/chat/tombstones").glob("*.tomb"))
        journal = SweepJournal(
            sweep_id="sweep-000000000000",
            now=int((START + 2 * DAY).timestamp() * 1_000_000),
            actor="retention-sweep",
            delete_segments=[0, 1],
            shred_periods=[int(START.timestamp()) // 86_400],
            tombstones=[Tombstone.from_text(tombstone.read_text().split("\n\n")[0] + "\n").text()],
        )
        signer_key = tamper.signer_key(log)
        signed = sign(journal.signed_text(chat_origin), signer_key)
        (root / "sweep.journal").write_bytes(
            state_bytes(journal.model_copy(update={"signature": signed}))
        )
    (root / "inclusion.json").write_text(inclusion.to_json())
    (root / "consistency.json").write_text(consistency.to_json())
    with AuditLog.open(path, mode="read") as reader:
        reader.verify(keyless=True, trusted=TrustedState(root / "trusted.json"))
    witness = Witness.init(
        root / "witness", "witness.example/w1", TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N
    )
    witness.add_log(chat_origin, verifier_key)
    witness.add_checkpoint(inclusion.checkpoint, old_size=0, proof=[])
    shutil.copytree(V1_FIXTURE / "log", root / "v1")
    v1_passphrase = json.loads((V1_FIXTURE / "expected.json").read_text())["passphrase"]
    # A rotation stopped half-way leaves the new root key staged beside the current one.
    (root / "staged").mkdir()
    for name in ("root.key", "root.key.next"):
        shutil.copy(path / "keys/root.key", root / "staged" / name)
    return World(
        root=root,
        log=path,
        verifier_key=verifier_key,
        origin=origin,
        chat_origin=chat_origin,
        provider=PassphraseKeyProvider.open(path / "keys/root.key", TEST_PASSPHRASE),
        kept_index=PER_DAY,
        checkpoint_size=size,
        v1=root / "v1",
        v1_origin=read_manifest_v1(LogLayout(root / "v1")).origin,
        v1_provider=PassphraseKeyProvider.open(root / "v1/keys/root.key", v1_passphrase),
        witness=root / "witness",
        signer_key=signer_key,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        # Keyless loads must not find a passphrase in the environment.
        patch.delenv("AUDITLOG_PASSPHRASE", raising=False)
        yield _build(tmp_path_factory.mktemp("state-fuzz"))


# -- the loaders ---------------------------------------------------------------------------------


def _open_read(world: World, _path: Path) -> None:
    with AuditLog.open(world.log, mode="read") as reader:
        reader.verify(keyless=True, verifier_key=world.verifier_key)


def _open_v1(world: World, path: Path) -> None:
    read_manifest_v1(LogLayout(path.parent))
    AuditLog.open(path.parent, mode="read").close()  # a v1 log: MigrationRequiredError


def _holds(world: World, _path: Path) -> None:
    load_holds(LogLayout(world.log), StateSigner(world.origin, world.verifier_key))


def _keyring(world: World, path: Path) -> None:
    signer = StateSigner(world.origin, world.verifier_key)
    keyring = ChainKeyring(
        path, world.provider, world.chat_origin, signer=signer, place="chains/chat/keyring"
    )
    for period in keyring.periods:
        keyring.get(period)


def _head(world: World, _path: Path) -> None:
    HeadStore(LogLayout(world.log), world.verifier_key).load()


def _checkpoint(world: World, path: Path) -> None:
    signed = CheckpointStore(path.parent).get(int(path.name[:20]))
    open_checkpoint(signed, world.verifier_key, world.chat_origin)


def _tombstones(world: World, path: Path) -> None:
    unchecked_tombstones(path.parent)
    TombstoneStore(path.parent, world.chat_origin, world.verifier_key).load()


def _redactions(world: World, path: Path) -> None:
    RedactionStore(path.parent, world.chat_origin, world.verifier_key).indexes()


def _journal(world: World, path: Path) -> None:
    # As the log loads one (``pending_sweeps``): the file, its signature, then its tombstones.
    journal = read_state(path, SweepJournal)
    if journal.is_signed(world.chat_origin, world.verifier_key):
        for text in journal.tombstones:
            Tombstone.from_text(text)


def _root_key(_world: World, path: Path) -> None:
    PassphraseKeyProvider.open(path, TEST_PASSPHRASE)


def _staged_root_key(_world: World, path: Path) -> None:
    PassphraseKeyProvider.open(path.with_name("root.key"), TEST_PASSPHRASE)


def _holds_v1(_world: World, path: Path) -> None:
    read_state(path, HoldsFileV1)


def _keyring_v1(world: World, path: Path) -> None:
    origin = f"{world.v1_origin}/{path.parent.name}"
    keyring = ChainKeyring(path, world.v1_provider, origin, format_v1=True)
    for period in keyring.periods:
        keyring.get(period)


def _checkpoint_key_v1(world: World, _path: Path) -> None:
    # How migration reads it, before anything is written.
    migration._signer_key(LogLayout(world.v1), world.v1_origin, world.v1_provider)


def _hold_key_v1(world: World, _path: Path) -> None:
    hold_key_file(LogLayout(world.v1), world.v1_origin, 1).unwrap(world.v1_provider)


def _checkpoint_key(world: World, _path: Path) -> None:
    checkpoint_key_file(LogLayout(world.log), world.origin).unwrap(world.provider)


def _hold_key(world: World, _path: Path) -> None:
    hold_key_file(LogLayout(world.log), world.origin).unwrap(world.provider)


def _keyed_open(world: World, _path: Path) -> None:
    # Opening with the passphrase unlocks the log's keys (root, checkpoint and hold key files).
    with AuditLog.open(world.log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        reader.retention.subject_token("user-1")


def _witness(world: World, _path: Path) -> None:
    Witness.open(world.witness, TEST_PASSPHRASE)


def _tiles(world: World, _path: Path) -> None:
    with AuditLog.open(world.log, mode="read") as reader:
        for index in (world.kept_index, world.checkpoint_size - 1):
            reader.proofs.prove_inclusion("chat", index, world.checkpoint_size)


def _dictionary(world: World, _path: Path) -> None:
    with AuditLog.open(world.log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        for index in range(world.kept_index, world.checkpoint_size):
            # Redacted records raise on their own; every other record decompresses with the
            # period's dictionary.
            with contextlib.suppress(RecordRedactedError):
                next(iter(reader.read("chat", index, index + 1)))


def _trusted(world: World, path: Path) -> None:
    state = TrustedState(path)
    for origin in state.checkpoints:
        state.trusted(origin, world.verifier_key)


def _inclusion(world: World, path: Path) -> None:
    verify_inclusion_proof(InclusionProof.from_json(path.read_bytes()), world.verifier_key)


def _consistency(world: World, path: Path) -> None:
    verify_consistency_proof(ConsistencyProof.from_json(path.read_bytes()), world.verifier_key)


class _CommandFailedError(Exception):
    """The command line ended otherwise than with a code it promises (0-3), or printed a
    traceback."""


def _verify_command(world: World, path: Path, *options: str) -> None:
    """``auditlog verify`` of the log, keyless, its key pinned: exit codes 1-3 stand for a
    library error (their output must say what to do), anything else is a failure."""
    args = ["verify", str(world.log), "--keyless", "--key", world.verifier_key, *options]
    result = CliRunner().invoke(app, args)
    if result.exit_code not in (0, 1, 2, 3) or "Traceback" in result.output:
        raise _CommandFailedError(f"exit {result.exit_code}: {result.output[-500:]}")
    if result.exit_code != 0:
        raise AuditLogError(result.output)


def _verify_command_with_state(world: World, path: Path) -> None:
    _verify_command(world, path, "--state", str(path))


def _one(directory: str, pattern: str) -> Callable[[World], Path]:
    def find(world: World) -> Path:
        return sorted((world.root / directory).glob(pattern))[-1]

    return find


def _at(name: str) -> Callable[[World], Path]:
    return lambda world: world.root / name


TARGETS: list[Target] = [
    Target("manifest", _at("log/manifest.json"), "json", _open_read, 80),
    Target("manifest-cli", _at("log/manifest.json"), "json", _verify_command, 20),
    Target("manifest-v1", _at("v1/manifest.json"), "json", _open_v1),
    Target("holds", _at("log/holds.json"), "json", _holds),
    Target("keyring", _at("log/chains/chat/keyring"), "msgpack", _keyring),
    Target("head", _at("log/head.note"), "text", _head),
    Target("checkpoint", _one("log/chains/chat/checkpoints", "*.note"), "text", _checkpoint),
    Target("tombstone", _one("log/chains/chat/tombstones", "*.tomb"), "text", _tombstones),
    Target("redaction", _one("log/chains/chat/redactions", "*.note"), "text", _redactions),
    Target("sweep-journal", _at("sweep.journal"), "msgpack", _journal),
    Target("sweep-journal-signed", _at("sweep.journal"), "msgpack", _journal, resign=True),
    Target("root-key", _at("log/keys/root.key"), "msgpack", _root_key),
    Target("root-key-open", _at("log/keys/root.key"), "msgpack", _keyed_open, 50),
    Target("root-key-staged", _at("staged/root.key.next"), "msgpack", _staged_root_key),
    Target("checkpoint-key", _at("log/keys/checkpoint.key"), "msgpack", _checkpoint_key),
    Target("hold-key", _at("log/keys/hold.key"), "msgpack", _hold_key),
    Target("hold-key-open", _at("log/keys/hold.key"), "msgpack", _keyed_open, 50),
    Target("witness-state", _at("witness/state.json"), "json", _witness),
    Target("witness-key", _at("witness/witness.key"), "json", _witness),
    Target("witness-root-key", _at("witness/root.key"), "msgpack", _witness),
    Target("holds-v1", _at("v1/holds.json"), "json", _holds_v1),
    Target("keyring-v1", _at("v1/chains/chat/keyring"), "msgpack", _keyring_v1),
    Target("checkpoint-key-v1", _at("v1/keys/checkpoint.key"), "msgpack", _checkpoint_key_v1),
    Target("hold-key-v1", _at("v1/keys/hold.key"), "msgpack", _hold_key_v1),
    Target("tiles-verify", _at("log/chains/chat/tiles/level-00"), "binary", _open_read, 80),
    Target("head-signed", _at("log/head.note"), "text", _head, resign=True),
    Target(
        "checkpoint-signed",
        _one("log/chains/chat/checkpoints", "*.note"),
        "text",
        _checkpoint,
        resign=True,
    ),
    Target(
        "tombstone-signed",
        _one("log/chains/chat/tombstones", "*.tomb"),
        "text",
        _tombstones,
        resign=True,
    ),
    Target(
        "redaction-signed",
        _one("log/chains/chat/redactions", "*.note"),
        "text",
        _redactions,
        resign=True,
    ),
    Target("tiles", _at("log/chains/chat/tiles/level-00"), "binary", _tiles, 80),
    Target("dictionary", _one("log/chains/chat/dicts", "*.zdict"), "msgpack", _dictionary, 50),
    Target("trusted-state", _at("trusted.json"), "json", _trusted),
    Target("trusted-state-cli", _at("trusted.json"), "json", _verify_command_with_state, 20),
    Target("inclusion-proof", _at("inclusion.json"), "json", _inclusion),
    Target("consistency-proof", _at("consistency.json"), "json", _consistency),
]
BY_NAME = {target.name: target for target in TARGETS}


# -- known bugs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownBug:
    """A failure of the property the fuzz found: where it shows, the exception (None: a library
    error whose message says nothing to do), and a minimal input made from the valid file."""

    name: str
    target: str
    exception: type[BaseException] | None
    example: Callable[[bytes], bytes]


def _constant(data: bytes) -> Callable[[bytes], bytes]:
    return lambda _original: data


def _with_field(name: str, value: object) -> Callable[[bytes], bytes]:
    """The valid msgpack or JSON document with one top-level field set to ``value``."""

    def make(original: bytes) -> bytes:
        if original.startswith(b"{"):
            doc = json.loads(original)
            doc[name] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
            return json.dumps(doc).encode()
        doc = msgpack.unpackb(original, raw=False, strict_map_key=False)
        doc[name] = value
        packed: bytes = msgpack.packb(doc, use_bin_type=True)
        return packed

    return make


def _flipped_at(offset: int) -> Callable[[bytes], bytes]:
    """The valid file with the byte at ``offset`` (from the end if negative) changed."""

    def make(original: bytes) -> bytes:
        data = bytearray(original)
        data[offset] ^= 0x01
        return bytes(data)

    return make


def _keyring_v1_short_key(original: bytes) -> bytes:
    """The v1 keyring with each period's wrapped data key cut to one byte."""
    doc = msgpack.unpackb(original, raw=False, strict_map_key=False)
    doc["keys"] = {period: [entry[0], b"0"] for period, entry in doc["keys"].items()}
    packed: bytes = msgpack.packb(doc, use_bin_type=True)
    return packed


def _trusted_size_changed(original: bytes) -> bytes:
    """The trusted state with one checkpoint's tree size raised: its signature no longer holds."""
    doc = json.loads(original)
    origin, signed = sorted(doc["checkpoints"].items())[0]
    lines = signed.split("\n")
    lines[1] = str(int(lines[1]) + 1)
    doc["checkpoints"][origin] = "\n".join(lines)
    return json.dumps(doc).encode()


def _trusted_origin_renamed(original: bytes) -> bytes:
    """The trusted state with one checkpoint filed under another origin than its own."""
    doc = json.loads(original)
    origin, signed = sorted(doc["checkpoints"].items())[0]
    doc["checkpoints"] = {"x" + origin: signed}
    return json.dumps(doc).encode()


def _note_line_changed(line: int, change: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """A note's text with one line changed (re-signed by the target)."""

    def make(original: bytes) -> bytes:
        lines = original.decode().split("\n\n", 1)[0].split("\n")
        lines[line] = change(lines[line])
        return "\n".join(lines).encode()

    return make


def _trusted_chain_gone(original: bytes) -> bytes:
    """The trusted state with one more chain, which the log does not have."""
    doc = json.loads(original)
    origin, signed = sorted(doc["checkpoints"].items())[0]
    doc["checkpoints"][origin + "-gone"] = signed
    return json.dumps(doc).encode()


_DEEP_ARRAY = b"[" * 100_000
# Bugs the fuzz found that are fixed, with the minimal inputs that showed them: regression tests.
FIXED: list[KnownBug] = [
    # _statefile._decode and manifest._version_of caught ValueError from json.loads, not the
    # RecursionError that a deeply nested array raises.
    *(
        KnownBug("deep-json-recursion-error", name, RecursionError, _constant(_DEEP_ARRAY))
        for name in (
            "manifest",
            "manifest-v1",
            "holds",
            "holds-v1",
            "trusted-state",
            "witness-state",
            "witness-key",
        )
    ),
    # The command line reported them as bugs (exit 70).
    *(
        KnownBug("deep-json-recursion-error", name, _CommandFailedError, _constant(_DEEP_ARRAY))
        for name in ("manifest-cli", "trusted-state-cli")
    ),
    # CheckpointStore.get, TombstoneStore._open (and tiles.unchecked_tombstones) and
    # RedactionStore.indexes read notes with read_text("utf-8") and caught nothing.
    *(
        KnownBug("note-not-utf8-unicode-decode-error", name, UnicodeDecodeError, _constant(b"\xff"))
        for name in ("checkpoint", "tombstone", "redaction")
    ),
    # _AeadRootKey.unwrap passed wrapped[:12] to AESGCM.decrypt, which raises ValueError for a
    # nonce under 8 bytes: a key file (or v1 keyring) whose wrapped secret is short.
    *(
        KnownBug("short-wrapped-key-value-error", name, ValueError, _with_field("wrapped", b"0"))
        for name in (
            "checkpoint-key",
            "hold-key",
            "hold-key-open",
            "checkpoint-key-v1",
            "hold-key-v1",
        )
    ),
    KnownBug("short-wrapped-key-value-error", "keyring-v1", ValueError, _keyring_v1_short_key),
    KnownBug(
        "short-wrapped-key-value-error",
        "witness-key",
        ValueError,
        _with_field("wrapped_signer_key", b"0"),
    ),
    # DictionaryStore.codec passed the file's nonce to AESGCM.decrypt as it was: an empty one
    # raised ValueError.
    KnownBug(
        "dictionary-short-nonce-value-error", "dictionary", ValueError, _with_field("nonce", b"")
    ),
    # providers._unseal_root: AESGCM.decrypt raised ValueError for a nonce under 8 bytes, and
    # _root_aad encoded the key id as ASCII (UnicodeEncodeError for any other character).
    *(
        KnownBug(bug, name, error, _with_field(field, value))
        for name in ("root-key", "root-key-open", "root-key-staged", "witness-root-key")
        for bug, error, field, value in (
            ("root-key-short-nonce-value-error", ValueError, "nonce", b""),
            ("root-key-non-ascii-id-unicode-encode-error", UnicodeEncodeError, "key_id", "\xe9"),
        )
    ),
    # Library errors that said what was wrong but not what to do.
    KnownBug("no-remedy", "checkpoint", None, _constant(b"")),
    KnownBug("no-remedy", "redaction", None, _constant(b"")),
    KnownBug("no-remedy", "dictionary", None, _with_field("dict_id", 1)),
    KnownBug("no-remedy", "trusted-state", None, _trusted_size_changed),
    KnownBug("no-remedy", "inclusion-proof", None, _with_field("origin", 1)),
    KnownBug("no-remedy", "consistency-proof", None, _with_field("origin", 1)),
    # Library errors that said what was wrong but not what to do (fixed in e447d3a).
    KnownBug("no-remedy", "tombstone", None, _constant(b"")),
    KnownBug("no-remedy", "tiles", None, _flipped_at(0)),
    KnownBug("no-remedy", "trusted-state", None, _trusted_origin_renamed),
    KnownBug("no-remedy", "inclusion-proof", None, _with_field("leaf_hash", 1)),
    KnownBug("no-remedy", "consistency-proof", None, _with_field("proof", [1])),
    # The same behind a valid signature: parsers of signed notes said "malformed" only.
    *(
        KnownBug("no-remedy", name, None, _constant(b""))
        for name in ("head-signed", "checkpoint-signed", "tombstone-signed", "redaction-signed")
    ),
    KnownBug("no-remedy", "sweep-journal-signed", None, _with_field("tombstones", ["x"])),
    # Fixed after the campaign. verify_log: a trusted state naming a chain the log does not
    # have was refused with "chain ... was trusted before but is gone from the log" only.
    KnownBug("no-remedy", "trusted-state-cli", None, _trusted_chain_gone),
    # A checkpoint's root line that is not base64 of 32 bytes, behind a valid signature:
    # "checkpoint root hash must be base64 of 32 bytes".
    KnownBug("no-remedy", "checkpoint-signed", None, _note_line_changed(2, lambda _: "i")),
    # A signed tombstone of another origin: "tombstone ... belongs elsewhere".
    KnownBug("no-remedy", "tombstone-signed", None, _note_line_changed(1, lambda t: t + "x")),
    # A proof document with too few hashes: "... proof ... is too short (n hashes)".
    KnownBug("no-remedy", "inclusion-proof", None, _with_field("proof", [])),
    KnownBug("no-remedy", "consistency-proof", None, _with_field("proof", [])),
]

# -- the property --------------------------------------------------------------------------------


class _Swapped:
    """The target's file holding other bytes for the time of a load, then its own again."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data
        self.original = path.read_bytes()
        self.mode = path.stat().st_mode

    def _write(self, data: bytes) -> None:
        self.path.unlink()
        self.path.write_bytes(data)
        self.path.chmod(self.mode)

    def __enter__(self) -> None:
        self._write(self.data)

    def __exit__(self, *_: object) -> None:
        self._write(self.original)


def _failure(world: World, target: Target, data: bytes) -> tuple[str, BaseException | None] | None:
    """What is wrong with loading ``data`` as the target's file, or None if nothing is."""
    path = target.file(world)
    started = time.monotonic()
    error: BaseException | None = None
    with _Swapped(path, data):
        try:
            target.load(world, path)
        except (KeyShreddedError, RecordRedactedError):
            pass  # outcomes by design (a swept period, a redacted record), not damage
        except AuditLogError as caught:
            if REMEDY.search(str(caught)) is None:
                return f"{type(caught).__name__} says nothing to do: {caught}", None
        except Exception as caught:  # noqa: BLE001 - any other exception is what this looks for
            error = caught
    elapsed = time.monotonic() - started
    if error is not None:
        return f"{type(error).__name__} escaped: {str(error)[:300]}", error
    if elapsed > SLOW:
        return f"took {elapsed:.1f} s", None
    return None


_NOT_IN_NOTES: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _resigned(world: World, data: bytes) -> bytes:
    """The text of a fuzzed note (up to its first blank line, as UTF-8 with what a note may not
    hold removed) signed with the log's key; the bytes as they are if that text cannot be
    signed (empty, say)."""
    text = _NOT_IN_NOTES.sub("", data.decode("utf-8", "replace").split("\n\n")[0]) + "\n"
    try:
        return sign(text, world.signer_key).encode()
    except NoteError:
        return data


def _resigned_journal(world: World, data: bytes) -> bytes:
    """A fuzzed sweep journal signed with the log's key as ``SweepJournal.signed_text`` signs
    one (a digest of the msgpack map of every field but the signature, in the file's order);
    the bytes as they are if they are not a msgpack map."""
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
        body = {key: value for key, value in doc.items() if key != "signature"}
        digest = hashlib.sha256(msgpack.packb(body, use_bin_type=True)).hexdigest()
    except (ValueError, TypeError, AttributeError, msgpack.ExtraData, msgpack.FormatError):
        return data
    except msgpack.StackError:
        return data
    text = f"auditlog-sweep-journal/v1\n{world.chat_origin}\n{digest}\n"
    packed: bytes = msgpack.packb(
        {**body, "signature": sign(text, world.signer_key)}, use_bin_type=True
    )
    return packed


def _prepared(world: World, target: Target, data: bytes) -> bytes:
    if not target.resign:
        return data
    if target.encoding == "msgpack":
        return _resigned_journal(world, data)
    return _resigned(world, data)


def _check(world: World, target: Target, data: bytes) -> None:
    data = _prepared(world, target, data)
    failure = _failure(world, target, data)
    if failure is None:
        return
    message, _ = failure
    raise AssertionError(f"{target.name} loader, input {data[:200]!r}...: {message}")


# -- strategies ----------------------------------------------------------------------------------

_DEEP: Final = "\x00deep\x00"
_HUGE_INTS = st.sampled_from([-1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30])
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    _HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(-9, 9), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-9, 9), max_size=2),
    st.just(_DEEP),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a decoded document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _edit(doc: Any, path: tuple[Any, ...], value: Any, drop: bool) -> None:
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


def _encode(doc: Any, encoding: Encoding, depth: int) -> bytes:
    if encoding == "json":
        text = json.dumps(doc, indent=2, sort_keys=True)
        return text.replace(json.dumps(_DEEP), "[" * depth + "]" * depth).encode()
    packed: bytes = msgpack.packb(doc, use_bin_type=True)
    return packed.replace(msgpack.packb(_DEEP), b"\x91" * depth + b"\xc0")


@st.composite
def _document_edits(draw: st.DrawFn, original: bytes, encoding: Encoding) -> bytes:
    """The document with one value dropped or replaced (by another type, a huge number,
    a deeply nested array, ...), re-encoded."""
    doc = (
        json.loads(original)
        if encoding == "json"
        else msgpack.unpackb(original, raw=False, strict_map_key=False)
    )
    paths = list(_paths(doc))
    if not paths:
        return original
    path = draw(st.sampled_from(paths))
    drop = draw(st.booleans())
    value = draw(_VALUES)
    if isinstance(value, float) and encoding == "json" and not math.isfinite(value):
        value = str(value)  # json.dumps writes NaN, which is not JSON
    if isinstance(value, int) and encoding == "msgpack":
        value = min(max(value, -(2**63)), 2**64 - 1)  # the widest integers msgpack has
    _edit(doc, path, value, drop)
    return _encode(doc, encoding, draw(st.sampled_from([2, 100, 5_000, 100_000])))


@st.composite
def _line_edits(draw: st.DrawFn, original: bytes) -> bytes:
    """A note with one line dropped, doubled, or changed."""
    lines = original.split(b"\n")
    at = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["drop", "double", "replace", "number"]))
    if how == "drop":
        del lines[at]
    elif how == "double":
        lines.insert(at, lines[at])
    elif how == "replace":
        lines[at] = draw(st.binary(max_size=40))
    else:
        lines[at] = (
            lines[at]
            + b" "
            + str(draw(_HUGE_INTS)).encode()
            + b"9" * draw(st.sampled_from([0, 5_000]))
        )
    return b"\n".join(lines)


@st.composite
def _byte_edits(draw: st.DrawFn, original: bytes) -> bytes:
    """The file truncated, one byte flipped, or garbage appended."""
    how = draw(st.sampled_from(["truncate", "flip", "append"]))
    if how == "truncate":
        return original[: draw(st.integers(0, max(len(original) - 1, 0)))]
    if how == "flip" and original:
        at = draw(st.integers(0, len(original) - 1))
        flipped = original[at] ^ draw(st.integers(1, 255))
        return original[:at] + bytes([flipped]) + original[at + 1 :]
    return original + draw(st.binary(min_size=1, max_size=40))


def _mutations(original: bytes, encoding: Encoding) -> st.SearchStrategy[bytes]:
    strategies = [_byte_edits(original)]
    if encoding in ("json", "msgpack"):
        strategies.append(_document_edits(original, encoding))
    if encoding == "text":
        strategies.append(_line_edits(original))
    return st.one_of(*strategies)


# -- the tests -----------------------------------------------------------------------------------


def test_every_target_loads_its_valid_file(world: World) -> None:
    """Each loader, given the file as the log wrote it, loads it: the fuzz starts from good
    files, and a failure below is the fuzzed bytes' doing."""
    for target in TARGETS:
        data = target.file(world).read_bytes()
        assert _failure(world, target, data) is None, target.name


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_arbitrary_bytes_give_a_library_error(world: World, target: Target) -> None:
    """Whatever bytes the file holds, loading it returns or raises an AuditLogError that says
    what to do; never another exception, never a hang."""

    @settings(
        max_examples=target.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
        derandomize=True,
    )
    @given(data=st.binary(max_size=600))
    def check(data: bytes) -> None:
        _check(world, target, data)

    check()


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_mutated_files_give_a_library_error(world: World, target: Target) -> None:
    """A valid file with a field dropped or retyped, a huge number, deep nesting, a line
    changed, truncated, a byte flipped or garbage appended loads or raises an AuditLogError
    that says what to do; never another exception, never a hang."""
    original = target.file(world).read_bytes()

    @settings(
        max_examples=target.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
        derandomize=True,
    )
    @given(data=_mutations(original, target.encoding))
    def check(data: bytes) -> None:
        _check(world, target, data)

    check()


@pytest.mark.parametrize("bug", FIXED, ids=lambda b: f"{b.name}-{b.target}")
def test_fixed_bug_stays_fixed(world: World, bug: KnownBug) -> None:
    """The minimal input of a bug the fuzz found, since fixed, loads or raises a library error
    that says what to do."""
    target = BY_NAME[bug.target]
    example = _prepared(world, target, bug.example(target.file(world).read_bytes()))
    failure = _failure(world, target, example)
    assert failure is None, f"{bug.name}: {failure[0]}"
