"""Signed notes, checkpoints and witness cosignatures, compatible with Go's sumdb/note.

This module implements three C2SP formats with Ed25519 and nothing else:

- c2sp.org/signed-note: a text followed by a blank line and signature lines, byte for byte what
  ``golang.org/x/mod/sumdb/note`` writes and reads, with its key strings
  (``PRIVATE+KEY+<name>+<hash>+<key>`` and ``<name>+<hash>+<key>``);
- c2sp.org/tlog-checkpoint: the note text of a log's signed tree head (:class:`Checkpoint`);
- c2sp.org/tlog-cosignature: timestamped Ed25519 witness cosignatures (key type 0x04).

Everything here is a pure function of its arguments: no I/O, no clock, no global state. Every
failure raises :class:`~auditlog.errors.NoteError`; no verifying function returns a boolean. No
error message contains any part of a signer (private) key string. ``docs/note.md`` is the
specification of what this module accepts and produces.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from auditlog.errors import NoteError

__all__ = [
    "ALGORITHM_COSIGNATURE_V1",
    "ALGORITHM_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "SignerKey",
    "VerifierKey",
    "cosign",
    "generate_key",
    "generate_witness_key",
    "open_note",
    "open_with_signatures",
    "parse_signer_key",
    "parse_verifier_key",
    "sign",
    "signatures_canonical",
    "verifier_from_signer",
    "verify_cosignature",
]

ALGORITHM_ED25519 = 0x01
"""Signature type of an Ed25519 note signature (c2sp.org/signed-note)."""

ALGORITHM_COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature)."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry; Go's ``note.Open`` has the same limit."""

_SIGNATURE_PREFIX = "\u2014 "  # An em dash and a space begin every signature line.
_COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: a timestamp MUST NOT exceed 2^63 - 1.
_MAX_TREE_SIZE = 2**64 - 1  # Go's checkpoint code, like RFC 6962, holds tree sizes in a uint64.
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8
_ROOT_HASH_SIZE = 32

# Go's unicode.IsSpace, i.e. the Unicode White_Space property. It is spelled out rather than
# taken from str.isspace(), which also counts U+001C..U+001F and follows whatever Unicode version
# the running Python ships, so that name validity cannot drift from Go's.
_GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)
# Signed notes must be valid UTF-8 without ASCII control characters other than newline. A Python
# str cannot hold invalid UTF-8 except as lone surrogates, so those are refused here too.
_FORBIDDEN_IN_NOTE = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")
_KEY_HASH_HEX = re.compile("[0-9a-fA-F]{8}")
_BASE64 = re.compile("(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# At most 20 digits, the length of 2^64 - 1: the bound keeps int() away from Python's limit on
# the length of decimal strings, which raises ValueError beyond 4300 digits.
_TREE_SIZE = re.compile("0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class VerifierKey:
    """A parsed public key: who signs (``name``), which key (``key_hash``), and the key itself.

    ``algorithm`` is :data:`ALGORITHM_ED25519` for note signers and
    :data:`ALGORITHM_COSIGNATURE_V1` for witnesses.
    """

    name: str
    key_hash: int
    algorithm: int
    public_key: bytes

    def __post_init__(self) -> None:
        _require_name(self.name, "verifier key")
        _require_algorithm(self.algorithm, "verifier key")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _KEY_SIZE:
            raise NoteError(f"malformed verifier key: an Ed25519 public key is {_KEY_SIZE} bytes")
        if self.key_hash != _key_hash(self.name, bytes([self.algorithm]) + self.public_key):
            raise NoteError("verifier key hash does not match its name and key data")

    def to_text(self) -> str:
        """Return the Go verifier key string ``<name>+<hash hex8>+<base64(algorithm||key)>``."""
        return _format_key(self.name, self.key_hash, self.algorithm, self.public_key)


@dataclass(frozen=True)
class SignerKey:
    """A parsed private key. Its seed is left out of ``repr`` so it never reaches a log line."""

    name: str
    key_hash: int
    algorithm: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        # These messages name no field value: a malformed signer key may have its secret part in
        # any position.
        if not _is_valid_name(self.name):
            raise NoteError("malformed signer key: invalid key name")
        _require_algorithm(self.algorithm, "signer key")
        if not isinstance(self.seed, bytes) or len(self.seed) != _KEY_SIZE:
            raise NoteError(f"malformed signer key: an Ed25519 seed is {_KEY_SIZE} bytes")
        if self.key_hash != _key_hash(self.name, bytes([self.algorithm]) + self._public_key()):
            raise NoteError("signer key hash does not match its name and key data")

    def verifier_key(self) -> VerifierKey:
        """Return the public half of this key."""
        return VerifierKey(self.name, self.key_hash, self.algorithm, self._public_key())

    def _private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def _public_key(self) -> bytes:
        return self._private_key().public_key().public_bytes_raw()


@dataclass(frozen=True)
class Checkpoint:
    """The note text of a transparency log checkpoint (c2sp.org/tlog-checkpoint).

    The text is the origin line, the tree size in decimal, the base64 root hash, then optional
    extension lines, each ending in a newline. Construction validates every field, so
    :meth:`to_text` always yields text that :meth:`from_text` accepts and maps back to an equal
    object.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_line(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("checkpoint size must be an int")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size must be between 0 and 2^64 - 1, got {self.size}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of lines")
        for extension in self.extensions:
            _require_line(extension, "checkpoint extension line")

    def to_text(self) -> str:
        """Return the checkpoint's note text, every line ending in a newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's note text (not a signed note: open the note first).

        The parser is strict so that ``from_text(t).to_text() == t`` for every accepted ``t``:
        the size has no leading zeros, the root hash is canonical base64 of exactly 32 bytes,
        and no line is empty.
        """
        _require_note_text(text, "checkpoint text")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(
                "checkpoint text must have an origin, a size and a root hash line" + _DAMAGED
            )
        if "" in lines:
            raise NoteError(
                f"checkpoint line {lines.index('') + 1} is empty; a checkpoint has no empty "
                "lines (pass the note text, not the signed note)"
            )
        origin, size_text, root_text, *extensions = lines
        if _TREE_SIZE.fullmatch(size_text) is None:
            raise NoteError(
                "checkpoint size must be ASCII decimal digits without leading zeros" + _DAMAGED
            )
        root_hash = _b64decode(root_text)
        if root_hash is None or len(root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(
                f"checkpoint root hash must be base64 of {_ROOT_HASH_SIZE} bytes" + _DAMAGED
            )
        if _b64encode(root_hash) != root_text:
            # Base64 leaves two bits of the last character unused; accepting other values there
            # would give one checkpoint several texts, and signatures cover the text.
            raise NoteError("checkpoint root hash is not in canonical base64" + _DAMAGED)
        return cls(origin, int(size_text), root_hash, tuple(extensions))


_DAMAGED: Final = (
    ": the note was changed or damaged; get it again from its signer, or restore it from a backup"
)


def generate_key(name: str) -> tuple[str, str]:
    """Generate an Ed25519 note key pair for ``name``: ``(signer key, verifier key)``.

    The signer key is secret; the verifier key is given to whoever must check signatures.
    """
    return _generate(name, ALGORITHM_ED25519)


def generate_witness_key(name: str) -> tuple[str, str]:
    """Generate an Ed25519 witness key pair (type 0x04) for :func:`cosign`."""
    return _generate(name, ALGORITHM_COSIGNATURE_V1)


def verifier_from_signer(signer_key: str) -> str:
    """Return the verifier key string that belongs to a signer key string."""
    return parse_signer_key(signer_key).verifier_key().to_text()


def parse_verifier_key(verifier_key: str) -> VerifierKey:
    """Parse and check a verifier key string ``<name>+<hash hex8>+<base64(algorithm||key)>``.

    The key hash must be the one computed from the name and key, as Go checks it.
    """
    _require_no_surrounding_space(verifier_key, "verifier key")
    parts = verifier_key.split("+", 2)
    if len(parts) != 3:
        raise NoteError("malformed verifier key: expected <name>+<key hash>+<key data>")
    name, hash_text, key_text = parts
    key_hash = _parse_key_hash(hash_text, "verifier key")
    data = _b64decode(key_text)
    if not data:
        raise NoteError("malformed verifier key: the key data is not base64 of a key")
    return VerifierKey(name, key_hash, data[0], data[1:])


def parse_signer_key(signer_key: str) -> SignerKey:
    """Parse and check a signer key string ``PRIVATE+KEY+<name>+<hash hex8>+<base64(...)>``.

    The key hash must be the one computed from the name and the derived public key. Error
    messages never quote the string, since any part of it may be secret.
    """
    _require_no_surrounding_space(signer_key, "signer key")
    parts = signer_key.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("malformed signer key: expected PRIVATE+KEY+<name>+<key hash>+<key data>")
    _, _, name, hash_text, key_text = parts
    key_hash = _parse_key_hash(hash_text, "signer key")
    data = _b64decode(key_text)
    if not data:
        raise NoteError("malformed signer key: the key data is not base64 of a key")
    return SignerKey(name, key_hash, data[0], data[1:])


def sign(text: str, *signer_keys: str) -> str:
    """Sign ``text`` with each Ed25519 signer key and return the signed note.

    The text must be non-empty, end with a newline and contain no control character other than
    newline. The note is the text, a blank line, and one signature line per key in the order
    given: an em dash, a space, the key name, a space, base64(key hash || signature), a newline.
    """
    if not signer_keys:
        raise NoteError("sign needs at least one signer key")
    _require_note_text(text, "note text")
    keys = [parse_signer_key(key) for key in signer_keys]
    message = text.encode("utf-8")
    lines = []
    for key in keys:
        if key.algorithm != ALGORITHM_ED25519:
            raise NoteError("sign takes note signer keys (type 0x01); witnesses use cosign()")
        signature = key._private_key().sign(message)
        lines.append(_signature_line(key.name, key.key_hash, signature))
    return text + "\n" + "".join(lines)


def open_with_signatures(note: str | bytes, verifier_keys: Iterable[str]) -> tuple[str, list[str]]:
    """Open a signed note: return its text and the names of the known keys that signed it.

    Signatures from unknown keys are ignored, as the signed-note spec requires. Every signature
    from a known key must verify (the spec's SHOULD, which this module makes a must), and at
    least one must be present. Witness keys (type 0x04) verify cosignatures, so a checkpoint
    and its cosignatures open in one call. Each verified key is named once, in note order.
    """
    known = _index_verifier_keys(verifier_keys)
    text, lines = _split_note(note)
    message = text.encode("utf-8")
    verified: list[tuple[str, int]] = []
    checked_lines: set[str] = set()
    for line in lines:
        name, key_hash, signature = _parse_signature_line(line)
        candidates = known.get((name, key_hash))
        if candidates is None:
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{key_hash:08x}: several verifier keys match")
        if line in checked_lines:
            continue
        checked_lines.add(line)
        _verify_signature(candidates[0], message, signature)
        if (name, key_hash) not in verified:
            verified.append((name, key_hash))
    if not verified:
        raise NoteError(
            "note has no signature from a known key: it was changed, or signed by another key "
            "than the one given; check the key, and do not trust the note until it verifies"
        )
    return text, [name for name, _ in verified]


def open_note(note: str | bytes, verifier_keys: Iterable[str]) -> str:
    """Open a signed note and return its text (Go's ``note.Open``); see
    :func:`open_with_signatures`."""
    return open_with_signatures(note, verifier_keys)[0]


def __getattr__(name: str) -> Callable[[str | bytes, Iterable[str]], str]:
    # ``note.open`` was this function's first name; it shadowed the builtin. Kept for one
    # release (docs/architecture.md, "Renamed"), then removed.
    if name == "open":
        warnings.warn(
            "auditlog.note.open is deprecated: use auditlog.note.open_note",
            DeprecationWarning,
            stacklevel=2,
        )
        return open_note
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cosign(checkpoint_text: str, signer_key: str, timestamp: int) -> str:
    """Cosign a checkpoint as a witness and return the signature line, newline included.

    The signed message is ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the checkpoint
    text; the line carries base64(key hash || timestamp as 8 big-endian bytes || signature).
    ``timestamp`` is POSIX seconds, passed in so that callers control time.
    """
    Checkpoint.from_text(checkpoint_text)
    _require_timestamp(timestamp)
    key = parse_signer_key(signer_key)
    if key.algorithm != ALGORITHM_COSIGNATURE_V1:
        raise NoteError("cosign takes a witness signer key (type 0x04); see generate_witness_key")
    message = _cosignature_message(timestamp, checkpoint_text.encode("utf-8"))
    signature = key._private_key().sign(message)
    stamped = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
    return _signature_line(key.name, key.key_hash, stamped)


def verify_cosignature(checkpoint_text: str, signature_line: str, verifier_key: str) -> int:
    """Verify one witness cosignature line on a checkpoint and return its timestamp.

    The line may end with its newline or not. The caller decides whether the returned timestamp
    is fresh enough; this function only says that the witness signed it.
    """
    key = parse_verifier_key(verifier_key)
    if key.algorithm != ALGORITHM_COSIGNATURE_V1:
        raise NoteError("verify_cosignature takes a witness verifier key (type 0x04)")
    Checkpoint.from_text(checkpoint_text)
    line = signature_line.removesuffix("\n")
    if _FORBIDDEN_IN_NOTE.search(line) is not None or "\n" in line:
        raise NoteError("a cosignature is one line without control characters")
    name, key_hash, signature = _parse_signature_line(line)
    if (name, key_hash) != (key.name, key.key_hash):
        raise NoteError(f"cosignature is not from witness key {key.name}+{key.key_hash:08x}")
    return _verify_cosignature(key, checkpoint_text.encode("utf-8"), signature)


def _generate(name: str, algorithm: int) -> tuple[str, str]:
    # Go's GenerateKey accepts any name and so can mint keys its own NewSigner refuses; checking
    # here catches the mistake when the key is made rather than when it is first used.
    _require_name(name, "key")
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    key_hash = _key_hash(name, bytes([algorithm]) + public)
    seed = private.private_bytes_raw()
    signer = "PRIVATE+KEY+" + _format_key(name, key_hash, algorithm, seed)
    return signer, _format_key(name, key_hash, algorithm, public)


def _format_key(name: str, key_hash: int, algorithm: int, key: bytes) -> str:
    return f"{name}+{key_hash:08x}+{_b64encode(bytes([algorithm]) + key)}"


def _key_hash(name: str, encoded_key: bytes) -> int:
    """First four bytes, big-endian, of SHA-256(name || "\\n" || algorithm || public key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + encoded_key).digest()
    return int.from_bytes(digest[:4], "big")


def _is_valid_name(name: str) -> bool:
    # Go requires a non-empty name without '+' or Unicode spaces. Control characters are also
    # refused: Go would accept them in a key, but no note carrying the name could ever be opened.
    return (
        name != ""
        and "+" not in name
        and not any(ch in _GO_SPACES for ch in name)
        and _FORBIDDEN_IN_NOTE.search(name) is None
    )


def _require_name(name: str, what: str) -> None:
    if not _is_valid_name(name):
        raise NoteError(
            f"invalid {what} name: it must be non-empty, without '+', spaces or control characters"
        )


def _require_no_surrounding_space(key: str, what: str) -> None:
    # Go's base64 decoder skips newlines, so Go takes a key with the newline of the file it was
    # read from. This module refuses such a key, and says why rather than "not base64".
    if key != key.strip():
        raise NoteError(f"{what} has leading or trailing whitespace; strip the line it came from")


def _parse_key_hash(text: str, what: str) -> int:
    # int(text, 16) would also take "0x", "_", signs and surrounding spaces; Go takes none.
    if _KEY_HASH_HEX.fullmatch(text) is None:
        raise NoteError(f"malformed {what}: the key hash must be 8 hexadecimal digits")
    return int(text, 16)


def _require_algorithm(algorithm: int, what: str) -> None:
    if algorithm not in (ALGORITHM_ED25519, ALGORITHM_COSIGNATURE_V1):
        raise NoteError(
            f"{what} has unsupported algorithm 0x{algorithm:02x} "
            "(0x01 for Ed25519 notes, 0x04 for Ed25519 cosignatures)"
        )


def _require_note_text(text: str, what: str) -> None:
    if not text.endswith("\n"):
        raise NoteError(f"{what} must be non-empty and end with a newline")
    if _FORBIDDEN_IN_NOTE.search(text) is not None:
        raise NoteError(f"{what} must be valid UTF-8 without control characters except newline")


def _require_line(line: str, what: str) -> None:
    if not isinstance(line, str) or line == "":
        raise NoteError(f"{what} must be a non-empty string")
    if "\n" in line or _FORBIDDEN_IN_NOTE.search(line) is not None:
        raise NoteError(f"{what} must be one line without control characters")


def _require_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteError("cosignature timestamp must be an int of POSIX seconds")
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp must be between 0 and 2^63 - 1")


def _index_verifier_keys(verifier_keys: Iterable[str]) -> dict[tuple[str, int], list[VerifierKey]]:
    # A str is itself an iterable of str; without this check one key would be read as many
    # one-character keys and fail with a misleading message.
    if isinstance(verifier_keys, str):
        raise NoteError("verifier_keys must be a collection of key strings, not one string")
    known: dict[tuple[str, int], list[VerifierKey]] = {}
    for text in verifier_keys:
        key = parse_verifier_key(text)
        same = known.setdefault((key.name, key.key_hash), [])
        if key not in same:
            same.append(key)
    return known


def signatures_canonical(note: str | bytes) -> bool:
    """Whether every signature line of a (well-formed) note is in canonical base64.

    Verification, like Go's, ignores the unused low bits of a signature's last base64
    character; a log that binds every byte of its own notes checks this as well, so that no
    bit of a stored note can change unnoticed. False for a malformed note.
    """
    try:
        _, lines = _split_note(note)
    except NoteError:
        return False
    for line in lines:
        encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")[2]
        data = _b64decode(encoded)
        if data is None or _b64encode(data) != encoded:
            return False
    return True


def _split_note(note: str | bytes) -> tuple[str, list[str]]:
    """Check a note's characters and split it into its text and its signature lines."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not valid UTF-8" + _DAMAGED) from None
    if _FORBIDDEN_IN_NOTE.search(note) is not None:
        raise NoteError(
            "malformed note: control characters other than newline are not allowed" + _DAMAGED
        )
    # The text ends at the last blank line: the text may contain blank lines, signatures not.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signature lines" + _DAMAGED)
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise NoteError(
            "malformed note: it must end with newline-terminated signature lines" + _DAMAGED
        )
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures" + _DAMAGED)
    return text, lines


def _parse_signature_line(line: str) -> tuple[str, int, bytes]:
    """Return the key name, key hash and signature bytes of one signature line."""
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError(
            "malformed note: a signature line must start with an em dash and a space" + _DAMAGED
        )
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    data = _b64decode(encoded)
    # Five bytes is Go's minimum: a key hash and at least one signature byte.
    if not _is_valid_name(name) or data is None or len(data) < 5:
        raise NoteError("malformed note: a signature line must be '— <name> <base64>'" + _DAMAGED)
    return name, int.from_bytes(data[:4], "big"), data[4:]


def _verify_signature(key: VerifierKey, text: bytes, signature: bytes) -> None:
    """Check a signature by a known key over a note text, by the rules of the key's type."""
    if key.algorithm == ALGORITHM_COSIGNATURE_V1:
        _verify_cosignature(key, text, signature)
    else:
        _verify_ed25519(key, text, signature)


def _verify_cosignature(key: VerifierKey, text: bytes, signature: bytes) -> int:
    """Check a timestamped cosignature over a checkpoint text and return its timestamp."""
    if len(signature) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
        _invalid_signature(key)
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        _invalid_signature(key)
    _verify_ed25519(key, _cosignature_message(timestamp, text), signature[_TIMESTAMP_SIZE:])
    return timestamp


def _verify_ed25519(key: VerifierKey, message: bytes, signature: bytes) -> None:
    if len(signature) != _SIGNATURE_SIZE:
        _invalid_signature(key)
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        _invalid_signature(key)


def _invalid_signature(key: VerifierKey) -> NoReturn:
    raise NoteError(f"invalid signature for key {key.name}+{key.key_hash:08x}" + _DAMAGED) from None


def _cosignature_message(timestamp: int, checkpoint_text: bytes) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n".encode("ascii") + checkpoint_text


def _signature_line(name: str, key_hash: int, signature: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {_b64encode(key_hash.to_bytes(4, 'big') + signature)}\n"


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode standard base64 as Go's StdEncoding does; return None if it is not base64.

    The pattern admits exactly what Go admits: whole groups of four, the last one optionally
    padded with one or two '='. It is checked first because binascii, even in strict mode, takes
    padding after a complete group ("AAAA=="), which Go refuses. Like Go, the unused low bits of
    the last character need not be zero.
    """
    if _BASE64.fullmatch(text) is None:
        return None
    return binascii.a2b_base64(text)
