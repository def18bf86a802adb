"""auditlog: private, tamper-evident, retention-bound logs of user-activity records.

The safe recipe is ``AuditLog``; everything it stores is encrypted, hash-chained and covered by
an RFC 6962 Merkle tree per chain. See README.md and docs/.
"""

from auditlog.clock import Clock, SystemClock
from auditlog.crypto import EnvKeyProvider, KeyProvider, PassphraseKeyProvider
from auditlog.errors import (
    AuditLogError,
    ConfigurationError,
    ForkError,
    IntegrityError,
    KeyMaterialError,
    KeyShreddedError,
    LateRecordError,
    LogLockedError,
    NoteError,
    PassphraseError,
    ProofError,
    RecordRedactedError,
    RecordValidationError,
    RetentionError,
    RollbackError,
)
from auditlog.log import (
    AppendResult,
    AuditLog,
    GroupCommit,
    LogConfig,
    LogStats,
    Receipt,
    RepairReport,
    VerifyReport,
)
from auditlog.records import (
    AccessRecord,
    Activity,
    CallRecord,
    ChatMessage,
    IdentityVerification,
    NetworkAddressRecord,
    Record,
    RecordKind,
    parse_record,
)
from auditlog.retention import LegalHold, RetentionPolicy, SweepPlan

__version__ = "0.1.0"

__all__ = [
    "AccessRecord",
    "Activity",
    "AppendResult",
    "AuditLog",
    "AuditLogError",
    "CallRecord",
    "ChatMessage",
    "Clock",
    "ConfigurationError",
    "EnvKeyProvider",
    "ForkError",
    "GroupCommit",
    "IdentityVerification",
    "IntegrityError",
    "KeyMaterialError",
    "KeyProvider",
    "KeyShreddedError",
    "LateRecordError",
    "LegalHold",
    "LogConfig",
    "LogLockedError",
    "LogStats",
    "NetworkAddressRecord",
    "NoteError",
    "PassphraseError",
    "PassphraseKeyProvider",
    "ProofError",
    "Receipt",
    "Record",
    "RecordKind",
    "RecordRedactedError",
    "RecordValidationError",
    "RepairReport",
    "RetentionError",
    "RetentionPolicy",
    "RollbackError",
    "SweepPlan",
    "SystemClock",
    "VerifyReport",
    "__version__",
    "parse_record",
]
