"""``log.proofs``: sign checkpoints, list them, and prove records and consistency from them.

Checkpoints are signed by the writer at every segment seal and on request; proofs are built
from the stored tiles in O(log n) reads and checked against the log's verifier key before
they are returned, so a proof that leaves this module verifies.
"""

from __future__ import annotations

from collections.abc import Callable

from auditlog import merkle
from auditlog.errors import ConfigurationError, ProofError
from auditlog.log.chains import Chains
from auditlog.log.key_material import KeyMaterial
from auditlog.log.state import LogState
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    sign_checkpoint,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from auditlog.segment.tiles import TileStore
from auditlog.storage.layout import EVENTS_CHAIN

__all__ = ["Proofs"]


class Proofs:
    """Checkpoints and proofs of one log handle (``log.proofs``)."""

    def __init__(
        self, chains: Chains, keys: KeyMaterial, state: LogState, *, writable: bool
    ) -> None:
        self._chains = chains
        self._keys = keys
        self._state = state
        self._writable = writable

    def store_checkpoint(self, chain: str, size: int, root: bytes) -> str:
        """Sign the checkpoint (chain, size, root), store it, and return the signed note."""
        signed = sign_checkpoint(self._keys.signer(), self._chains.origin_of(chain), size, root)
        self._chains.checkpoints(chain).save(signed, size, root)
        return signed

    def sign_checkpoints(self, chain: str | None = None) -> dict[str, str]:
        """Flush, then sign and store a checkpoint of every open chain (or of ``chain``).

        Returns the signed notes by chain. Only the writer signs: open the log for writing.
        """
        self._chains.check_open()
        if not self._writable:
            raise ConfigurationError("checkpoints are signed by the writer: open with mode='write'")
        events = self._chains.layout.chain(EVENTS_CHAIN).directory.is_dir()
        if chain is None:
            names = sorted(w.chain for w in self._chains.open_writers())
            if events:
                names.append(EVENTS_CHAIN)  # the log's own events are checkpointed with the rest
        else:
            names = [chain]
        notes = {}
        for name in names:
            if name == EVENTS_CHAIN:
                notes[name] = self._sign_events()
                continue
            size, root = self._chains.writer(name).head()
            notes[name] = self.store_checkpoint(name, size, root)
            self._state.bind_chain(name)  # the head counts every stored checkpoint
        return notes

    def _sign_events(self) -> str:
        """A checkpoint of the events chain, signed under the log lock (other handles append
        events too)."""
        with self._chains.layout.log_lock(), self._chains.events_writer() as writer:
            size, root = writer.head()
            note = self.store_checkpoint(EVENTS_CHAIN, size, root)
            self._state.bind_chain(EVENTS_CHAIN)
        return note

    def stored_checkpoints(self, chain: str) -> list[str]:
        """The chain's stored signed checkpoints, oldest first."""
        self._chains.reader(chain)  # an unknown chain is an error, not an empty list
        store = self._chains.checkpoints(chain)
        return [store.get(size) for size in store.sizes()]

    def prove_inclusion(self, chain: str, index: int, size: int | None = None) -> InclusionProof:
        """An inclusion proof of record ``index`` up to a stored checkpoint, from O(log n) reads.

        ``size`` picks the checkpoint (default: the newest); a checkpoint of that size must
        be stored.
        """
        self._chains.reader(chain)
        store = self._chains.checkpoints(chain)
        if size is None:
            latest = store.latest()
            if latest is None:
                raise ConfigurationError(f"chain {chain!r} has no checkpoint yet: make one first")
            size, signed = latest
        else:
            signed = store.get(size)
        if not 0 <= index < size:
            raise ConfigurationError(
                f"index {index} is not in the tree of size {size}; prove it against a newer "
                "checkpoint"
            )
        tiles = self._chains.tiles(chain)
        specs = merkle.inclusion_proof_nodes(index, size)
        proof = InclusionProof(
            origin=self._chains.origin_of(chain),
            index=index,
            size=size,
            leaf_hash=tiles.leaf(index),
            proof=tuple(merkle.rehash(specs, _node_hashes(tiles, specs, size))),
            checkpoint=signed,
        )
        _served_proof_holds(lambda: verify_inclusion_proof(proof, self._chains.verifier_key))
        return proof

    def prove_consistency(
        self, chain: str, size1: int, size2: int | None = None
    ) -> ConsistencyProof:
        """A proof that the checkpoint of ``size2`` (default: newest) extends that of ``size1``."""
        self._chains.reader(chain)
        store = self._chains.checkpoints(chain)
        if size2 is None:
            latest = store.latest()
            if latest is None:
                raise ConfigurationError(f"chain {chain!r} has no checkpoint yet: make one first")
            size2 = latest[0]
        if not 0 < size1 <= size2:
            raise ConfigurationError(f"no consistency proof from size {size1} to size {size2}")
        tiles = self._chains.tiles(chain)
        specs = merkle.consistency_proof_nodes(size1, size2)
        proof = ConsistencyProof(
            origin=self._chains.origin_of(chain),
            size1=size1,
            size2=size2,
            proof=tuple(merkle.rehash(specs, _node_hashes(tiles, specs, size2))),
            checkpoint1=store.get(size1),
            checkpoint2=store.get(size2),
        )
        _served_proof_holds(lambda: verify_consistency_proof(proof, self._chains.verifier_key))
        return proof


def _node_hashes(
    tiles: TileStore, specs: list[merkle.NodeSpec], size: int
) -> dict[tuple[int, int], bytes]:
    return {node: tiles.node(*node, size) for spec in specs for node in spec.nodes}


def _served_proof_holds(check: Callable[[], object]) -> None:
    """A proof is checked before it is handed out: one built from damaged or stale tiles
    fails, with what to do."""
    try:
        check()
    except ProofError as exc:
        raise ProofError(
            f"{exc}: the proof was built from this log's stored tiles, which are damaged or "
            "stale; run `auditlog verify`, then `auditlog repair` to rebuild them"
        ) from None
