"""Layer 8: the ``auditlog`` command, a thin shell over the public API.

Exit codes, for every command:

- 0: success.
- 1: verification failed: stored data, a proof, a checkpoint or signature, or stored key
  material did not check out (``IntegrityError`` and its kinds, ``StateFileError`` among them;
  ``ProofError``, ``NoteError``, ``KeyMaterialError``).
- 2: bad usage or input: a wrong option or argument, a wrong passphrase, a record refused by
  validation (a bad line given to ``append`` is the input's fault, not the log's), a log of an
  older format, an operation the retention rules forbid (``ConfigurationError``,
  ``RecordValidationError``, ``PassphraseError``, ``LateRecordError``, ``RetentionError``).
- 3: the environment: the file system refused (permission denied, read-only, full disk, I/O
  error) or another process holds the log's lock (``OSError``, ``LogLockedError``).
- 70: a bug in auditlog (anything else).

Errors print one sentence saying what happened and what to do, never a traceback;
``auditlog --debug <command>`` prints the traceback too. Every command runs inside
``_common.AuditLogCommands.invoke``, the one place an error becomes a message and a code. The
commands live by subject: ``log_commands`` (init, append, verify, stats, repair, migrate,
schema), ``proof_commands`` (checkpoint, prove, prove-consistency, verify-proof),
``retention_commands`` (retention, hold, sweep, redact), ``key_commands`` (keys),
``witness_commands`` (witness), ``demo``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from auditlog.cli import key_commands, log_commands, proof_commands, retention_commands
from auditlog.cli._common import AuditLogCommands
from auditlog.cli.demo import demo
from auditlog.cli.witness_commands import witness_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="auditlog",
    help="Private, tamper-evident, retention-bound audit logs.",
    cls=AuditLogCommands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, print its traceback as well.")
    ] = False,
) -> None:
    """Private, tamper-evident, retention-bound audit logs.

    Exit codes: 0 ok, 1 verification failed, 2 bad usage or input, 3 environment (I/O,
    permissions, disk full, lock).
    """


app.command()(log_commands.init)
app.command()(log_commands.append)
app.command()(log_commands.verify)
app.command()(proof_commands.checkpoint)
app.command()(proof_commands.prove)
app.command("prove-consistency")(proof_commands.prove_consistency)
app.command("verify-proof")(proof_commands.verify_proof)

retention_app = typer.Typer(
    help="Retention policies: floor and ceiling per chain.", no_args_is_help=True
)
retention_app.command("set")(retention_commands.retention_set)
retention_app.command("show")(retention_commands.retention_show)
app.add_typer(retention_app, name="retention")
app.command()(retention_commands.sweep)

hold_app = typer.Typer(
    help="Legal holds: keep what they cover past the ceiling.", no_args_is_help=True
)
hold_app.command("add")(retention_commands.hold_add)
hold_app.command("list")(retention_commands.hold_list)
hold_app.command("release")(retention_commands.hold_release)
app.add_typer(hold_app, name="hold")
app.command()(retention_commands.redact)

keys_app = typer.Typer(help="Root key status and rotation.", no_args_is_help=True)
keys_app.command("status")(key_commands.keys_status)
keys_app.command("rotate")(key_commands.keys_rotate)
app.add_typer(keys_app, name="keys")

app.command()(log_commands.stats)
app.command()(log_commands.repair)
app.command()(log_commands.migrate)
app.command()(log_commands.schema)
app.command()(demo)
app.add_typer(witness_app, name="witness")


def main() -> None:
    """Entry point of the ``auditlog`` console script."""
    app()
