"""The ``auditlog witness`` commands: run a witness from the command line.

Exit codes: 0 success; 1 the witness refused the checkpoint because it conflicts with what the
witness knows (a rollback, a fork, a consistency proof that fails, an old size that is not the
known one); 2 usage or configuration errors, unreadable input, a malformed request or a
checkpoint whose log signature does not verify. Errors print their diagnostics, never a
traceback. The cosignature line is the only thing written to standard output by
``add-checkpoint`` and ``cosign``, so it can be appended to the checkpoint as is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from auditlog.crypto.providers import PASSPHRASE_ENV
from auditlog.errors import AuditLogError, IntegrityError
from auditlog.witness import (
    OldSizeMismatchError,
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
_errors = Console(stderr=True)

DirArg = Annotated[Path, typer.Argument(help="The witness directory.")]
PassphraseOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        envvar=PASSPHRASE_ENV,
        help=f"Passphrase of the witness's key (default: ${PASSPHRASE_ENV}; prompted if unset).",
        show_default=False,
    ),
]


def _fail(exc: AuditLogError) -> NoReturn:
    _errors.print(f"[bold red]error:[/] {escape(exc.diagnostics())}", highlight=False)
    refused = isinstance(exc, IntegrityError | OldSizeMismatchError)
    raise typer.Exit(1 if refused else 2)


def _usage_error(message: str) -> NoReturn:
    _errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _passphrase(value: str | None, *, confirm: bool = False) -> str:
    if value:
        return value
    if not sys.stdin.isatty():
        _usage_error(f"no passphrase: set {PASSPHRASE_ENV} or pass --passphrase")
    entered: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return entered


def _read_input(source: str) -> bytes:
    """Read a file, or standard input for '-'."""
    if source == "-":
        return typer.get_binary_stream("stdin").read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        _usage_error(f"cannot read {source}: {exc.strerror or exc}")


def _open(directory: Path, passphrase: str | None) -> Witness:
    # Unlocking needs the passphrase even for commands that do not sign (add-log): only the
    # witness's operator may change which logs it trusts.
    try:
        return Witness.open(directory, _passphrase(passphrase))
    except AuditLogError as exc:
        _fail(exc)


@witness_app.command("init")
def init(
    directory: DirArg,
    name: Annotated[
        str, typer.Option("--name", help="The witness's key name, e.g. witness.example/w1.")
    ],
    passphrase: PassphraseOpt = None,
) -> None:
    """Create a witness in DIRECTORY and print its verifier key."""
    secret = _passphrase(passphrase, confirm=True)
    try:
        witness = Witness.init(directory, name, secret)
    except AuditLogError as exc:
        _fail(exc)
    _errors.print(
        f"created witness [bold]{escape(witness.name)}[/] in {escape(str(directory))}; its "
        "verifier key (for clients' witness policies) follows",
        highlight=False,
    )
    typer.echo(witness.verifier_key)


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
        _fail(exc)
    _errors.print(f"following {escape(origin)}", highlight=False)


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
        old_size, proof, signed = parse_add_checkpoint_request(_read_input(request))
    except AuditLogError as exc:
        _fail(exc)
    witness = _open(directory, passphrase)
    try:
        line = witness.add_checkpoint(signed, old_size=old_size, proof=proof)
    except AuditLogError as exc:
        _fail(exc)
    typer.echo(line, nl=False)


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
            help="The consistency proof from --old-size: one base64 hash a line.",
            show_default=False,
        ),
    ] = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Check a signed checkpoint against a proof file and print the cosignature line."""
    raw_note = _read_input(note_file)
    raw_proof = b"" if proof_file is None else _read_input(str(proof_file))
    try:
        signed = raw_note.decode("utf-8")
        proof = parse_proof_lines(raw_proof.decode("ascii").splitlines())
    except UnicodeDecodeError:
        _usage_error("the checkpoint must be UTF-8 text and the proof file base64 lines")
    except AuditLogError as exc:
        _fail(exc)
    witness = _open(directory, passphrase)
    try:
        line = witness.add_checkpoint(signed, old_size=old_size, proof=proof)
    except AuditLogError as exc:
        _fail(exc)
    typer.echo(line, nl=False)
