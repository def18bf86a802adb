"""An independent verifier of storage format v1, written from docs/format.md and nothing else.

The verifier below parses manifests, key files, segment files and signed checkpoints with
``struct``, ``hashlib``, ``zlib``, ``base64``, ``msgpack``, ``zstandard`` and ``cryptography``
directly. From auditlog it takes only what a user of the library has: ``AuditLog`` to write the
logs it checks, the record models to build records, its error classes, and the test passphrase.
If the library and this verifier ever disagree, either the code or docs/format.md is wrong, and
this file says which rule.
"""

from __future__ import annotations

import base64
import builtins
import enum
import hashlib
import json
import re
import struct
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
from auditlog.errors import ForkError, RecordRedactedError, RollbackError
from auditlog.records import RECORD_TYPES, Attachment, CallParty
from auditlog.testing._helpers import TEST_PASSPHRASE

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


def compact_range(leaves: Sequence[bytes]) -> list[bytes]:
    """The roots of the perfect subtrees covering ``[0, len(leaves))``, left to right."""
    hashes = []
    start = 0
    for bit in reversed(range(len(leaves).bit_length())):
        if len(leaves) >> bit & 1:
            hashes.append(mth(leaves[start : start + (1 << bit)]))
            start += 1 << bit
    return hashes


# --- docs/format.md, "Keys" ------------------------------------------------------------------


def hkdf(data_key: bytes, label: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 of a data key under the info ``auditlog/v1 <label>``, 32 bytes."""
    return HKDF(SHA256(), 32, salt, b"auditlog/v1 " + label).derive(data_key)


def unlock_root_key(log: Path, manifest: dict[str, Any], passphrase: str) -> bytes:
    """Unwrap the root key from the file the manifest names, with the passphrase."""
    provider = manifest["key_provider"]
    require(provider["type"] == "passphrase", "the test log uses the passphrase provider")
    doc = msgpack.unpackb((log / provider["file"]).read_bytes())
    require(doc["format"] == "auditlog-root-key" and doc["version"] == 1, "root key v1")
    require(doc["kdf"] == "scrypt", "root key kdf is scrypt")
    kek = Scrypt(doc["salt"], 32, doc["n"], doc["r"], doc["p"]).derive(passphrase.encode())
    aad = b"auditlog/v1 root-key\x00" + doc["key_id"].encode("ascii")
    root_key: bytes = AESGCM(kek).decrypt(doc["nonce"], doc["wrapped"], aad)
    return root_key


def unwrap(root_key: bytes, blob: bytes, context: bytes) -> bytes:
    """A key wrapped by the built-in key providers: nonce || AES-256-GCM, bound to ``context``."""
    plain: bytes = AESGCM(root_key).decrypt(blob[:12], blob[12:], b"auditlog/v1 wrap\x00" + context)
    return plain


def unwrap_data_keys(chain_dir: Path, origin: str, root_key: bytes) -> dict[int, bytes]:
    """Every data key in a chain's keyring, by period (none if the chain has no keyring yet)."""
    try:
        raw = (chain_dir / "keyring").read_bytes()
    except FileNotFoundError:
        return {}
    doc = msgpack.unpackb(raw, strict_map_key=False)
    require(doc["format"] == "auditlog-keyring" and doc["version"] == 1, "keyring v1")
    keys = {}
    for period, (_key_id, blob) in doc["keys"].items():
        context = (
            b"auditlog/v1 data-key\x00" + origin.encode() + b"\x00" + period.to_bytes(4, "big")
        )
        keys[period] = unwrap(root_key, blob, context)
    return keys


def unwrap_checkpoint_signer(log: Path, manifest: dict[str, Any], root_key: bytes) -> str:
    """The log's checkpoint signer key string, from ``keys/checkpoint.key``."""
    doc = msgpack.unpackb((log / "keys" / "checkpoint.key").read_bytes())
    require(doc["format"] == "auditlog-checkpoint-key" and doc["version"] == 1, "checkpoint key v1")
    require(doc["verifier_key"] == manifest["checkpoint_key"], "checkpoint key file matches")
    context = b"auditlog/v1 checkpoint-key\x00" + manifest["origin"].encode()
    return unwrap(root_key, doc["wrapped"], context).decode("ascii")


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
    dictionary: bytes = AESGCM(hkdf(key, b"dictionary")).decrypt(
        doc["nonce"], doc["ciphertext"], aad
    )
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


def sign_checkpoint(signer: str, origin: str, size: int, root: bytes) -> str:
    """A signed checkpoint note, as the log writes them (for tests that forge checkpoints)."""
    name, seed = parse_signer_key(signer)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    signature = key_hash(name, b"\x01" + public) + private.sign(text.encode())
    return f"{text}\n\u2014 {name} {base64.b64encode(signature).decode()}\n"


def open_checkpoint(signed: str, key: VerifierKey, origin: str) -> tuple[int, bytes]:
    """Check a signed checkpoint note against the log's key; returns its (size, root)."""
    require(not re.search("[\x00-\x09\x0b-\x1f]", signed), "a note has no control characters")
    text, separator, signatures = signed.rpartition("\n\n")
    require(bool(separator) and signatures.endswith("\n"), "a signed note")
    text += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        require(line.startswith("\u2014 "), "a note signature line")
        name, _, encoded = line[2:].partition(" ")
        blob = base64.b64decode(encoded, validate=True)
        require(len(blob) >= 5, "a note signature")
        if (name, blob[:4]) != (key.name, key.key_hash):
            continue  # another key's signature (a witness): not ours to check
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise SpecError("checkpoint signature does not verify") from None
        verified = True
    require(verified, "checkpoint signed by the log's key")
    lines = text[:-1].split("\n")
    require(len(lines) >= 3 and "" not in lines, "checkpoint text has three or more lines")
    require(lines[0] == origin, "checkpoint origin is the chain origin")
    require(re.fullmatch("0|[1-9][0-9]{0,19}", lines[1]) is not None, "checkpoint size")
    root = base64.b64decode(lines[2], validate=True)
    require(len(root) == 32 and base64.b64encode(root).decode() == lines[2], "checkpoint root")
    return int(lines[1]), root


def check_checkpoints(
    chain_dir: Path, origin: str, key: VerifierKey, size: int, roots: dict[int, bytes]
) -> None:
    """Every stored checkpoint of a chain against the tree recomputed from its segments."""
    directory = chain_dir / "checkpoints"
    named = sorted(
        (int(match[1]), path)
        for path in (directory.iterdir() if directory.is_dir() else [])
        if (match := CHECKPOINT_NAME.fullmatch(path.name))
    )
    for stored_size, path in named:
        checkpoint_size, root = open_checkpoint(path.read_text("utf-8"), key, origin)
        require(checkpoint_size == stored_size, "a checkpoint file is named after its size")
        require(checkpoint_size <= size, "rollback: the chain is shorter than a checkpoint")
        require(checkpoint_size in roots, "a checkpoint's size is the end of a block")
        require(roots[checkpoint_size] == root, "fork: a checkpoint's root differs")


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

    records: int = 0
    blocks: int = 0
    segments: int = 0
    bytes: int = 0
    sealed: int = 0
    torn: int = 0
    root: builtins.bytes = EMPTY_ROOT
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


def verify_chain(
    chain_dir: Path,
    origin: str,
    period_us: int,
    checkpoint_key: VerifierKey,
    keys: dict[int, bytes] | None,
) -> ChainResult:
    """Keyless checks of one chain and its checkpoints; with its data keys, the keyed checks."""
    result = ChainResult()
    named = sorted(
        (int(match[1]), path)
        for path in (chain_dir / "segments").iterdir()
        if (match := SEGMENT_NAME.fullmatch(path.name))
    )
    require([s for s, _ in named] == list(range(len(named))), "segments numbered 0, 1, 2, ...")
    leaves: list[bytes] = []
    roots = {0: EMPTY_ROOT}  # the tree root after every block, by tree size
    last_hash = hashlib.sha256(b"auditlog/v1 genesis\x00" + origin.encode()).digest()
    open_before = False
    for sequence, path in named:
        require(not open_before, "only the last segment is unsealed")
        segment = parse_segment(path.read_bytes(), sequence, last=sequence == len(named) - 1)
        result.segments += 1
        result.bytes += segment.size
        result.torn = segment.torn
        if segment.first_index is None:
            open_before = True
            continue
        require(segment.first_index == len(leaves), "segment starts where the chain ended")
        for block in segment.blocks:
            header = block.fields
            require(header["first_index"] == len(leaves), "block starts where the chain ended")
            require(header["prev_hash"] == last_hash, "hash chain")
            require(header["tree_size"] == header["first_index"] + header["count"], "tree size")
            require(header["min_time"] <= header["max_time"], "time range")
            require(
                header["min_time"] % TIME_GRANULE_US == 0
                and header["max_time"] % TIME_GRANULE_US == 0,
                "header times are whole minutes",
            )
            leaves.extend(block.leaves)
            roots[len(leaves)] = mth(leaves)
            require(header["tree_root"] == roots[len(leaves)], "Merkle root after the block")
            last_hash = block.block_hash
            result.blocks += 1
            result.records += header["count"]
            if keys is not None:
                dictionary = None
                if header["dictionary_id"]:
                    dictionary = load_dictionary(
                        chain_dir,
                        origin,
                        header["period"],
                        header["dictionary_id"],
                        keys[header["period"]],
                    )
                check_frames(block, keys[header["period"]], dictionary, origin, period_us, result)
        seal = segment.seal
        if seal is None:
            open_before = True
            continue
        result.sealed += 1
        require(seal["block_count"] == len(segment.blocks) >= 1, "seal block count")
        require(seal["first_index"] == segment.first_index, "seal first index")
        require(seal["end_index"] == len(leaves), "seal end index")
        require(seal["last_block_hash"] == last_hash, "seal last block hash")
        require(seal["tree_root"] == mth(leaves), "seal tree root")
        require(seal["frontier"] == compact_range(leaves), "seal frontier")
        periods = sorted({b.fields["period"] for b in segment.blocks})
        require(seal["periods"] == periods, "seal periods")
        index = [(b.fields["first_index"], b.offset) for b in segment.blocks]
        require(seal["block_index"] == index, "seal block index")
    result.root = mth(leaves)
    check_checkpoints(chain_dir, origin, checkpoint_key, len(leaves), roots)
    return result


def verify_log(log: Path, passphrase: str | None = None) -> dict[str, ChainResult]:
    """Verify every chain of the log at ``log``; keyed when a passphrase is given."""
    manifest = json.loads((log / "manifest.json").read_text("utf-8"))
    require(manifest["format"] == "auditlog" and manifest["version"] == 1, "manifest v1")
    period_us = manifest["config"]["period_seconds"] * 1_000_000
    checkpoint_key = parse_verifier_key(manifest["checkpoint_key"])
    root_key = None if passphrase is None else unlock_root_key(log, manifest, passphrase)
    results = {}
    chain_dirs = (log / "chains").iterdir()
    for chain_dir in sorted(p for p in chain_dirs if p.is_dir() and CHAIN_ID.fullmatch(p.name)):
        origin = f"{manifest['origin']}/{chain_dir.name}"
        keys = None if root_key is None else unwrap_data_keys(chain_dir, origin, root_key)
        results[chain_dir.name] = verify_chain(chain_dir, origin, period_us, checkpoint_key, keys)
    return results


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


def write_sample_log(create_log: Callable[..., AuditLog]) -> dict[str, list[Record]]:
    """Write several chains (dictionary and raw frames, two periods in one segment); close it."""
    written: dict[str, list[Record]] = {"network": [], "mixed": []}
    with create_log(CONFIG) as log:
        # Twelve records of one hour: blocks of four, the later ones compressed with the
        # period's dictionary once eight samples are in.
        batch = [network(i, T0 + timedelta(minutes=4 * i)) for i in range(12)]
        log.append_many(batch)
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


def library_report(log_path: Path, *, keyless: bool) -> VerifyReport:
    """The library's own verification of the log at ``log_path``."""
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        return log.verify(keyless=keyless)


def assert_agree(results: dict[str, ChainResult], report: VerifyReport) -> None:
    """The verifier's findings equal the library's report, chain by chain."""
    assert set(results) == set(report.chains)
    for chain, result in results.items():
        theirs = report.chains[chain]
        assert (
            result.records,
            result.blocks,
            result.segments,
            result.bytes,
            result.root,
            result.torn,
            result.sealed,
        ) == (
            theirs.records,
            theirs.blocks,
            theirs.segments,
            theirs.bytes,
            theirs.root,
            theirs.torn_tail_bytes,
            theirs.sealed_segments,
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
    """Cutting the open segment after a whole block passes both verifiers (a documented limit)."""
    write_sample_log(create_log)
    path = last_segment(log_path, "network")
    segment = parse_segment(path.read_bytes(), 0, last=True)
    path.write_bytes(path.read_bytes()[: segment.blocks[-1].offset])
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
    with (
        AuditLog.open(log_path, mode="read") as reader,
        pytest.raises(IntegrityError, match="no redaction signed by the log"),
    ):
        reader.verify(keyless=True)
    with AuditLog.open(log_path, passphrase=TEST_PASSPHRASE) as writer:
        index = block.fields["first_index"] + position
        writer._redactions("mixed").save([index], 0, writer._signer())
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
    path.write_bytes(data[:-zeroed] + bytes(zeroed))
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
        log.checkpoint("network")
    path = last_segment(log_path, "network")
    segment = parse_segment(path.read_bytes(), 0, last=True)
    path.write_bytes(path.read_bytes()[: segment.blocks[-1].offset])
    with pytest.raises(SpecError, match="rollback"):
        verify_log(log_path)
    with pytest.raises(RollbackError):
        library_report(log_path, keyless=True)
    # Whoever can cut the segment can delete the stored checkpoint as well: then only a
    # checkpoint kept outside the log directory (a trusted state) still shows the cut.
    (log_path / "chains/network/checkpoints" / f"{13:020d}.note").unlink()
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert results["network"].records == 12
    assert_agree(results, library_report(log_path, keyless=False))


@pytest.mark.parametrize(
    "change", ["none", "fork", "rollback", "inside-a-block", "renamed", "signature", "other-key"]
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
    elif change == "inside-a-block":
        size, root, name = 2, mth(leaves[:2]), 2
        failure = (IntegrityError, "end of a block")
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


def test_worked_example(tmp_path: Path) -> None:
    """The worked example in docs/format.md verifies, with the values the page derives."""
    log_path = tmp_path / "example"
    for name, data in example_files().items():
        (log_path / name).parent.mkdir(parents=True, exist_ok=True)
        (log_path / name).write_bytes(data)
    results = verify_log(log_path, TEST_PASSPHRASE)
    assert_agree(results, library_report(log_path, keyless=False))
    assert (results["app"].records, results["app"].segments, results["app"].sealed) == (3, 2, 1)
    values = example_values()
    origin = "example.com/audit/app"
    manifest = json.loads((log_path / "manifest.json").read_text("utf-8"))
    root_key = unlock_root_key(log_path, manifest, TEST_PASSPHRASE)
    (data_key,) = unwrap_data_keys(log_path / "chains" / "app", origin, root_key).values()
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
    signer = unwrap_checkpoint_signer(log_path, manifest, root_key)
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
