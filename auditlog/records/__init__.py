"""The records auditlog keeps: one frozen pydantic model per kind, and how to parse them.

A record is what a platform must retain about one event: a chat message, a call, a network
address in use, an identity check, another user activity, or a read of the log itself. Every
model is frozen, forbids unknown fields and validates strictly; ``docs/records.md`` lists every
field with its bounds and its source in the retained-data standards.

The field order of each model is part of the storage format: the codec encodes a record as a
msgpack map in declaration order. Fields are therefore never reordered, renamed or reused; a new
field is appended at the end of its model with the default ``None``.

The package holds the scalar field types (``fields``), the enumerations (``kinds``), the models
(``models``) and parsing with JSON Schema export (``parsing``); every public name is importable
from ``auditlog.records``.
"""

from auditlog.records.fields import MAX_CONTENT_BYTES, IPAddress, Port, UtcDateTime
from auditlog.records.kinds import (
    ActivityOutcome,
    CallEndReason,
    CallMedia,
    ChatOperation,
    DocumentType,
    IdentityMethod,
    IdentityResult,
    LogEventType,
    NetworkEvent,
    NetworkStatus,
    PartyRole,
    RecordKind,
    Transport,
)
from auditlog.records.models import (
    LOG_SUBJECT,
    RECORD_TYPES,
    AccessRecord,
    Activity,
    Attachment,
    CallParty,
    CallRecord,
    ChatMessage,
    IdentityVerification,
    LogEvent,
    NetworkAddressRecord,
    Record,
    log_event,
)
from auditlog.records.parsing import parse_record, parse_stored_record, record_json_schema

__all__ = [
    "LOG_SUBJECT",
    "MAX_CONTENT_BYTES",
    "RECORD_TYPES",
    "AccessRecord",
    "Activity",
    "ActivityOutcome",
    "Attachment",
    "CallEndReason",
    "CallMedia",
    "CallParty",
    "CallRecord",
    "ChatMessage",
    "ChatOperation",
    "DocumentType",
    "IPAddress",
    "IdentityMethod",
    "IdentityResult",
    "IdentityVerification",
    "LogEvent",
    "LogEventType",
    "NetworkAddressRecord",
    "NetworkEvent",
    "NetworkStatus",
    "PartyRole",
    "Port",
    "Record",
    "RecordKind",
    "Transport",
    "UtcDateTime",
    "log_event",
    "parse_record",
    "parse_stored_record",
    "record_json_schema",
]
