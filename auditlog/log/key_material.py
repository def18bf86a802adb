"""The keys a log handle holds: the root key provider, each chain's keyring, the signing key
and the hold-token key — unlocked when first needed, kept for the handle's life.

The log's own secrets (checkpoint signing key, hold-token key) are ``WrappedKeyFile`` s under
``keys/``, wrapped by the root key and bound to the log's origin.
"""

from __future__ import annotations

import secrets
import threading
from typing import ClassVar, Literal

from auditlog import note
from auditlog.crypto.keys import DEFAULT_CACHE_SECONDS, ChainKeyring
from auditlog.crypto.providers import KeyProvider, PassphraseKeyProvider
from auditlog.crypto.wrapped import WrappedKey, WrappedKeyFile
from auditlog.errors import ConfigurationError
from auditlog.storage.layout import LogLayout

__all__ = ["CheckpointKeyFile", "HoldKeyFile", "KeyMaterial"]


class CheckpointKeyFile(WrappedKey):
    """``keys/checkpoint.key``: the log's Ed25519 checkpoint signer key, wrapped."""

    FORMAT: ClassVar[str] = "auditlog-checkpoint-key"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "the log's checkpoint signing key"
    REMEDY: ClassVar[str] = "restore it from a backup: without it the log cannot sign"

    verifier_key: str
    wrapped: bytes


class HoldKeyFile(WrappedKey):
    """``keys/hold.key``: the key of the subject tokens in legal holds, wrapped."""

    FORMAT: ClassVar[str] = "auditlog-hold-key"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "the log's hold-token key"
    REMEDY: ClassVar[str] = "restore it from a backup: without it holds on subjects cannot bind"

    wrapped: bytes


def _checkpoint_key_file(layout: LogLayout, origin: str) -> WrappedKeyFile[CheckpointKeyFile]:
    context = b"auditlog/v1 checkpoint-key\0" + origin.encode("utf-8")
    return WrappedKeyFile(layout.checkpoint_key, CheckpointKeyFile, context)


def _hold_key_file(layout: LogLayout, origin: str) -> WrappedKeyFile[HoldKeyFile]:
    context = b"auditlog/v1 hold-key\0" + origin.encode("utf-8")
    return WrappedKeyFile(layout.hold_key, HoldKeyFile, context)


class KeyMaterial:
    """The keys of one log handle. Thread-safe; nothing is unlocked before it is needed."""

    def __init__(
        self,
        layout: LogLayout,
        origin: str,
        provider_doc: dict[str, str],
        provider: KeyProvider | None,
        passphrase: str | None,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self._layout = layout
        self._cache_seconds = cache_seconds
        self._origin = origin
        self._provider_doc = provider_doc
        self._provider = provider
        self.passphrase = passphrase
        self._keyrings: dict[str, ChainKeyring] = {}
        self._signer: str | None = None
        self._lock = threading.RLock()

    @staticmethod
    def create_log_keys(layout: LogLayout, provider: KeyProvider, origin: str) -> str:
        """Make a new log's signing and hold-token keys; returns the verifier key."""
        signer, verifier = note.generate_key(origin)
        _checkpoint_key_file(layout, origin).create(
            signer.encode("ascii"), provider, verifier_key=verifier
        )
        _hold_key_file(layout, origin).create(secrets.token_bytes(32), provider)
        return verifier

    @property
    def provider_type(self) -> str:
        return self._provider_doc.get("type", "?")

    def provider(self) -> KeyProvider:
        """The root key provider (the passphrase is stretched on first use)."""
        with self._lock:
            if self._provider is None:
                if self._provider_doc.get("type") != "passphrase":
                    raise ConfigurationError(
                        "this log's root key lives in an external key provider; pass "
                        "key_provider=... to AuditLog.open"
                    )
                self._provider = PassphraseKeyProvider.open(self._layout.root_key, self.passphrase)
            return self._provider

    def use_provider(self, provider: KeyProvider, provider_doc: dict[str, str]) -> None:
        """Use ``provider`` from now on (after a root-key rotation)."""
        with self._lock:
            self._provider = provider
            self._provider_doc = provider_doc

    def keyring(self, chain: str) -> ChainKeyring:
        """The keyring of ``chain`` (created empty on first use by a writer)."""
        with self._lock:
            keyring = self._keyrings.get(chain)
            if keyring is None:
                keyring = ChainKeyring(
                    self._layout.chain(chain).keyring, self.provider(), f"{self._origin}/{chain}"
                )
                keyring.cache_seconds = self._cache_seconds
                self._keyrings[chain] = keyring
            return keyring

    def signer(self) -> str:
        """The log's checkpoint signer key (C2SP note signer key), unwrapped once."""
        with self._lock:
            if self._signer is None:
                file = _checkpoint_key_file(self._layout, self._origin)
                self._signer = file.unwrap(self.provider()).decode("ascii")
            return self._signer

    def hold_key(self) -> bytes:
        """The key of the subject tokens in legal holds."""
        return _hold_key_file(self._layout, self._origin).unwrap(self.provider())

    def rewrap_log_keys(self, new: KeyProvider) -> None:
        """Wrap the log's own secrets under ``new`` (which still unwraps the old root key)."""
        _checkpoint_key_file(self._layout, self._origin).rewrap(new, new)
        _hold_key_file(self._layout, self._origin).rewrap(new, new)
