"""The log's own events (repairs, sweeps, policies, holds, rotations, redactions), appended to
the chain they concern so that the history of what was done to a chain is in the chain itself.
"""

from __future__ import annotations

from datetime import datetime

from auditlog.log.chains import Chains
from auditlog.records import LOG_SUBJECT, LogEvent, LogEventType

__all__ = ["record_log_event"]


def record_log_event(
    chains: Chains,
    chain: str,
    event: LogEventType,
    when: datetime,
    detail: str,
    actor: str | None = None,
) -> None:
    """Append (and flush) a record of something the log did to itself to ``chain``."""
    record = LogEvent(
        occurred_at=when,
        subject=LOG_SUBJECT,
        service=LOG_SUBJECT,
        event=event,
        chain=chain,
        detail=detail,
        actor=actor,
    )
    writer = chains.writer(chain)
    # The log's own events happen when they happen, however far the chain's records ran.
    writer.append_batch([record], check_late=False)
    writer.flush()
