"""``log.retention``: policies, legal holds, sweeps and redaction — what is kept, and for how long.

Policies live in the manifest and holds in ``holds.json``; every change is also appended to the
chains it concerns as a ``log`` record, so the history of retention decisions is itself
tamper-evident. Time is an argument (``now=``) wherever policy depends on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from auditlog.clock import aware_utc
from auditlog.errors import ConfigurationError, RetentionError
from auditlog.log.chains import Chains
from auditlog.log.events import EventLog, state_claim
from auditlog.log.holds_file import HOLDS_PATH
from auditlog.log.key_material import KeyMaterial
from auditlog.log.manifest import MANIFEST_PATH, ManifestRef
from auditlog.log.retention.holds import load_holds, new_hold_id, save_hold, subject_token
from auditlog.log.retention.journal import (
    SweepContext,
    apply_chain_plan,
    check_journal,
    finish_journal,
)
from auditlog.log.retention.redaction import redact_subject
from auditlog.log.retention.sweep import plan_sweep
from auditlog.log.state import LogState
from auditlog.records import LogEventType
from auditlog.retention import LegalHold, RetentionPolicy, SweepPlan
from auditlog.storage.layout import EVENTS_CHAIN, check_chain_id

__all__ = ["Retention"]


class Retention:
    """The retention of one log handle (``log.retention``)."""

    def __init__(
        self,
        chains: Chains,
        keys: KeyMaterial,
        manifest: ManifestRef,
        events: EventLog,
        state: LogState,
        now: Callable[[], datetime],
    ) -> None:
        self._chains = chains
        self._keys = keys
        self._manifest = manifest
        self._events = events
        self._state = state
        self._now = now
        self._sweeps = SweepContext(
            chains, keys, events, state, lambda: self._manifest.current.retention, self.holds
        )

    def _when(self, now: datetime | None) -> datetime:
        """``now`` checked (aware, in UTC), or the log's clock."""
        return self._now() if now is None else aware_utc(now, "now")

    def __call__(self, chain: str) -> RetentionPolicy | None:
        """Deprecated: ``log.retention(chain)`` is ``log.retention.policy(chain)``."""
        warnings.warn(
            "log.retention(chain) is deprecated: use log.retention.policy(chain)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.policy(chain)

    # -- policies -------------------------------------------------------------------------

    def policy(self, chain: str) -> RetentionPolicy | None:
        """The chain's retention policy, or None (then nothing of it is ever deleted)."""
        return self._manifest.current.retention.get(chain)

    def set_policy(
        self, chain: str, policy: RetentionPolicy, *, actor: str, now: datetime | None = None
    ) -> None:
        """Set a chain's floor and ceiling; stored in the manifest and appended to the chain."""
        check_chain_id(chain)
        when = self._when(now)
        layout = self._chains.layout
        with layout.log_lock():
            changed = self._manifest.edit(
                lambda m: m.model_copy(update={"retention": {**m.retention, chain: policy}})
            )
            self._state.bind_files([layout.manifest])
            self._events.record(
                LogEventType.POLICY,
                when,
                f"retention of chain {chain} set: keep at least {policy.keep_at_least}, "
                f"delete after {policy.delete_after}",
                chain=chain,
                actor=actor,
                state=state_claim(MANIFEST_PATH, changed.generation, layout.manifest),
            )

    # -- legal holds ----------------------------------------------------------------------

    def holds(self) -> list[LegalHold]:
        """Every legal hold ever placed (released and expired ones too), from the signed file."""
        return load_holds(self._chains.layout, self._keys.state_signer())

    def subject_token(self, subject: str) -> str:
        """The keyed token standing for ``subject`` in holds (the subject is never stored)."""
        return subject_token(self._keys.hold_key(), subject)

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
        """Place a legal hold: what it covers is kept past the ceiling until it is released."""
        when = self._when(now)
        chains = list(chains)
        unknown = sorted(set(chains) - set(self._chains.names()))
        if unknown:
            raise ConfigurationError(
                f"no such chains {unknown}: a hold names chains that exist (`auditlog stats`)"
            )
        key = self._keys.hold_key()
        hold = LegalHold(
            hold_id=new_hold_id(),
            case_id=case_id,
            chains=tuple(check_chain_id(c) for c in chains),
            start=start,
            end=end,
            subject_tokens=tuple(sorted({subject_token(key, s) for s in subjects})),
            expires_at=expires_at,
            created_at=when,
        )
        self._store_hold(hold, LogEventType.HOLD_ADD, when, actor, replace=False)
        return hold

    def extend_hold(
        self,
        hold_id: str,
        *,
        actor: str,
        end: datetime | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> LegalHold:
        """Widen a hold's time range or push back its expiry (never narrow it)."""
        hold = self._hold(hold_id)
        if end is not None and end < hold.end:
            raise RetentionError("a hold can only be extended; release it to end it")
        if expires_at is not None and hold.expires_at is not None and expires_at < hold.expires_at:
            raise RetentionError("a hold's expiry can only move later")
        updated = hold.model_copy(
            update={"end": end or hold.end, "expires_at": expires_at or hold.expires_at}
        )
        when = self._when(now)
        self._store_hold(updated, LogEventType.HOLD_EXTEND, when, actor, replace=True)
        return updated

    def release_hold(self, hold_id: str, *, actor: str, now: datetime | None = None) -> LegalHold:
        """Release a hold: the ceiling applies again to what it covered, from the next sweep."""
        hold = self._hold(hold_id)
        when = self._when(now)
        released = hold.model_copy(update={"released_at": when})
        self._store_hold(released, LogEventType.HOLD_RELEASE, when, actor, replace=True)
        return released

    def _hold(self, hold_id: str) -> LegalHold:
        for hold in self.holds():
            if hold.hold_id == hold_id:
                return hold
        raise ConfigurationError(f"no legal hold {hold_id!r}; `auditlog hold list` shows them")

    def _store_hold(
        self, hold: LegalHold, event: LogEventType, when: datetime, actor: str, *, replace: bool
    ) -> None:
        layout = self._chains.layout
        subjects = (
            f"{len(hold.subject_tokens)} subject tokens" if hold.subject_tokens else "all subjects"
        )
        detail = (
            f"{hold.hold_id} case {hold.case_id} on {', '.join(hold.chains)}: "
            f"{hold.start.isoformat()} to {hold.end.isoformat()}, {subjects}, expires "
            f"{hold.expires_at.isoformat() if hold.expires_at else 'never'}"
            + (f", released {hold.released_at.isoformat()}" if hold.released_at else "")
        )
        with layout.log_lock():
            signed = save_hold(layout, self._keys.state_signer(), hold, replace=replace)
            self._state.bind_files([layout.holds])
            self._events.record(
                event,
                when,
                detail,
                chain=hold.chains[0],
                actor=actor,
                state=state_claim(HOLDS_PATH, signed.generation, layout.holds),
            )

    # -- sweeps and redaction -------------------------------------------------------------

    def sweep(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = True,
        chains: Iterable[str] | None = None,
        periods: Mapping[str, Iterable[int]] | None = None,
        actor: str = "retention-sweep",
    ) -> SweepPlan:
        """Plan (``dry_run``, the default) or apply the deletions retention requires at ``now``.

        Applying deletes every segment all of whose periods are past the ceiling and not
        under a hold, shreds those periods' keys, and leaves a signed tombstone per deleted
        range so the rest still verifies. ``periods`` asks for specific periods by hand
        (allowed past the floor; inside it ``RetentionError``). Idempotent; a sweep killed
        midway is finished by the next one.
        """
        when = self._when(now)
        names = self._chains.require(chains)
        if not dry_run:
            for chain in names:
                self._chains.writer(chain)  # takes the lock and finishes any interrupted sweep
        policies = self._manifest.current.retention
        plan = plan_sweep(self._chains, self._keys, policies, self.holds(), when, names, periods)
        if dry_run:
            return plan
        for chain_plan in plan.chains.values():
            apply_chain_plan(self._sweeps, chain_plan, when, actor)
        plan.applied = True
        return plan

    def check_interrupted_sweeps(self) -> None:
        """Refuse, before anything is written, an unfinished sweep's journal that is not the
        log's or that would delete what the policy and holds keep now."""
        for chain in [*self._chains.names(), EVENTS_CHAIN]:
            check_journal(self._sweeps, chain)

    def finish_interrupted_sweep(self, chain: str) -> bool:
        """Finish a sweep of ``chain`` that a crash interrupted; False if there was none."""
        return finish_journal(self._sweeps, chain)

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
        """Erase one subject's records where the law allows it; their leaves stay.

        Every record whose ``subject`` is ``subject`` loses its frame (the open segment is
        sealed first); blocks keep their hashes, so every root, checkpoint and proof of other
        records stays valid, and reading a redacted record raises ``RecordRedactedError``.
        Records still inside their chain's retention floor are refused with
        ``RetentionError`` unless ``legal_basis`` names the provision that overrides it (the
        override is logged). An event in the events chain says who, when and why, before any
        frame goes. Returns the redacted indexes per chain.
        """
        return redact_subject(
            self._chains,
            self._keys,
            self._events,
            self._state,
            self._manifest.current.retention,
            subject,
            reason=reason,
            actor=actor,
            when=self._when(now),
            legal_basis=legal_basis,
            names=self._chains.require(chains),
        )
