"""``log.keys``: the state of a log's keys, root-key rotation and passphrase change.

Root-key rotation rewraps every data key (and the log's own keys) under a new root key; no
segment is rewritten. Killed half-way, running it again finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from auditlog._testhooks import crashpoint
from auditlog.clock import aware_utc
from auditlog.crypto.providers import CombinedKeyProvider, KeyProvider, PassphraseKeyProvider
from auditlog.errors import ConfigurationError
from auditlog.log.chains import Chains
from auditlog.log.events import EventLog
from auditlog.log.key_material import KeyMaterial
from auditlog.log.manifest import ManifestRef
from auditlog.log.results import ChainKeys, KeyStatus
from auditlog.log.state import LogState
from auditlog.records import LogEventType
from auditlog.storage.layout import EVENTS_CHAIN

__all__ = ["Keys"]


class Keys:
    """The keys of one log handle (``log.keys``)."""

    def __init__(
        self,
        chains: Chains,
        material: KeyMaterial,
        manifest: ManifestRef,
        events: EventLog,
        state: LogState,
        now: Callable[[], datetime],
        *,
        writable: bool,
    ) -> None:
        self._chains = chains
        self._material = material
        self._manifest = manifest
        self._events = events
        self._state = state
        self._now = now
        self._writable = writable

    def status(self) -> KeyStatus:
        """Which root key wraps the data keys, and each chain's live and shredded periods."""
        provider = self._material.provider()
        chains = {}
        for chain in self._chains.names():
            keyring = self._material.keyring(chain)
            chains[chain] = ChainKeys(tuple(keyring.periods), tuple(sorted(keyring.shredded)))
        staged = isinstance(provider, PassphraseKeyProvider) and provider.staged_key_waits()
        return KeyStatus(
            root_key_id=provider.key_id,
            provider=self._material.provider_type,
            rotation_pending=staged,
            chains=chains,
        )

    def rotate_root_key(
        self,
        *,
        actor: str,
        passphrase: str | None = None,
        new_provider: KeyProvider | None = None,
        now: datetime | None = None,
    ) -> str:
        """Rewrap every data key (and the log's own keys) under a new root key.

        No segment is rewritten. With the default passphrase provider a new root key is made
        (same passphrase) and the old one destroyed at the end; with an external provider
        pass ``new_provider`` (then destroy the old key in the KMS). Killed half-way, running
        it again finishes it. Returns the new root key id.
        """
        if not self._writable:
            raise ConfigurationError("rotate the root key with the log opened for writing")
        when = self._now() if now is None else aware_utc(now, "now")
        # Every chain's lock first: a writer of another chain in another process would
        # otherwise rewrite its keyring under the root key this rotation destroys.
        for chain in self._chains.names():
            self._chains.writer(chain)
        old = self._material.provider()
        # A rotation resumed after a crash opened with the staged key current: name the key
        # it rotates away from, not the staged one.
        old_id = (
            old.previous_key_ids[0]
            if isinstance(old, PassphraseKeyProvider) and old.previous_key_ids
            else old.key_id
        )
        new: KeyProvider
        if isinstance(old, PassphraseKeyProvider):
            if new_provider is not None:
                raise ConfigurationError("this log's root key is passphrase-protected")
            new = old.stage_rotation(passphrase or self._material.passphrase)
            crashpoint("rotation-staged")
        elif new_provider is None:
            raise ConfigurationError("pass new_provider=... to rotate an external root key")
        else:
            new = CombinedKeyProvider(new_provider, old)
        layout = self._chains.layout
        with layout.log_lock():
            for chain in [*self._chains.names(), EVENTS_CHAIN]:
                if layout.chain(chain).keyring.exists():
                    self._material.keyring(chain).rewrap(new)
                    crashpoint("rotation-keyring-rewrapped")
            self._material.rewrap_log_keys(new)
            crashpoint("rotation-keys-rewrapped")
            # Logged before it takes effect: a rotation killed after its commit is never
            # unlogged (one killed before it is logged again when run again). From here on
            # new keys (the event's own included) are wrapped by the new root key.
            self._material.use_provider(new, self._manifest.current.key_provider)
            self._events.record(
                LogEventType.KEY_ROTATION,
                when,
                f"root key rotated from {old_id} to {new.key_id}; data keys rewrapped, no "
                "segment rewritten",
                chain=EVENTS_CHAIN,
                actor=actor,
            )
            crashpoint("rotation-recorded")
            if isinstance(new, PassphraseKeyProvider):
                new.commit_rotation()
                provider_doc = self._manifest.current.key_provider
            else:
                provider_doc = {"type": "external", "key_id": new.key_id}
                self._manifest.edit(lambda m: m.model_copy(update={"key_provider": provider_doc}))
            crashpoint("rotation-committed")
            self._material.use_provider(new, provider_doc)
            self._state.bind_files(
                [layout.manifest, layout.root_key, layout.checkpoint_key, layout.hold_key]
            )
            crashpoint("rotation-head-bound")
        return new.key_id

    def change_passphrase(self, new_passphrase: str) -> None:
        """Rewrap the root key under a new passphrase (data keys are untouched)."""
        provider = self._material.provider()
        if not isinstance(provider, PassphraseKeyProvider):
            raise ConfigurationError("this log's root key is not passphrase-protected")
        layout = self._chains.layout
        with layout.log_lock():
            provider.change_passphrase(new_passphrase)
            crashpoint("passphrase-changed")
            self._material.passphrase = new_passphrase
            self._state.bind_files([layout.root_key])
            crashpoint("passphrase-head-bound")
            self._events.record(
                LogEventType.PASSPHRASE,
                self._now(),
                "the passphrase protecting the root key was changed; no other key was touched",
                chain=EVENTS_CHAIN,
            )
            crashpoint("passphrase-recorded")
