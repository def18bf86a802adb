"""State files signed with the log's key: trust from keys, never from a file's say-so.

A file that decides what is kept, deleted or trusted (the manifest with its retention policies,
the legal holds, each chain's keyring with its shredded periods) carries a ``generation`` (1 for
the first version, one more on every rewrite) and a ``signature``: a C2SP signed note, made with
the log's checkpoint key, whose text binds the file to its log, its place and its content::

    auditlog-state/v2
    <log origin>
    <path of the file inside the log, e.g. chains/chat/keyring>
    <format> <version> <generation>
    <SHA-256, hex, of the file's bytes as written with an empty signature>

Whoever can write the directory but holds no key can therefore not change such a file, move it
to another place or log, or make one up; they can only put back an older signed version, which
the log's signed head (``auditlog.log.head``) and its event chain catch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

from auditlog import note
from auditlog._statefile import StateFile, state_bytes
from auditlog.errors import NoteError, StateFileError

__all__ = ["SignedState", "StateSigner"]


class SignedState(StateFile):
    """A state file that is signed: ``generation`` and ``signature`` come last in the file."""

    generation: int = 0
    signature: str = ""


S = TypeVar("S", bound=SignedState)


class StateSigner:
    """Signs and checks the signed state files of one log.

    ``verifier_key`` is the key the caller trusts (derived from the unwrapped signing key by a
    writer; pinned by an outsider); ``signer_key`` is needed only to sign.
    """

    def __init__(self, origin: str, verifier_key: str, signer_key: str | None = None) -> None:
        self.origin = origin
        self.verifier_key = verifier_key
        self._signer_key = signer_key

    @property
    def can_sign(self) -> bool:
        return self._signer_key is not None

    def text(self, state: SignedState, path: str) -> str:
        """The text a state file's signature covers."""
        body = state_bytes(state.model_copy(update={"signature": ""}))
        return (
            f"auditlog-state/v2\n{self.origin}\n{path}\n"
            f"{state.FORMAT} {state.VERSION} {state.generation}\n"
            f"{hashlib.sha256(body).hexdigest()}\n"
        )

    def sign(self, state: S, path: str, *, generation: int) -> S:
        """``state`` at ``generation``, signed for its place ``path`` in the log."""
        if self._signer_key is None:
            raise StateFileError(
                f"{state.WHAT} ({path}) cannot be signed: this handle holds no signing key; "
                "open the log for writing with its passphrase or key provider",
                path=Path(path),
            )
        unsigned = state.model_copy(update={"generation": generation, "signature": ""})
        signed = note.sign(self.text(unsigned, path), self._signer_key)
        return unsigned.model_copy(update={"signature": signed})

    def check(self, state: S, path: str) -> S:
        """``state`` if its signature is the log's and covers its content and place, else
        ``StateFileError`` naming the file."""
        try:
            opened = note.open_note(state.signature, [self.verifier_key])
        except NoteError:
            opened = None
        if opened is None or opened != self.text(state, path) or state.generation < 1:
            raise StateFileError(
                f"{state.WHAT} ({path}) is not signed by this log's key: it was changed, "
                "replaced or moved by someone without the key; nothing of it was used; restore "
                "it from a backup",
                path=Path(path),
            )
        return state
