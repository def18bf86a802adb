"""An independent verifier of storage format v2, written from docs/format.md and nothing else.

The verifier below parses manifests, the signed head, signed state files (manifest, holds,
keyrings), key files, sweep journals, segment files, tiles and the log's signed notes
(checkpoints, tombstones, redaction notes) with ``struct``, ``hashlib``, ``hmac``, ``zlib``,
``base64``, ``json``, ``msgpack``, ``zstandard`` and ``cryptography`` directly. From auditlog it
takes only what a user of the library has, to make the logs it checks: ``AuditLog`` (with
retention policies, holds, sweeps, redactions, root-key rotation and migration), the record
models, the fixed clock and test passphrase of ``auditlog.testing``, and its error classes;
interrupted sweeps and rotations are made by killing a real process at a crash point. Besides
verification it predicts what a write-open does with a log that differs from its signed head
(binds the benign differences, refuses the others), and holds the library's write-open to it.
If the library and this verifier ever disagree, either the code or docs/format.md is wrong, and
this file says which rule.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import enum
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import ECB
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel

from auditlog import (
    AccessRecord,
    Activity,
    AuditLog,
    CallRecord,
    ChatMessage,
    IdentityVerification,
    IntegrityError,
    LogConfig,
    NetworkAddressRecord,
    Record,
    RecordValidationError,
    VerifyReport,
)
from auditlog.errors import (
    ForkError,
    KeyMaterialError,
    MigrationRequiredError,
    RecordRedactedError,
    RollbackError,
)
from auditlog.records import RECORD_TYPES, Attachment, CallParty, LogEventType
from auditlog.retention import RetentionPolicy, SweepPlan
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock

FORMAT_MD = Path(__file__).resolve().parent.parent / "docs" / "format.md"

# --- docs/format.md, "Segment files" ---------------------------------------------------------

MAGIC = b"\x89ALSEG\r\n"
FILE_HEADER = struct.Struct(">8sHHIQQ")  # magic, version, flags, reserved, sequence, first index
ENTRY_PREFIX = struct.Struct(">II")  # body length, CRC-32 of the four length bytes
MAX_BODY = 1 << 28
REDACTED = 1 << 31  # the bit of a frame length that marks a redacted slot
BLOCK_HEADER = struct.Struct(">BBHIQQIIqq16s32s32s")
SEAL_HEADER = struct.Struct(">BBHIQQq32s32sB")
SEGMENT_NAME = re.compile(r"^([0-9]{10})\.seg$")
CHECKPOINT_NAME = re.compile(r"^([0-9]{20})\.note$")
TIME_GRANULE_US = 60_000_000  # block header times are whole minutes
CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
EMPTY_ROOT = hashlib.sha256(b"").digest()
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class SpecError(Exception):
    """The files break a rule of docs/format.md."""


# A file too damaged to parse at all (not JSON, not msgpack, not UTF-8) fails this verifier
# with the parser's own error; that is a refusal too.
SPEC_PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    KeyError,
    TypeError,
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
)
SPEC_REFUSALS: tuple[type[Exception], ...] = (SpecError, *SPEC_PARSE_ERRORS)


def require(condition: bool, rule: str) -> None:
    """Raise ``SpecError`` naming ``rule`` unless ``condition`` holds."""
    if not condition:
        raise SpecError(rule)


# --- docs/format.md, "Merkle tree" -----------------------------------------------------------


def mth(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of a list of leaf hashes, by the RFC's recursion."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:split]) + mth(leaves[split:])).digest()


def subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The compact range of leaves ``[begin, end)``: its perfect subtrees as (start, size).

    Taken greedily from the left: at ``p`` the largest power of two that fits before ``end``
    and divides ``p`` (any does for ``p = 0``).
    """
    nodes = []
    position = begin
    while position < end:
        size = 1 << ((end - position).bit_length() - 1)
        while position % size:
            size //= 2
        nodes.append((position, size))
        position += size
    return nodes


class Tree:
    """An RFC 6962 tree whose deleted leaves are known only as the subtree hashes of tombstones.

    ``hash`` follows RFC 6962's recursion over leaf ranges and stops at any range whose hash
    is known: a leaf, a subtree from a tombstone's compact range, or a range computed before.
    A tombstone's subtrees are aligned perfect subtrees, which are nodes of every larger tree,
    so the recursion meets each of them whole and never needs a deleted leaf.
    """

    def __init__(self) -> None:
        self.size = 0
        self.known: dict[tuple[int, int], bytes] = {}  # (start, size) -> Merkle tree hash

    def append_leaves(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.known[(self.size, 1)] = leaf
            self.size += 1

    def append_range(self, end: int, hashes: Sequence[bytes]) -> None:
        """Add leaves ``[size, end)`` through their compact range (a tombstone's ``range``)."""
        nodes = subtrees(self.size, end)
        require(len(nodes) == len(hashes), "a compact range has one hash per subtree")
        for node, value in zip(nodes, hashes, strict=True):
            self.known[node] = value
        self.size = end

    def hash(self, start: int, end: int) -> bytes:
        """The Merkle tree hash of leaves ``[start, end)``."""
        if start == end:
            return EMPTY_ROOT
        known = self.known.get((start, end - start))
        if known is not None:
            return known
        require(end - start > 1, "every leaf is present or inside a deleted subtree")
        split = 1 << ((end - start - 1).bit_length() - 1)
        value = hashlib.sha256(
            b"\x01" + self.hash(start, start + split) + self.hash(start + split, end)
        ).digest()
        self.known[(start, end - start)] = value
        return value

    def root(self) -> bytes:
        return self.hash(0, self.size)

    def frontier(self) -> list[bytes]:
        """The compact range of ``[0, size)``: what a seal or a tombstone's ``frontier`` holds."""
        return [self.hash(start, start + size) for start, size in subtrees(0, self.size)]


# --- docs/format.md, "Keys" ------------------------------------------------------------------


def hkdf(data_key: bytes, label: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 of a data key under the info ``auditlog/v1 <label>``, 32 bytes."""
    return HKDF(SHA256(), 32, salt, b"auditlog/v1 " + label).derive(data_key)


def open_root_key_file(path: Path, passphrase: str) -> tuple[str, bytes]:
    """The key id and the root key of a root key file, unwrapped with the passphrase."""
    doc = msgpack.unpackb(path.read_bytes())
    require(doc["format"] == "auditlog-root-key" and doc["version"] == 1, "root key v1")
    require(doc["kdf"] == "scrypt", "root key kdf is scrypt")
    kek = Scrypt(doc["salt"], 32, doc["n"], doc["r"], doc["p"]).derive(passphrase.encode())
    aad = b"auditlog/v1 root-key\x00" + doc["key_id"].encode("ascii")
    try:
        root_key: bytes = AESGCM(kek).decrypt(doc["nonce"], doc["wrapped"], aad)
    except InvalidTag:
        raise SpecError("the passphrase does not open the root key") from None
    return doc["key_id"], root_key


def unlock_root_key(log: Path, manifest: dict[str, Any], passphrase: str) -> bytes:
    """Unwrap the root key from the file the manifest names, with the passphrase."""
    provider = manifest["key_provider"]
    require(provider["type"] == "passphrase", "the test log uses the passphrase provider")
    return open_root_key_file(log / provider["file"], passphrase)[1]


def unlock_root_keys(log: Path, manifest: dict[str, Any], passphrase: str) -> dict[str, bytes]:
    """Every root key by key id: the current one and, while a rotation is under way, the next."""
    provider = manifest["key_provider"]
    require(provider["type"] == "passphrase", "the test log uses the passphrase provider")
    current = log / provider["file"]
    keys = dict([open_root_key_file(current, passphrase)])
    staged = current.with_name(current.name + ".next")
    if staged.exists():
        keys.update([open_root_key_file(staged, passphrase)])
    return keys


def unwrap(root_key: bytes, blob: bytes, context: bytes) -> bytes:
    """A key wrapped by the built-in key providers: nonce || AES-256-GCM, bound to ``context``."""
    plain: bytes = AESGCM(root_key).decrypt(blob[:12], blob[12:], b"auditlog/v1 wrap\x00" + context)
    return plain


@dataclass
class Keyring:
    """A chain's data keys by period, and the periods shredded, with the time (µs) of each."""

    keys: dict[int, bytes] = field(default_factory=dict)
    shredded: dict[int, int] = field(default_factory=dict)


def read_keyring(doc: dict[str, Any] | None, origin: str, root_keys: dict[str, bytes]) -> Keyring:
    """A chain's keyring (its signature already checked), every key unwrapped by the root key
    its entry names (empty if the chain has none)."""
    if doc is None:
        return Keyring()
    keyring = Keyring(shredded=dict(doc["shredded"]))
    for period, (key_id, blob) in doc["keys"].items():
        require(key_id in root_keys, "a data key is wrapped by a root key the log has")
        context = (
            b"auditlog/v1 data-key\x00" + origin.encode() + b"\x00" + period.to_bytes(4, "big")
        )
        keyring.keys[period] = unwrap(root_keys[key_id], blob, context)
    return keyring


def key_file_context(kind: str, origin: str, version: int) -> bytes:
    """The wrapping context of a log key file: ``auditlog/v<version> <kind>`` 0x00 origin."""
    return f"auditlog/v{version} {kind}\x00".encode() + origin.encode()


def unwrap_checkpoint_signer(
    log: Path, manifest: dict[str, Any], root_key: bytes, version: int = 2
) -> str:
    """The log's checkpoint signer key string, from ``keys/checkpoint.key`` (v2, or v1)."""
    doc = msgpack.unpackb((log / "keys" / "checkpoint.key").read_bytes())
    require(doc["format"] == "auditlog-checkpoint-key", "a checkpoint key file")
    require(doc["version"] == version, f"checkpoint key v{version}")
    require(doc["verifier_key"] == manifest["checkpoint_key"], "checkpoint key file matches")
    context = key_file_context("checkpoint-key", manifest["origin"], version)
    try:
        signer = unwrap(root_key, doc["wrapped"], context).decode("ascii")
    except InvalidTag:
        raise SpecError("the checkpoint key does not unwrap under its context") from None
    require(verifier_of(signer) == manifest["checkpoint_key"], "the manifest names the log's key")
    return signer


def unwrap_hold_key(log: Path, manifest: dict[str, Any], root_key: bytes) -> bytes:
    """The key of the subject tokens in legal holds, from ``keys/hold.key``."""
    doc = msgpack.unpackb((log / "keys" / "hold.key").read_bytes())
    require(doc["format"] == "auditlog-hold-key" and doc["version"] == 2, "hold key v2")
    context = key_file_context("hold-key", manifest["origin"], 2)
    return unwrap(root_key, doc["wrapped"], context)


def subject_token(hold_key: bytes, subject: str) -> str:
    """A subject as a legal hold names it: HMAC-SHA256 under the hold key, 128 bits in hex."""
    message = b"auditlog/v1 hold-subject\x00" + subject.encode()
    return hmac.new(hold_key, message, hashlib.sha256).digest()[:16].hex()


def leaf_salts(data_key: bytes, first: int, count: int) -> list[bytes]:
    """The 16-byte leaf salts of indexes ``first .. first+count-1``."""
    encryptor = Cipher(AES(hkdf(data_key, b"leaf-salt")), ECB()).encryptor()
    blocks = b"".join(i.to_bytes(16, "big") for i in range(first, first + count))
    out = encryptor.update(blocks) + encryptor.finalize()
    return [out[i : i + 16] for i in range(0, len(out), 16)]


def load_dictionary(chain_dir: Path, origin: str, period: int, dict_id: int, key: bytes) -> bytes:
    """Decrypt the zstd dictionary a block names, checking the file names the same one."""
    doc = msgpack.unpackb((chain_dir / "dicts" / f"{period:010d}.zdict").read_bytes())
    require(doc["format"] == "auditlog-dictionary" and doc["version"] == 1, "dictionary v1")
    require(doc["period"] == period and doc["dict_id"] == dict_id, "dictionary is the named one")
    aad = (
        b"auditlog/v1 dictionary\x00"
        + origin.encode()
        + b"\x00"
        + period.to_bytes(4, "big")
        + dict_id.to_bytes(4, "big")
    )
    try:
        dictionary: bytes = AESGCM(hkdf(key, b"dictionary")).decrypt(
            doc["nonce"], doc["ciphertext"], aad
        )
    except InvalidTag:
        raise SpecError("a dictionary decrypts under its period's key") from None
    require(dictionary[:4] == b"\x37\xa4\x30\xec", "a dictionary is a zstd dictionary")
    require(int.from_bytes(dictionary[4:8], "little") == dict_id, "dictionary id matches")
    return dictionary


# --- docs/format.md, "Checkpoints" (and docs/note.md) ---------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A parsed C2SP note verifier key ``<name>+<key hash>+base64(0x01 || public key)``."""

    name: str
    key_hash: bytes
    public_key: bytes


def key_hash(name: str, typed_key: bytes) -> bytes:
    """The 4-byte key hash of a note key: SHA-256(name || 0x0A || type || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + typed_key).digest()[:4]


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse the log's verifier key (the manifest's ``checkpoint_key``)."""
    name, hash_hex, key_b64 = text.split("+", 2)
    typed = base64.b64decode(key_b64, validate=True)
    require(len(typed) == 33 and typed[0] == 0x01, "an Ed25519 note verifier key")
    require(key_hash(name, typed).hex() == hash_hex.lower(), "verifier key hash")
    return VerifierKey(name, key_hash(name, typed), typed[1:])


def parse_signer_key(text: str) -> tuple[str, bytes]:
    """Name and Ed25519 seed of a signer key ``PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)``."""
    private, key, name, hash_hex, seed_b64 = text.split("+", 4)
    require((private, key) == ("PRIVATE", "KEY"), "a note signer key")
    typed = base64.b64decode(seed_b64, validate=True)
    require(len(typed) == 33 and typed[0] == 0x01, "an Ed25519 note signer key")
    public = Ed25519PrivateKey.from_private_bytes(typed[1:]).public_key().public_bytes_raw()
    require(key_hash(name, b"\x01" + public).hex() == hash_hex.lower(), "signer key hash")
    return name, typed[1:]


def verifier_of(signer: str) -> str:
    """The verifier key of a signer key: ``<name>+<key hash>+base64(0x01 || public key)``."""
    name, seed = parse_signer_key(signer)
    public = b"\x01" + Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return f"{name}+{key_hash(name, public).hex()}+{base64.b64encode(public).decode()}"


def sign_note(signer: str, text: str) -> str:
    """A note signed by one key, as the log signs its notes (for tests that forge them)."""
    name, seed = parse_signer_key(signer)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    signature = key_hash(name, b"\x01" + public) + private.sign(text.encode())
    return f"{text}\n\u2014 {name} {base64.b64encode(signature).decode()}\n"


def sign_checkpoint(signer: str, origin: str, size: int, root: bytes) -> str:
    """A signed checkpoint note, as the log writes them (for tests that forge checkpoints)."""
    return sign_note(signer, f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n")


def open_note(signed: str, key: VerifierKey) -> str:
    """Check a signed note against the log's key (docs/note.md); returns its text."""
    require(not re.search("[\x00-\x09\x0b-\x1f]", signed), "a note has no control characters")
    text, separator, signatures = signed.rpartition("\n\n")
    require(bool(separator) and signatures.endswith("\n"), "a signed note")
    text += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        require(line.startswith("\u2014 "), "a note signature line")
        name, _, encoded = line[2:].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SpecError("a note signature is base64") from None
        require(len(blob) >= 5, "a note signature")
        if (name, blob[:4]) != (key.name, key.key_hash):
            continue  # another key's signature (a witness): not ours to check
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise SpecError("note signature does not verify") from None
        verified = True
    require(verified, "note signed by the log's key")
    return text


def read_note(path: Path) -> str:
    """A signed note file's text: UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("a note file is UTF-8") from None


def signatures_canonical(signed: str) -> bool:
    """Every signature line of a note is in canonical base64 (its unused bits zero): the rule
    for the log's own notes that no digest binds, the head and stored checkpoints."""
    lines = signed.rpartition("\n\n")[2].removesuffix("\n").split("\n")
    for line in lines:
        encoded = line.rpartition(" ")[2]
        try:
            if base64.b64encode(base64.b64decode(encoded, validate=True)).decode() != encoded:
                return False
        except binascii.Error:
            return False
    return True


def decode_hash(text: str) -> bytes:
    """A 32-byte hash written in canonical standard base64."""
    value = base64.b64decode(text, validate=True)
    require(len(value) == 32 and base64.b64encode(value).decode() == text, "a base64 hash")
    return value


def open_checkpoint(signed: str, key: VerifierKey, origin: str) -> tuple[int, bytes]:
    """Check a signed checkpoint note against the log's key; returns its (size, root)."""
    lines = open_note(signed, key)[:-1].split("\n")
    require(len(lines) >= 3 and "" not in lines, "checkpoint text has three or more lines")
    require(lines[0] == origin, "checkpoint origin is the chain origin")
    require(re.fullmatch("0|[1-9][0-9]{0,19}", lines[1]) is not None, "checkpoint size")
    return int(lines[1]), decode_hash(lines[2])


def check_checkpoints(
    chain_dir: Path, origin: str, key: VerifierKey, tree: Tree, result: ChainResult
) -> None:
    """Every stored checkpoint of a chain against the tree recomputed from its segments.

    The root at a checkpoint's size is computed from the leaves, whatever the size (the writer
    signs at block ends only, but a verifier does not rely on it) and recorded with the roots
    after the blocks. A checkpoint whose size lies strictly inside a range deleted by a sweep
    has no root left to be held against: only its signature, origin, name and size count.
    """
    directory = chain_dir / "checkpoints"
    named = sorted(
        (int(match[1]), path)
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := CHECKPOINT_NAME.fullmatch(path.name))
    )
    for stored_size, path in named:
        signed = read_note(path)
        checkpoint_size, root = open_checkpoint(signed, key, origin)
        require(signatures_canonical(signed), "a stored note's signatures are canonical base64")
        require(checkpoint_size == stored_size, "a checkpoint file is named after its size")
        require(checkpoint_size <= tree.size, "rollback: the chain is shorter than a checkpoint")
        if any(a < checkpoint_size < b for a, b in result.deleted):
            continue
        if checkpoint_size not in result.roots:
            result.roots[checkpoint_size] = tree.hash(0, checkpoint_size)
        require(result.roots[checkpoint_size] == root, "fork: a checkpoint's root differs")


# --- docs/format.md, "Tombstones" and "Redaction notes" --------------------------------------

TOMBSTONE_NAME = re.compile(r"^([0-9]{10})-([0-9]{10})\.tomb$")
TOMBSTONE_FIELDS = (
    *("origin", "segments", "indexes", "prev", "last"),
    *("range", "frontier", "periods", "deleted"),
)
DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,19})$")


@dataclass(frozen=True)
class Tombstone:
    """A signed stand-in for segments ``first_sequence .. last_sequence`` of a chain."""

    first_sequence: int
    last_sequence: int
    first_index: int
    end_index: int
    prev_hash: bytes
    last_block_hash: bytes
    range_hashes: list[bytes]
    frontier: list[bytes]
    periods: list[int]
    deleted_at: int


def decimals(values: Sequence[str]) -> list[int]:
    """Numbers written in ASCII decimal without sign or leading zeros."""
    require(all(DECIMAL.fullmatch(v) for v in values), "numbers are plain decimals")
    return [int(v) for v in values]


def parse_tombstone(text: str, origin: str) -> Tombstone:
    """A tombstone's text: ten lines, the first ``auditlog-tombstone/v1``, then one field each."""
    lines = text[:-1].split("\n")
    require(len(lines) == 10 and lines[0] == "auditlog-tombstone/v1", "a tombstone v1")
    fields: dict[str, list[str]] = {}
    for name, line in zip(TOMBSTONE_FIELDS, lines[1:], strict=True):
        key, *values = line.split(" ")
        require(key == name and "" not in values, "tombstone fields, in order, one a line")
        fields[name] = values
    require(fields["origin"] == [origin], "tombstone origin is the chain origin")
    counts = {"segments": 2, "indexes": 2, "prev": 1, "last": 1, "deleted": 1}
    require(all(len(fields[k]) == n for k, n in counts.items()), "tombstone field lengths")
    first_sequence, last_sequence = decimals(fields["segments"])
    first_index, end_index = decimals(fields["indexes"])
    (deleted_at,) = decimals(fields["deleted"])
    periods = decimals(fields["periods"])
    require(first_sequence <= last_sequence, "a tombstone stands for one or more segments")
    require(first_index < end_index, "a tombstone stands for one or more records")
    require(periods == sorted(set(periods)) and periods != [], "tombstone periods ascending")
    tombstone = Tombstone(
        first_sequence,
        last_sequence,
        first_index,
        end_index,
        decode_hash(fields["prev"][0]),
        decode_hash(fields["last"][0]),
        [decode_hash(h) for h in fields["range"]],
        [decode_hash(h) for h in fields["frontier"]],
        periods,
        deleted_at,
    )
    count = len(subtrees(first_index, end_index))
    require(len(tombstone.range_hashes) == count, "tombstone range is the compact range")
    require(len(tombstone.frontier) == end_index.bit_count(), "tombstone frontier length")
    return tombstone


def load_tombstones(chain_dir: Path, origin: str, key: VerifierKey) -> dict[int, Tombstone]:
    """Every tombstone of a chain, signature checked, by the first segment it stands for."""
    directory = chain_dir / "tombstones"
    found: dict[int, Tombstone] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if not path.name.endswith(".tomb"):
            continue
        match = TOMBSTONE_NAME.fullmatch(path.name)
        tombstone = parse_tombstone(open_note(read_note(path), key), origin)
        require(
            match is not None
            and (int(match[1]), int(match[2]))
            == (tombstone.first_sequence, tombstone.last_sequence),
            "a tombstone is named after its segments",
        )
        found[tombstone.first_sequence] = tombstone
    return found


def load_redactions(chain_dir: Path, origin: str, key: VerifierKey) -> set[int]:
    """Every index a redaction note of the chain names (signatures checked)."""
    directory = chain_dir / "redactions"
    found: set[int] = set()
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if not path.name.endswith(".note"):
            continue
        lines = open_note(read_note(path), key)[:-1].split("\n")
        require(len(lines) == 4 and lines[0] == "auditlog-redaction/v1", "a redaction note v1")
        require(lines[1] == f"origin {origin}", "redaction note origin is the chain origin")
        key_word, *indexes = lines[2].split(" ")
        values = decimals(indexes)
        require(key_word == "indexes" and values != [], "a redaction note names indexes")
        require(values == sorted(set(values)), "redaction note indexes ascending")
        key_word, *when = lines[3].split(" ")
        require(key_word == "redacted" and len(decimals(when)) == 1, "redaction note time")
        found.update(values)
    return found


# --- docs/format.md, "Segment files", "Entries", "Block", "Seal" ----------------------------


@dataclass
class Block:
    """One parsed block entry."""

    offset: int
    fields: dict[str, Any]
    leaves: list[bytes]
    frames: list[bytes]  # empty for a redacted record
    block_hash: bytes
    redacted: frozenset[int] = frozenset()  # positions whose frame was replaced by its SHA-256


@dataclass
class SegmentFile:
    """One parsed segment file."""

    sequence: int
    size: int
    first_index: int | None  # None: a torn new segment (shorter than its header, or all zeros)
    blocks: list[Block]
    seal: dict[str, Any] | None
    torn: int


BLOCK_FIELDS = [
    "type",
    "version",
    "flags",
    "count",
    "first_index",
    "tree_size",
    "period",
    "dictionary_id",
    "min_time",
    "max_time",
    "block_salt",
    "prev_hash",
    "tree_root",
]
SEAL_FIELDS = [
    "type",
    "version",
    "flags",
    "block_count",
    "first_index",
    "end_index",
    "sealed_at",
    "last_block_hash",
    "tree_root",
    "frontier_count",
]


def split_block(body: bytes) -> tuple[list[bytes], set[int], bytes]:
    """A block body's frames (empty if redacted), its redacted positions and its block hash.

    block hash = SHA-256(header || leaves || frame lengths (redacted bit clear) || the SHA-256
    of each frame): a redacted slot holds that SHA-256 in place of the frame.
    """
    (count,) = struct.unpack_from(">I", body, 4)
    lengths_at = BLOCK_HEADER.size + 32 * count
    frames_at = lengths_at + 4 * count
    require(count >= 1 and frames_at <= len(body) - 32, "block count fits the block")
    slots = struct.unpack_from(f">{count}I", body, lengths_at)
    frames, digests, redacted, position = [], [], set(), frames_at
    for slot, value in enumerate(slots):
        if value & REDACTED:  # the slot holds the SHA-256 of the frame that was removed
            frames.append(b"")
            digests.append(body[position : position + 32])
            redacted.add(slot)
            position += 32
        else:
            frames.append(body[position : position + value])
            digests.append(hashlib.sha256(frames[-1]).digest())
            position += value
    require(position == len(body) - 32, "frame lengths fill the block")
    lengths = struct.pack(f">{count}I", *(value & ~REDACTED for value in slots))
    hashed = body[:lengths_at] + lengths + b"".join(digests)
    return frames, redacted, hashlib.sha256(hashed).digest()


def parse_block(body: bytes, offset: int) -> Block:
    """Split a block body and check its self-hash."""
    require(len(body) >= BLOCK_HEADER.size + 32, "a block holds its header and hash")
    fields = dict(zip(BLOCK_FIELDS, BLOCK_HEADER.unpack_from(body), strict=True))
    require(fields["version"] == 1, "block version 1")
    require(fields["flags"] == 0, "block flags are 0")
    frames, redacted, block_hash = split_block(body)
    require(block_hash == body[-32:], "block hash")
    lengths_at = BLOCK_HEADER.size + 32 * fields["count"]
    leaves = [body[i : i + 32] for i in range(BLOCK_HEADER.size, lengths_at, 32)]
    return Block(offset, fields, leaves, frames, body[-32:], frozenset(redacted))


def parse_seal(body: bytes) -> dict[str, Any]:
    """Parse a seal body and check its self-hash."""
    require(len(body) >= SEAL_HEADER.size + 32, "a seal holds its header and hash")
    require(hashlib.sha256(body[:-32]).digest() == body[-32:], "seal hash")
    seal = dict(zip(SEAL_FIELDS, SEAL_HEADER.unpack_from(body), strict=True))
    require(seal["version"] == 1, "seal version 1")
    require(seal["flags"] == 0, "seal flags are 0")
    position = SEAL_HEADER.size
    seal["frontier"] = [
        body[position + 32 * i : position + 32 * (i + 1)] for i in range(seal["frontier_count"])
    ]
    position += 32 * seal["frontier_count"]
    (period_count,) = struct.unpack_from(">H", body, position)
    seal["periods"] = list(struct.unpack_from(f">{period_count}I", body, position + 2))
    position += 2 + 4 * period_count
    seal["block_index"] = [
        struct.unpack_from(">QQ", body, position + 16 * i) for i in range(seal["block_count"])
    ]
    position += 16 * seal["block_count"]
    require(position == len(body) - 32, "seal length matches its contents")
    return seal


def parse_segment(data: bytes, sequence: int, *, last: bool) -> SegmentFile:
    """Parse a segment file; only the chain's last segment may end in a torn tail."""
    if len(data) < FILE_HEADER.size or (last and not any(data)):
        # A torn new segment: the writer was creating it and its header never reached the disk.
        require(last, "only the last segment may be shorter than its header")
        return SegmentFile(sequence, len(data), None, [], None, len(data))
    magic, version, flags, reserved, file_sequence, first_index = FILE_HEADER.unpack_from(data)
    require(magic == MAGIC, "segment magic")
    require(version == 1, "segment format version 1")
    require(flags == 0 and reserved == 0, "segment header flags and reserved are 0")
    require(file_sequence == sequence, "the header names the file's own sequence number")
    blocks: list[Block] = []
    seal = None
    position, torn = FILE_HEADER.size, 0
    while position < len(data):
        require(seal is None, "nothing follows a seal")
        remaining = len(data) - position
        if remaining < ENTRY_PREFIX.size:
            torn = remaining
            break
        length, crc = ENTRY_PREFIX.unpack_from(data, position)
        if crc != zlib.crc32(data[position : position + 4]):
            require(not any(data[position:]), "a bad length CRC is damage unless all zeros follow")
            torn = remaining
            break
        require(0 < length <= MAX_BODY, "entry length in range")
        if ENTRY_PREFIX.size + length > remaining:
            torn = remaining
            break
        end = position + ENTRY_PREFIX.size + length
        body = data[position + ENTRY_PREFIX.size : end]
        try:
            if body[0] == 1:
                blocks.append(parse_block(body, position))
            elif body[0] == 2:
                seal = parse_seal(body)
            else:
                raise SpecError("unknown entry type")
        except SpecError:
            # A complete last entry that fails its checks while the file ends in 32 zero bytes:
            # a crash extended the file before the entry's bytes reached the disk.
            if last and end == len(data) and not any(data[-32:]):
                torn = remaining
                break
            raise
        position = end
    require(not torn or last, "only the last segment may end in a torn tail")
    return SegmentFile(sequence, len(data), first_index, blocks, seal, torn)


# --- docs/format.md, "Frames" and "Canonical records" ----------------------------------------


def micros(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def decompress(plaintext: bytes, dictionary: bytes | None) -> bytes:
    """The canonical record inside a frame plaintext (codec byte, then body)."""
    if plaintext[0] == 0:
        return plaintext[1:]
    require(plaintext[0] == 1, "codec 0 or 1")
    zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
    decompressor = zstandard.ZstdDecompressor(dict_data=zdict)
    # A magic-less zstd frame is a standard frame without its first four bytes.
    out: bytes = decompressor.decompress(ZSTD_MAGIC + plaintext[1:])
    return out


@dataclass
class ChainResult:
    """What the verifier found in one chain."""

    records: int = 0  # records present in segment files
    blocks: int = 0
    segments: int = 0
    bytes: int = 0
    sealed: int = 0
    torn: int = 0
    torn_new: bool = False  # the last segment is a torn new segment
    root: builtins.bytes = EMPTY_ROOT
    size: int = 0  # the tree size: records present and records deleted by sweeps
    roots: dict[int, builtins.bytes] = field(default_factory=lambda: {0: EMPTY_ROOT})
    deleted: list[tuple[int, int]] = field(default_factory=list)  # index ranges of tombstones
    shredded: int = 0  # records present whose period key was shredded (checked keyless only)
    canonical: list[builtins.bytes] = field(default_factory=list)
    trace: list[dict[str, builtins.bytes]] = field(default_factory=list)


def check_frames(
    block: Block,
    data_key: bytes,
    dictionary: bytes | None,
    origin: str,
    period_us: int,
    result: ChainResult,
) -> None:
    """Decrypt and decompress every frame of a block and recompute its leaf from the record."""
    header = block.fields
    block_key = hkdf(data_key, b"frame-key", header["block_salt"])
    aead = AESGCM(block_key)
    salts = leaf_salts(data_key, header["first_index"], header["count"])
    for position, (leaf, frame, salt) in enumerate(
        zip(block.leaves, block.frames, salts, strict=True)
    ):
        if position in block.redacted:
            continue  # nothing left to decrypt: the leaf stays in the tree, the record is gone
        index = header["first_index"] + position
        aad = origin.encode() + b"\x00" + index.to_bytes(8, "big") + leaf
        try:
            plaintext = aead.decrypt(position.to_bytes(12, "big"), frame, aad)
        except InvalidTag:
            raise SpecError("frame does not decrypt") from None
        canonical = decompress(plaintext, dictionary)
        require(hashlib.sha256(b"\x00" + salt + canonical).digest() == leaf, "leaf of record")
        record = msgpack.unpackb(canonical, timestamp=3)
        require(isinstance(record, dict), "a record is a msgpack map")
        moment = micros(record["occurred_at"])
        require(header["min_time"] <= moment <= header["max_time"], "time within block range")
        require(moment // period_us == header["period"], "record period is the block's")
        result.canonical.append(canonical)
        result.trace.append(
            {
                "block_key": block_key,
                "salt": salt,
                "plaintext": plaintext,
                "canonical": canonical,
            }
        )


@dataclass
class ChainState:
    """Where the walk along a chain stands: its tree, last block hash and last segment's seal."""

    tree: Tree
    last_hash: bytes
    open_before: bool = False  # the segment before was not sealed: nothing may follow it


def check_segment(
    segment: SegmentFile,
    state: ChainState,
    result: ChainResult,
    redactions: set[int],
    keyed: Callable[[Block], None] | None,
) -> None:
    """The keyless checks of one segment as the continuation of the chain before it."""
    tree = state.tree
    require(not state.open_before, "only the last segment is unsealed")
    result.segments += 1
    result.bytes += segment.size
    result.torn = segment.torn
    if segment.first_index is None:
        state.open_before = result.torn_new = True
        return
    require(segment.first_index == tree.size, "segment starts where the chain ended")
    for block in segment.blocks:
        header = block.fields
        require(header["first_index"] == tree.size, "block starts where the chain ended")
        require(header["prev_hash"] == state.last_hash, "hash chain")
        require(header["tree_size"] == header["first_index"] + header["count"], "tree size")
        require(header["min_time"] <= header["max_time"], "time range")
        require(
            header["min_time"] % TIME_GRANULE_US == 0 and header["max_time"] % TIME_GRANULE_US == 0,
            "header times are whole minutes",
        )
        tree.append_leaves(block.leaves)
        result.roots[tree.size] = tree.root()
        require(header["tree_root"] == result.roots[tree.size], "Merkle root after the block")
        for position in block.redacted:
            index = header["first_index"] + position
            require(index in redactions, "a redacted slot is named by a redaction note")
        state.last_hash = block.block_hash
        result.blocks += 1
        result.records += header["count"]
        if keyed is not None:
            keyed(block)
    seal = segment.seal
    if seal is None:
        state.open_before = True
        return
    result.sealed += 1
    require(seal["block_count"] == len(segment.blocks) >= 1, "seal block count")
    require(seal["first_index"] == segment.first_index, "seal first index")
    require(seal["end_index"] == tree.size, "seal end index")
    require(seal["last_block_hash"] == state.last_hash, "seal last block hash")
    require(seal["tree_root"] == tree.root(), "seal tree root")
    require(seal["frontier"] == tree.frontier(), "seal frontier")
    periods = sorted({b.fields["period"] for b in segment.blocks})
    require(seal["periods"] == periods, "seal periods")
    index = [(b.fields["first_index"], b.offset) for b in segment.blocks]
    require(seal["block_index"] == index, "seal block index")


def apply_tombstone(tombstone: Tombstone, state: ChainState, result: ChainResult) -> None:
    """Step over the deleted segments a tombstone stands for, as docs/format.md says."""
    require(not state.open_before, "deleted segments follow a sealed segment")
    require(
        tombstone.first_index == state.tree.size and tombstone.prev_hash == state.last_hash,
        "a tombstone joins the chain where it stands",
    )
    state.tree.append_range(tombstone.end_index, tombstone.range_hashes)
    require(state.tree.frontier() == tombstone.frontier, "tombstone frontier")
    state.last_hash = tombstone.last_block_hash
    result.roots[tombstone.end_index] = state.tree.root()
    result.deleted.append((tombstone.first_index, tombstone.end_index))


# --- docs/format.md, "Signed state files", "Sweep journal" ----------------------------------

STATE_FORMATS = {"manifest.json": "auditlog", "holds.json": "auditlog-holds"}


def state_format(path: str) -> str | None:
    """The ``format`` of the signed state file at ``path`` in the log (None: not one)."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "chains" and parts[2] == "keyring":
        return "auditlog-keyring"
    return STATE_FORMATS.get(path)


def decode_state(raw: bytes, path: str) -> dict[str, Any]:
    """A state file's map: JSON for the manifest and holds, msgpack for keyrings."""
    if path.endswith(".json"):
        doc = json.loads(raw.decode("utf-8"))
    else:
        doc = msgpack.unpackb(raw, strict_map_key=False)
    require(isinstance(doc, dict), "a state file is a map")
    assert isinstance(doc, dict)
    return doc


def state_signed_text(origin: str, path: str, doc: dict[str, Any]) -> str:
    """The text a state file's signature covers: its place, format, version, generation and
    the SHA-256 of the file written with an empty ``signature``."""
    unsigned = {**doc, "signature": ""}  # the key keeps its place in a msgpack map
    if path.endswith(".json"):
        body = (json.dumps(unsigned, indent=2, sort_keys=True) + "\n").encode()
    else:
        body = msgpack.packb(unsigned)
    return (
        f"auditlog-state/v2\n{origin}\n{path}\n"
        f"{doc['format']} {doc['version']} {doc['generation']}\n"
        f"{hashlib.sha256(body).hexdigest()}\n"
    )


def read_signed_state(log: Path, path: str, origin: str, key: VerifierKey) -> dict[str, Any]:
    """A signed state file, its format, version 2, generation and signature checked."""
    doc = decode_state((log / path).read_bytes(), path)
    require(doc.get("format") == state_format(path) and doc.get("version") == 2, f"{path} v2")
    generation = doc.get("generation")
    require(type(generation) is int and generation >= 1, "a signed state file has a generation")
    signature = doc.get("signature")
    require(isinstance(signature, str), "a signed state file has a signature")
    assert isinstance(signature, str)
    require(
        open_note(signature, key) == state_signed_text(origin, path, doc),
        "a state file's signature covers its content and place",
    )
    return doc


@dataclass(frozen=True)
class PendingSweep:
    """What the signed journal of an unfinished sweep may have half done."""

    segments: frozenset[int]
    periods: frozenset[int]
    tombstones: frozenset[str]  # file names


def signed_journal(chain_dir: Path, origin: str, key: VerifierKey) -> PendingSweep | None:
    """The chain's sweep journal if it is there and signed by the log's key, else None."""
    path = chain_dir / "sweep.journal"
    if not path.exists():
        return None
    try:
        doc = msgpack.unpackb(path.read_bytes())
    except SPEC_PARSE_ERRORS:
        return None
    if not isinstance(doc, dict):
        return None
    if (doc.get("format"), doc.get("version")) != ("auditlog-sweep-journal", 1):
        return None
    body = {name: value for name, value in doc.items() if name != "signature"}
    digest = hashlib.sha256(msgpack.packb(body)).hexdigest()
    try:
        text = open_note(doc.get("signature", ""), key)
    except SpecError:
        return None
    if text != f"auditlog-sweep-journal/v1\n{origin}\n{digest}\n":
        return None
    tombstones = [parse_tombstone(t, origin) for t in doc["tombstones"]]
    return PendingSweep(
        frozenset(doc["delete_segments"]),
        frozenset(doc["shred_periods"]),
        frozenset(f"{t.first_sequence:010d}-{t.last_sequence:010d}.tomb" for t in tombstones),
    )


def bound_journal(
    log: Path, chain: str, origin: str, key: VerifierKey, head: Head | None
) -> PendingSweep | None:
    """An unfinished sweep, which may be half done: the chain's journal, signed by the log's key
    and bound, byte for byte, by the head (``docs/format.md``, "Log head"). A journal the head
    does not bind was never begun, or was put back: it excuses nothing."""
    path = log / "chains" / chain / "sweep.journal"
    if head is None or not path.is_file():
        return None
    bound = head.files.get(f"chains/{chain}/sweep.journal")
    if bound is None or bound[1] != hashlib.sha256(path.read_bytes()).hexdigest():
        return None
    return signed_journal(path.parent, origin, key)


# --- docs/format.md, "Tiles" -----------------------------------------------------------------

TILE_NAME = re.compile(r"^level-([0-9]{2,})$")
HOLE = bytes(32)


def check_tiles(chain_dir: Path, tree: Tree, deleted: list[tuple[int, int]], torn: bool) -> None:
    """The stored nodes against the tree recomputed from the chain (``docs/format.md``)."""
    directory = chain_dir / "tiles"
    size = tree.size
    expected: dict[int, int] = {}
    level = 0
    while level == 0 or size >> level:
        expected[level] = size >> level
        level += 8
    files: dict[int, bytes] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        match = TILE_NAME.fullmatch(path.name)
        require(
            match is not None and path.name == f"level-{int(match[1]):02d}", "tiles: a tile file"
        )
        assert match is not None
        data = path.read_bytes()
        found = int(match[1])
        if found not in expected:
            require(torn, "tiles: no level file the tree has no node of")
            continue
        length = 32 * expected[found]
        require(len(data) % 32 == 0 and len(data) >= length, "tiles: a level holds every node")
        require(len(data) == length or torn, "tiles: no node beyond the chain's end")
        files[found] = data[:length]
    for level, count in expected.items():
        require(count == 0 or level in files, "tiles: a level holds every node")
    # Range nodes of tombstones of more than one leaf: stored nodes strictly inside one are all
    # holes or all as the original leaves give them.
    range_nodes = [
        (start, width) for a, b in deleted for start, width in subtrees(a, b) if width > 1
    ]
    for start, width in range_nodes:
        leaves = files[0][32 * start : 32 * (start + width)]
        inside = [level for level in files if 1 << level < width]
        if leaves[:32] == HOLE:
            for level in inside:
                nodes = files[level][32 * (start >> level) : 32 * ((start + width) >> level)]
                require(not any(nodes), "tiles: a deleted subtree is all holes or all original")
            continue
        hashes = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
        require(mth(hashes) == tree.known[(start, width)], "tiles: deleted leaves hash up")
        for level in inside:
            for index in range(start >> level, (start + width) >> level):
                first = (index << level) - start
                node = mth(hashes[first : first + (1 << level)])
                require(files[level][32 * index : 32 * index + 32] == node, "tiles: node matches")
    for level, data in files.items():
        for index in range(expected[level]):
            begin, end = index << level, (index + 1) << level
            if any(s <= begin and end <= s + w and end - begin < w for s, w in range_nodes):
                continue
            node = tree.hash(begin, end)
            require(data[32 * index : 32 * index + 32] == node, "tiles: node matches the tree")


def verify_chain(
    chain_dir: Path,
    origin: str,
    period_us: int,
    checkpoint_key: VerifierKey,
    keyring: Keyring | None,
    pending: PendingSweep | None = None,
) -> ChainResult:
    """Keyless checks of one chain, its checkpoints and tiles; with its keyring, keyed too."""
    result = ChainResult()
    directory = chain_dir / "segments"
    files = {
        int(match[1]): path
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := SEGMENT_NAME.fullmatch(path.name))
    }
    tombstones = load_tombstones(chain_dir, origin, checkpoint_key)
    redactions = load_redactions(chain_dir, origin, checkpoint_key)
    genesis = hashlib.sha256(b"auditlog/v1 genesis\x00" + origin.encode()).digest()
    state = ChainState(Tree(), genesis)

    def keyed(block: Block) -> None:
        assert keyring is not None
        period = block.fields["period"]
        if period in keyring.shredded:
            result.shredded += block.fields["count"]
            return
        require(period in keyring.keys, "the keyring holds the data key of every period")
        dictionary = None
        if block.fields["dictionary_id"]:
            dictionary = load_dictionary(
                chain_dir, origin, period, block.fields["dictionary_id"], keyring.keys[period]
            )
        check_frames(block, keyring.keys[period], dictionary, origin, period_us, result)

    last = max(files, default=-1)
    sequence = 0
    while sequence <= last or sequence in tombstones:
        if sequence in files:
            segment = parse_segment(files[sequence].read_bytes(), sequence, last=sequence == last)
            check_segment(segment, state, result, redactions, None if keyring is None else keyed)
            sequence += 1
        else:
            require(sequence in tombstones, "every segment is present or stood for by a tombstone")
            tombstone = tombstones[sequence]
            span = set(range(tombstone.first_sequence, tombstone.last_sequence + 1))
            # Segments a stopped sweep is yet to delete: its signed journal names them.
            allowed = pending.segments if pending is not None else frozenset()
            require(files.keys() & span <= allowed, "a tombstone's segments are all deleted")
            for present in sorted(files.keys() & span):  # counted as sealed, nothing else
                result.sealed += (
                    parse_segment(files[present].read_bytes(), present, last=False).seal is not None
                )
            apply_tombstone(tombstone, state, result)
            sequence = tombstone.last_sequence + 1
    result.size = state.tree.size
    result.root = state.tree.root()
    check_checkpoints(chain_dir, origin, checkpoint_key, state.tree, result)
    check_tiles(chain_dir, state.tree, result.deleted, torn=result.torn > 0 or result.torn_new)
    return result


# --- docs/format.md, "Log head" --------------------------------------------------------------

EVENTS_CHAIN = "_log"
HEAD_CHAIN = re.compile(
    r"^chain (\S+) (checkpoints (?:0|[1-9][0-9]*) (?:0|[1-9][0-9]*) "
    r"sealed (?:-|0|[1-9][0-9]*) (?:0|[1-9][0-9]*) shredded (?:-|[0-9]+(?:,[0-9]+)*))$"
)
HEAD_FILE = re.compile(r"^file (\S+) (-|0|[1-9][0-9]*) ([0-9a-f]{64})$")
LOG_FILES = ("manifest.json", "holds.json", "keys/root.key", "keys/checkpoint.key", "keys/hold.key")
CHAIN_FILES = (("dicts", ".zdict"), ("tombstones", ".tomb"), ("redactions", ".note"))


@dataclass
class Head:
    """A parsed head: its generation, the events chain's size and root, chain and file lines."""

    generation: int
    events_size: int
    events_root: bytes
    chains: dict[str, str]  # chain id -> the rest of its line
    files: dict[str, tuple[str, str]]  # path -> (generation or "-", SHA-256 hex)


def parse_head(text: str, origin: str) -> Head:
    """A head's text: magic, origin, generation, events, then sorted chain and file lines."""
    lines = text[:-1].split("\n")
    require(len(lines) >= 4 and lines[0] == "auditlog-head/v2", "a head v2")
    require(lines[1] == f"origin {origin}", "the head's origin is the log origin")
    word, *generation = lines[2].split(" ")
    require(word == "generation" and len(generation) == 1, "the head's generation")
    word, *events = lines[3].split(" ")
    require(word == "events" and len(events) == 2, "the head's events line")
    head = Head(decimals(generation)[0], decimals(events[:1])[0], decode_hash(events[1]), {}, {})
    rest = lines[4:]
    chain_lines = [line for line in rest if line.startswith("chain ")]
    file_lines = rest[len(chain_lines) :]
    require(chain_lines == sorted(chain_lines), "the head's chain lines are sorted")
    require(file_lines == sorted(file_lines), "the head's file lines are sorted")
    for line in chain_lines:
        match = HEAD_CHAIN.fullmatch(line)
        require(match is not None, "a head chain line")
        assert match is not None
        require(match[1] not in head.chains, "one chain line a chain")
        head.chains[match[1]] = match[2]
    for line in file_lines:
        match = HEAD_FILE.fullmatch(line)
        require(match is not None, "a head file line")
        assert match is not None
        require(match[1] not in head.files, "one file line a file")
        head.files[match[1]] = (match[2], match[3])
    return head


def chain_line(chain_dir: Path, shredded: Sequence[int]) -> str:
    """A chain's line as its files say now (without ``chain <id> ``)."""
    directory = chain_dir / "checkpoints"
    sizes = sorted(
        int(match[1])
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := CHECKPOINT_NAME.fullmatch(path.name))
    )
    segments = sorted(
        (int(match[1]), path)
        for path in (chain_dir / "segments").glob("*.seg")
        if (match := SEGMENT_NAME.fullmatch(path.name))
    )
    sealed = segments[:-1]
    if segments:
        sequence, path = segments[-1]
        if parse_segment(path.read_bytes(), sequence, last=True).seal is not None:
            sealed = segments
    through = str(sealed[-1][0]) if sealed else "-"
    size = sum(path.stat().st_size for _, path in sealed)
    return (
        f"checkpoints {len(sizes)} {sizes[-1] if sizes else 0} sealed {through} {size} "
        f"shredded {','.join(map(str, sorted(shredded))) or '-'}"
    )


def bound_files(log: Path, chains: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Every file the head must bind, with its generation (signed state files) and digest."""
    paths = [name for name in LOG_FILES if (log / name).is_file()]
    for chain in chains:
        for name in ("keyring", "sweep.journal"):
            if (log / "chains" / chain / name).is_file():
                paths.append(f"chains/{chain}/{name}")
        for directory, suffix in (*CHAIN_FILES, ("quarantine", ".bin")):
            folder = log / "chains" / chain / directory
            for item in sorted(folder.iterdir()) if folder.is_dir() else []:
                if item.name.endswith(suffix) and not item.name.startswith("."):
                    paths.append(f"chains/{chain}/{directory}/{item.name}")
    bound = {}
    for name in paths:
        raw = (log / name).read_bytes()
        generation = "-"
        if state_format(name) is not None:
            generation = str(decode_state(raw, name)["generation"])
        bound[name] = (generation, hashlib.sha256(raw).hexdigest())
    return bound


@dataclass(frozen=True)
class Difference:
    """One way the directory differs from its head (``docs/format.md``, "Comparing a head
    with the directory"): ``rule`` names it; ``benign`` if a crash between a change and the
    head's rewrite can leave it; ``rollback`` if something signed was put back or is gone."""

    rule: str
    benign: bool
    rollback: bool = False


TOMBSTONE_FILE = re.compile(r"^([0-9]+)-([0-9]+)\.tomb$")
CHAIN_RULE = "a chain's checkpoints and sealed segments are as the head says"
PLANTED_RULE = "a chain the head does not name holds nothing (else it was planted)"


def segment_files(chain_dir: Path) -> dict[int, Path]:
    """The chain's segment files by sequence number."""
    directory = chain_dir / "segments"
    return {
        int(match[1]): path
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := SEGMENT_NAME.fullmatch(path.name))
    }


def tombstone_ranges(chain_dir: Path) -> list[tuple[int, int]]:
    """The ``<first>-<last>`` ranges of the tombstone files on disk, from their names."""
    directory = chain_dir / "tombstones"
    return [
        (int(match[1]), int(match[2]))
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := TOMBSTONE_FILE.fullmatch(path.name))
    ]


def line_numbers(line: str) -> tuple[int, int, int, int]:
    """A chain line's checkpoint count, newest size, sealed sequence (-1: none), sealed bytes."""
    words = line.split(" ")
    return int(words[1]), int(words[2]), -1 if words[4] == "-" else int(words[4]), int(words[5])


def holds_nothing(log: Path, chain: str, line: str, files: dict[str, tuple[str, str]]) -> bool:
    """A chain directory as a crash right after making it leaves it: no checkpoint, no sealed
    segment, no bound file, every segment file at most its 32-byte file header."""
    count, _, through, _ = line_numbers(line)
    return (
        count == 0
        and through < 0
        and not any(path.startswith(f"chains/{chain}/") for path in files)
        and all(
            path.stat().st_size <= FILE_HEADER.size
            for path in segment_files(log / "chains" / chain).values()
        )
    )


def compare_chain(
    log: Path, chain: str, head: Head, line: str, sweep: PendingSweep | None
) -> list[Difference]:
    """A chain the head names against its directory."""
    found = []
    signed = head.chains[chain]
    count, newest, through, sealed_bytes = line_numbers(signed)
    disk_count, disk_newest, disk_through, _ = line_numbers(line)
    if disk_count < count or disk_newest < newest:
        found.append(Difference(CHAIN_RULE, benign=False, rollback=True))
    elif (disk_count, disk_newest) != (count, newest):
        found.append(Difference(CHAIN_RULE, benign=True))  # checkpoints not counted yet
    chain_dir = log / "chains" / chain
    segments = segment_files(chain_dir)
    ranges = tombstone_ranges(chain_dir)
    deleting = sweep.segments if sweep is not None else frozenset()

    def tombstoned(sequence: int) -> bool:
        return any(first <= sequence <= last for first, last in ranges)

    if any(tombstoned(s) and s not in deleting for s in segments):
        rule = "no segment in a tombstone's range is present: a deleted one was put back"
        found.append(Difference(rule, benign=False, rollback=True))
    if sweep is not None:
        # A sweep half done: its own segments may be gone or not; no other may be missing.
        lost = [s for s in range(through + 1) if s not in segments and not tombstoned(s)]
        if set(lost) - deleting:
            rule = "a sealed segment is present, or deleted by a tombstone or the bound sweep"
            found.append(Difference(rule, benign=False))
    else:
        present = sum(path.stat().st_size for s, path in segments.items() if s <= through)
        if present != sealed_bytes:
            # A redaction rewrites sealed segments after storing its note: a note the head
            # does not bind yet means the head is behind a redaction.
            directory = chain_dir / "redactions"
            notes = {
                f"chains/{chain}/redactions/{p.name}"
                for p in (directory.iterdir() if directory.is_dir() else [])
                if p.name.endswith(".note") and not p.name.startswith(".")
            }
            found.append(Difference(CHAIN_RULE, benign=bool(notes - set(head.files))))
        if line.split(" shredded ")[1] != signed.split(" shredded ")[1]:
            found.append(Difference(CHAIN_RULE, benign=True))  # redundant with the keyring
    if disk_through > through:
        found.append(Difference(CHAIN_RULE, benign=True))  # sealed after the head
    return found


def compare_file(
    log: Path, path: str, signed: tuple[str, str], disk: tuple[str, str], key: VerifierKey
) -> Difference:
    """A bound file whose digest is not the one the head binds."""
    rule = "every file is the one the head binds"
    if signed[0] == "-" or disk[0] == "-":
        return Difference(rule, benign=path.startswith("keys/"))  # a key file rewrapped
    if int(disk[0]) < int(signed[0]):
        return Difference(rule, benign=False, rollback=True)  # an older generation put back
    if int(disk[0]) == int(signed[0]):
        return Difference(rule, benign=False)
    origin = json.loads((log / "manifest.json").read_text("utf-8"))["origin"]
    try:
        read_signed_state(log, path, origin, key)
    except SPEC_REFUSALS:
        return Difference(rule + " (a newer one is signed)", benign=False)
    return Difference(rule, benign=True)  # newer and signed


def compare_head(
    log: Path,
    head: Head,
    results: dict[str, ChainResult],
    lines: dict[str, str],
    pending: dict[str, PendingSweep],
    key: VerifierKey,
) -> list[Difference]:
    """Every difference between the head and the directory (``docs/format.md``, "Comparing a
    head with the directory"); ``pending`` holds the chains with a bound, signed journal."""
    found = []
    files = bound_files(log, sorted(lines))
    for chain in sorted(set(head.chains) | set(lines)):
        if chain not in lines:
            rule = "the head names every chain, and only those"
            found.append(Difference(rule, benign=False, rollback=True))
        elif chain not in head.chains:
            empty = holds_nothing(log, chain, lines[chain], files)
            found.append(Difference(PLANTED_RULE, benign=empty))
        else:
            found += compare_chain(log, chain, head, lines[chain], pending.get(chain))
    for path in sorted(set(files) | set(head.files)):
        chain = path.split("/")[1] if path.startswith("chains/") else ""
        sweep = pending.get(chain)
        name = path.rsplit("/", 1)[-1]
        if path not in files:
            if sweep is not None and name.endswith(".zdict") and int(name[:10]) in sweep.periods:
                continue  # the dictionary of a period the bound sweep shreds
            found.append(Difference("every file the head binds is there", False, rollback=True))
        elif path not in head.files:
            if sweep is not None and name in sweep.tombstones:
                continue  # a tombstone the bound sweep stored
            found.append(Difference("every file is bound by the head", benign=True))
        elif files[path] != head.files[path]:
            changed = compare_file(log, path, head.files[path], files[path], key)
            if sweep is not None and changed.benign and name == "keyring":
                continue  # the keyring the bound sweep shreds periods in
            found.append(changed)
    events = results.get(EVENTS_CHAIN, ChainResult())
    rule = "the events chain is as the head says"
    if events.size < head.events_size:
        found.append(Difference(rule, benign=False, rollback=True))  # events cut off
    elif events.roots.get(head.events_size) != head.events_root:
        found.append(Difference(rule, benign=False))  # rewritten
    elif events.size > head.events_size + 1:
        found.append(Difference(rule + " (at most one event ahead)", False, rollback=True))
    elif events.size > head.events_size:
        found.append(Difference(rule, benign=True))  # one event not bound yet
    return found


def unlock_signer(log: Path, manifest: dict[str, Any], root_keys: dict[str, bytes]) -> str:
    """The checkpoint signer key, unwrapped by whichever root key wrapped it."""
    doc = msgpack.unpackb((log / "keys" / "checkpoint.key").read_bytes())
    return unwrap_checkpoint_signer(log, manifest, root_keys[doc["root_key_id"]])


def load_head(log: Path, origin: str, key: VerifierKey) -> Head:
    """``head.note``, opened with the verifier key and parsed."""
    if not (log / "head.note").exists():
        raise SpecError("the log's head is missing")
    signed = read_note(log / "head.note")
    text = open_note(signed, key)
    require(signatures_canonical(signed), "a stored note's signatures are canonical base64")
    return parse_head(text, origin)


@dataclass
class LogFindings:
    """What the verifier found: each chain's result, the head, and how the directory differs."""

    results: dict[str, ChainResult]
    head: Head
    differences: list[Difference]


def examine_log(
    log: Path, passphrase: str | None = None, key: str | None = None, *, writing: bool = False
) -> LogFindings:
    """Verify every chain (``_log`` included) and compare the directory with its head; keyed
    when a passphrase is given; with the verifier key ``key`` if pinned, else the manifest's.
    ``writing``: as a write-open, which verifies only the events chain before comparing."""
    manifest = json.loads((log / "manifest.json").read_text("utf-8"))
    require(manifest.get("format") == "auditlog", "a log's manifest")
    require(manifest.get("version") != 1, "a log of format v1 must be migrated")
    require(manifest.get("version") == 2, "manifest v2")
    origin = manifest["origin"]
    checkpoint_key = parse_verifier_key(key or manifest["checkpoint_key"])
    root_keys = None
    if passphrase is not None:
        root_keys = unlock_root_keys(log, manifest, passphrase)
        signer = unlock_signer(log, manifest, root_keys)
        require(parse_verifier_key(verifier_of(signer)) == checkpoint_key, "the log's own key")
    read_signed_state(log, "manifest.json", origin, checkpoint_key)
    if (log / "holds.json").exists():
        read_signed_state(log, "holds.json", origin, checkpoint_key)
    period_us = manifest["config"]["period_seconds"] * 1_000_000
    chains = sorted(
        p.name for p in (log / "chains").iterdir() if p.is_dir() and CHAIN_ID.fullmatch(p.name)
    )
    if (log / "chains" / EVENTS_CHAIN).is_dir():
        chains.append(EVENTS_CHAIN)
    try:  # the head as far as it opens: whether it binds a journal (checked in full below)
        bound_head: Head | None = load_head(log, origin, checkpoint_key)
    except SPEC_REFUSALS:
        bound_head = None
    results, lines, pending = {}, {}, {}
    for chain in chains:
        chain_dir = log / "chains" / chain
        chain_origin = f"{origin}/{chain}"
        sweep = bound_journal(log, chain, chain_origin, checkpoint_key, bound_head)
        if sweep is not None:
            pending[chain] = sweep
        keyring_doc = None
        if writing and chain != EVENTS_CHAIN:
            if (chain_dir / "keyring").exists():  # compared with the head, not opened here
                keyring_doc = decode_state((chain_dir / "keyring").read_bytes(), "keyring")
            lines[chain] = chain_line(chain_dir, list((keyring_doc or {}).get("shredded", {})))
            continue
        if (chain_dir / "keyring").exists():
            keyring_doc = read_signed_state(log, f"chains/{chain}/keyring", origin, checkpoint_key)
        keyring = None
        if root_keys is not None:
            keyring = read_keyring(keyring_doc, chain_origin, root_keys)
        results[chain] = verify_chain(
            chain_dir, chain_origin, period_us, checkpoint_key, keyring, sweep
        )
        shredded = keyring_doc["shredded"] if keyring_doc is not None else {}
        lines[chain] = chain_line(chain_dir, list(shredded))
    head = load_head(log, origin, checkpoint_key)
    differences = compare_head(log, head, results, lines, pending, checkpoint_key)
    return LogFindings(results, head, differences)


def verify_log(
    log: Path, passphrase: str | None = None, key: str | None = None
) -> dict[str, ChainResult]:
    """Verify the log at ``log`` as ``AuditLog.verify`` does: every chain and the head, which
    the directory must match exactly (a difference, benign or not, is an error)."""
    findings = examine_log(log, passphrase, key)
    if findings.differences:
        raise SpecError("; ".join(dict.fromkeys(d.rule for d in findings.differences)))
    return findings.results


def write_open(log: Path, passphrase: str) -> list[Difference]:
    """What a write-open checks before it writes anything (``docs/format.md``, "Log head"):
    every sweep journal is signed by the log's key; no difference from the head is other than
    benign; an event past the head was appended under a head no newer than it, and names no
    state file older than it is now. Returns the benign differences it would bind."""
    manifest = json.loads((log / "manifest.json").read_text("utf-8"))
    origin = manifest["origin"]
    key = parse_verifier_key(manifest["checkpoint_key"])
    for chain_dir in sorted((log / "chains").iterdir()):
        if (chain_dir / "sweep.journal").exists():
            journal = signed_journal(chain_dir, f"{origin}/{chain_dir.name}", key)
            require(journal is not None, "a sweep journal is signed by the log's key")
    findings = examine_log(log, passphrase, writing=True)
    refused = [d.rule for d in findings.differences if not d.benign]
    if refused:
        raise SpecError("; ".join(dict.fromkeys(refused)))
    head, events = findings.head, findings.results.get(EVENTS_CHAIN, ChainResult())
    if events.size == head.events_size + 1:
        event = msgpack.unpackb(events.canonical[-1], timestamp=3)
        require(
            event.get("head") is None or event["head"] <= head.generation,
            "the event past the head was appended under a head no newer than it",
        )
        if event.get("state") is not None:
            path, generation, _ = event["state"].split(" ")
            if state_format(path) is not None and (log / path).exists():
                now = decode_state((log / path).read_bytes(), path)["generation"]
                require(now >= int(generation), "a state file is no older than an event says")
    return findings.differences


def spec_canonical(record: BaseModel) -> bytes:
    """A record's canonical encoding, built field by field as docs/format.md describes it."""

    def value(item: object) -> object:
        if isinstance(item, BaseModel):
            return {
                name: value(getattr(item, name))
                for name in type(item).model_fields
                if getattr(item, name) is not None
            }
        if isinstance(item, enum.Enum):
            return item.value
        if isinstance(item, IPv4Address | IPv6Address):
            return item.packed
        if isinstance(item, tuple):
            return [value(element) for element in item]
        if isinstance(item, datetime):
            return item.astimezone(UTC)
        return item

    packed: bytes = msgpack.packb(value(record), datetime=True)
    return packed


# --- the logs the tests check ----------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = LogConfig(
    origin="example.com/audit",
    period_seconds=3600,
    block_max_records=4,
    dictionary_samples=8,
    dictionary_bytes=1024,
)


def network(i: int, at: datetime) -> NetworkAddressRecord:
    """A network-address record, varied by ``i``."""
    return NetworkAddressRecord(
        occurred_at=at,
        subject=f"user{i % 5}",
        service="ssh",
        event="login",
        source_ip=f"198.51.100.{i}" if i % 3 else f"2001:db8::{i:x}",
        source_port=40_000 + i,
        transport="tcp",
        destination_ip="192.0.2.10",
        destination_port=22,
        user_agent="OpenSSH_9.6p1",
        status="success" if i % 4 else None,
    )


def mixed(at: datetime) -> list[Record]:
    """A chat, call, identity, activity and access record, for one chain."""
    return [
        ChatMessage(
            occurred_at=at,
            subject="alice",
            service="im",
            message_id="m-1",
            conversation_id="c-1",
            sender="alice",
            recipients=("bob", "carol"),
            operation="send",
            content="see you at 10 ✓",
            attachments=({"sha256": "AB" * 32, "size": 2048, "media_type": "Image/PNG"},),
            client_ip="203.0.113.7",
            client_port=51_000,
        ),
        CallRecord(
            occurred_at=at + timedelta(seconds=1),
            subject="bob",
            service="voice",
            call_id="call-9",
            parties=(
                {"account": "bob", "role": "caller", "signalling_ip": "2001:db8::2"},
                {"account": "dave", "role": "callee"},
            ),
            media="video",
            attempted_at=at,
            answered_at=at + timedelta(seconds=1),
            ended_at=at + timedelta(seconds=61, microseconds=5),
            duration_us=60_000_005,
            end_reason="completed",
        ),
        IdentityVerification(
            occurred_at=at + timedelta(seconds=2),
            subject="carol",
            service="kyc",
            account="carol",
            method="id-document",
            result="passed",
            document_type="passport",
            document_number="X1234567",
        ),
        Activity(
            occurred_at=at + timedelta(seconds=3),
            subject="dave",
            service="web",
            account="dave",
            action="login",
        ),
        AccessRecord(
            occurred_at=at + timedelta(seconds=4),
            subject="inspector-7",
            service="auditlog",
            actor="inspector-7",
            role="inspector",
            purpose="case-review",
            query="subject = alice",
            records_returned=3,
        ),
    ]


def wait_for_dictionary(directory: Path) -> None:
    """Until the dictionary trained in the background is stored (at most 30 s)."""
    deadline = time.monotonic() + 30
    while not any(directory.glob("*.zdict")):
        assert time.monotonic() < deadline, "no dictionary was stored within 30 s"
        time.sleep(0.005)


def write_sample_log(create_log: Callable[..., AuditLog]) -> dict[str, list[Record]]:
    """Write several chains (dictionary and raw frames, two periods in one segment); close it."""
    written: dict[str, list[Record]] = {"network": [], "mixed": []}
    with create_log(CONFIG) as log:
        # Twelve records of one hour: blocks of four, the later ones compressed with the
        # period's dictionary, trained in the background once eight samples are in.
        batch = [network(i, T0 + timedelta(minutes=4 * i)) for i in range(12)]
        log.append_many(batch[:8])
        wait_for_dictionary(log.path / "chains" / "network" / "dicts")
        log.append_many(batch[8:])
        written["network"] += batch
        # A late record of the previous hour joins the open segment under its own period.
        late = network(99, T0 - timedelta(minutes=30))
        log.append(late)
        log.flush()
        written["network"].append(late)
        records = mixed(T0 + timedelta(minutes=5))
        log.append_many(records, chain="mixed")
        written["mixed"] += records
    return written


def write_sealed_log(create_log: Callable[..., AuditLog]) -> None:
    """Six network records, rolled by count and by period: segments 0 to 2 sealed, 3 open.

    Each seal stores a checkpoint, so the chain has checkpoints of sizes 2, 4 and 5.
    """
    with create_log(CONFIG.model_copy(update={"max_segment_records": 2})) as log:
        for i in range(5):
            log.append(network(i, T0 + timedelta(seconds=i)))
            log.flush()
        log.append(network(5, T0 + timedelta(hours=1)))


HOUR = timedelta(hours=1)
# Counted from the end of a record's hour: kept at least one hour more, deleted after two.
POLICY = RetentionPolicy(keep_at_least=HOUR, delete_after=2 * HOUR)
SWEEP_AT = T0 + 7 * HOUR  # hours 0 to 4 are past the ceiling, hour 5 is not


def write_unswept_log(log_path: Path) -> None:
    """Six hours of network records under ``POLICY``, hour 2 under a legal hold; not swept yet.

    Blocks of two records, segments rolled every three records and every hour, so each hour
    has two segments: segments 0 to 3 hold hours 0 and 1 (and the policy's own ``log``
    record), 4 and 5 hour 2, 6 to 9 hours 3 and 4, 10 to 12 hour 5. A late record of hour 4
    joins hour 5's segments. Every seal, and a checkpoint asked for after hour 1, is signed.
    """
    clock = FixedClock(T0)
    # Each hour's records are appended with the clock at the start of the hour.
    config = CONFIG.model_copy(update={"max_segment_records": 3, "max_future_seconds": 3600})
    with AuditLog.create(
        log_path, passphrase=TEST_PASSPHRASE, config=config, scrypt_n=TEST_SCRYPT_N, clock=clock
    ) as log:
        log.retention.set_policy("network", POLICY, actor="dpo")
        for hour in range(6):
            clock.set(T0 + hour * HOUR)
            for pair in range(2):
                start = T0 + hour * HOUR + timedelta(minutes=20 * pair)
                first = 4 * hour + 2 * pair
                log.append_many([network(first + i, start + timedelta(minutes=i)) for i in (0, 1)])
            if hour == 1:
                log.proofs.sign_checkpoints()
        log.append(network(99, T0 + 4 * HOUR + timedelta(minutes=50)))
        log.flush()
        end = T0 + 3 * HOUR
        log.retention.add_hold(
            "case-7", ["network"], T0 + 2 * HOUR, end, actor="court", subjects=["user1"]
        )


def sweep(log_path: Path) -> SweepPlan:
    """Apply the sweep at ``SWEEP_AT``: it deletes segments 0 to 3 and 6 to 9."""
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE, clock=FixedClock(SWEEP_AT)) as log:
        return log.retention.sweep(SWEEP_AT, dry_run=False)


def write_swept_log(log_path: Path) -> SweepPlan:
    """The log of ``write_unswept_log``, swept at ``SWEEP_AT``."""
    write_unswept_log(log_path)
    return sweep(log_path)


def log_signer(log_path: Path) -> str:
    """The log's checkpoint signer key, unwrapped as docs/format.md says (to forge notes)."""
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    root_key = unlock_root_key(log_path, manifest, TEST_PASSPHRASE)
    return unwrap_checkpoint_signer(log_path, manifest, root_key)


def stranger_signer(name: str) -> str:
    """A signer key with the log's key name but another key."""
    seed = bytes(range(32))
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    key_id = key_hash(name, b"\x01" + public).hex()
    return f"PRIVATE+KEY+{name}+{key_id}+" + base64.b64encode(b"\x01" + seed).decode()


def manifest_key(log_path: Path) -> VerifierKey:
    """The log's verifier key, from ``manifest.json``."""
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    return parse_verifier_key(manifest["checkpoint_key"])


def library_report(log_path: Path, *, keyless: bool) -> VerifyReport:
    """The library's own verification of the log at ``log_path``."""
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        return log.verify(keyless=keyless)


def reconcile(log_path: Path) -> None:
    """Open the log for writing and close it: the writer signs a head that binds what a crash
    (or here, a test) left unbound, with a ``recovered`` event."""
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE):
        pass


def assert_agree(results: dict[str, ChainResult], report: VerifyReport) -> None:
    """The verifier's findings equal the library's report, chain by chain (``_log`` is the
    report's ``events``)."""
    chains = {chain: result for chain, result in results.items() if chain != EVENTS_CHAIN}
    assert set(chains) == set(report.chains)
    pairs = [(result, report.chains[chain]) for chain, result in chains.items()]
    assert (EVENTS_CHAIN in results) == (report.events is not None)
    if report.events is not None:
        pairs.append((results[EVENTS_CHAIN], report.events))
    for result, theirs in pairs:
        assert (
            result.records,
            result.blocks,
            result.segments,
            result.bytes,
            result.root,
            result.torn,
            result.sealed,
            result.size,
            result.roots,
            result.deleted,
            result.shredded,
        ) == (
            theirs.records,
            theirs.blocks,
            theirs.segments,
            theirs.bytes,
            theirs.root,
            theirs.torn_tail_bytes,
            theirs.sealed_segments,
            theirs.size,
            theirs.roots,
            list(theirs.tombstoned),
            theirs.shredded_records,
        )


def last_segment(log_path: Path, chain: str) -> Path:
    """The path of a chain's last segment file, made writable for the test to damage."""
    path = sorted((log_path / "chains" / chain / "segments").glob("*.seg"))[-1]
    path.chmod(0o600)
    return path


# --- tests -----------------------------------------------------------------------------------


def test_verifier_agrees_with_library(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """The spec verifier and the library's keyless and keyed verify report the same chains."""
    written = write_sample_log(create_log)
    keyless = verify_log(log_path)
    keyed = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(keyless, library_report(log_path, keyless=True))
    assert_agree(keyed, library_report(log_path, keyless=False))
    assert keyed["network"].records == 13
    assert keyed["mixed"].records == 5
    for chain, records in written.items():
        assert keyed[chain].canonical == [spec_canonical(r) for r in records]


def test_sample_log_covers_the_format(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """The sample log holds both codecs, dictionary and plain blocks, and two periods."""
    write_sample_log(create_log)
    segment = parse_segment(last_segment(log_path, "network").read_bytes(), 0, last=True)
    assert {b.fields["dictionary_id"] != 0 for b in segment.blocks} == {True, False}
    assert len({b.fields["period"] for b in segment.blocks}) == 2
    results = verify_log(log_path, TEST_PASSPHRASE)
    codecs = {t["plaintext"][0] for r in results.values() for t in r.trace}
    assert codecs == {0, 1}


@pytest.mark.parametrize(
    "tail",
    [bytes(100), b"\x00\x00\x00", b"\x7f\x7f\x7f\x7f\x7f", "partial-entry", "prefix-only"],
    ids=["zeros", "short-zeros", "short-garbage", "partial-entry", "prefix-only"],
)
def test_torn_tails_agree(
    create_log: Callable[..., AuditLog], log_path: Path, tail: bytes | str
) -> None:
    """Zero-filled, short and cut-off tails count as torn bytes in both verifiers."""
    write_sample_log(create_log)
    path = last_segment(log_path, "mixed")
    data = path.read_bytes()
    block_at = FILE_HEADER.size  # the first block's entry
    if tail == "partial-entry":
        tail = data[block_at : block_at + 200]
    elif tail == "prefix-only":
        tail = data[block_at : block_at + ENTRY_PREFIX.size]
    assert isinstance(tail, bytes)
    path.write_bytes(data + tail)
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["mixed"].torn == len(tail)
    assert_agree(results, library_report(log_path, keyless=False))


def test_damaged_length_is_not_a_torn_tail(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """Bytes after the last entry that fail the length CRC and are not all zero are damage."""
    write_sample_log(create_log)
    path = last_segment(log_path, "mixed")
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00\x10\x00\x00\x00\x00\x01")
    with pytest.raises(SpecError, match="bad length CRC"):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)


def test_truncation_at_a_block_boundary_is_not_detected(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """Cutting the open segment after a whole block is caught by the tiles, which hold the cut
    leaves; cut with its tiles, it passes both verifiers (a documented limit)."""
    write_sample_log(create_log)
    path = last_segment(log_path, "network")
    segment = parse_segment(path.read_bytes(), 0, last=True)
    path.write_bytes(path.read_bytes()[: segment.blocks[-1].offset])
    with pytest.raises(SpecError, match="no node beyond the chain's end"):
        verify_log(log_path)
    with pytest.raises(IntegrityError, match="beyond the chain's end"):
        library_report(log_path, keyless=True)
    tiles = log_path / "chains/network/tiles/level-00"
    tiles.write_bytes(tiles.read_bytes()[: 32 * 12])
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["network"].records == 12
    assert_agree(results, library_report(log_path, keyless=False))


def test_single_byte_changes(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """Changing any byte of a segment fails both verifiers, the file header's unhashed bytes too."""
    with create_log(CONFIG) as log:
        log.append(mixed(T0)[3], chain="app")
    path = last_segment(log_path, "app")
    original = path.read_bytes()
    unnoticed = []
    for offset in range(len(original)):
        changed = bytearray(original)
        changed[offset] ^= 0x20
        path.write_bytes(bytes(changed))
        try:
            verify_log(log_path)
        except SpecError:
            with pytest.raises(IntegrityError):
                library_report(log_path, keyless=True)
        else:
            library_report(log_path, keyless=True)
            unnoticed.append(offset)
    # Bytes 10 to 15 (flags and reserved) are covered by no hash, but must be 0.
    assert unnoticed == []


def test_redacted_frame_keeps_the_block_hash(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """A frame replaced by its SHA-256 (redacted) leaves the block hash and both verifiers happy."""
    write_sample_log(create_log)
    path = last_segment(log_path, "mixed")
    data = path.read_bytes()
    block = parse_segment(data, 0, last=True).blocks[0]  # records 0 to 3; record 4 follows
    start = block.offset + ENTRY_PREFIX.size
    (length,) = struct.unpack_from(">I", data, block.offset)
    body, rest = data[start : start + length], data[start + length :]
    count, position = block.fields["count"], 2  # redact the third record, the identity check
    lengths_at = BLOCK_HEADER.size + 32 * count
    slots = list(struct.unpack_from(f">{count}I", body, lengths_at))
    slots[position] |= REDACTED
    frames = [
        hashlib.sha256(frame).digest() if i == position else frame
        for i, frame in enumerate(block.frames)
    ]
    redacted = b"".join(
        (body[:lengths_at], struct.pack(f">{count}I", *slots), *frames, block.block_hash)
    )
    prefix = struct.pack(">I", len(redacted))
    entry = prefix + struct.pack(">I", zlib.crc32(prefix)) + redacted
    path.write_bytes(data[: block.offset] + entry + rest)
    changed = parse_segment(path.read_bytes(), 0, last=True).blocks[0]
    assert (changed.block_hash, changed.redacted) == (block.block_hash, frozenset({position}))
    # Without a redaction note signed by the log, a missing frame is tampering.
    with pytest.raises(SpecError, match="redacted slot is named by a redaction note"):
        verify_log(log_path)
    with pytest.raises(IntegrityError, match="no redaction signed by the log"):
        library_report(log_path, keyless=True)
    # The note, written and signed as docs/format.md says, makes the slot a redaction.
    index = block.fields["first_index"] + position
    text = f"auditlog-redaction/v1\norigin example.com/audit/mixed\nindexes {index}\nredacted 0\n"
    (log_path / "chains/mixed/redactions").mkdir()
    note_path = log_path / "chains/mixed/redactions" / f"{0:020d}-1-1.note"
    note_path.write_text(sign_note(log_signer(log_path), text), "utf-8")
    # A note the head does not bind: the head is behind its files, for both verifiers, until
    # a writer opens the log and signs the head again (with a ``recovered`` event).
    with pytest.raises(SpecError, match="every file is bound by the head"):
        verify_log(log_path)
    with pytest.raises(IntegrityError, match="head is behind"):
        library_report(log_path, keyless=True)
    reconcile(log_path)
    assert_agree(verify_log(log_path), library_report(log_path, keyless=True))
    keyed = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(keyed, library_report(log_path, keyless=False))
    assert len(keyed["mixed"].canonical) == 5 - 1  # the redacted record is not read
    opened = AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE)
    with opened as log, pytest.raises(RecordRedactedError):
        list(log.read("mixed", position, position + 1))


def test_keyed_verification_catches_a_rehashed_frame(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """A frame changed and its block rehashed passes keyless checks and fails keyed ones."""
    write_sample_log(create_log)
    path = last_segment(log_path, "mixed")
    data = bytearray(path.read_bytes())
    start = parse_segment(bytes(data), 0, last=True).blocks[-1].offset + ENTRY_PREFIX.size
    data[-33] ^= 0x01  # the last byte of the last frame (its GCM tag)
    data[-32:] = split_block(bytes(data[start:]))[2]
    path.write_bytes(bytes(data))
    assert_agree(verify_log(log_path), library_report(log_path, keyless=True))
    with pytest.raises(SpecError, match="frame does not decrypt"):
        verify_log(log_path, TEST_PASSPHRASE)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=False)


def test_sealed_segments_agree(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """Segments rolled by record count and by period carry seals and checkpoints both accept."""
    write_sealed_log(create_log)
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert (results["network"].segments, results["network"].sealed) == (4, 3)
    assert_agree(results, library_report(log_path, keyless=False))
    checkpoints = sorted(p.name for p in (log_path / "chains/network/checkpoints").iterdir())
    assert checkpoints == [f"{size:020d}.note" for size in (2, 4, 5)]


@pytest.mark.parametrize("size", [0, 10, 32, None], ids=["empty", "short", "header", "whole"])
def test_zero_filled_new_segment_is_a_torn_tail(
    create_log: Callable[..., AuditLog], log_path: Path, size: int | None
) -> None:
    """A last segment of nothing but zeros is a torn new segment; opening for writing removes it."""
    write_sealed_log(create_log)
    path = last_segment(log_path, "network")
    length = len(path.read_bytes()) if size is None else size
    path.write_bytes(bytes(length))
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert (results["network"].records, results["network"].torn) == (5, length)
    assert_agree(results, library_report(log_path, keyless=False))
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as log:
        (report,) = log.recovery
    assert (report.segment, report.offset, report.bytes_cut) == (3, 0, length)
    assert report.durable_records == 5  # the chain's durable size, from the sealed segments
    assert not path.exists()


def test_zero_filled_segment_before_the_last_is_damage(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """Only the chain's last segment may be a torn new segment."""
    write_sealed_log(create_log)
    path = log_path / "chains/network/segments/0000000002.seg"
    path.chmod(0o600)
    path.write_bytes(bytes(len(path.read_bytes())))
    with pytest.raises(SpecError, match="segment magic"):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)


@pytest.mark.parametrize("zeroed", [32, 100, 31])
def test_zeroed_end_of_the_last_entry(
    create_log: Callable[..., AuditLog], log_path: Path, zeroed: int
) -> None:
    """A last entry whose final 32 bytes read as zeros is a torn tail; fewer zeros are damage."""
    write_sample_log(create_log)
    path = last_segment(log_path, "network")
    data = path.read_bytes()
    last_block = parse_segment(data, 0, last=True).blocks[-1]
    kept = data[:-zeroed]
    if zeroed < 32 and kept[-(32 - zeroed) :].count(0) == 32 - zeroed:
        # The bytes before the zeroed ones are zeros too (1 time in 256 for 31: the block hash
        # is random), which would make 32 zeros, a torn tail: make them damage instead.
        kept = kept[:-1] + b"\x01"
    path.write_bytes(kept + bytes(zeroed))
    if zeroed < 32:
        with pytest.raises(SpecError, match="block hash"):
            verify_log(log_path)
        with pytest.raises(IntegrityError):
            library_report(log_path, keyless=True)
        return
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["network"].records == 12
    assert results["network"].torn == len(data) - last_block.offset
    assert_agree(results, library_report(log_path, keyless=False))


def test_truncation_behind_a_checkpoint_is_detected(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """Cutting records a stored checkpoint covers fails both verifiers, until the note goes too."""
    write_sample_log(create_log)
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as log:
        log.proofs.sign_checkpoints("network")
    path = last_segment(log_path, "network")
    segment = parse_segment(path.read_bytes(), 0, last=True)
    path.write_bytes(path.read_bytes()[: segment.blocks[-1].offset])
    with pytest.raises(SpecError, match="rollback"):
        verify_log(log_path)
    with pytest.raises(RollbackError):
        library_report(log_path, keyless=True)
    # Whoever can cut the segment can delete the stored checkpoint as well; the head counts
    # the chain's checkpoints (and its tiles still hold the cut leaves).
    (log_path / "chains/network/checkpoints" / f"{13:020d}.note").unlink()
    tiles = log_path / "chains/network/tiles/level-00"
    tiles.write_bytes(tiles.read_bytes()[: 32 * 12])
    with pytest.raises(SpecError, match="checkpoints and sealed segments are as the head says"):
        verify_log(log_path)
    with pytest.raises(RollbackError, match="checkpoints were deleted"):
        library_report(log_path, keyless=True)


@pytest.mark.parametrize(
    "change",
    [
        "none",
        "fork",
        "rollback",
        "inside-a-block",
        "fork-inside-a-block",
        "renamed",
        "signature",
        "other-key",
    ],
)
def test_stored_checkpoints_agree(
    create_log: Callable[..., AuditLog], log_path: Path, change: str
) -> None:
    """A stored checkpoint with another root, size, name, signature or key fails both verifiers."""
    write_sample_log(create_log)
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    signer = unwrap_checkpoint_signer(
        log_path, manifest, unlock_root_key(log_path, manifest, TEST_PASSPHRASE)
    )
    origin = f"{manifest['origin']}/network"
    leaves = [
        leaf
        for b in parse_segment(last_segment(log_path, "network").read_bytes(), 0, last=True).blocks
        for leaf in b.leaves
    ]
    size, root, name = 4, mth(leaves[:4]), 4  # the end of the chain's first block
    failure: tuple[type[IntegrityError], str] | None = None
    if change == "fork":
        root, failure = bytes(32), (ForkError, "fork")
    elif change == "rollback":
        size = name = 20
        failure = (RollbackError, "rollback")
    elif change == "inside-a-block":  # a size the writer never signs, with the right root
        size, root, name = 2, mth(leaves[:2]), 2
    elif change == "fork-inside-a-block":
        size, root, name = 2, mth(leaves[1:3]), 2
        failure = (ForkError, "fork")
    elif change == "renamed":
        name, failure = 8, (IntegrityError, "named after its size")
    elif change == "other-key":
        stranger = "PRIVATE+KEY+" + manifest["origin"] + "+"
        seed = bytes(range(32))
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
        stranger += key_hash(manifest["origin"], b"\x01" + public).hex() + "+"
        signer = stranger + base64.b64encode(b"\x01" + seed).decode()
        failure = (IntegrityError, "signed by the log's key")
    signed = sign_checkpoint(signer, origin, size, root)
    if change == "signature":
        text, _, line = signed.rpartition("\n\n")
        key_name, _, encoded = line.removesuffix("\n").rpartition(" ")
        blob = bytearray(base64.b64decode(encoded))
        blob[-1] ^= 0x01
        signed = f"{text}\n\n{key_name} {base64.b64encode(bytes(blob)).decode()}\n"
        failure = (IntegrityError, "signature does not verify")
    directory = log_path / "chains/network/checkpoints"
    directory.mkdir()
    (directory / f"{name:020d}.note").write_text(signed, "utf-8")
    if failure is None:
        # A checkpoint the head does not count: both refuse until a writer binds it.
        with pytest.raises(SpecError, match="checkpoints and sealed segments are as the head"):
            verify_log(log_path)
        with pytest.raises(IntegrityError, match="head is behind"):
            library_report(log_path, keyless=True)
        reconcile(log_path)
        assert_agree(verify_log(log_path), library_report(log_path, keyless=True))
        return
    error, rule = failure
    with pytest.raises(SpecError, match=rule):
        verify_log(log_path)
    with pytest.raises(error):
        library_report(log_path, keyless=True)


def test_records_before_1970_are_refused(create_log: Callable[..., AuditLog]) -> None:
    """A record dated before 1970 has no u32 period: appending it is refused."""
    with create_log(CONFIG) as log, pytest.raises(RecordValidationError):
        log.append(network(1, datetime(1969, 12, 31, 23, 59, tzinfo=UTC)))


def test_field_order_table_matches_the_models() -> None:
    """The field-order table of docs/format.md lists every model's fields, in order."""
    text = FORMAT_MD.read_text("utf-8")
    rows = dict(re.findall(r"^\| `(\w+)`(?: \(in `\w+`\))? \| (`.*`) \|$", text, re.M))
    models: dict[str, type[BaseModel]] = {str(k): m for k, m in RECORD_TYPES.items()}
    models |= {"Attachment": Attachment, "CallParty": CallParty}
    assert set(rows) == set(models)
    for name, model in models.items():
        expected = [
            f"`{field}?`" if info.default is None and not info.is_required() else f"`{field}`"
            for field, info in model.model_fields.items()
        ]
        assert rows[name].split(", ") == expected, name


# --- format v2: the signed head, signed state files, the events chain, tiles ----------------


def flip(path: Path, offset: int) -> None:
    """Flip the low bit of the byte at ``offset`` of ``path`` (negative: from the end)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def assert_both_refuse(log_path: Path, rule: str | None, *, pinned: str | None = None) -> None:
    """The spec verifier (keyless and keyed) and the library (keyless and keyed) all refuse."""
    for passphrase in (None, TEST_PASSPHRASE):
        with pytest.raises(SpecError, match=rule):
            verify_log(log_path, passphrase, pinned)
    for keyless in (True, False):
        # The manifest's signature is checked as the log opens; the rest by verify.
        with (
            pytest.raises(IntegrityError),
            AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as log,
        ):
            log.verify(keyless=keyless, verifier_key=pinned)


def test_head_binds_the_log(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """``head.note`` is the signed text of docs/format.md, recomputed from the files."""
    write_sample_log(create_log)
    key = manifest_key(log_path)
    signed = (log_path / "head.note").read_text("utf-8")
    head = parse_head(open_note(signed, key), "example.com/audit")
    assert signed == sign_note(log_signer(log_path), open_note(signed, key))
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(results, library_report(log_path, keyless=False))
    assert (head.events_size, head.events_root) == (
        results[EVENTS_CHAIN].size,
        results[EVENTS_CHAIN].root,
    )
    with AuditLog.open(log_path, mode="read") as log:
        assert log.verify(keyless=True).head_generation == head.generation
    assert sorted(head.chains) == ["_log", "mixed", "network"]
    assert head.chains["network"] == "checkpoints 0 0 sealed - 0 shredded -"
    assert sorted(head.files) == [
        "chains/_log/keyring",
        "chains/mixed/keyring",
        *(f"chains/network/dicts/{p.name}" for p in (log_path / "chains/network/dicts").iterdir()),
        "chains/network/keyring",
        "keys/checkpoint.key",
        "keys/hold.key",
        "keys/root.key",
        "manifest.json",
    ]
    for path, (generation, digest) in head.files.items():
        assert digest == hashlib.sha256((log_path / path).read_bytes()).hexdigest()
        assert (generation == "-") == (state_format(path) is None)
    events = [msgpack.unpackb(c, timestamp=3) for c in results[EVENTS_CHAIN].canonical]
    assert [(e["event"], e["chain"]) for e in events] == [
        ("created", "_log"),
        ("chain", "network"),
        ("chain", "mixed"),
    ]


@pytest.mark.parametrize(
    "place", ["magic", "generation", "events", "chain", "digest", "signature", "key-hash"]
)
def test_flipped_byte_in_the_head(
    create_log: Callable[..., AuditLog], log_path: Path, place: str
) -> None:
    """Any byte of ``head.note`` changed: its signature fails, for every verifier."""
    write_sample_log(create_log)
    path = log_path / "head.note"
    text = path.read_text("utf-8")
    offsets = {
        "magic": 3,
        "generation": text.index("generation ") + 11,
        "events": text.index("events ") + 7,
        "chain": text.index("chain network ") + 8,
        "digest": text.index("file manifest.json ") + 25,
        "signature": -20,
        "key-hash": len(text.encode()) - 90,
    }
    flip(path, offsets[place])
    assert_both_refuse(log_path, None)


@pytest.mark.parametrize("note", ["head.note", f"chains/network/checkpoints/{2:020d}.note"])
def test_unused_bits_of_a_signature_are_bound(
    create_log: Callable[..., AuditLog], log_path: Path, note: str
) -> None:
    """The last base64 character of a signature carries two unused bits. Opening a note
    ignores them (as Go's decoder does), but the log's own notes that no digest binds, the head
    and stored checkpoints, must be in canonical base64: a change of those bits is refused."""
    write_sealed_log(create_log)
    path = log_path / note
    text, _, line = path.read_text("utf-8").removesuffix("\n").rpartition(" ")
    assert line.endswith("=")  # 68 bytes: one "=", two unused bits
    assert not line.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = alphabet.index(line[-2])
    changed = line[:-2] + alphabet[value ^ 0b11] + "="
    assert base64.b64decode(changed) == base64.b64decode(line)
    assert open_note(f"{text} {changed}\n", manifest_key(log_path))  # it opens
    path.chmod(0o600)
    path.write_text(f"{text} {changed}\n", "utf-8")
    assert_both_refuse(log_path, "canonical base64")


def test_a_flip_in_any_file_is_refused_by_all(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """One changed byte in any file of a log (sealed segments, checkpoints, tiles, keys,
    keyrings, dictionaries, the head, the events chain) is refused by both verifiers, keyless
    and keyed: every byte is bound (but the unused bits at the end of a signature)."""
    write_sealed_log(create_log)
    rng = random.Random(11)
    files = sorted(
        p for p in log_path.rglob("*") if p.is_file() and p.stat().st_size and p.name != "LOCK"
    )
    kinds = {p.parent.name if p.parent != log_path else p.name for p in files}
    assert kinds >= {"segments", "checkpoints", "tiles", "keys", "network", "_log", "head.note"}
    for path in files:
        original = path.read_bytes()
        offset = rng.randrange(len(original))
        changed = bytearray(original)
        changed[offset] ^= rng.randrange(1, 256)
        path.chmod(0o600)
        path.write_bytes(bytes(changed))
        try:
            for passphrase in (None, TEST_PASSPHRASE):
                with pytest.raises((SpecError, *SPEC_PARSE_ERRORS)):
                    verify_log(log_path, passphrase)
            for keyless in (True, False):
                # A known deviation of docs/format.md: a damaged keys/checkpoint.key, keyed,
                # raises KeyMaterialError (naming "a data key" and "the keyring").
                with pytest.raises((IntegrityError, KeyMaterialError)):
                    library_report(log_path, keyless=keyless)
        finally:
            path.write_bytes(original)
    assert_agree(verify_log(log_path, TEST_PASSPHRASE), library_report(log_path, keyless=False))


def test_a_checkpoint_not_utf8_is_an_integrity_error(
    create_log: Callable[..., AuditLog], log_path: Path
) -> None:
    """A checkpoint file that is not UTF-8 is damage, reported as an ``IntegrityError``."""
    write_sealed_log(create_log)
    path = log_path / "chains/network/checkpoints" / f"{2:020d}.note"
    path.write_bytes(path.read_bytes().replace(b"\n\n", b"\n\xff\n"))
    with pytest.raises(SpecError, match="UTF-8"):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)


def test_head_missing_or_put_back(create_log: Callable[..., AuditLog], log_path: Path) -> None:
    """A head deleted, or an older signed head put back, is refused."""
    write_sample_log(create_log)
    path = log_path / "head.note"
    older = path.read_bytes()
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as log:
        log.retention.set_policy("network", POLICY, actor="dpo")
    assert_agree(verify_log(log_path), library_report(log_path, keyless=True))
    newer = path.read_bytes()
    path.write_bytes(older)
    assert_both_refuse(log_path, "every file is the one the head binds")
    path.unlink()
    assert_both_refuse(log_path, "head is missing")
    path.write_bytes(newer)
    assert_agree(verify_log(log_path), library_report(log_path, keyless=True))


@pytest.mark.parametrize("change", ["edited", "re-signed-by-a-stranger", "generation", "moved"])
def test_state_files_are_signed(
    create_log: Callable[..., AuditLog], log_path: Path, change: str
) -> None:
    """A manifest or keyring changed without the log's key is refused by every verifier."""
    write_sample_log(create_log)
    manifest_path = log_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    pinned = None
    if change == "edited":  # a retention policy slipped in, the signature left as it was
        manifest["retention"] = {"network": {"keep_at_least": "PT0S", "delete_after": "PT1S"}}
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        rule = "signature covers its content"
    elif change == "re-signed-by-a-stranger":  # attack 1: the manifest names another key
        stranger = stranger_signer("example.com/audit")
        pinned = manifest["checkpoint_key"]  # an outsider pins the log's real key
        manifest["checkpoint_key"] = verifier_of(stranger)
        text = state_signed_text("example.com/audit", "manifest.json", manifest)
        manifest["signature"] = sign_note(stranger, text)
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        rule = "signed by the log's key|checkpoint key file matches"
    elif change == "generation":  # attack 4: shredded periods made up, a newer generation
        path = log_path / "chains/network/keyring"
        doc = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
        doc["shredded"] = dict.fromkeys(doc["keys"], 0)
        doc["generation"] += 1
        path.write_bytes(msgpack.packb(doc))
        rule = "signature covers its content"
    else:  # a keyring signed for another chain
        source = log_path / "chains/mixed/keyring"
        (log_path / "chains/network/keyring").write_bytes(source.read_bytes())
        rule = "signature covers its content and place"
    if pinned is None:
        assert_both_refuse(log_path, rule)
        return
    assert_both_refuse(log_path, rule, pinned=pinned)


@pytest.mark.parametrize("what", ["dictionary", "tile", "quarantine", "chain-removed", "events"])
def test_every_byte_is_bound(
    create_log: Callable[..., AuditLog], log_path: Path, what: str
) -> None:
    """A dictionary, a tile node, a bound file added, a chain or an event removed: refused."""
    write_sample_log(create_log)
    chain_dir = log_path / "chains/network"
    if what == "dictionary":  # bound by the head: keyless verification catches it too
        (dictionary,) = (chain_dir / "dicts").iterdir()
        flip(dictionary, -5)  # in the ciphertext: keyed, it no longer decrypts
        rule = "every file is the one the head binds|dictionary decrypts"
    elif what == "tile":
        flip(chain_dir / "tiles/level-00", 32 * 5 + 7)
        rule = "tiles: node matches the tree"
    elif what == "quarantine":  # a file where the head binds files must be bound
        (chain_dir / "quarantine").mkdir()
        (chain_dir / "quarantine/0000000000-32-20260301T120000Z.bin").write_bytes(b"x")
        rule = "every file is bound by the head"
    elif what == "chain-removed":  # attack 2: a whole chain deleted
        for path in sorted((log_path / "chains/mixed").rglob("*"), reverse=True):
            path.chmod(0o700)
            path.rmdir() if path.is_dir() else path.unlink()
        (log_path / "chains/mixed").rmdir()
        rule = "the head names every chain"
    else:  # the log's events cut back to its first
        path = log_path / "chains/_log/segments/0000000000.seg"
        path.chmod(0o600)
        first = parse_segment(path.read_bytes(), 0, last=True).blocks[1].offset
        path.write_bytes(path.read_bytes()[:first])
        tiles = log_path / "chains/_log/tiles/level-00"
        tiles.write_bytes(tiles.read_bytes()[:32])
        rule = "the events chain is as the head says"
    assert_both_refuse(log_path, rule)


# --- retention: tombstones, shredded keys, holds, sweeps, redaction notes, key rotation ------


def test_verifier_steps_over_tombstones(log_path: Path) -> None:
    """After a sweep, both verifiers agree on the records left, the tree size and every root."""
    plan = write_swept_log(log_path)
    assert plan.chains["network"].delete_segments == [0, 1, 2, 3, 6, 7, 8, 9]
    keyless = verify_log(log_path)
    keyed = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(keyless, library_report(log_path, keyless=True))
    assert_agree(keyed, library_report(log_path, keyless=False))
    network_chain = keyed["network"]
    # 25 leaves: 24 hourly records and the late one (the log's own events are in ``_log``).
    assert (network_chain.size, network_chain.records) == (25, 25 - 8 - 8)
    assert network_chain.deleted == [(0, 8), (12, 20)]
    assert network_chain.shredded == 1  # the late record of hour 4, in a segment that stays
    assert network_chain.root == keyless["network"].root
    # Checkpoints signed at the seals of deleted segments lie inside the deleted ranges: they
    # are checked for signature and name only. The one asked for after hour 1 (size 8) ends
    # a deleted range, where the tombstone gives the root.
    sizes = [int(p.stem) for p in (log_path / "chains/network/checkpoints").glob("*.note")]
    assert {2, 4, 6, 14, 16, 18} <= set(sizes)
    assert 8 in sizes
    assert 8 in network_chain.roots
    events = [msgpack.unpackb(c, timestamp=3) for c in keyed[EVENTS_CHAIN].canonical]
    assert [(e["event"], e["chain"]) for e in events] == [
        ("created", "_log"),
        ("policy", "network"),
        ("chain", "network"),
        ("hold-add", "network"),
        ("sweep", "network"),  # announced, before anything is deleted
        ("sweep", "network"),  # finished, naming the keyring's new generation and digest
    ]
    keyring = log_path / "chains/network/keyring"
    generation = msgpack.unpackb(keyring.read_bytes(), strict_map_key=False)["generation"]
    digest = hashlib.sha256(keyring.read_bytes()).hexdigest()
    assert events[-1]["state"] == f"chains/network/keyring {generation} {digest}"


def test_sweep_shreds_keys_in_the_keyring(log_path: Path) -> None:
    """Swept periods move from ``keys`` to ``shredded``, with the sweep's time; dictionaries go."""
    write_swept_log(log_path)
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    chain_dir = log_path / "chains/network"
    root_keys = unlock_root_keys(log_path, manifest, TEST_PASSPHRASE)
    doc = read_signed_state(
        log_path, "chains/network/keyring", "example.com/audit", manifest_key(log_path)
    )
    keyring = read_keyring(doc, f"{manifest['origin']}/network", root_keys)
    hour0 = micros(T0) // (3600 * 1_000_000)
    assert keyring.shredded == {hour0 + h: micros(SWEEP_AT) for h in (0, 1, 3, 4)}
    assert set(keyring.keys) == {hour0 + 2, hour0 + 5}
    assert not [p for p in (chain_dir / "dicts").glob("*") if int(p.stem) in keyring.shredded]
    assert not (chain_dir / "sweep.journal").exists()


def test_tombstones_are_signed_and_hold_the_deleted_segments(log_path: Path) -> None:
    """Each tombstone is the signed text of docs/format.md, computed from the deleted segments."""
    write_unswept_log(log_path)
    segments_dir = log_path / "chains/network/segments"
    before = {int(p.stem): p.read_bytes() for p in segments_dir.glob("*.seg")}
    sweep(log_path)
    key = manifest_key(log_path)
    signer = log_signer(log_path)
    origin = "example.com/audit/network"
    paths = sorted((log_path / "chains/network/tombstones").iterdir())
    assert [p.name for p in paths] == ["0000000000-0000000003.tomb", "0000000006-0000000009.tomb"]
    for path in paths:
        signed = path.read_text("utf-8")
        tombstone = parse_tombstone(open_note(signed, key), origin)
        run = range(tombstone.first_sequence, tombstone.last_sequence + 1)
        parsed = [parse_segment(before[s], s, last=False) for s in run]
        blocks = [b for segment in parsed for b in segment.blocks]
        leaves = [leaf for block in blocks for leaf in block.leaves]
        seal, first = parsed[-1].seal, parsed[0].first_index
        assert seal is not None
        assert first is not None
        end = seal["end_index"]
        assert (tombstone.first_index, tombstone.end_index) == (first, end)
        assert tombstone.prev_hash == blocks[0].fields["prev_hash"]
        assert tombstone.last_block_hash == seal["last_block_hash"] == blocks[-1].block_hash
        assert tombstone.range_hashes == [
            mth(leaves[start - first : start - first + size])
            for start, size in subtrees(first, end)
        ]
        assert tombstone.frontier == seal["frontier"]
        assert tombstone.periods == sorted({b.fields["period"] for b in blocks})
        assert tombstone.deleted_at == micros(SWEEP_AT)
        # The text, byte for byte, and its one signature, by the log's key.
        text = "".join(
            f"{line}\n"
            for line in (
                "auditlog-tombstone/v1",
                f"origin {origin}",
                f"segments {run[0]} {run[-1]}",
                f"indexes {first} {end}",
                f"prev {base64.b64encode(tombstone.prev_hash).decode()}",
                f"last {base64.b64encode(tombstone.last_block_hash).decode()}",
                "range " + " ".join(base64.b64encode(h).decode() for h in tombstone.range_hashes),
                "frontier " + " ".join(base64.b64encode(h).decode() for h in tombstone.frontier),
                "periods " + " ".join(map(str, tombstone.periods)),
                f"deleted {micros(SWEEP_AT)}",
            )
        )
        assert signed == sign_note(signer, text)
        name, seed = parse_signer_key(stranger_signer("example.com/audit"))
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
        with pytest.raises(SpecError, match="signed by the log's key"):
            open_note(signed, VerifierKey(name, key_hash(name, b"\x01" + public), public))


@pytest.mark.parametrize(
    "change",
    ["other-key", "signature", "prev", "range", "frontier", "removed", "partly-deleted", "renamed"],
)
def test_forged_tombstones_are_rejected(log_path: Path, change: str) -> None:
    """A tombstone that is not the log's, or does not join the chain, fails both verifiers."""
    write_unswept_log(log_path)
    kept = (log_path / "chains/network/segments/0000000002.seg").read_bytes()
    sweep(log_path)
    directory = log_path / "chains/network/tombstones"
    path = directory / "0000000000-0000000003.tomb"
    text = open_note(path.read_text("utf-8"), manifest_key(log_path))
    lines = text.splitlines()
    signer = log_signer(log_path)
    other = base64.b64encode(bytes(32)).decode()
    rule = "tombstone frontier"
    if change == "other-key":
        path.write_text(sign_note(stranger_signer("example.com/audit"), text), "utf-8")
        rule = "signed by the log's key"
    elif change == "signature":
        signed = path.read_text("utf-8")
        head, _, line = signed.removesuffix("\n").rpartition(" ")
        blob = bytearray(base64.b64decode(line))
        blob[-1] ^= 0x01
        path.write_text(f"{head} {base64.b64encode(bytes(blob)).decode()}\n", "utf-8")
        rule = "signature does not verify"
    elif change in ("prev", "range", "frontier"):
        position = {"prev": 4, "range": 6, "frontier": 7}[change]
        key_word, *hashes = lines[position].split(" ")
        lines[position] = " ".join([key_word, other, *hashes[1:]])
        path.write_text(sign_note(signer, "\n".join(lines) + "\n"), "utf-8")
        rule = "joins the chain" if change == "prev" else rule
    elif change == "removed":
        path.unlink()
        rule = "stood for by a tombstone"
    elif change == "partly-deleted":  # a deleted segment back from a backup
        (log_path / "chains/network/segments/0000000002.seg").write_bytes(kept)
        rule = "segments are all deleted"
    elif change == "renamed":
        path.rename(directory / "0000000000-0000000004.tomb")
        rule = "named after its segments"
    with pytest.raises(SpecError, match=rule):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)


SWEEP_CHILD = (
    "import sys\n"
    "from datetime import datetime\n"
    "from auditlog import AuditLog\n"
    "from auditlog.testing import TEST_PASSPHRASE\n"
    "with AuditLog.open(sys.argv[1], passphrase=TEST_PASSPHRASE) as log:\n"
    "    log.retention.sweep(datetime.fromisoformat(sys.argv[2]), dry_run=False)\n"
)


def killed_sweep(log_path: Path, point: str) -> None:
    """Run the sweep at ``SWEEP_AT`` in a process killed at the crash point ``point``."""
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_CHILD, str(log_path), SWEEP_AT.isoformat()],
        env={**os.environ, "AUDITLOG_CRASHPOINT": point},
        check=False,
    )
    assert done.returncode == -signal.SIGKILL


def files_of(log_path: Path) -> dict[str, bytes]:
    """Every file of the log and its bytes (lock files aside): to see that nothing was written."""
    return {
        str(p.relative_to(log_path)): p.read_bytes()
        for p in sorted(log_path.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


def refuse_write_open(log_path: Path, rule: str, error: type[IntegrityError], says: str) -> None:
    """The spec's write-open refuses with ``rule``, the library's with ``error`` saying
    ``says``, and writes nothing."""
    with pytest.raises(SpecError, match=rule):
        write_open(log_path, TEST_PASSPHRASE)
    before = files_of(log_path)
    with pytest.raises(error, match=says):
        reconcile(log_path)
    assert files_of(log_path) == before


@pytest.mark.parametrize(
    ("point", "tombstones_stored"),
    [("sweep-journal-written", 0), ("sweep-tombstone-stored#2", 2), ("sweep-segment-deleted#1", 2)],
)
def test_interrupted_sweep(log_path: Path, point: str, tombstones_stored: int) -> None:
    """A killed sweep leaves the specified journal, and a log both verifiers read alike."""
    write_unswept_log(log_path)
    killed_sweep(log_path, point)
    path = log_path / "chains/network/sweep.journal"
    raw = path.read_bytes()
    journal = msgpack.unpackb(raw)
    assert (journal["format"], journal["version"]) == ("auditlog-sweep-journal", 1)
    assert re.fullmatch("sweep-[0-9a-f]{12}", journal["sweep_id"])
    assert (journal["now"], journal["actor"]) == (micros(SWEEP_AT), "retention-sweep")
    assert journal["delete_segments"] == [0, 1, 2, 3, 6, 7, 8, 9]
    hour0 = micros(T0) // (3600 * 1_000_000)
    assert journal["shred_periods"] == [hour0 + h for h in (0, 1, 3, 4)]
    origin = "example.com/audit/network"
    key = manifest_key(log_path)
    planned = [parse_tombstone(text, origin) for text in journal["tombstones"]]
    pending = signed_journal(log_path / "chains/network", origin, key)
    assert pending is not None  # signed by the log's key, as docs/format.md says
    assert pending.segments == frozenset(journal["delete_segments"])
    assert [(t.first_sequence, t.last_sequence) for t in planned] == [(0, 3), (6, 9)]
    stored = sorted((log_path / "chains/network/tombstones").glob("*.tomb"))
    assert len(stored) == tombstones_stored
    for stone in stored:  # a stored tombstone is the journal's text, signed
        assert open_note(stone.read_text("utf-8"), key) in journal["tombstones"]
    head = load_head(log_path, "example.com/audit", key)
    bound = bound_journal(log_path, "network", origin, key, head)
    if point == "sweep-journal-written":
        # Written, not yet bound by the head: the sweep was never begun. The journal is a
        # benign difference, so verification fails until a write-open binds it.
        assert bound is None
        with pytest.raises(SpecError, match="every file is bound by the head"):
            verify_log(log_path, TEST_PASSPHRASE)
        for keyless in (True, False):
            with pytest.raises(IntegrityError, match="behind its files") as refused:
                library_report(log_path, keyless=keyless)
            assert "Open the log for writing once" in str(refused.value)
        assert write_open(log_path, TEST_PASSPHRASE) == [
            Difference("every file is bound by the head", benign=True)
        ]
    else:
        # Bound by the head before the first step: a sweep half done, excused.
        assert bound == pending
        assert head.files["chains/network/sweep.journal"] == (
            "-",
            hashlib.sha256(raw).hexdigest(),
        )
        results = verify_log(log_path, TEST_PASSPHRASE)
        assert_agree(results, library_report(log_path, keyless=False))
        if not (log_path / "chains/network/segments/0000000000.seg").exists():
            # Segment 0 is gone, 1 to 3 are not yet: the bound journal names them, so both
            # accept them behind the tombstone (format.md, "Sweeps").
            assert results["network"].deleted == [(0, 8)]
        else:
            assert results["network"].deleted == []  # tombstones of present segments unused
    # Without its signature the journal is not the log's: refused by every verifier, and by
    # both write-opens before they write anything.
    forged = {**journal, "signature": sign_note(stranger_signer("example.com/audit"), "forged\n")}
    path.write_bytes(msgpack.packb(forged))
    with pytest.raises(SpecError):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)
    refuse_write_open(
        log_path, "a sweep journal is signed by the log's key", IntegrityError, "not signed"
    )
    # The next write-open binds a signed journal (if it is not yet) and finishes the sweep;
    # both agree on the result.
    path.write_bytes(raw)
    reconcile(log_path)
    assert not path.exists()
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["network"].deleted == [(0, 8), (12, 20)]
    assert_agree(results, library_report(log_path, keyless=False))


def test_replayed_journal_excuses_nothing(log_path: Path) -> None:
    """A deleted segment put back with the signed journal of the sweep that deleted it: the
    head does not bind that journal, so it excuses nothing. Both verifiers refuse the segment
    inside its tombstone's range, and both write-opens refuse it as put back, writing nothing.
    The journal alone is benign: the write-open binds it and carries it out again, harmlessly."""
    write_unswept_log(log_path)
    segment = log_path / "chains/network/segments/0000000001.seg"
    deleted = segment.read_bytes()
    killed_sweep(log_path, "sweep-journal-written")
    journal = log_path / "chains/network/sweep.journal"
    replayed = journal.read_bytes()
    reconcile(log_path)  # binds the journal and finishes the sweep: segment 1 deleted
    assert not segment.exists()
    assert not journal.exists()
    finished = verify_log(log_path, TEST_PASSPHRASE)
    segment.write_bytes(deleted)
    journal.write_bytes(replayed)
    key = manifest_key(log_path)
    head = load_head(log_path, "example.com/audit", key)
    origin = "example.com/audit/network"
    assert signed_journal(journal.parent, origin, key) is not None
    assert bound_journal(log_path, "network", origin, key, head) is None
    assert_both_refuse(log_path, "segments are all deleted")
    refuse_write_open(log_path, "a deleted one was put back", RollbackError, "put back")
    segment.unlink()
    assert write_open(log_path, TEST_PASSPHRASE) == [
        Difference("every file is bound by the head", benign=True)
    ]
    reconcile(log_path)
    assert not journal.exists()
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["network"].deleted == finished["network"].deleted == [(0, 8), (12, 20)]
    assert_agree(results, library_report(log_path, keyless=False))


def holds_placed(log_path: Path) -> list[bytes]:
    """``head.note`` before and after each of two holds placed (each change one event)."""
    heads = [(log_path / "head.note").read_bytes()]
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as log:
        for number in range(2):
            log.retention.add_hold(f"case-{number}", ["network"], T0, T0 + HOUR, actor="court")
            heads.append((log_path / "head.note").read_bytes())
    return heads


@pytest.mark.parametrize("behind", ["crash", "put-back-1", "put-back-2"])
def test_a_head_behind_its_events(
    create_log: Callable[..., AuditLog], log_path: Path, behind: str
) -> None:
    """A head one event behind is what a crash between an event and the head's rewrite
    leaves (the event names that head's generation): benign, bound by a write-open. An older
    head put back one event behind (the event was appended under a newer head) or two behind
    is a rollback: both write-opens refuse it, writing nothing. Verification refuses all three."""
    write_sample_log(create_log)
    heads = holds_placed(log_path)
    key = manifest_key(log_path)
    findings = examine_log(log_path, TEST_PASSPHRASE)
    events = findings.results[EVENTS_CHAIN]
    last = msgpack.unpackb(events.canonical[-1], timestamp=3)
    assert last["event"] == "hold-add"
    assert last["head"] == findings.head.generation - 1  # the head it was appended under
    head = log_path / "head.note"
    if behind == "crash":
        # The head of the moment the event was appended, before the head binding it: the
        # same text, one generation and one event less (signed with the log's key, it is the
        # very head the library wrote then).
        text = open_note(heads[-1].decode(), key)
        size = events.size - 1
        text = text.replace(
            f"generation {findings.head.generation}\n", f"generation {last['head']}\n"
        ).replace(
            f"events {events.size} {base64.b64encode(events.root).decode()}\n",
            f"events {size} {base64.b64encode(events.roots[size]).decode()}\n",
        )
        head.write_text(sign_note(log_signer(log_path), text), "utf-8")
    else:
        head.write_bytes(heads[-1 - int(behind[-1])])
    assert_both_refuse(log_path, "the events chain is as the head says")
    if behind == "put-back-1":
        refuse_write_open(
            log_path, "appended under a head no newer", RollbackError, "appended under generation"
        )
    elif behind == "put-back-2":
        refuse_write_open(log_path, "at most one event ahead", RollbackError, "put back")
    else:
        rule = "the events chain is as the head says"
        assert write_open(log_path, TEST_PASSPHRASE) == [Difference(rule, benign=True)]
        reconcile(log_path)
        results = verify_log(log_path, TEST_PASSPHRASE)
        assert_agree(results, library_report(log_path, keyless=False))
        assert msgpack.unpackb(results[EVENTS_CHAIN].canonical[-1])["event"] == "recovered"


def test_a_planted_chain_is_refused(
    create_log: Callable[..., AuditLog], log_path: Path, tmp_path: Path
) -> None:
    """A chain made in another log of the same origin, copied in: the head does not name it
    and it holds records and keys, so it was planted. Both verifiers and both write-opens
    refuse it. An empty chain directory (what a crash right after making a chain leaves) is
    benign: a write-open binds it."""
    write_sample_log(create_log)
    other = tmp_path / "other"
    with AuditLog.create(
        other, passphrase="the attacker's own", config=CONFIG, scrypt_n=TEST_SCRYPT_N
    ) as log:
        log.append_many([network(i, T0 + timedelta(minutes=i)) for i in range(3)], chain="planted")
    shutil.copytree(other / "chains/planted", log_path / "chains/planted")
    assert_both_refuse(log_path, None)
    refuse_write_open(log_path, "planted", IntegrityError, "planted")
    shutil.rmtree(log_path / "chains/planted")
    (log_path / "chains/empty").mkdir()
    assert write_open(log_path, TEST_PASSPHRASE) == [Difference(PLANTED_RULE, benign=True)]
    reconcile(log_path)
    assert "empty" in load_head(log_path, "example.com/audit", manifest_key(log_path)).chains
    assert_agree(verify_log(log_path, TEST_PASSPHRASE), library_report(log_path, keyless=False))


def test_redactions_need_a_note_signed_by_the_log(log_path: Path) -> None:
    """``redact`` writes the note of docs/format.md; without it, or unsigned, slots are refused."""
    clock = FixedClock(T0 + HOUR)
    with AuditLog.create(
        log_path, passphrase=TEST_PASSPHRASE, config=CONFIG, scrypt_n=TEST_SCRYPT_N, clock=clock
    ) as log:
        log.append_many([network(i, T0 + timedelta(minutes=i)) for i in range(10)])
        redacted = log.retention.redact("user2", reason="erasure request", actor="dpo")
    assert redacted == {"network": [2, 7]}
    keyed = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(keyed, library_report(log_path, keyless=False))
    assert len(keyed["network"].canonical) == 10 - 2  # the redaction's event is in _log
    (path,) = (log_path / "chains/network/redactions").iterdir()
    moment = micros(T0 + HOUR)
    assert re.fullmatch(rf"{moment:020d}-2-[0-9a-f]+\.note", path.name)
    text = (
        f"auditlog-redaction/v1\norigin example.com/audit/network\nindexes 2 7\nredacted {moment}\n"
    )
    signer = log_signer(log_path)
    assert path.read_text("utf-8") == sign_note(signer, text)
    # A note signed by another key does not count; nor does one that names other records.
    path.write_text(sign_note(stranger_signer("example.com/audit"), text), "utf-8")
    with pytest.raises(SpecError, match="signed by the log's key"):
        verify_log(log_path)
    with pytest.raises(IntegrityError):
        library_report(log_path, keyless=True)
    path.write_text(sign_note(signer, text.replace("indexes 2 7", "indexes 2 8")), "utf-8")
    with pytest.raises(SpecError, match="redacted slot is named by a redaction note"):
        verify_log(log_path)
    with pytest.raises(IntegrityError, match="no redaction signed by the log"):
        library_report(log_path, keyless=True)
    path.unlink()
    with pytest.raises(SpecError, match="redacted slot is named by a redaction note"):
        verify_log(log_path)
    with pytest.raises(IntegrityError, match="no redaction signed by the log"):
        library_report(log_path, keyless=True)


def test_holds_policies_and_subject_tokens(log_path: Path) -> None:
    """``holds.json``, the hold key, subject tokens and the manifest's policies are as specified."""
    write_unswept_log(log_path)
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE, clock=FixedClock(T0)) as log:
        long = RetentionPolicy(
            keep_at_least=timedelta(days=400), delete_after=timedelta(days=3 * 365, seconds=90.5)
        )
        log.retention.set_policy("mixed", long, actor="dpo")
        token = log.retention.subject_token("user1")
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    assert manifest["retention"] == {
        "mixed": {"delete_after": "P3YT1M30.5S", "keep_at_least": "P1Y35D"},
        "network": {"delete_after": "PT2H", "keep_at_least": "PT1H"},
    }
    assert parse_duration("P1Y35D") == timedelta(days=400)
    assert parse_duration("P3YT1M30.5S") == long.delete_after
    assert parse_duration("PT2H") == POLICY.delete_after
    root_key = unlock_root_key(log_path, manifest, TEST_PASSPHRASE)
    hold_key = unwrap_hold_key(log_path, manifest, root_key)
    assert subject_token(hold_key, "user1") == token
    assert re.fullmatch("[0-9a-f]{32}", token)
    holds = json.loads((log_path / "holds.json").read_text("utf-8"))
    assert (holds["format"], holds["version"]) == ("auditlog-holds", 2)
    signed = read_signed_state(log_path, "holds.json", "example.com/audit", manifest_key(log_path))
    assert signed["generation"] == holds.pop("generation") >= 1
    assert holds.pop("signature").startswith("auditlog-state/v2\nexample.com/audit\nholds.json\n")
    (hold,) = holds["holds"]
    assert re.fullmatch("hold-[0-9a-f]{12}", hold.pop("hold_id"))
    assert hold == {
        "case_id": "case-7",
        "chains": ["network"],
        "start": "2026-03-01T14:00:00Z",
        "end": "2026-03-01T15:00:00Z",
        "subject_tokens": [token],
        "expires_at": None,
        "created_at": "2026-03-01T17:00:00Z",
        "released_at": None,
    }


def parse_duration(text: str) -> timedelta:
    """A duration as the manifest writes it: ISO 8601 days, hours, minutes, seconds; Y = 365 D."""
    match = re.fullmatch(
        r"P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text
    )
    require(match is not None and text not in ("P", "PT") and not text.endswith("T"), "duration")
    assert match is not None
    years, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return timedelta(days=365 * years + days, hours=hours, minutes=minutes, seconds=seconds)


def test_root_key_rotation(log_path: Path) -> None:
    """Mid-rotation each keyring entry names its root key, old or ``root.key.next``; then one."""
    with AuditLog.create(
        log_path, passphrase=TEST_PASSPHRASE, config=CONFIG, scrypt_n=TEST_SCRYPT_N
    ) as log:
        log.append_many([network(i, T0 + i * HOUR) for i in range(3)])
        log.append_many(mixed(T0), chain="mixed")
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    (old_id,) = unlock_root_keys(log_path, manifest, TEST_PASSPHRASE)
    # A rotation killed after rewrapping the first chain's keyring (chains in order: mixed).
    child = (
        "import sys\n"
        "from auditlog import AuditLog\n"
        "from auditlog.testing import TEST_PASSPHRASE\n"
        "with AuditLog.open(sys.argv[1], passphrase=TEST_PASSPHRASE) as log:\n"
        "    log.keys.rotate_root_key(actor='ops')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(log_path)],
        env={**os.environ, "AUDITLOG_CRASHPOINT": "rotation-keyring-rewrapped"},
        check=False,
    )
    assert done.returncode == -signal.SIGKILL
    staged_id = msgpack.unpackb((log_path / "keys/root.key.next").read_bytes())["key_id"]
    root_keys = unlock_root_keys(log_path, manifest, TEST_PASSPHRASE)
    assert set(root_keys) == {old_id, staged_id}
    key_ids = {
        chain: {
            entry[0]
            for entry in msgpack.unpackb(
                (log_path / "chains" / chain / "keyring").read_bytes(), strict_map_key=False
            )["keys"].values()
        }
        for chain in ("mixed", "network")
    }
    assert key_ids == {"mixed": {staged_id}, "network": {old_id}}
    assert_agree(verify_log(log_path, TEST_PASSPHRASE), library_report(log_path, keyless=False))
    # Running the rotation again finishes it: one root key, named everywhere, and an event.
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as log:
        new_id = log.keys.rotate_root_key(actor="ops")
    assert new_id == staged_id
    assert not (log_path / "keys/root.key.next").exists()
    assert set(unlock_root_keys(log_path, manifest, TEST_PASSPHRASE)) == {new_id}
    for name in ("checkpoint.key", "hold.key"):
        assert msgpack.unpackb((log_path / "keys" / name).read_bytes())["root_key_id"] == new_id
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(results, library_report(log_path, keyless=False))
    last = msgpack.unpackb(results[EVENTS_CHAIN].canonical[-1], timestamp=3)
    assert (last["kind"], last["event"], last["actor"]) == ("log", "key-rotation", "ops")


def test_log_event_table_matches_the_enumeration() -> None:
    """docs/format.md lists every event a ``log`` record can name, and no other."""
    text = FORMAT_MD.read_text("utf-8")
    section = text.split("### The log's own records", 1)[1].split("\n## ", 1)[0]
    events = re.findall(r"^\| `([a-z-]+)` \|", section, re.M)
    assert events == [e.value for e in LogEventType]


# --- the worked example of docs/format.md ----------------------------------------------------


def example_files() -> dict[str, bytes]:
    """The files of the worked example, from the annotated dumps in docs/format.md."""
    text = FORMAT_MD.read_text("utf-8")
    files = {}
    for name, body in re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```", text, re.S):
        if name.endswith((".json", ".note")):  # text files are shown as they are
            files[name] = body.encode()
            continue
        data = bytearray()
        for line in body.splitlines():
            offset, *groups = line.split("|")[0].split()
            assert int(offset, 16) == len(data), f"{name}: offset {offset} is wrong"
            data += bytes.fromhex("".join(groups))
        files[name] = bytes(data)
    return files


def example_values() -> dict[str, bytes]:
    """The derived values the worked example lists, by name."""
    text = FORMAT_MD.read_text("utf-8")
    (body,) = re.findall(r"<!-- values -->\n```[a-z]*\n(.*?)```", text, re.S)
    values: dict[str, bytes] = {}
    name = ""
    for line in body.splitlines():
        if "=" in line:
            name, _, hexdigits = line.partition("=")
            name = name.strip()
            values[name] = bytes.fromhex(hexdigits)
        else:
            values[name] += bytes.fromhex(line)
    return values


def write_example(log_path: Path) -> dict[str, bytes]:
    """Write the worked example's files (a log of format v1) at ``log_path``."""
    files = example_files()
    for name, data in files.items():
        (log_path / name).parent.mkdir(parents=True, exist_ok=True)
        (log_path / name).write_bytes(data)
    return files


def migrate_example(log_path: Path, files: dict[str, bytes], signer: str) -> None:
    """Migrate the example to format v2 and check what migration changed, and what not."""
    at = datetime(2026, 3, 4, 9, tzinfo=UTC)
    AuditLog.migrate(log_path, passphrase=TEST_PASSPHRASE, clock=FixedClock(at))
    for name, data in files.items():  # segments, checkpoints, tiles and the root key stay
        if name.startswith(("chains/app/segments/", "chains/app/checkpoints/", "chains/app/t")):
            assert (log_path / name).read_bytes() == data, name
    assert (log_path / "keys/root.key").read_bytes() == files["keys/root.key"]
    key = manifest_key(log_path)
    manifest = read_signed_state(log_path, "manifest.json", "example.com/audit", key)
    old = json.loads(files["manifest.json"])
    assert manifest == {
        **old,
        "version": 2,
        "retention": {},
        **{
            "config": {**old["config"], "max_future_seconds": 300},
            "generation": 1,
            "signature": manifest["signature"],
        },
    }
    keyring = read_signed_state(log_path, "chains/app/keyring", "example.com/audit", key)
    old_keyring = msgpack.unpackb(files["chains/app/keyring"], strict_map_key=False)
    assert (keyring["keys"], keyring["shredded"]) == (old_keyring["keys"], old_keyring["shredded"])
    # The log's keys are rewrapped under format v2 contexts: the same signer key, a new hold key.
    root_key = unlock_root_key(log_path, json.loads(files["manifest.json"]), TEST_PASSPHRASE)
    assert unwrap_checkpoint_signer(log_path, manifest, root_key) == signer
    assert len(unwrap_hold_key(log_path, manifest, root_key)) == 32
    # The events chain starts with the migration; the head binds what it signed.
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        ((index, event),) = log.events()
    assert (index, event.event, event.chain, event.occurred_at) == (0, "migrated", "_log", at)
    head = parse_head(
        open_note((log_path / "head.note").read_text("utf-8"), key), "example.com/audit"
    )
    assert sorted(head.files) == [
        "chains/_log/keyring",
        "chains/app/keyring",
        "keys/checkpoint.key",
        "keys/hold.key",
        "keys/root.key",
        "manifest.json",
    ]
    assert head.chains["app"].startswith("checkpoints 1 2 sealed 0 ")
    # The two deterministic files the page shows after migration, byte for byte.
    text = FORMAT_MD.read_text("utf-8")
    (shown,) = re.findall(r"<!-- migrated: manifest.json -->\n```json\n(.*?)```", text, re.S)
    assert (log_path / "manifest.json").read_text("utf-8") == shown
    (signed_text,) = re.findall(
        r"<!-- signed text: chains/app/keyring -->\n```text\n(.*?)```", text, re.S
    )
    assert open_note(keyring["signature"], key) == signed_text
    assert signed_text == state_signed_text("example.com/audit", "chains/app/keyring", keyring)


def test_worked_example(tmp_path: Path) -> None:
    """The worked example in docs/format.md verifies, with the values the page derives."""
    log_path = tmp_path / "example"
    files = write_example(log_path)
    # A log of format v1: refused by both until it is migrated.
    with pytest.raises(SpecError, match="format v1"):
        verify_log(log_path)
    with pytest.raises(MigrationRequiredError):
        library_report(log_path, keyless=True)
    values = example_values()
    origin = "example.com/audit/app"
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    root_keys = unlock_root_keys(log_path, manifest, TEST_PASSPHRASE)
    (root_key,) = root_keys.values()
    keyring_v1 = msgpack.unpackb(files["chains/app/keyring"], strict_map_key=False)
    assert (keyring_v1["format"], keyring_v1["version"]) == ("auditlog-keyring", 1)
    (data_key,) = read_keyring(keyring_v1, origin, root_keys).keys.values()
    signer = unwrap_checkpoint_signer(log_path, manifest, root_key, version=1)
    migrate_example(log_path, files, signer)
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(results, library_report(log_path, keyless=False))
    assert (results["app"].records, results["app"].segments, results["app"].sealed) == (3, 2, 1)
    assert values["root key"] == root_key
    assert values["data key"] == data_key
    assert values["leaf-salt key"] == hkdf(data_key, b"leaf-salt")
    genesis = hashlib.sha256(b"auditlog/v1 genesis\x00" + origin.encode()).digest()
    assert values["genesis"] == genesis
    blocks = [
        block
        for sequence, path in enumerate(sorted((log_path / "chains/app/segments").iterdir()))
        for block in parse_segment(path.read_bytes(), sequence, last=True).blocks
    ]
    leaves = [leaf for block in blocks for leaf in block.leaves]
    trace = results["app"].trace
    block_keys = list(dict.fromkeys(item["block_key"] for item in trace))
    assert block_keys == [values["block key 0"], values["block key 1"]]
    for i, item in enumerate(trace):
        aad = origin.encode() + b"\x00" + i.to_bytes(8, "big") + leaves[i]
        assert values[f"aad {i}"] == aad
        assert values[f"salt {i}"] == item["salt"]
        assert values[f"plaintext {i}"] == item["plaintext"]
        assert values[f"canonical {i}"] == item["canonical"]
    assert [item["plaintext"][0] for item in trace] == [0, 1, 1]
    frames = [frame for block in blocks for frame in block.frames]
    for i, frame in enumerate(frames):
        assert values[f"frame hash {i}"] == hashlib.sha256(frame).digest()
    # Header times: the records' earliest and latest times, rounded down and up to the minute.
    times = [
        micros(msgpack.unpackb(item["canonical"], timestamp=3)["occurred_at"]) for item in trace
    ]
    for block in blocks:
        first, count = block.fields["first_index"], block.fields["count"]
        span = times[first : first + count]
        assert block.fields["min_time"] == min(span) // TIME_GRANULE_US * TIME_GRANULE_US
        assert block.fields["max_time"] == -(-max(span) // TIME_GRANULE_US) * TIME_GRANULE_US
    # The checkpoint key: unwrapped with the root key, it is the key of the stored checkpoint.
    assert f"`{signer}`" in FORMAT_MD.read_text("utf-8")  # the page shows it unwrapped
    name, seed = parse_signer_key(signer)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert values["checkpoint seed"] == seed
    assert values["checkpoint public key"] == public
    verifier = parse_verifier_key(manifest["checkpoint_key"])
    assert (verifier.name, verifier.public_key) == (name, public) == (manifest["origin"], public)
    # The checkpoint signed at the seal of segment 0 (Ed25519 signatures are deterministic).
    note = (log_path / "chains/app/checkpoints" / f"{2:020d}.note").read_text("utf-8")
    assert open_checkpoint(note, verifier, origin) == (2, mth(leaves[:2]))
    assert note == sign_checkpoint(signer, origin, 2, mth(leaves[:2]))
    assert sorted(p.name for p in (log_path / "chains/app/checkpoints").iterdir()) == [
        f"{2:020d}.note"
    ]
    # The tiles: a tree of three leaves stores level 0 only, which holds the leaves.
    assert [p.name for p in (log_path / "chains/app/tiles").iterdir()] == ["level-00"]
    assert (log_path / "chains/app/tiles/level-00").read_bytes() == b"".join(leaves)


def example_notes() -> dict[str, str]:
    """The signed notes of the worked example's last part, by path."""
    text = FORMAT_MD.read_text("utf-8")
    return dict(re.findall(r"<!-- note: (\S+) -->\n```[a-z]*\n(.*?)```", text, re.S))


def test_worked_example_tombstone_and_redaction_note(tmp_path: Path) -> None:
    """The example's tombstone and redaction note are the log's, and the log verifies with them."""
    log_path = tmp_path / "example"
    files = write_example(log_path)
    manifest = json.loads(files["manifest.json"])
    root_key = unlock_root_key(log_path, manifest, TEST_PASSPHRASE)
    signer = unwrap_checkpoint_signer(log_path, manifest, root_key, version=1)
    key = parse_verifier_key(manifest["checkpoint_key"])
    notes = example_notes()
    assert sorted(notes) == [
        "chains/app/redactions/00001772443800000000-1-4242.note",
        "chains/app/tombstones/0000000001-0000000001.tomb",
    ]
    for name, signed in notes.items():
        assert sign_note(signer, open_note(signed, key)) == signed
        (log_path / name).parent.mkdir(parents=True, exist_ok=True)
        (log_path / name).write_text(signed, "utf-8")
    tombstone = parse_tombstone(open_note(notes[sorted(notes)[1]], key), "example.com/audit/app")
    assert tombstone.deleted_at == micros(datetime(2026, 3, 3, 12, tzinfo=UTC))
    # Redact record 1 in segment 0's block as the page says, and delete segment 1.
    segment0 = log_path / "chains/app/segments/0000000000.seg"
    data = segment0.read_bytes()
    (block,) = parse_segment(data, 0, last=False).blocks
    body = data[block.offset + ENTRY_PREFIX.size : block.offset + ENTRY_PREFIX.size + 510]
    lengths_at = BLOCK_HEADER.size + 32 * 2
    redacted_body = b"".join(
        (
            body[:lengths_at],
            struct.pack(">II", len(block.frames[0]), REDACTED | len(block.frames[1])),
            block.frames[0],
            hashlib.sha256(block.frames[1]).digest(),
            block.block_hash,
        )
    )
    prefix = struct.pack(">I", len(redacted_body))
    entry = prefix + struct.pack(">I", zlib.crc32(prefix)) + redacted_body
    seal = data[block.offset + ENTRY_PREFIX.size + 510 :]
    segment0.write_bytes(data[: block.offset] + entry + seal)
    (log_path / "chains/app/segments/0000000001.seg").unlink()
    # Migration verifies the v1 log with its keys (the tombstone and the note included).
    AuditLog.migrate(log_path, passphrase=TEST_PASSPHRASE)
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(results, library_report(log_path, keyless=False))
    after = results["app"]
    assert (after.records, after.size, after.deleted) == (2, 3, [(2, 3)])
    root2 = bytes.fromhex("dd0b74a47211f02d4579c536c7193f777ce98e7c715ce13c37163ba08e61129e")
    before = {0: EMPTY_ROOT, 2: root2, 3: after.root}  # the roots of the intact log
    assert after.roots == before
    assert after.root == bytes.fromhex(
        "9034489782b6251d1626e24b728f458cfa7d03ad32c1cf934a0315c70aaa26eb"
    )
    assert len(after.canonical) == 1  # record 1 is redacted, record 2 deleted
