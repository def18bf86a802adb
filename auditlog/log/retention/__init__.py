"""``log.retention``: retention policies, legal holds, sweeps (planned, journaled, crash-safe)
and redaction, each in a room of its own (the rules themselves, as values — ``RetentionPolicy``,
``LegalHold``, ``SweepPlan`` — are ``auditlog.retention``):

- ``holds``: ``holds.json`` and the keyed subject tokens in holds;
- ``sweep``: planning a sweep (what may go, what is held, what stays);
- ``journal``: carrying a sweep out through a signed journal, and finishing one a crash stopped;
- ``redaction``: erasing one subject's records;
- ``api``: ``Retention``, the object ``AuditLog.retention`` hands out.
"""

from auditlog.log.retention.api import Retention

__all__ = ["Retention"]
