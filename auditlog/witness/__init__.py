"""A transparency-log witness: cosign checkpoints only while a log's history stays consistent.

A witness is an independent party that remembers, for every log it follows (one log per origin
line), the latest checkpoint it verified. It cosigns a new checkpoint (c2sp.org/tlog-cosignature,
Ed25519, type 0x04) only if the log signed it and a Merkle consistency proof shows that it extends
the one remembered, as c2sp.org/tlog-witness specifies for its ``add-checkpoint`` call. A log that
shows one history to a witness and another to someone else, or that shrinks, can then not gather
cosignatures for both: clients that require cosignatures from enough witnesses
(:func:`verify_witnessed`) see a single history.

A witness directory holds:

- ``root.key``: a random root key wrapped by a passphrase (scrypt), as for a log
  (:class:`~auditlog.crypto.PassphraseKeyProvider`);
- ``witness.key``: the witness's Ed25519 signer key, wrapped by that root key; it is never
  written in clear;
- ``state.json``: the followed logs, their verifier keys and latest cosigned checkpoints,
  replaced atomically;
- ``evidence/``: pairs of checkpoints that contradict each other, kept for whoever investigates;
- ``lock``: held while a request is checked and the state updated, so that two concurrent
  requests cannot roll the state back.

``docs/witness.md`` describes the guarantees, the files and the wire format.

The package holds the :class:`Witness` itself (``witness``), the state, key and evidence
files (``state``), and the wire format of requests with the client's check (``protocol``); every
public name is importable from ``auditlog.witness``.
"""

from auditlog.errors import OldSizeMismatchError
from auditlog.witness.protocol import (
    MAX_PROOF_LINES,
    format_add_checkpoint_request,
    parse_add_checkpoint_request,
    parse_proof_lines,
    verify_witnessed,
)
from auditlog.witness.state import EVIDENCE_FORMAT, KEY_FORMAT, STATE_FORMAT, STATE_VERSION
from auditlog.witness.witness import Witness

__all__ = [
    "EVIDENCE_FORMAT",
    "KEY_FORMAT",
    "MAX_PROOF_LINES",
    "STATE_FORMAT",
    "STATE_VERSION",
    "OldSizeMismatchError",
    "Witness",
    "format_add_checkpoint_request",
    "parse_add_checkpoint_request",
    "parse_proof_lines",
    "verify_witnessed",
]
