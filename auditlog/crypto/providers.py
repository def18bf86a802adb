"""Root keys: the ``KeyProvider`` protocol and the providers that ship with auditlog.

A key provider holds the root key (the key-encryption key, KEK) and does exactly two things:
wrap a data key and unwrap it again, each bound to a context string so a wrapped key cannot be
moved to another chain or period. A KMS or HSM plugs in by implementing the protocol; the root
key then never enters this process.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Final, Literal, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from auditlog._fs import atomic_replace, create_exclusive, secure_delete
from auditlog._statefile import StateFile, read_state, state_bytes
from auditlog.errors import ConfigurationError, KeyMaterialError, PassphraseError, StateFileError

__all__ = [
    "PASSPHRASE_ENV",
    "CombinedKeyProvider",
    "EnvKeyProvider",
    "KeyProvider",
    "PassphraseKeyProvider",
]

PASSPHRASE_ENV: Final = "AUDITLOG_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_BYTES: Final = 32
# OWASP's recommendation for scrypt (2025): N=2^17, r=8, p=1, about 128 MiB and 0.3 s here.
DEFAULT_SCRYPT_N: Final = 2**17
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
# What a root key file may ask of scrypt; anything beyond is refused before scrypt runs.
_SCRYPT_MIN_N: Final = 2**10
_SCRYPT_MAX_N: Final = 2**20
_SCRYPT_MAX_R: Final = 32
_SCRYPT_MAX_P: Final = 16
_SCRYPT_MAX_MEMORY: Final = 1 << 30
_ROOT_KEY_REFUSAL: Final = (
    "the passphrase does not open this log's root key: check AUDITLOG_PASSPHRASE or "
    "the --passphrase you gave"
)


@runtime_checkable
class KeyProvider(Protocol):
    """Holds a root key; wraps and unwraps data keys under it.

    ``context`` is authenticated: unwrapping with another context must fail. Implementations
    must raise ``auditlog.errors.KeyMaterialError`` when a blob cannot be unwrapped.
    """

    @property
    def key_id(self) -> str:
        """A stable, non-secret name of the root key version that ``wrap`` uses now."""
        ...

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Encrypt and authenticate ``key`` under the root key, bound to ``context``."""
        ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """Return the key that ``wrap`` was given for this ``context``."""
        ...


def _unwrap_with_any(
    providers: Sequence[KeyProvider], wrapped: bytes, context: bytes
) -> bytes | None:
    """The key that the first of ``providers`` able to unwrap ``wrapped`` gives, else None.

    Both ways of holding root keys being rotated away (a passphrase provider's previous keys,
    ``CombinedKeyProvider``) fall back on their old keys through this.
    """
    for provider in providers:
        try:
            return provider.unwrap(wrapped, context)
        except KeyMaterialError:
            continue
    return None


class _AeadRootKey:
    """AES-256-GCM wrapping under one in-memory root key, with random 96-bit nonces.

    A root key wraps one data key per (chain, period): thousands over a log's life, far below
    the 2^32 random-nonce limit for AES-GCM.
    """

    def __init__(self, key_id: str, root_key: bytes, previous: Sequence[KeyProvider] = ()) -> None:
        if len(root_key) != _KEY_BYTES:
            raise KeyMaterialError("a root key must be 32 bytes")
        self._key_id = key_id
        self._aead = AESGCM(root_key)
        # Root keys being rotated away: still able to unwrap, never used to wrap.
        self._previous = list(previous)

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, b"auditlog/v1 wrap\0" + context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) < _NONCE_BYTES + _TAG_BYTES:
            raise KeyMaterialError(
                f"a wrapped key is {len(wrapped)} bytes, too short to be one: the file holding "
                "it was damaged; restore it from a backup"
            )
        nonce, body = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, b"auditlog/v1 wrap\0" + context)
        except InvalidTag:
            key = _unwrap_with_any(self._previous, wrapped, context)
            if key is None:
                raise KeyMaterialError(
                    f"a data key does not unwrap under root key {self._key_id!r}: the keyring "
                    "was damaged or belongs to another root key; restore it from a backup"
                ) from None
            return key


class PassphraseKeyProvider(_AeadRootKey):
    """The default provider: a random root key stored in a 0600 file, wrapped by a passphrase.

    The passphrase is stretched with scrypt; the file holds the scrypt parameters, its salt and
    the AES-GCM-wrapped root key, never the key in clear. Changing the passphrase rewraps only
    this file.
    """

    def __init__(
        self, path: Path, key_id: str, root_key: bytes, previous: Sequence[KeyProvider] = ()
    ) -> None:
        super().__init__(key_id, root_key, previous)
        self.path = path
        self._root_key = root_key

    def moved_to(self, path: Path) -> PassphraseKeyProvider:
        """This provider for its file moved to ``path`` (a log built aside, then renamed)."""
        return PassphraseKeyProvider(path, self.key_id, self._root_key, self._previous)

    @property
    def previous_key_ids(self) -> list[str]:
        """Ids of root keys being rotated away (still unwrapping, never wrapping)."""
        return [p.key_id for p in self._previous]

    @property
    def staged_path(self) -> Path:
        """Where a new root key waits while a rotation rewraps the data keys."""
        return self.path.with_name(self.path.name + ".next")

    @classmethod
    def create(
        cls, path: Path, passphrase: str | None = None, *, scrypt_n: int = DEFAULT_SCRYPT_N
    ) -> PassphraseKeyProvider:
        """Make a new random root key and store it at ``path``, wrapped by the passphrase."""
        secret = _passphrase(passphrase)
        key_id, root_key = _create_root(path, secret, scrypt_n)
        return cls(path, key_id, root_key)

    @classmethod
    def open(cls, path: Path, passphrase: str | None = None) -> PassphraseKeyProvider:
        """Unlock the root key stored at ``path``."""
        secret = _passphrase(passphrase)
        key_id, root_key = _unseal_root(_read_root_doc(path), secret, _ROOT_KEY_REFUSAL)
        current = cls(path, key_id, root_key)
        if current.staged_key_waits():
            # A rotation was interrupted: data keys may be wrapped by either root key.
            return current._load_staged(secret, previous=[current])
        return current

    def discard_staged_remnant(self) -> bool:
        """Remove a staged root key file that does not parse (see ``staged_key_waits``);
        whether there was one. For a writer, which holds the log lock."""
        if self.staged_path.exists() and not self.staged_key_waits():
            secure_delete(self.staged_path)
            return True
        return False

    def staged_key_waits(self) -> bool:
        """Whether a staged root key waits for its rotation to finish. A staged file that does
        not parse is what a crash leaves while it is zeroed after the commit (``root.key``
        then holds the key already) or while it is first written (no key was rewrapped under
        it yet): either way nothing is wrapped by it alone, so it is passed over (and removed
        by the next rotation)."""
        if not self.staged_path.exists():
            return False
        try:
            read_state(self.staged_path, RootKeyFile)
        except StateFileError:
            return False
        return True

    def _load_staged(self, secret: str, previous: Sequence[KeyProvider]) -> PassphraseKeyProvider:
        key_id, root_key = _unseal_root(
            read_state(self.staged_path, RootKeyFile),
            secret,
            "the staged root key of an interrupted rotation does not open with this "
            "passphrase; finish the rotation with the passphrase it was started with",
        )
        return PassphraseKeyProvider(self.path, key_id, root_key, previous)

    def stage_rotation(
        self, passphrase: str | None = None, *, scrypt_n: int | None = None
    ) -> PassphraseKeyProvider:
        """Make a new root key (stored beside the current one as ``root.key.next``).

        Returns a provider that wraps with the new key and still unwraps with this one; the
        caller rewraps every data key with it, then calls ``commit_rotation``. Resumes a
        rotation already staged. The passphrase must be the current one.
        """
        secret = _passphrase(passphrase)
        doc = _read_root_doc(self.path)
        # The new key is sealed with this passphrase, so it must open the current key. This
        # checks it with one scrypt run; the file is read once for the check and for its cost.
        _unseal_root(doc, secret, _ROOT_KEY_REFUSAL)
        if self.staged_key_waits():
            return self._load_staged(secret, previous=[self])
        if self.staged_path.exists():
            secure_delete(self.staged_path)  # the remnant of a crash (see staged_key_waits)
        n = scrypt_n if scrypt_n is not None else doc.n
        key_id, root_key = _create_root(self.staged_path, secret, n)
        return PassphraseKeyProvider(self.path, key_id, root_key, previous=[self])

    def commit_rotation(self) -> None:
        """Make the staged root key the only one; the old one's file bytes are overwritten."""
        atomic_replace(self.path, self.staged_path.read_bytes())
        secure_delete(self.staged_path)
        self._previous = []

    def change_passphrase(self, new_passphrase: str, *, scrypt_n: int | None = None) -> None:
        """Rewrap the root key under a new passphrase; the data keys are untouched."""
        doc = read_state(self.path, RootKeyFile)
        n = scrypt_n if scrypt_n is not None else doc.n
        atomic_replace(self.path, _seal_root(self._root_key, self.key_id, new_passphrase, n))


def _passphrase(passphrase: str | None) -> str:
    secret = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV)
    if not secret:
        raise ConfigurationError(
            f"a passphrase is needed to unlock the log's keys: set {PASSPHRASE_ENV} or pass "
            "passphrase=... (--passphrase on the command line)"
        )
    return secret


def _create_root(path: Path, secret: str, n: int) -> tuple[str, bytes]:
    """Make a random root key and its id; store them at ``path``, sealed by ``secret``."""
    root_key = secrets.token_bytes(_KEY_BYTES)
    key_id = "root-" + secrets.token_hex(4)
    create_exclusive(path, _seal_root(root_key, key_id, secret, n))
    return key_id, root_key


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_KEY_BYTES, n=n, r=r, p=p).derive(secret.encode("utf-8"))


def _root_aad(key_id: str) -> bytes:
    return b"auditlog/v1 root-key\0" + key_id.encode("ascii")


class RootKeyFile(StateFile):
    """``keys/root.key``: the root key, wrapped by a key stretched from the passphrase."""

    FORMAT: ClassVar[str] = "auditlog-root-key"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "the root key file"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; without it no key of the log can be unwrapped"
    )

    key_id: str = Field(pattern=r"^[!-~]{1,128}$")
    kdf: Literal["scrypt"]
    n: int
    r: int
    p: int
    salt: bytes = Field(min_length=16, max_length=64)
    nonce: bytes = Field(min_length=_NONCE_BYTES, max_length=_NONCE_BYTES)
    wrapped: bytes = Field(min_length=_TAG_BYTES + 1, max_length=1024)

    @model_validator(mode="after")
    def _bounded_cost(self) -> Self:
        # Checked when the file is read, before scrypt runs: a file whose cost was raised would
        # otherwise hang the next open or exhaust its memory.
        problem = _scrypt_cost_problem(self.n, self.r, self.p)
        if problem is not None:
            raise PydanticCustomError("scrypt_cost", problem)
        return self


def _scrypt_cost_problem(n: int, r: int, p: int) -> str | None:
    """What is wrong with scrypt parameters (n, r, p), or None if they are within bounds.

    n is a power of two from 2**10 to 2**20, r is 1-32, p is 1-16, and the memory scrypt needs,
    128 * n * r bytes, is at most 1 GiB.
    """
    if not (_SCRYPT_MIN_N <= n <= _SCRYPT_MAX_N and n & (n - 1) == 0):
        return "scrypt n must be a power of two from 2**10 to 2**20"
    if not 1 <= r <= _SCRYPT_MAX_R:
        return f"scrypt r must be from 1 to {_SCRYPT_MAX_R}"
    if not 1 <= p <= _SCRYPT_MAX_P:
        return f"scrypt p must be from 1 to {_SCRYPT_MAX_P}"
    if 128 * n * r > _SCRYPT_MAX_MEMORY:
        return "scrypt n * r * 128 bytes (the memory it takes) must be at most 1 GiB"
    return None


def _seal_root(root_key: bytes, key_id: str, secret: str, n: int) -> bytes:
    problem = _scrypt_cost_problem(n, _SCRYPT_R, _SCRYPT_P)
    if problem is not None:
        raise ConfigurationError(f"{problem}; the default is 2**17 (scrypt_n=None)")
    salt = os.urandom(16)
    nonce = os.urandom(_NONCE_BYTES)
    kek = _scrypt(secret, salt, n, _SCRYPT_R, _SCRYPT_P)
    wrapped = AESGCM(kek).encrypt(nonce, root_key, _root_aad(key_id))
    doc = RootKeyFile(
        key_id=key_id,
        kdf="scrypt",
        n=n,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        salt=salt,
        nonce=nonce,
        wrapped=wrapped,
    )
    return state_bytes(doc)


def _unseal_root(doc: RootKeyFile, secret: str, refusal: str) -> tuple[str, bytes]:
    """(key id, root key) of a root key file, or ``PassphraseError(refusal)``."""
    kek = _scrypt(secret, doc.salt, doc.n, doc.r, doc.p)
    try:
        return doc.key_id, AESGCM(kek).decrypt(doc.nonce, doc.wrapped, _root_aad(doc.key_id))
    except InvalidTag:
        raise PassphraseError(refusal) from None


def _read_root_doc(path: Path) -> RootKeyFile:
    """The root key file at ``path``, parsed; a missing file is a misconfigured log."""
    if not path.exists():
        raise ConfigurationError(
            f"no root key file at {path}: pass the log directory that `auditlog init` "
            "created, or the key provider the log was created with"
        )
    return read_state(path, RootKeyFile)


class CombinedKeyProvider:
    """Wraps with ``current``; unwraps with whichever provider can: for rotating external keys.

    Open a log with ``CombinedKeyProvider(new, old)`` to finish a root-key rotation between
    two KMS keys that was interrupted.
    """

    def __init__(self, current: KeyProvider, *previous: KeyProvider) -> None:
        self._current = current
        self._previous = previous

    @property
    def key_id(self) -> str:
        return self._current.key_id

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._current.wrap(key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return self._current.unwrap(wrapped, context)
        except KeyMaterialError:
            key = _unwrap_with_any(self._previous, wrapped, context)
            if key is None:
                raise  # the current key's refusal, which names the key the caller expects
            return key


class EnvKeyProvider(_AeadRootKey):
    """A root key taken from an environment variable (base64 of 32 bytes).

    Meant for tests and for deployments whose secret manager injects the key into the
    environment; the key never touches the disk through auditlog.
    """

    def __init__(self, variable: str = "AUDITLOG_ROOT_KEY", key_id: str | None = None) -> None:
        value = os.environ.get(variable)
        if not value:
            raise ConfigurationError(
                f"{variable} is not set: put a base64-encoded 32-byte root key in it, e.g. the "
                "output of `openssl rand -base64 32`"
            )
        try:
            root_key = base64.b64decode(value, validate=True)
        except ValueError:
            raise ConfigurationError(f"{variable} is not valid base64") from None
        if len(root_key) != _KEY_BYTES:
            raise ConfigurationError(f"{variable} must hold 32 bytes, base64-encoded")
        super().__init__(key_id or f"env-{variable}", root_key)
