"""Secrets kept on disk only wrapped by a root key: one ``WrappedKeyFile`` for all of them.

The log's checkpoint signing key, its hold-token key and a witness's signing key are each a
state file holding the secret wrapped by the root key (``KeyProvider.wrap``, AES-256-GCM under
a passphrase-protected or external root key) and bound to a context, so a wrapped secret
cannot be moved to another use or another log. The file also names the root key that wrapped
it, and may carry public fields (a verifier key). Root-key rotation rewraps the file in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from auditlog._fs import make_private_dir
from auditlog._statefile import StateFile, create_state, read_state, write_state
from auditlog.crypto.providers import KeyProvider

__all__ = ["WrappedKey", "WrappedKeyFile"]


class WrappedKey(StateFile):
    """The fields every wrapped-key file has.

    A file's model adds its public fields, then ``wrapped`` (the wrapped secret) last: the
    fields of a msgpack file are stored in declaration order.
    """

    root_key_id: str
    if TYPE_CHECKING:  # declared by each file's model, after its public fields
        wrapped: bytes


K = TypeVar("K", bound=WrappedKey)


class WrappedKeyFile(Generic[K]):
    """The file at ``path`` of model ``model``, whose secret is wrapped under ``context``."""

    def __init__(self, path: Path, model: type[K], context: bytes) -> None:
        self.path = path
        self.model = model
        self.context = context

    def create(self, secret: bytes, provider: KeyProvider, **public: object) -> K:
        """Wrap ``secret`` with ``provider``'s current root key and store it; the file must
        not exist. ``public`` are the model's other fields (stored in clear)."""
        doc = self.model.model_validate(
            {
                "root_key_id": provider.key_id,
                **public,
                "wrapped": provider.wrap(secret, self.context),
            }
        )
        make_private_dir(self.path.parent)
        create_state(self.path, doc)
        return doc

    def read(self) -> K:
        """The file's checked contents, its secret still wrapped."""
        return read_state(self.path, self.model)

    def unwrap(self, provider: KeyProvider, doc: K | None = None) -> bytes:
        """The secret (of ``doc``, if given, else of the file as it is now)."""
        doc = doc if doc is not None else self.read()
        return provider.unwrap(doc.wrapped, self.context)

    def rewrap(self, old: KeyProvider, new: KeyProvider) -> None:
        """Wrap the secret under ``new``'s current root key (root-key rotation); every other
        field is kept as it is."""
        doc = self.read()
        secret = self.unwrap(old, doc)
        write_state(
            self.path,
            doc.model_copy(
                update={"root_key_id": new.key_id, "wrapped": new.wrap(secret, self.context)}
            ),
        )
