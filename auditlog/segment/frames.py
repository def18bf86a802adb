"""Record frames: compress, encrypt and bind each record to its place; and the reverse.

A frame is AES-256-GCM(key = the block's key, nonce = the record's position in the block,
plaintext = codec byte || (compressed) canonical record, associated data = origin || NUL ||
chain index || leaf). The block key comes from the period's data key and the random salt in
the block header, so even when a crash makes the writer reuse chain indexes with other records,
no (key, nonce) pair is ever used twice.
"""

from __future__ import annotations

import hmac
import os
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar, Literal

from cryptography.exceptions import InvalidTag
from pydantic import Field

from auditlog._fs import make_private_dir
from auditlog._statefile import StateFile, read_state, write_state
from auditlog.codec import FrameCodec, dictionary_id
from auditlog.crypto.keys import LEAF_SALT_BYTES, PeriodKeys
from auditlog.errors import IntegrityError, KeyMaterialError, RecordRedactedError, StateFileError
from auditlog.merkle import leaf_hash
from auditlog.segment.blocks import ParsedBlock
from auditlog.segment.format import frame_aad, frame_nonce

__all__ = ["DictionaryFile", "DictionaryStore", "decrypt_block", "leaf_for"]


class DictionaryFile(StateFile):
    """``dicts/<period>.zdict``: a period's zstd dictionary, encrypted under the period key."""

    FORMAT: ClassVar[str] = "auditlog-dictionary"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "a compression dictionary"
    REMEDY: ClassVar[str] = "restore the chain's dicts/ directory from a backup"

    period: int
    dict_id: int
    nonce: bytes = Field(min_length=12, max_length=12)
    ciphertext: bytes


def leaf_for(salt: bytes, canonical: bytes) -> bytes:
    """leaf = SHA-256(0x00 || salt || canonical record): RFC 6962's leaf hash of salt||record."""
    return leaf_hash(salt + canonical)


def origin_prefix(origin: str) -> bytes:
    return origin.encode("utf-8") + b"\x00"


class DictionaryStore:
    """The zstd dictionaries of one chain, one per period, each encrypted under its period key.

    A dictionary is trained on records, so it holds personal data: it is never stored in clear
    and becomes unreadable when its period's key is shredded.
    """

    def __init__(self, directory: Path, origin: str) -> None:
        self._directory = directory
        self._origin = origin
        # Each codec with the keys it was opened under: it goes when they are no longer cached
        # (the keyring keeps unwrapped keys for key_cache_seconds), so a reader does not keep a
        # dictionary in clear longer than the key that opens it.
        self._codecs: dict[tuple[int, int], tuple[weakref.ref[PeriodKeys], FrameCodec]] = {}
        self._plain = FrameCodec(None)

    def path(self, period: int) -> Path:
        return self._directory / f"{period:010d}.zdict"

    def _aad(self, period: int, dict_id: int) -> bytes:
        return (
            b"auditlog/v1 dictionary\0"
            + self._origin.encode("utf-8")
            + b"\0"
            + period.to_bytes(4, "big")
            + dict_id.to_bytes(4, "big")
        )

    def save(self, keys: PeriodKeys, dictionary: bytes) -> int:
        """Store a period's dictionary, durably, before any block refers to it; returns its id."""
        dict_id = dictionary_id(dictionary)
        nonce = os.urandom(12)  # a handful of dictionaries per period key, ever
        sealed = keys.dictionary_aead.encrypt(nonce, dictionary, self._aad(keys.period, dict_id))
        doc = DictionaryFile(period=keys.period, dict_id=dict_id, nonce=nonce, ciphertext=sealed)
        make_private_dir(self._directory)
        write_state(self.path(keys.period), doc)
        self._codecs[(keys.period, dict_id)] = (weakref.ref(keys), FrameCodec(dictionary))
        return dict_id

    def forget(self, period: int) -> None:
        """Drop the in-memory codecs (dictionaries in clear) of a period."""
        for key in [k for k in self._codecs if k[0] == period]:
            del self._codecs[key]

    def stored_id(self, period: int) -> int | None:
        """The id of the period's stored dictionary, if there is one (no key needed)."""
        path = self.path(period)
        if not path.exists():
            return None
        return read_state(path, DictionaryFile).dict_id

    def codec(
        self, keys: PeriodKeys, dict_id: int, where: Mapping[str, object] | None = None
    ) -> FrameCodec:
        """The codec for frames of ``keys.period`` compressed with dictionary ``dict_id``.

        ``where`` (chain, segment, block) is added to the location of any error.
        """
        if dict_id == 0:
            return self._plain
        cached = self._codecs.get((keys.period, dict_id))
        if cached is not None:
            if cached[0]() is keys:
                return cached[1]
            self._drop_stale()
        where = {**(where or {}), "period": keys.period, "dictionary": dict_id}
        path = self.path(keys.period)
        if not path.exists():
            raise IntegrityError(
                "a block names a compression dictionary that is missing; restore the chain's "
                "dicts/ directory from a backup",
                location=where,
            )
        try:
            doc = read_state(path, DictionaryFile)
        except StateFileError as exc:
            raise IntegrityError(str(exc), location=where) from None
        if doc.dict_id != dict_id or doc.period != keys.period:
            raise IntegrityError(
                "dictionary file holds another dictionary than its name and the blocks say: it "
                "was replaced; restore it from a backup",
                location=where,
            )
        try:
            dictionary = keys.dictionary_aead.decrypt(
                doc.nonce, doc.ciphertext, self._aad(keys.period, dict_id)
            )
        except InvalidTag:
            raise IntegrityError(
                "dictionary file does not decrypt: it was changed, or it is of another log or "
                "key; restore it from a backup (the records of its period cannot be read "
                "without it)",
                location=where,
            ) from None
        codec = FrameCodec(dictionary)
        self._codecs[(keys.period, dict_id)] = (weakref.ref(keys), codec)
        return codec

    def _drop_stale(self) -> None:
        """Drop the codecs whose keys are gone (or were unwrapped again since)."""
        for key, (ref, _) in list(self._codecs.items()):
            if ref() is None:
                del self._codecs[key]


def decrypt_block(
    block: ParsedBlock,
    keys: PeriodKeys,
    codec: FrameCodec,
    origin: str,
    where: dict[str, object],
    *,
    positions: range | None = None,
    skip_redacted: bool = False,
) -> Iterator[tuple[int, bytes]]:
    """Yield (index, canonical record) for the block's frames, each checked against its leaf.

    A redacted record raises ``RecordRedactedError``, or is passed over with ``skip_redacted``.
    """
    header = block.header
    if keys.period != header.period:
        raise KeyMaterialError("keys of the wrong period were given for a block")
    aead = keys.frame_aead(header.block_salt)
    prefix = origin_prefix(origin)
    span = positions if positions is not None else range(header.count)
    if not span:
        return
    salts = keys.leaf_salts(header.first_index + span.start, len(span))
    for offset, position in enumerate(span):
        index = header.first_index + position
        leaf = block.leaf(position)
        frame = block.frame(position)
        if position in block.redacted:
            if skip_redacted:
                continue
            raise RecordRedactedError(
                f"record {index} of {origin} was redacted; only its leaf remains"
            )
        try:
            plaintext = aead.decrypt(
                frame_nonce(position), bytes(frame), frame_aad(prefix, index, leaf)
            )
        except InvalidTag:
            raise IntegrityError(
                "record frame does not decrypt: its bytes, its leaf or its place were changed",
                location={**where, "index": index},
            ) from None
        canonical = codec.decompress(plaintext)
        salt = salts[offset * LEAF_SALT_BYTES : (offset + 1) * LEAF_SALT_BYTES]
        if not hmac.compare_digest(leaf_for(salt, canonical), leaf):
            raise IntegrityError(
                "record does not hash to its leaf", location={**where, "index": index}
            )
        yield index, canonical
