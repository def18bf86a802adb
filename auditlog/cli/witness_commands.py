"""The ``auditlog witness`` commands: run a witness from the command line.

Exit codes: 0 success; 1 the witness refused the checkpoint because it conflicts with what the
witness knows (a rollback, a fork, a consistency proof that fails, an old size that is not the
known one); 2 usage or configuration errors, unreadable input, a malformed request or a
checkpoint whose log signature does not verify. Errors print their diagnostics, never a
traceback. The cosignature line is the only thing written to standard output by
``add-checkpoint`` and ``cosign``, so it can be appended to the checkpoint as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from auditlog.cli._common import PassphraseOpt, errors, fail, read_input, usage_error
from auditlog.cli._common import passphrase as ask_passphrase
from auditlog.errors import AuditLogError, IntegrityError, OldSizeMismatchError
from auditlog.proofs import ConsistencyProof
from auditlog.witness import (
    Witness,
    parse_add_checkpoint_request,
    parse_proof_lines,
)

__all__ = ["witness_app"]

witness_app = typer.Typer(
    name="witness",
    help="Run a witness: cosign checkpoints only while each log's history stays consistent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# The witness refuses what conflicts with its state (exit 1); a malformed request or a bad
# signature is the caller's mistake (exit 2).
_REFUSALS = (IntegrityError, OldSizeMismatchError)


DirArg = Annotated[Path, typer.Argument(help="The witness directory.", metavar="DIR")]


def _open(directory: Path, passphrase: str | None) -> Witness:
    # Unlocking needs the passphrase even for commands that do not sign (add-log): only the
    # witness's operator may change which logs it trusts.
    try:
        return Witness.open(directory, ask_passphrase(passphrase))
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)


@witness_app.command("init")
def init(
    directory: DirArg,
    name: Annotated[
        str, typer.Option("--name", help="The witness's key name, e.g. witness.example/w1.")
    ],
    passphrase: PassphraseOpt = None,
) -> None:
    """Create a witness in DIR and print its verifier key."""
    secret = ask_passphrase(passphrase, confirm=True)
    try:
        witness = Witness.init(directory, name, secret)
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    errors.print(
        f"created witness [bold]{escape(witness.name)}[/] in {escape(str(directory))}; its "
        "verifier key (for clients' witness policies) follows",
        highlight=False,
    )
    typer.echo(witness.verifier_key)


def _cosign(
    directory: Path, passphrase: str | None, signed: str, old_size: int, proof: list[bytes]
) -> None:
    """Have the witness check and cosign a checkpoint; print the cosignature line alone."""
    witness = _open(directory, passphrase)
    try:
        line = witness.add_checkpoint(signed, old_size=old_size, proof=proof)
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    typer.echo(line, nl=False)


@witness_app.command("add-log")
def add_log(
    directory: DirArg,
    origin: Annotated[str, typer.Option("--origin", help="The log's checkpoint origin line.")],
    key: Annotated[str, typer.Option("--key", help="The log's verifier key (type 0x01).")],
    passphrase: PassphraseOpt = None,
) -> None:
    """Follow a log: cosign checkpoints of ORIGIN signed by KEY."""
    witness = _open(directory, passphrase)
    try:
        witness.add_log(origin, key)
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    errors.print(f"following {escape(origin)}", highlight=False)


@witness_app.command("migrate")
def migrate(directory: DirArg, passphrase: PassphraseOpt = None) -> None:
    """Authenticate a witness directory of format version 1 once (its state gets a MAC).

    Check the logs it then lists against your records: a version 1 state file carried no MAC,
    so whoever could write the directory could have changed it.
    """
    try:
        witness = Witness.migrate(directory, ask_passphrase(passphrase))
        followed = witness.followed_logs()
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    errors.print(f"migrated {escape(str(directory))}; it follows:", highlight=False)
    for origin, key in sorted(followed.items()):
        errors.print(f"  {escape(origin)}  {escape(key)}", highlight=False)


@witness_app.command("add-checkpoint")
def add_checkpoint(
    directory: DirArg,
    request: Annotated[
        str,
        typer.Argument(
            help="A c2sp.org/tlog-witness add-checkpoint request body; '-' for stdin.",
            metavar="REQUEST_FILE|-",
        ),
    ],
    passphrase: PassphraseOpt = None,
) -> None:
    """Check a checkpoint with its consistency proof and print the cosignature line."""
    try:
        old_size, proof, signed = parse_add_checkpoint_request(read_input(request))
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    _cosign(directory, passphrase, signed, old_size, proof)


@witness_app.command("cosign")
def cosign(
    directory: DirArg,
    note_file: Annotated[
        str, typer.Argument(help="The signed checkpoint; '-' for stdin.", metavar="NOTE_FILE|-")
    ],
    old_size: Annotated[
        int,
        typer.Option(
            "--old-size", min=0, help="Size of the checkpoint the witness last cosigned (0: none)."
        ),
    ] = 0,
    proof_file: Annotated[
        Path | None,
        typer.Option(
            "--proof-file",
            help=(
                "The consistency proof from --old-size: one base64 hash a line, or the JSON "
                "document `auditlog prove-consistency` prints."
            ),
            show_default=False,
        ),
    ] = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Check a signed checkpoint against a proof file and print the cosignature line."""
    raw_note = read_input(note_file)
    raw_proof = b"" if proof_file is None else read_input(str(proof_file))
    try:
        signed = raw_note.decode("utf-8")
        text = raw_proof.decode("utf-8")
        if text.lstrip().startswith("{"):
            document = ConsistencyProof.from_json(text)
            if document.size1 != old_size:
                usage_error(
                    f"the proof document starts at size {document.size1}, not --old-size {old_size}"
                )
            proof = list(document.proof)
        else:
            proof = parse_proof_lines(text.splitlines())
    except UnicodeDecodeError:
        usage_error("the checkpoint must be UTF-8 text and the proof file base64 lines")
    except AuditLogError as exc:
        fail(exc, refusals=_REFUSALS)
    _cosign(directory, passphrase, signed, old_size, proof)
