"""The witness wire format (``add-checkpoint`` requests, proof lines) and the client's check.

An ``add-checkpoint`` request body (c2sp.org/tlog-witness) is an ``old <size>`` line, the
consistency proof as base64 lines, an empty line, then the signed checkpoint; this module parses
and formats it, and checks the values a request carries. :func:`verify_witnessed` is what a
client runs: a checkpoint counts only with cosignatures from enough of the witnesses it trusts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Final

from auditlog import merkle, note
from auditlog.errors import ConfigurationError, NoteError, ProofError

__all__ = [
    "MAX_PROOF_LINES",
    "format_add_checkpoint_request",
    "parse_add_checkpoint_request",
    "parse_proof_lines",
    "verify_witnessed",
]

MAX_PROOF_LINES: Final = 63
"""Most consistency proof lines an ``add-checkpoint`` request may carry (c2sp.org/tlog-witness)."""
_OLD_SIZE_LINE: Final = re.compile("old (0|[1-9][0-9]{0,19})")
_MAX_TREE_SIZE: Final = 2**64 - 1
_MAX_QUOTED: Final = 200  # longest origin quoted in an error message


def verify_witnessed(
    note_text: str, log_verifier_key: str, witness_keys: Sequence[str], threshold: int
) -> note.Checkpoint:
    """Check that a checkpoint is signed by its log and cosigned by ``threshold`` witnesses.

    ``witness_keys`` are the witness verifier keys (type 0x04) the caller trusts. Keys that
    share an Ed25519 public key count once, whatever their names: a v1 cosignature does not sign
    the witness's name, so one witness could otherwise relabel its cosignature and count twice.
    Every signature by one of the given keys must verify. Returns the parsed checkpoint; raises
    ``NoteError`` otherwise, and for a policy that can never hold (no keys, a threshold below 1
    or above the number of distinct keys).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise NoteError("the witness threshold must be an int")
    if isinstance(witness_keys, str):
        raise NoteError("witness_keys must be a collection of key strings, not one string")
    log_key = note.parse_verifier_key(log_verifier_key)
    if log_key.algorithm != note.ALGORITHM_ED25519:
        raise NoteError("the log's verifier key must be an Ed25519 note key (type 0x01)")
    by_public_key: dict[bytes, list[str]] = {}
    for text in witness_keys:
        key = note.parse_verifier_key(text)
        if key.algorithm != note.ALGORITHM_COSIGNATURE_V1:
            raise NoteError(f"witness key {key.name} is not a cosignature key (type 0x04)")
        by_public_key.setdefault(key.public_key, []).append(text)
    if threshold < 1 or threshold > len(by_public_key):
        raise NoteError(
            f"a policy of {threshold} of {len(by_public_key)} distinct witness keys can never "
            "be met safely: the threshold must be between 1 and the number of keys"
        )
    # First verify every signature from every given key at once: a forged or malformed line
    # fails here, so the per-witness checks below can read any failure as "not cosigned".
    note.open_with_signatures(note_text, [log_verifier_key, *witness_keys])
    text = note.open_note(note_text, [log_verifier_key])
    checkpoint = note.Checkpoint.from_text(text)
    cosigned = sum(1 for keys in by_public_key.values() if _has_signature(note_text, keys))
    if cosigned < threshold:
        raise NoteError(
            f"checkpoint of size {checkpoint.size} for {_quote(checkpoint.origin)} has valid "
            f"cosignatures from {cosigned} of the trusted witnesses, fewer than the {threshold} "
            "required"
        )
    return checkpoint


def parse_add_checkpoint_request(body: bytes) -> tuple[int, list[bytes], str]:
    """Parse a c2sp.org/tlog-witness ``add-checkpoint`` request body.

    The body is an ``old <size>`` line, up to 63 lines each the base64 of one 32-byte hash, an
    empty line, then the signed checkpoint. Returns ``(old_size, proof, signed_checkpoint)``;
    the checkpoint's signatures are not checked here (:meth:`Witness.add_checkpoint` does).
    Every line ends in a newline; anything else, such as CRLF line ends, is refused with
    ``ProofError`` for a bad proof line and ``NoteError`` for the rest.
    """
    if not isinstance(body, bytes):
        raise NoteError("an add-checkpoint request body must be bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed add-checkpoint request: not valid UTF-8") from None
    head, separator, signed = text.partition("\n\n")
    if not separator:
        raise NoteError(
            "malformed add-checkpoint request: no empty line between the proof and the checkpoint"
        )
    old_line, *proof_lines = head.split("\n")
    match = _OLD_SIZE_LINE.fullmatch(old_line)
    if match is None or int(match.group(1)) > _MAX_TREE_SIZE:
        raise NoteError(
            "malformed add-checkpoint request: the first line must be 'old <size>' in decimal "
            "without leading zeros"
        )
    proof = parse_proof_lines(proof_lines, first_line=2)
    _require_signed_checkpoint(signed)
    return int(match.group(1)), proof, signed


def parse_proof_lines(lines: Sequence[str], *, first_line: int = 1) -> list[bytes]:
    """Parse consistency proof lines, each the canonical base64 of one 32-byte hash.

    At most :data:`MAX_PROOF_LINES` lines (no line ends are expected in ``lines``). Raises
    ``ProofError`` naming the first bad line, counted from ``first_line``.
    """
    if isinstance(lines, str) or not isinstance(lines, Sequence):
        raise ProofError("proof lines must be a sequence of strings")
    if len(lines) > MAX_PROOF_LINES:
        raise ProofError(f"a proof may have at most {MAX_PROOF_LINES} lines, not {len(lines)}")
    return [_parse_proof_line(line, number) for number, line in enumerate(lines, first_line)]


def format_add_checkpoint_request(old_size: int, proof: Sequence[bytes], note_text: str) -> bytes:
    """Build a c2sp.org/tlog-witness ``add-checkpoint`` request body; see the parser."""
    old_size = _require_size(old_size, "old size")
    hashes = _require_proof_hashes(proof)
    if len(hashes) > MAX_PROOF_LINES:
        raise ProofError(f"a proof may have at most {MAX_PROOF_LINES} lines, not {len(hashes)}")
    _require_signed_checkpoint(note_text)
    lines = [f"old {old_size}", *(_b64(h) for h in hashes)]
    return ("".join(line + "\n" for line in lines) + "\n" + note_text).encode("utf-8")


def _has_signature(note_text: str, keys: list[str]) -> bool:
    """Whether a note, all of whose known signatures verified, carries one by any of ``keys``."""
    try:
        note.open_note(note_text, keys)
    except NoteError:
        return False
    return True


def _require_signed_checkpoint(signed: object) -> None:
    """Check the shape of a signed checkpoint: a checkpoint text, a blank line, signatures.

    Signatures are checked by whoever holds the keys; this only refuses what cannot be one.
    """
    if not isinstance(signed, str) or not signed.endswith("\n"):
        raise NoteError("a signed checkpoint must be text ending in a newline")
    split = signed.rfind("\n\n")
    if split < 0 or split + 2 == len(signed):
        raise NoteError("a signed checkpoint needs a blank line and then signature lines")
    note.Checkpoint.from_text(signed[: split + 1])


def _parse_proof_line(line: object, number: int) -> bytes:
    decoded = b""
    if isinstance(line, str):
        try:
            decoded = base64.b64decode(line, validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII character
            decoded = b""
    if len(decoded) != merkle.HASH_SIZE or _b64(decoded) != line:
        raise ProofError(
            f"proof line {number} is not the canonical base64 of a {merkle.HASH_SIZE}-byte hash"
        )
    return decoded


def _require_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{what} must be an int")
    if not 0 <= value <= _MAX_TREE_SIZE:
        raise ProofError(f"{what} must be between 0 and 2^64 - 1, got {value}")
    return value


def _require_proof_hashes(proof: object) -> list[bytes]:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError("a proof must be a sequence of hashes")
    hashes = list(proof)
    for position, item in enumerate(hashes):
        if not isinstance(item, bytes) or len(item) != merkle.HASH_SIZE:
            raise ProofError(f"proof hash {position} is not {merkle.HASH_SIZE} bytes")
    return hashes


def _require_origin(origin: object) -> None:
    # The checks of a checkpoint's origin line, applied before the log is followed rather than
    # when its first checkpoint arrives.
    if not isinstance(origin, str):
        raise ConfigurationError("a log origin must be a string")
    note.Checkpoint(origin, 0, merkle.EMPTY_ROOT)


def _quote(origin: str) -> str:
    return repr(origin if len(origin) <= _MAX_QUOTED else origin[:_MAX_QUOTED] + "...")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
