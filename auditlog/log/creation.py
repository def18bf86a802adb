"""Creating a log: all of it or nothing.

A new log is built in a hidden directory beside its target — root key, the log's own keys, the
signed manifest, the first signed head, and the events chain with its ``created`` event — and
renamed into place only when complete, so a failed or killed ``create`` leaves no half-made log
(at most the hidden directory, which a later ``create`` of the same target removes).
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC
from pathlib import Path

from auditlog import merkle
from auditlog._fs import fsync_dir, make_private_dir
from auditlog._statefile import create_state
from auditlog.clock import Clock, SystemClock
from auditlog.crypto.providers import KeyProvider, PassphraseKeyProvider
from auditlog.crypto.signed import StateSigner
from auditlog.errors import ConfigurationError
from auditlog.log.config import LogConfig
from auditlog.log.head import HeadStore, LogHead
from auditlog.log.key_material import KeyMaterial
from auditlog.log.manifest import MANIFEST_PATH, Manifest
from auditlog.log.state import snapshot
from auditlog.storage.layout import ROOT_KEY_FILE, LogLayout

__all__ = ["build_log"]

_BUILDING = ".creating-"


def build_log(
    root: Path,
    *,
    passphrase: str | None,
    key_provider: KeyProvider | None,
    config: LogConfig,
    clock: Clock | None,
    scrypt_n: int | None,
) -> tuple[Path, KeyProvider]:
    """Build a new log's files aside; returns (the directory they are in, its root key
    provider). The caller adds the events chain, then moves the directory with ``move_into``."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigurationError(f"{root} exists and is not empty; choose a new directory")
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    for leftover in parent.glob(f".{root.name}{_BUILDING}*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a create of this target that was killed
    aside = parent / f".{root.name}{_BUILDING}{secrets.token_hex(4)}"
    try:
        provider = _build(aside, passphrase, key_provider, config, clock, scrypt_n)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return aside, provider


def _build(
    aside: Path,
    passphrase: str | None,
    key_provider: KeyProvider | None,
    config: LogConfig,
    clock: Clock | None,
    scrypt_n: int | None,
) -> KeyProvider:
    layout = LogLayout(aside)
    log_id = secrets.token_hex(8)
    origin = config.origin or f"auditlog.local/{log_id}"
    make_private_dir(layout.chains)
    make_private_dir(layout.keys)
    provider_doc: dict[str, str]
    if key_provider is None:
        kwargs = {} if scrypt_n is None else {"scrypt_n": scrypt_n}
        key_provider = PassphraseKeyProvider.create(layout.root_key, passphrase, **kwargs)
        provider_doc = {"type": "passphrase", "file": ROOT_KEY_FILE}
    else:
        provider_doc = {"type": "external", "key_id": key_provider.key_id}
    verifier_key = KeyMaterial.create_log_keys(layout, key_provider, origin)
    keys = KeyMaterial(layout, origin, provider_doc, verifier_key, key_provider, passphrase)
    signer = StateSigner(origin, keys.unlock(), keys.signer())
    manifest = Manifest(
        log_id=log_id,
        origin=origin,
        created_at=(clock or SystemClock()).now().astimezone(UTC).isoformat(timespec="seconds"),
        key_provider=provider_doc,
        config=config.model_copy(update={"origin": origin}),
        checkpoint_key=verifier_key,
    )
    create_state(layout.manifest, signer.sign(manifest, MANIFEST_PATH, generation=1))
    heads = HeadStore(layout, verifier_key, keys.signer())
    first = LogHead(origin=origin, generation=1, events_root=merkle.EMPTY_ROOT)
    heads.write(snapshot(layout, first))
    return key_provider


def move_into(aside: Path, root: Path, provider: KeyProvider) -> KeyProvider:
    """Move a built log into place (onto an empty directory, or none); returns its provider
    for the new place."""
    try:
        os.rename(aside, root)
    except OSError:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    fsync_dir(root.parent)
    if isinstance(provider, PassphraseKeyProvider):
        return provider.moved_to(LogLayout(root).root_key)
    return provider
