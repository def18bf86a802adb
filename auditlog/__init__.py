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
    StateFileError,
)
from auditlog.log import (
    AppendResult,
    AuditLog,
    ChainKeys,
    ChainStats,
    GroupCommit,
    Keys,
    KeyStatus,
    LogConfig,
    LogStats,
    Proofs,
    Receipt,
    RepairReport,
    Retention,
    VerifyReport,
)
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    TrustedState,
    verify_consistency_proof,
    verify_inclusion_proof,
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
from auditlog.retention import ChainSweepPlan, LegalHold, RetentionPolicy, SweepPlan
from auditlog.segment.reader import ChainReport
from auditlog.segment.recovery import RecoveryReport

__version__ = "0.1.0"

__all__ = [
    "AccessRecord",
    "Activity",
    "AppendResult",
    "AuditLog",
    "AuditLogError",
    "CallRecord",
    "ChainKeys",
    "ChainReport",
    "ChainStats",
    "ChainSweepPlan",
    "ChatMessage",
    "Clock",
    "ConfigurationError",
    "ConsistencyProof",
    "EnvKeyProvider",
    "ForkError",
    "GroupCommit",
    "IdentityVerification",
    "InclusionProof",
    "IntegrityError",
    "KeyMaterialError",
    "KeyProvider",
    "KeyShreddedError",
    "KeyStatus",
    "Keys",
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
    "Proofs",
    "Receipt",
    "Record",
    "RecordKind",
    "RecordRedactedError",
    "RecordValidationError",
    "RecoveryReport",
    "RepairReport",
    "Retention",
    "RetentionError",
    "RetentionPolicy",
    "RollbackError",
    "StateFileError",
    "SweepPlan",
    "SystemClock",
    "TrustedState",
    "VerifyReport",
    "__version__",
    "parse_record",
    "verify_consistency_proof",
    "verify_inclusion_proof",
]
