"""The commands on checkpoints and proofs: checkpoint, prove, prove-consistency, verify-proof."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from auditlog.cli._common import PassphraseOpt, PathArg, console, read_text_input
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.log import AuditLog
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_proof,
    verify_inclusion_proof,
)

__all__ = ["checkpoint", "prove", "prove_consistency", "verify_proof"]


def checkpoint(
    path: PathArg,
    chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Sign and store a checkpoint of every chain (or one), and print the signed notes."""
    secret = ask_passphrase(passphrase)
    with AuditLog.open(path, passphrase=secret, chains=[chain] if chain else None) as log:
        notes = log.proofs.sign_checkpoints(chain)
        key = log.verifier_key
    # Plain print: notes and keys are copied by hand and must not be re-wrapped by rich.
    for signed in notes.values():
        print(signed, end="")
    print(f"verifier key: {key}")


def prove(
    path: PathArg,
    chain: Annotated[str, typer.Option(help="The chain of the record.")],
    index: Annotated[int, typer.Option(min=0, help="The record's index in its chain.")],
    size: Annotated[
        int | None,
        typer.Option(min=1, help="Tree size of the checkpoint to prove to (default: newest)."),
    ] = None,
) -> None:
    """Print a JSON inclusion proof of one record, with its signed checkpoint (no keys needed)."""
    with AuditLog.open(path, mode="read") as log:
        proof = log.proofs.prove_inclusion(chain, index, size)
    print(proof.to_json())


def prove_consistency(
    path: PathArg,
    chain: Annotated[str, typer.Option(help="The chain.")],
    old: Annotated[int, typer.Option("--from", min=1, help="The older checkpoint's tree size.")],
    new: Annotated[
        int | None,
        typer.Option("--to", min=1, help="The newer checkpoint's size (default: newest)."),
    ] = None,
) -> None:
    """Print a JSON consistency proof between two stored checkpoints (no keys needed)."""
    with AuditLog.open(path, mode="read") as log:
        proof = log.proofs.prove_consistency(chain, old, new)
    print(proof.to_json())


def verify_proof(
    proof_file: Annotated[str, typer.Argument(help="A proof document (JSON); '-' for stdin.")],
    key: Annotated[str, typer.Option("--key", help="The log's verifier key.")],
) -> None:
    """Check an inclusion or consistency proof offline, with nothing but the log's public key."""
    text = read_text_input(proof_file)
    if _document_format(text) == "auditlog-consistency-proof":
        first, second = verify_consistency_proof(ConsistencyProof.from_json(text), key)
        console.print(
            f"consistent: {second.origin} at size {second.size} extends size {first.size}"
        )
    else:
        checkpoint_ = verify_inclusion_proof(InclusionProof.from_json(text), key)
        console.print(
            f"included: the leaf is in {checkpoint_.origin} at tree size {checkpoint_.size}"
        )


def _document_format(text: str) -> object:
    """The ``format`` of a JSON proof document, or None; its own parser judges the rest."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document.get("format") if isinstance(document, dict) else None
