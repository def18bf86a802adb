"""The commands on keys: keys status, keys rotate."""

from __future__ import annotations

from rich.table import Table

from auditlog.cli._common import ActorOpt, PassphraseOpt, PathArg, console
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.log import AuditLog

__all__ = ["keys_rotate", "keys_status"]


def keys_status(path: PathArg, passphrase: PassphraseOpt = None) -> None:
    """Show the root key id and each chain's live and shredded periods."""
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, mode="read", passphrase=secret) as log:
        status = log.keys.status()
    console.print(
        f"root key {status.root_key_id} ({status.provider})"
        + (
            " — a rotation is pending: run `auditlog keys rotate` again"
            if status.rotation_pending
            else ""
        )
    )
    table = Table()
    for column in ("chain", "live period keys", "shredded periods"):
        table.add_column(column)
    for chain, (live, shredded) in status.chains.items():
        table.add_row(chain, str(len(live)), str(len(shredded)))
    console.print(table)


def keys_rotate(
    path: PathArg, actor: ActorOpt = "operator", passphrase: PassphraseOpt = None
) -> None:
    """Rewrap every data key under a new root key; the old root key is destroyed."""
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret) as log:
        new = log.keys.rotate_root_key(actor=actor, passphrase=secret)
    console.print(f"root key rotated; now {new}")
