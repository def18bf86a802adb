"""The names ``AuditLog`` had before its sub-APIs: kept for one release, then removed.

Each warns (``DeprecationWarning``) and calls its new name; docs/architecture.md lists them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from auditlog.crypto.providers import KeyProvider
from auditlog.log.results import KeyStatus
from auditlog.proofs import ConsistencyProof, InclusionProof
from auditlog.retention import LegalHold, RetentionPolicy, SweepPlan

if TYPE_CHECKING:
    from auditlog.log.keys import Keys
    from auditlog.log.proofs import Proofs
    from auditlog.log.retention import Retention

__all__ = ["DeprecatedMethods"]


def _moved(old: str, new: str) -> None:
    warnings.warn(
        f"AuditLog.{old} is deprecated and will be removed in the next release: use log.{new}",
        DeprecationWarning,
        stacklevel=3,
    )


class DeprecatedMethods:
    """``AuditLog``'s former methods, each now on ``log.keys``, ``log.proofs`` or
    ``log.retention`` (``log.retention(chain)`` itself is ``log.retention.policy(chain)``)."""

    keys: Keys
    proofs: Proofs
    retention: Retention

    def key_status(self) -> KeyStatus:
        _moved("key_status()", "keys.status()")
        return self.keys.status()

    def rotate_root_key(
        self,
        *,
        actor: str,
        passphrase: str | None = None,
        new_provider: KeyProvider | None = None,
        now: datetime | None = None,
    ) -> str:
        _moved("rotate_root_key()", "keys.rotate_root_key()")
        return self.keys.rotate_root_key(
            actor=actor, passphrase=passphrase, new_provider=new_provider, now=now
        )

    def change_passphrase(self, new_passphrase: str) -> None:
        _moved("change_passphrase()", "keys.change_passphrase()")
        self.keys.change_passphrase(new_passphrase)

    def checkpoint(self, chain: str | None = None) -> dict[str, str]:
        _moved("checkpoint()", "proofs.sign_checkpoints()")
        return self.proofs.sign_checkpoints(chain)

    def checkpoints(self, chain: str) -> list[str]:
        _moved("checkpoints()", "proofs.stored_checkpoints()")
        return self.proofs.stored_checkpoints(chain)

    def prove(self, chain: str, index: int, size: int | None = None) -> InclusionProof:
        _moved("prove()", "proofs.prove_inclusion()")
        return self.proofs.prove_inclusion(chain, index, size)

    def prove_consistency(
        self, chain: str, size1: int, size2: int | None = None
    ) -> ConsistencyProof:
        _moved("prove_consistency()", "proofs.prove_consistency()")
        return self.proofs.prove_consistency(chain, size1, size2)

    def set_retention(
        self, chain: str, policy: RetentionPolicy, *, actor: str, now: datetime | None = None
    ) -> None:
        _moved("set_retention()", "retention.set_policy()")
        self.retention.set_policy(chain, policy, actor=actor, now=now)

    def holds(self) -> list[LegalHold]:
        _moved("holds()", "retention.holds()")
        return self.retention.holds()

    def subject_token(self, subject: str) -> str:
        _moved("subject_token()", "retention.subject_token()")
        return self.retention.subject_token(subject)

    def add_hold(
        self,
        case_id: str,
        chains: Iterable[str],
        start: datetime,
        end: datetime,
        *,
        actor: str,
        subjects: Iterable[str] = (),
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> LegalHold:
        _moved("add_hold()", "retention.add_hold()")
        return self.retention.add_hold(
            case_id,
            chains,
            start,
            end,
            actor=actor,
            subjects=subjects,
            expires_at=expires_at,
            now=now,
        )

    def extend_hold(
        self,
        hold_id: str,
        *,
        actor: str,
        end: datetime | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> LegalHold:
        _moved("extend_hold()", "retention.extend_hold()")
        return self.retention.extend_hold(
            hold_id, actor=actor, end=end, expires_at=expires_at, now=now
        )

    def release_hold(self, hold_id: str, *, actor: str, now: datetime | None = None) -> LegalHold:
        _moved("release_hold()", "retention.release_hold()")
        return self.retention.release_hold(hold_id, actor=actor, now=now)

    def sweep(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = True,
        chains: Iterable[str] | None = None,
        periods: Mapping[str, Iterable[int]] | None = None,
        actor: str = "retention-sweep",
    ) -> SweepPlan:
        _moved("sweep()", "retention.sweep()")
        return self.retention.sweep(
            now, dry_run=dry_run, chains=chains, periods=periods, actor=actor
        )

    def redact(
        self,
        subject: str,
        *,
        reason: str,
        actor: str,
        now: datetime | None = None,
        legal_basis: str | None = None,
        chains: Iterable[str] | None = None,
    ) -> dict[str, list[int]]:
        _moved("redact()", "retention.redact()")
        return self.retention.redact(
            subject, reason=reason, actor=actor, now=now, legal_basis=legal_basis, chains=chains
        )
