"""Layer 6: the log — ``AuditLog`` and the rooms it hands work to.

- ``audit_log``: ``AuditLog``, the facade (create, open, append, read, verify, repair);
- ``config``, ``manifest``, ``results``: what a log is configured with, stores and returns;
- ``key_material``: the keys a handle unlocks (root key provider, keyrings, signing key);
- ``chains``: the chains' writers, readers and signed side files;
- ``appending``, ``reading``, ``verify``, ``repair``, ``events``: the work on them;
- ``head``, ``state``, ``opening``, ``creation``, ``migration``, ``holds_file``: the signed
  head that binds the log's state files, comparing the directory with it, the write-open that
  reconciles them, atomic creation, and the explicit migration of format v1 logs;
- ``keys``, ``proofs``, ``retention``: the sub-APIs ``log.keys``, ``log.proofs``,
  ``log.retention``.

docs/architecture.md shows the layers and follows one record, one verify and one sweep.
"""

from auditlog.log.audit_log import AuditLog
from auditlog.log.config import GroupCommit, LogConfig
from auditlog.log.keys import Keys
from auditlog.log.migration import MigrationReport
from auditlog.log.proofs import Proofs
from auditlog.log.results import (
    AppendResult,
    ChainKeys,
    ChainStats,
    KeyStatus,
    LogStats,
    Receipt,
    RepairReport,
    VerifyReport,
)
from auditlog.log.retention import Retention

__all__ = [
    "AppendResult",
    "AuditLog",
    "ChainKeys",
    "ChainStats",
    "GroupCommit",
    "KeyStatus",
    "Keys",
    "LogConfig",
    "LogStats",
    "MigrationReport",
    "Proofs",
    "Receipt",
    "RepairReport",
    "Retention",
    "VerifyReport",
]
