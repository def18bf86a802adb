"""The enumerations records use: the kinds of record and the closed sets of their fields.

Each is a ``StrEnum``: a record carries the member, and the codec stores its string value.
"""

from __future__ import annotations

import enum

__all__ = [
    "ActivityOutcome",
    "CallEndReason",
    "CallMedia",
    "ChatOperation",
    "DocumentType",
    "IdentityMethod",
    "IdentityResult",
    "LogEventType",
    "NetworkEvent",
    "NetworkStatus",
    "PartyRole",
    "RecordKind",
    "Transport",
]


class RecordKind(enum.StrEnum):
    """The kinds of record; the value is the ``kind`` field of the record."""

    CHAT = "chat"
    CALL = "call"
    NETWORK = "network"
    IDENTITY = "identity"
    ACTIVITY = "activity"
    ACCESS = "access"
    LOG = "log"


class LogEventType(enum.StrEnum):
    """What the log did to itself. New values are appended; none is ever reused."""

    REPAIR = "repair"
    SWEEP = "sweep"
    POLICY = "policy"
    HOLD_ADD = "hold-add"
    HOLD_EXTEND = "hold-extend"
    HOLD_RELEASE = "hold-release"
    KEY_ROTATION = "key-rotation"
    REDACTION = "redaction"
    CREATED = "created"
    """The log was created (the first event of its events chain)."""
    MIGRATED = "migrated"
    """The log was migrated from an earlier format version."""
    CHAIN = "chain"
    """A chain was added to the log."""
    PASSPHRASE = "passphrase"  # noqa: S105 - an event type, not a secret
    """The passphrase protecting the root key was changed."""
    RECOVERED = "recovered"
    """The head was signed again after a change a crash had interrupted."""


class ChatOperation(enum.StrEnum):
    """What was done to a chat message."""

    SEND = "send"
    EDIT = "edit"
    RECALL = "recall"
    DELETE = "delete"
    FORWARD = "forward"


class PartyRole(enum.StrEnum):
    """The role of a party in a call."""

    CALLER = "caller"
    CALLEE = "callee"
    FORWARDED_TO = "forwarded-to"
    TRANSFERRED_TO = "transferred-to"
    CONFERENCE_MEMBER = "conference-member"


class CallMedia(enum.StrEnum):
    """The media of a call."""

    VOICE = "voice"
    VIDEO = "video"


class CallEndReason(enum.StrEnum):
    """Why a call ended, or why it never started."""

    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class NetworkEvent(enum.StrEnum):
    """The event that put a network address on record."""

    REGISTER = "register"
    LOGIN = "login"
    LOGOUT = "logout"
    SESSION_START = "session-start"
    SESSION_END = "session-end"
    API = "api"


class Transport(enum.StrEnum):
    """The transport protocol of a connection (RFC 6302 asks for it next to the port)."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


class NetworkStatus(enum.StrEnum):
    """The outcome of a network event."""

    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN_ACCOUNT = "unknown-account"


class IdentityMethod(enum.StrEnum):
    """How an identity was checked."""

    PHONE = "phone"
    ID_DOCUMENT = "id-document"
    FACE = "face"
    BANK_CARD = "bank-card"
    EID = "eid"


class IdentityResult(enum.StrEnum):
    """The outcome of an identity check."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


class DocumentType(enum.StrEnum):
    """The kind of identity document that was checked."""

    NATIONAL_ID = "national-id"
    PASSPORT = "passport"
    DRIVING_LICENCE = "driving-licence"
    RESIDENCE_PERMIT = "residence-permit"
    OTHER = "other"


class ActivityOutcome(enum.StrEnum):
    """The outcome of a user activity."""

    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"
