"""``manifest.json``: what a log is (its id, origin, configuration, key provider, verifier key)
and its retention policies, signed with the log's key. It holds no user data.

Format v1 manifests (unsigned) are read only to migrate the log (``log.migrate``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from auditlog._statefile import StateFile, decode_state, read_state, write_state
from auditlog.crypto.signed import SignedState, StateSigner
from auditlog.errors import ConfigurationError, MigrationRequiredError
from auditlog.log.config import LogConfig
from auditlog.retention import RetentionPolicy
from auditlog.storage.layout import LogLayout

__all__ = [
    "MANIFEST_PATH",
    "Manifest",
    "ManifestRef",
    "ManifestV1",
    "load_manifest",
    "read_manifest_v1",
]

MANIFEST_PATH = "manifest.json"
"""The manifest's place in the log, as its signature names it."""


class Manifest(SignedState):
    """The manifest of a log of format v2 (docs/format.md, "Manifest").

    ``key_provider`` is ``{"type": "passphrase", "file": "keys/root.key"}`` or ``{"type":
    "external", "key_id": ...}``; ``checkpoint_key`` is the log's verifier key (C2SP note
    verifier key), which a writer checks against the key it unwraps.
    """

    FORMAT: ClassVar[str] = "auditlog"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the log's manifest"
    REMEDY: ClassVar[str] = "restore manifest.json from a backup"

    log_id: str
    origin: str
    created_at: str
    key_provider: dict[str, str]
    config: LogConfig
    checkpoint_key: str
    retention: dict[str, RetentionPolicy] = Field(default_factory=dict)


class ManifestV1(StateFile):
    """The manifest of a log of format v1 (unsigned), read only to migrate the log."""

    FORMAT: ClassVar[str] = "auditlog"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the log's manifest"
    REMEDY: ClassVar[str] = "restore manifest.json from a backup"

    log_id: str
    origin: str
    created_at: str
    key_provider: dict[str, str]
    config: LogConfig
    checkpoint_key: str
    retention: dict[str, RetentionPolicy] = Field(default_factory=dict)


def _require_log(layout: LogLayout) -> bytes:
    if not layout.manifest.exists():
        raise ConfigurationError(
            f"{layout.root} is not an auditlog log (no {layout.manifest.name}); create one with "
            "`auditlog init` or AuditLog.create"
        )
    return layout.manifest.read_bytes()


def load_manifest(layout: LogLayout) -> Manifest:
    """The manifest of the log at ``layout``, its signature not yet checked (the key to check
    it with comes from the key provider, or from the caller: see ``AuditLog.open``).

    ``ConfigurationError`` if it is not a log; ``MigrationRequiredError`` if it is a log of
    format v1.
    """
    raw = _require_log(layout)
    if _version_of(raw) == ManifestV1.VERSION:
        raise MigrationRequiredError(
            f"{layout.root} is a log of format v1 (auditlog 0.1), whose manifest, holds and "
            "keyrings are not signed; this auditlog opens logs of format v2 only. Migrate it "
            f"once: `auditlog migrate {layout.root}` (or AuditLog.migrate), with its passphrase "
            "or key provider. Migration verifies every record, then signs the log's state; no "
            "record is rewritten."
        )
    return decode_state(raw, layout.manifest, Manifest)


def read_manifest_v1(layout: LogLayout) -> ManifestV1:
    """The manifest of a log of format v1 (for migration)."""
    _require_log(layout)
    return read_state(layout.manifest, ManifestV1)


def _version_of(raw: bytes) -> object:
    try:
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc.get("version") if isinstance(doc, dict) else None


class ManifestRef:
    """A log handle's copy of its (checked) manifest, shared by the parts that read or change
    it. Every change is signed, stored under the log lock, and reported to ``on_change``."""

    def __init__(
        self,
        layout: LogLayout,
        manifest: Manifest,
        signer: StateSigner,
        on_change: Callable[[Manifest], None] | None = None,
    ) -> None:
        self.layout = layout
        self.current = manifest
        self._signer = signer
        self.on_change = on_change

    def edit(self, change: Callable[[Manifest], Manifest]) -> Manifest:
        """Apply ``change`` to the manifest as it is on disk, sign and store the result, and use
        it from now on.

        The manifest is reloaded (and its signature checked) under the log lock, so a change
        another handle made since this one opened is kept, not overwritten with an older copy.
        """
        with self.layout.log_lock():
            on_disk = self._signer.check(load_manifest(self.layout), MANIFEST_PATH)
            changed = self._signer.sign(
                change(on_disk), MANIFEST_PATH, generation=on_disk.generation + 1
            )
            write_state(self.layout.manifest, changed)
            self.current = changed
            if self.on_change is not None:
                self.on_change(changed)
            return changed
