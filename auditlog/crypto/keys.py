"""Data keys: one random 256-bit key per (chain, period), wrapped by the root key.

Every key used on records is derived from a period's data key with HKDF-SHA256, each under its
own label, so no two uses ever share a key:

- ``frame-key``: with a per-block random salt as HKDF salt, the AES-256-GCM key of one block;
- ``leaf-salt``: the AES-256 key whose ECB encryption of a record's index is its leaf salt;
- ``dictionary``: the AES-256-GCM key that encrypts the period's zstd dictionary.

The keyring file of a chain lists the wrapped data keys and the periods already shredded. It is
rewritten atomically and only under the chain's writer lock, so chains never contend for it.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import ClassVar, Final, Literal

from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import ECB
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from auditlog._statefile import StateFile, read_state, write_state
from auditlog.crypto.providers import KeyProvider
from auditlog.crypto.signed import SignedState, StateSigner
from auditlog.errors import KeyMaterialError, KeyShreddedError

__all__ = ["ChainKeyring", "KeyringFile", "KeyringFileV1", "PeriodKeys", "derive_subkey"]

KEY_BYTES: Final = 32
LEAF_SALT_BYTES: Final = 16
DEFAULT_CACHE_SECONDS: Final = 300.0


def derive_subkey(data_key: bytes, label: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256(IKM=data_key, salt, info="auditlog/v1 " + label), 32 bytes."""
    return HKDF(
        algorithm=SHA256(), length=KEY_BYTES, salt=salt, info=b"auditlog/v1 " + label
    ).derive(data_key)


class PeriodKeys:
    """The subkeys of one (chain, period) data key, derived once and kept in memory."""

    __slots__ = (
        "__weakref__",
        "_data_key",
        "_salt_encryptor",
        "_salt_lock",
        "dictionary_aead",
        "period",
    )

    def __init__(self, period: int, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise KeyMaterialError("a data key must be 32 bytes")
        self.period = period
        self._data_key = data_key
        # ECB over distinct 16-byte block indexes is a PRP evaluation per index: exactly the
        # keyed, batchable, collision-free salt function we want, not a confidentiality mode.
        cipher = Cipher(AES(derive_subkey(data_key, b"leaf-salt")), ECB())  # noqa: S305
        # One encryptor for the key's life: ECB keeps no state between calls, and building a
        # context costs more than salting a record. The lock keeps concurrent callers apart.
        self._salt_encryptor = cipher.encryptor()
        self._salt_lock = threading.Lock()
        self.dictionary_aead = AESGCM(derive_subkey(data_key, b"dictionary"))

    @property
    def data_key(self) -> bytes:
        """The period's data key itself: only to hand to a verification worker process
        (``auditlog.log.verify_workers``), which derives the same subkeys from it."""
        return self._data_key

    def leaf_salts(self, first_index: int, count: int) -> bytes:
        """The 16-byte salts of records ``first_index`` to ``first_index + count - 1``, joined."""
        indexes = b"".join(map(_SALT_INPUT.pack, range(first_index, first_index + count)))
        with self._salt_lock:
            salts: bytes = self._salt_encryptor.update(indexes)
        return salts

    def frame_aead(self, block_salt: bytes) -> AESGCM:
        """The AES-256-GCM key of the block whose header carries ``block_salt``."""
        return AESGCM(derive_subkey(self._data_key, b"frame-key", salt=block_salt))


# A record's index as the 16-byte AES block its leaf salt is the encryption of.
_SALT_INPUT: Final = struct.Struct(">8xQ")


class KeyringFileV1(StateFile):
    """A keyring of format v1 (unsigned): read only to migrate a log to v2."""

    FORMAT: ClassVar[str] = "auditlog-keyring"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "a chain's keyring"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; without it the chain's records cannot be read"
    )

    keys: dict[int, tuple[str, bytes]]
    """Period -> (id of the root key that wrapped it, the wrapped data key)."""
    shredded: dict[int, int]
    """Period -> when its key was destroyed (UTC microseconds)."""


class KeyringFile(SignedState):
    """``chains/<chain>/keyring``: the chain's data keys, wrapped, and its shredded periods,
    signed with the log's key (``auditlog.crypto.signed``)."""

    FORMAT: ClassVar[str] = "auditlog-keyring"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "a chain's keyring"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; without it the chain's records cannot be read"
    )

    keys: dict[int, tuple[str, bytes]]
    """Period -> (id of the root key that wrapped it, the wrapped data key)."""
    shredded: dict[int, int]
    """Period -> when its key was destroyed (UTC microseconds)."""


def _wrap_context(origin: str, period: int) -> bytes:
    return b"auditlog/v1 data-key\0" + origin.encode("utf-8") + b"\0" + period.to_bytes(4, "big")


class ChainKeyring:
    """The wrapped data keys of one chain, in ``<chain>/keyring`` (0600).

    Readers may hold one too; they reload the file when asked for a period they have not seen,
    because the chain's writer (perhaps another process) may have added it since.
    """

    def __init__(
        self,
        path: Path,
        provider: KeyProvider,
        origin: str,
        *,
        signer: StateSigner | None = None,
        place: str = "",
        on_store: Callable[[KeyringFile], None] | None = None,
        format_v1: bool = False,
        lock: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """``signer`` checks the file's signature on every load and signs every store (as
        ``place``, the file's path inside the log); ``on_store`` hears of every new version.
        Without a signer the file is neither checked nor signed (unit tests, tools).
        ``format_v1`` reads an unsigned keyring of format v1, and never writes (migration).
        ``lock``, if given, is held around each store and its ``on_store``."""
        self._path = path
        self._provider = provider
        self._origin = origin
        self._signer = signer
        self._place = place
        self._on_store = on_store
        self._lock = threading.Lock()
        self._wrapped: dict[int, tuple[str, bytes]] = {}
        self._shredded: dict[int, int] = {}
        self._generation = 0
        self._format_v1 = format_v1
        self._store_lock = lock or nullcontext
        self._cache: dict[int, tuple[PeriodKeys, float]] = {}
        self.cache_seconds = DEFAULT_CACHE_SECONDS
        self._load()

    @property
    def periods(self) -> list[int]:
        """Periods whose data key exists, oldest first."""
        return sorted(self._wrapped)

    @property
    def shredded(self) -> dict[int, int]:
        """Periods whose key was destroyed, with the time of destruction (UTC microseconds)."""
        return dict(self._shredded)

    @property
    def generation(self) -> int:
        """The generation of the keyring file as last loaded or stored (0: no file yet)."""
        return self._generation

    def _load(self) -> None:
        if not self._path.exists():
            self._wrapped, self._shredded, self._generation = {}, {}, 0
            return
        if self._format_v1:
            old = read_state(self._path, KeyringFileV1)
            self._wrapped, self._shredded = dict(old.keys), dict(old.shredded)
            return
        doc = read_state(self._path, KeyringFile)
        if self._signer is not None:
            self._signer.check(doc, self._place)
        self._wrapped = dict(doc.keys)
        self._shredded = dict(doc.shredded)
        self._generation = doc.generation

    def _store(self, *, scrub_old: bool = True) -> None:
        if self._format_v1:
            raise KeyMaterialError("a keyring of format v1 is read only: migrate the log first")
        doc = KeyringFile(
            keys=dict(sorted(self._wrapped.items())), shredded=dict(sorted(self._shredded.items()))
        )
        generation = self._generation + 1
        if self._signer is not None:
            doc = self._signer.sign(doc, self._place, generation=generation)
        else:
            doc = doc.model_copy(update={"generation": generation})
        with self._store_lock():
            # write_state first destroys what an interrupted earlier replacement left behind.
            write_state(self._path, doc, scrub_old=scrub_old)
            self._generation = generation
            if self._on_store is not None:
                self._on_store(doc)

    def get(self, period: int) -> PeriodKeys:
        """The keys of ``period``; raises ``KeyShreddedError`` if it was shredded."""
        with self._lock:
            keys = self._cached(period)
            if keys is not None:
                return keys
            if period not in self._wrapped and period not in self._shredded:
                self._load()
            return self._unwrap(period)

    def _cached(self, period: int) -> PeriodKeys | None:
        # Unwrapped keys are kept only for a while, so that a key shredded by another process
        # (or a keyring replaced by a rotation) does not live on in this one indefinitely.
        entry = self._cache.get(period)
        if entry is None:
            return None
        keys, since = entry
        if time.monotonic() - since > self.cache_seconds:
            del self._cache[period]
            self._load()
            return None
        return keys

    def get_or_create(self, period: int) -> PeriodKeys:
        """The keys of ``period``, creating and durably storing a new data key if it has none.

        Only the chain's writer calls this (it holds the chain lock), so the read-modify-write
        of the keyring file cannot race with another writer.
        """
        with self._lock:
            keys = self._cached(period)
            if keys is not None:
                return keys
            if period in self._shredded:
                raise KeyShreddedError(
                    f"period {period} of {self._origin} was shredded; records of that period "
                    "can no longer be written or read"
                )
            if period not in self._wrapped:
                data_key = os.urandom(KEY_BYTES)
                blob = self._provider.wrap(data_key, _wrap_context(self._origin, period))
                self._wrapped[period] = (self._provider.key_id, blob)
                # Adding a key leaves nothing behind worth scrubbing: the old file's content
                # is all in the new one. Shredding and rewrapping do scrub.
                self._store(scrub_old=False)
                keys = PeriodKeys(period, data_key)
                self._cache[period] = (keys, time.monotonic())
                return keys
            return self._unwrap(period)

    def shred(self, period: int, at_micros: int) -> bool:
        """Destroy a period's data key: it leaves the keyring, whose old bytes are overwritten.

        Returns False when the period was already shredded (shredding is idempotent). Key
        copies in backups of the keyring are outside this: see docs/retention.md.
        """
        with self._lock:
            self._load()
            self._cache.pop(period, None)
            if period in self._shredded:
                return False
            self._wrapped.pop(period, None)
            self._shredded[period] = at_micros
            self._store()
            return True

    def rewrap(self, provider: KeyProvider) -> int:
        """Wrap every data key under ``provider``'s current root key; returns how many.

        Used by root-key rotation: the segments are untouched, only this file changes.
        """
        with self._lock:
            self._load()
            for period, (_root, blob) in list(self._wrapped.items()):
                context = _wrap_context(self._origin, period)
                data_key = provider.unwrap(blob, context)  # it falls back to the old key
                self._wrapped[period] = (provider.key_id, provider.wrap(data_key, context))
            self._provider = provider
            self._store()
            return len(self._wrapped)

    def _unwrap(self, period: int) -> PeriodKeys:
        if period in self._shredded:
            raise KeyShreddedError(
                f"the data key of period {period} of {self._origin} was shredded by a "
                "retention sweep; its records are gone by design"
            )
        entry = self._wrapped.get(period)
        if entry is None:
            raise KeyMaterialError(
                f"no data key for period {period} of {self._origin}: the keyring is incomplete; "
                "restore it from a backup"
            )
        data_key = self._provider.unwrap(entry[1], _wrap_context(self._origin, period))
        keys = PeriodKeys(period, data_key)
        self._cache[period] = (keys, time.monotonic())
        return keys
