"""Migrating a log of format v1 to format v2, once, explicitly, with its keys.

Format v1 (auditlog 0.1) kept the manifest, the holds and the keyrings unsigned, had no signed
head and put the log's own events into the users' chains. Migration:

1. refuses a log that shows signs of having been v2 (an events chain), or has a sweep under way;
2. unlocks the keys, derives the verifier key from the signing key and requires the manifest to
   name it;
3. verifies every record of every chain with keys (hash chain, tree, every frame decrypted and
   re-hashed, every stored checkpoint, tombstone and redaction note checked with the key) — so
   nothing false is signed;
4. signs the keyrings, the holds and the manifest as format v2, and rewraps the checkpoint and
   hold keys under the v2 context (a v2 key does not unwrap as v1, so a v2 log cannot later be
   passed off as v1 to be "migrated" again with unsigned state);
5. signs the first head and starts the events chain with a ``migrated`` event.

No segment, checkpoint, tombstone or redaction note is rewritten. Killed at any point, running
it again finishes it. The log's events written under v1 stay where they were (in the chains).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditlog import merkle, note
from auditlog._statefile import read_state, write_state
from auditlog.crypto.keys import ChainKeyring, KeyringFile, KeyringFileV1
from auditlog.crypto.providers import KeyProvider, PassphraseKeyProvider
from auditlog.crypto.signed import StateSigner
from auditlog.errors import (
    ConfigurationError,
    IntegrityError,
    MigrationRequiredError,
    NoteError,
    StateFileError,
)
from auditlog.log.head import HeadStore, LogHead
from auditlog.log.holds_file import HOLDS_PATH, HoldsFile, HoldsFileV1
from auditlog.log.key_material import (
    CheckpointKeyFile,
    HoldKeyFile,
    checkpoint_key_file,
    hold_key_file,
)
from auditlog.log.manifest import (
    MANIFEST_PATH,
    Manifest,
    ManifestV1,
    load_manifest,
    read_manifest_v1,
)
from auditlog.log.state import snapshot
from auditlog.proofs import open_checkpoint
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.reader import ChainReader
from auditlog.segment.redaction import RedactionStore
from auditlog.segment.tombstone import TombstoneStore
from auditlog.storage.layout import EVENTS_CHAIN, LogLayout

__all__ = ["MigrationReport", "finish_migration", "migrate_state", "migration_event"]


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``AuditLog.migrate`` verified and signed."""

    from_version: int
    to_version: int
    chains: dict[str, int]
    """Each chain and the records it holds (deleted ones included), all verified with keys."""
    signed: tuple[str, ...]
    """The files signed (or rewrapped) for format v2, as the log names them."""


def migrate_state(
    root: Path,
    *,
    provider: KeyProvider | None,
    passphrase: str | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[MigrationReport, KeyProvider]:
    """Steps 1 to 5 but the event (the caller opens the log and records the ``migrated``
    event), or the end of a migration stopped before its head; returns the report and the
    root key provider."""
    layout = LogLayout(root)
    try:
        load_manifest(layout)
    except MigrationRequiredError:
        pass
    else:
        return finish_migration(root, provider=provider, passphrase=passphrase, progress=progress)
    if layout.chain(EVENTS_CHAIN).directory.is_dir():
        raise IntegrityError(
            f"{root} has an events chain, which only a log of format v2 has, but its manifest "
            "says format v1: the manifest was replaced to pass the log off as v1; restore "
            "manifest.json from a backup instead of migrating",
            location={"file": "manifest.json"},
        )
    for chain in layout.chain_names():
        if layout.chain(chain).sweep_journal.exists():
            raise ConfigurationError(
                f"a sweep of chain {chain!r} is under way: finish it with the auditlog that "
                "started it (run `auditlog sweep --apply` with auditlog 0.1), then migrate"
            )
    manifest_v1 = read_manifest_v1(layout)
    origin = manifest_v1.origin
    if provider is None:
        if manifest_v1.key_provider.get("type") != "passphrase":
            raise ConfigurationError(
                "this log's root key lives in an external key provider; pass key_provider=..."
            )
        provider = PassphraseKeyProvider.open(layout.root_key, passphrase)
    signer_key = _signer_key(layout, origin, provider)
    verifier_key = note.verifier_from_signer(signer_key)
    if verifier_key != manifest_v1.checkpoint_key:
        raise IntegrityError(
            "manifest.json names another verifier key than the log's signing key: it was "
            "replaced; restore it from a backup before migrating",
            location={"file": "manifest.json"},
        )
    signer = StateSigner(origin, verifier_key, signer_key)
    chains = _verify_v1(layout, manifest_v1, provider, verifier_key, progress)
    signed = _sign_state(layout, manifest_v1, provider, signer, signer_key)
    heads = HeadStore(layout, verifier_key, signer_key)
    heads.write(
        snapshot(layout, LogHead(origin=origin, generation=1, events_root=merkle.EMPTY_ROOT))
    )
    return MigrationReport(from_version=1, to_version=2, chains=chains, signed=signed), provider


def finish_migration(
    root: Path,
    *,
    provider: KeyProvider | None,
    passphrase: str | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[MigrationReport, KeyProvider]:
    """A migration stopped after the manifest was signed, before the first head: sign it."""
    layout = LogLayout(root)
    manifest = read_state(layout.manifest, Manifest)
    if layout.head.exists() or layout.chain(EVENTS_CHAIN).directory.is_dir():
        raise ConfigurationError(f"{root} is a log of format v2 already: nothing to migrate")
    if provider is None:
        provider = PassphraseKeyProvider.open(layout.root_key, passphrase)
    signer_key = _signer_key(layout, manifest.origin, provider)
    verifier_key = note.verifier_from_signer(signer_key)
    StateSigner(manifest.origin, verifier_key).check(manifest, MANIFEST_PATH)
    chains = _verify_v1(
        layout,
        ManifestV1(**manifest.model_dump(exclude={"format", "version", "generation", "signature"})),
        provider,
        verifier_key,
        progress,
    )
    HeadStore(layout, verifier_key, signer_key).write(
        snapshot(
            layout, LogHead(origin=manifest.origin, generation=1, events_root=merkle.EMPTY_ROOT)
        )
    )
    return MigrationReport(from_version=1, to_version=2, chains=chains, signed=()), provider


def _signer_key(layout: LogLayout, origin: str, provider: KeyProvider) -> str:
    """The signing key, from a key file of format v1 (or v2, if a migration was stopped)."""
    for version in (1, 2):
        file = checkpoint_key_file(layout, origin, version)
        try:
            doc = file.read()
        except StateFileError:
            continue
        signer = file.unwrap(provider, doc).decode("ascii")
        if note.verifier_from_signer(signer) != doc.verifier_key:
            break
        return signer
    raise IntegrityError(
        f"{layout.checkpoint_key} is not a checkpoint key file of this log: restore it from a "
        "backup",
        location={"file": "keys/checkpoint.key"},
    )


def _verify_v1(
    layout: LogLayout,
    manifest: ManifestV1,
    provider: KeyProvider,
    verifier_key: str,
    progress: Callable[[int], None] | None,
) -> dict[str, int]:
    """Verify every chain of a v1 log with keys; returns each chain's size."""
    sizes = {}
    for chain in layout.chain_names():
        files = layout.chain(chain)
        origin = f"{manifest.origin}/{chain}"
        keyring = _keyring_for_verification(files.keyring, provider, origin)
        store = CheckpointStore(files.checkpoints)
        checkpoints = [(size, store.get(size)) for size in store.sizes()]
        reader = ChainReader(files, chain, origin, manifest.config.period_seconds)
        report = reader.verify(
            keyring,
            progress,
            tombstones=TombstoneStore(files.tombstones, origin, verifier_key).load(),
            redactions=RedactionStore(files.redactions, origin, verifier_key).indexes(),
            wanted_roots={size for size, _ in checkpoints},
        )
        for size, signed in checkpoints:
            try:
                checkpoint = open_checkpoint(signed, verifier_key, origin)
            except NoteError as exc:
                raise IntegrityError(
                    f"a checkpoint of chain {chain!r} does not verify: {exc}",
                    location={"chain": chain, "checkpoint": size},
                ) from None
            root = report.roots.get(checkpoint.size)
            inside_deleted = any(a < checkpoint.size < b for a, b in report.tombstoned)
            if checkpoint.size != size or (root != checkpoint.root_hash and not inside_deleted):
                raise IntegrityError(
                    f"chain {chain!r} does not match its checkpoint of size {size}",
                    location={"chain": chain, "checkpoint": size},
                )
        sizes[chain] = report.size
    return sizes


def _keyring_for_verification(path: Path, provider: KeyProvider, origin: str) -> ChainKeyring:
    try:
        read_state(path, KeyringFileV1)
    except StateFileError:
        return ChainKeyring(path, provider, origin)  # already signed by a stopped migration
    return ChainKeyring(path, provider, origin, format_v1=True)


def _sign_state(
    layout: LogLayout,
    manifest: ManifestV1,
    provider: KeyProvider,
    signer: StateSigner,
    signer_key: str,
) -> tuple[str, ...]:
    """Sign the keyrings, holds and manifest as v2; rewrap the log's keys under v2 contexts."""
    # Read before anything is written: a refusal must leave the log as it was (v1).
    hold_secret = _hold_secret(layout, manifest.origin, provider)
    signed = []
    for chain in layout.chain_names():
        path = layout.chain(chain).keyring
        if not path.exists():
            continue
        place = layout.relative(path)
        try:
            old = read_state(path, KeyringFileV1)
        except StateFileError:
            signer.check(read_state(path, KeyringFile), place)  # signed already
            continue
        keyring = KeyringFile(keys=old.keys, shredded=old.shredded)
        write_state(path, signer.sign(keyring, place, generation=1))
        signed.append(place)
    if layout.holds.exists():
        try:
            holds = read_state(layout.holds, HoldsFileV1)
        except StateFileError:
            signer.check(read_state(layout.holds, HoldsFile), HOLDS_PATH)
        else:
            doc = HoldsFile(holds=holds.holds)
            write_state(layout.holds, signer.sign(doc, HOLDS_PATH, generation=1))
            signed.append(HOLDS_PATH)
    origin = manifest.origin
    checkpoint = CheckpointKeyFile(
        root_key_id=provider.key_id,
        verifier_key=signer.verifier_key,
        wrapped=provider.wrap(
            signer_key.encode("ascii"), checkpoint_key_file(layout, origin).context
        ),
    )
    write_state(layout.checkpoint_key, checkpoint)
    write_state(
        layout.hold_key,
        HoldKeyFile(
            root_key_id=provider.key_id,
            wrapped=provider.wrap(hold_secret, hold_key_file(layout, origin).context),
        ),
    )
    signed += ["keys/checkpoint.key", "keys/hold.key"]
    v2 = Manifest(**manifest.model_dump(exclude={"format", "version"}))
    write_state(layout.manifest, signer.sign(v2, MANIFEST_PATH, generation=1))
    signed.append(MANIFEST_PATH)
    return tuple(signed)


def _hold_secret(layout: LogLayout, origin: str, provider: KeyProvider) -> bytes:
    """The hold key's secret, from a key file of format v1 (or v2, if a migration was
    stopped); a new one if the log has none (v1 logs made before legal holds existed have no
    ``keys/hold.key``) and no hold names subjects."""
    if not layout.hold_key.exists():
        if not _holds_name_subjects(layout):
            return secrets.token_bytes(32)
        raise IntegrityError(
            f"{layout.hold_key} is missing, but holds.json has holds on subjects, whose tokens "
            "only that key makes: restore it from a backup before migrating",
            location={"file": "keys/hold.key"},
        )
    for version in (1, 2):
        file = hold_key_file(layout, origin, version)
        try:
            return file.unwrap(provider)
        except StateFileError:
            continue
    raise IntegrityError(
        f"{layout.hold_key} is not a hold key file of this log: restore it from a backup",
        location={"file": "keys/hold.key"},
    )


def _holds_name_subjects(layout: LogLayout) -> bool:
    if not layout.holds.exists():
        return False
    try:
        holds = read_state(layout.holds, HoldsFileV1).holds
    except StateFileError:
        holds = read_state(layout.holds, HoldsFile).holds  # signed by a stopped migration
    return any(hold.subject_tokens for hold in holds)


def migration_event(report: MigrationReport, when: datetime) -> str:
    """The detail of the ``migrated`` event."""
    chains = ", ".join(f"{c} ({n} records)" for c, n in sorted(report.chains.items())) or "none"
    return (
        f"migrated from format v{report.from_version} to v{report.to_version} at "
        f"{when.isoformat()}: every record of {chains} verified with keys; signed "
        f"{', '.join(report.signed)}; no segment rewritten"
    )
