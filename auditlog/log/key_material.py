"""The keys a log handle holds: the root key provider, each chain's keyring, the signing key
and the hold-token key — unlocked when first needed, kept for the handle's life.

Trust comes from keys: once the root key is at hand, the checkpoint signing key is unwrapped and
the verifier key every signature is checked with is *derived* from it; the verifier key the
manifest names must be that one (``unlock``), or nothing is used. A handle without keys trusts
the verifier key it is given (pinned by an outsider) or, failing that, the manifest's.

The log's own secrets (checkpoint signing key, hold-token key) are ``WrappedKeyFile`` s under
``keys/``, wrapped by the root key and bound to the log's origin and to format v2.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import ClassVar, Literal

from auditlog import note
from auditlog.crypto.keys import DEFAULT_CACHE_SECONDS, ChainKeyring, KeyringFile
from auditlog.crypto.providers import KeyProvider, PassphraseKeyProvider
from auditlog.crypto.signed import StateSigner
from auditlog.crypto.wrapped import WrappedKey, WrappedKeyFile
from auditlog.errors import ConfigurationError, IntegrityError
from auditlog.storage.layout import LogLayout

__all__ = [
    "CheckpointKeyFile",
    "CheckpointKeyFileV1",
    "HoldKeyFile",
    "HoldKeyFileV1",
    "KeyMaterial",
    "checkpoint_key_file",
    "hold_key_file",
]


class CheckpointKeyFile(WrappedKey):
    """``keys/checkpoint.key``: the log's Ed25519 checkpoint signer key, wrapped (format v2)."""

    FORMAT: ClassVar[str] = "auditlog-checkpoint-key"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "the log's checkpoint signing key"
    REMEDY: ClassVar[str] = "restore it from a backup: without it the log cannot sign"

    verifier_key: str
    wrapped: bytes


class CheckpointKeyFileV1(CheckpointKeyFile):
    """``keys/checkpoint.key`` of format v1, read only to migrate a log."""

    VERSION: ClassVar[int] = 1


class HoldKeyFile(WrappedKey):
    """``keys/hold.key``: the key of the subject tokens in legal holds, wrapped (format v2)."""

    FORMAT: ClassVar[str] = "auditlog-hold-key"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "the log's hold-token key"
    REMEDY: ClassVar[str] = "restore it from a backup: without it holds on subjects cannot bind"

    wrapped: bytes


class HoldKeyFileV1(HoldKeyFile):
    """``keys/hold.key`` of format v1, read only to migrate a log."""

    VERSION: ClassVar[int] = 1


def _context(kind: str, origin: str, version: int) -> bytes:
    return f"auditlog/v{version} {kind}\0".encode() + origin.encode("utf-8")


def checkpoint_key_file(
    layout: LogLayout, origin: str, version: int = 2
) -> WrappedKeyFile[CheckpointKeyFile]:
    """The checkpoint key file of a log of format ``version``: its model and wrapping context
    (a v2 key does not unwrap as a v1 one, so a log cannot be passed off as v1)."""
    model = CheckpointKeyFile if version == 2 else CheckpointKeyFileV1
    return WrappedKeyFile(layout.checkpoint_key, model, _context("checkpoint-key", origin, version))


def hold_key_file(layout: LogLayout, origin: str, version: int = 2) -> WrappedKeyFile[HoldKeyFile]:
    """The hold key file of a log of format ``version``."""
    model = HoldKeyFile if version == 2 else HoldKeyFileV1
    return WrappedKeyFile(layout.hold_key, model, _context("hold-key", origin, version))


class KeyMaterial:
    """The keys of one log handle. Thread-safe; nothing is unlocked before it is needed."""

    def __init__(
        self,
        layout: LogLayout,
        origin: str,
        provider_doc: dict[str, str],
        claimed_verifier_key: str,
        provider: KeyProvider | None,
        passphrase: str | None,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self._layout = layout
        self._cache_seconds = cache_seconds
        self._origin = origin
        self._provider_doc = provider_doc
        self._claimed = claimed_verifier_key
        self._provider = provider
        self.passphrase = passphrase
        self._keyrings: dict[str, ChainKeyring] = {}
        self._signer: str | None = None
        self._lock = threading.RLock()
        self.on_keyring_store: Callable[[str, KeyringFile], object] | None = None
        """Called with (chain, new keyring file) whenever a keyring is stored."""

    @staticmethod
    def create_log_keys(layout: LogLayout, provider: KeyProvider, origin: str) -> str:
        """Make a new log's signing and hold-token keys; returns the verifier key."""
        signer, verifier = note.generate_key(origin)
        checkpoint_key_file(layout, origin).create(
            signer.encode("ascii"), provider, verifier_key=verifier
        )
        hold_key_file(layout, origin).create(secrets.token_bytes(32), provider)
        return verifier

    @property
    def provider_type(self) -> str:
        return self._provider_doc.get("type", "?")

    @property
    def unlocked(self) -> bool:
        """Whether the signing key was unwrapped (so the verifier key was derived from it)."""
        return self._signer is not None

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

    def unlock(self) -> str:
        """Unwrap the signing key and derive the verifier key from it; returns that key.

        ``IntegrityError`` if the manifest or the key file claims another verifier key: someone
        replaced the manifest's key (or the key file), and nothing signed under the claim is
        trusted.
        """
        with self._lock:
            if self._signer is None:
                file = checkpoint_key_file(self._layout, self._origin)
                doc = file.read()
                signer = file.unwrap(self.provider(), doc).decode("ascii")
                derived = note.verifier_from_signer(signer)
                if derived != self._claimed or derived != doc.verifier_key:
                    raise IntegrityError(
                        "the verifier key in manifest.json (or in keys/checkpoint.key) is not the "
                        "one of the log's signing key: the file was replaced by someone without "
                        "the key; nothing it vouches for was used. Restore manifest.json from a "
                        f"backup; the log's key is {derived}",
                        location={"file": "manifest.json"},
                    )
                self._signer = signer
            return note.verifier_from_signer(self._signer)

    @property
    def verifier_key(self) -> str:
        """The key signatures are checked with: derived if unlocked, else the manifest's."""
        return note.verifier_from_signer(self._signer) if self._signer else self._claimed

    def signer(self) -> str:
        """The log's checkpoint signer key (C2SP note signer key), unwrapped once."""
        self.unlock()
        assert self._signer is not None
        return self._signer

    def state_signer(self, verifier_key: str | None = None) -> StateSigner:
        """Signs and checks state files: with the derived key once unlocked (and then able to
        sign), else with ``verifier_key`` (an outsider's pin) or the manifest's key."""
        if self._signer is not None:
            return StateSigner(self._origin, self.verifier_key, self._signer)
        return StateSigner(self._origin, verifier_key or self._claimed)

    def keyring(self, chain: str) -> ChainKeyring:
        """The keyring of ``chain`` (created empty on first use by a writer), its signature
        checked on every load and made on every store."""
        with self._lock:
            keyring = self._keyrings.get(chain)
            if keyring is None:
                self.unlock()  # a keyring is checked with the derived key, never the claimed one
                files = self._layout.chain(chain)

                def stored(doc: KeyringFile, chain: str = chain) -> None:
                    if self.on_keyring_store is not None:
                        self.on_keyring_store(chain, doc)

                keyring = ChainKeyring(
                    files.keyring,
                    self.provider(),
                    f"{self._origin}/{chain}",
                    signer=self.state_signer(),
                    place=self._layout.relative(files.keyring),
                    on_store=stored,
                    lock=self._layout.log_lock,
                )
                keyring.cache_seconds = self._cache_seconds
                self._keyrings[chain] = keyring
            return keyring

    def hold_key(self) -> bytes:
        """The key of the subject tokens in legal holds."""
        return hold_key_file(self._layout, self._origin).unwrap(self.provider())

    def rewrap_log_keys(self, new: KeyProvider) -> None:
        """Wrap the log's own secrets under ``new`` (which still unwraps the old root key)."""
        checkpoint_key_file(self._layout, self._origin).rewrap(new, new)
        hold_key_file(self._layout, self._origin).rewrap(new, new)
