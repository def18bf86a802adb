"""``manifest.json``: what a log is (its id, origin, configuration, key provider, verifier key)
and its retention policies. It holds no user data."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field

from auditlog._statefile import StateFile, create_state, read_state, write_state
from auditlog.errors import ConfigurationError
from auditlog.log.config import LogConfig
from auditlog.retention import RetentionPolicy
from auditlog.storage.layout import LogLayout

__all__ = ["Manifest", "ManifestRef", "edit_manifest", "load_manifest", "store_new_manifest"]


class Manifest(StateFile):
    """The manifest of a log (docs/format.md, "Manifest")."""

    FORMAT: ClassVar[str] = "auditlog"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the log's manifest"
    REMEDY: ClassVar[str] = "restore manifest.json from a backup"

    log_id: str
    origin: str
    created_at: str
    key_provider: dict[str, str]
    """``{"type": "passphrase", "file": "keys/root.key"}`` or ``{"type": "external",
    "key_id": ...}``."""
    config: LogConfig
    checkpoint_key: str
    """The log's verifier key (C2SP note verifier key)."""
    retention: dict[str, RetentionPolicy] = Field(default_factory=dict)


def load_manifest(layout: LogLayout) -> Manifest:
    """The manifest of the log at ``layout``; ``ConfigurationError`` if it is not a log."""
    if not layout.manifest.exists():
        raise ConfigurationError(
            f"{layout.root} is not an auditlog log (no {layout.manifest.name}); create one with "
            "`auditlog init` or AuditLog.create"
        )
    return read_state(layout.manifest, Manifest)


def store_new_manifest(layout: LogLayout, manifest: Manifest) -> None:
    """Store the manifest of a log being created (the file must not exist yet)."""
    create_state(layout.manifest, manifest)


def edit_manifest(layout: LogLayout, change: Callable[[Manifest], Manifest]) -> Manifest:
    """Apply ``change`` to the manifest as it is on disk, store the result, and return it.

    The manifest is reloaded under the log lock, so a change another handle made since this
    one opened is kept, not overwritten with this handle's older copy.
    """
    with layout.log_lock():
        manifest = change(load_manifest(layout))
        write_state(layout.manifest, manifest)
        return manifest


class ManifestRef:
    """A log handle's copy of its manifest, shared by the parts that read or change it."""

    def __init__(self, layout: LogLayout, manifest: Manifest) -> None:
        self.layout = layout
        self.current = manifest

    def edit(self, change: Callable[[Manifest], Manifest]) -> Manifest:
        """Change the manifest on disk (see ``edit_manifest``) and use the result from now on."""
        self.current = edit_manifest(self.layout, change)
        return self.current
