"""The records auditlog keeps: one frozen pydantic model per kind, and how to parse them.

A record is what a platform must retain about one event: a chat message, a call, a network
address in use, an identity check, another user activity, or a read of the log itself. Every
model is frozen, forbids unknown fields and validates strictly; ``docs/records.md`` lists every
field with its bounds and its source in the retained-data standards.

The field order of each model is part of the storage format: the codec encodes a record as a
msgpack map in declaration order. Fields are therefore never reordered, renamed or reused; a new
field is appended at the end of its model with the default ``None``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from socket import AF_INET, AF_INET6, inet_pton
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import ErrorDetails

from auditlog.errors import ConfigurationError, RecordValidationError

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
    "record_json_schema",
]

# Chat content is bounded in UTF-8 bytes, not characters, because bytes are what the log stores.
MAX_CONTENT_BYTES: Final = 64 * 1024
# Counts and sizes must fit a signed 64-bit integer so every msgpack reader can decode them.
_MAX_INT64: Final = 2**63 - 1
_MICROSECOND: Final = timedelta(microseconds=1)


# --- Scalar types ----------------------------------------------------------------------------


def _to_ip_address(value: object) -> IPv4Address | IPv6Address:
    # The messages below never repeat the value: it may be a user's address.
    if type(value) is str:
        # Fast path: the C parser, which accepts a subset of what ``ip_address`` accepts (no
        # zone index, no leading zeros); anything it refuses takes the full path below.
        try:
            return IPv4Address(inet_pton(AF_INET, value))
        except (OSError, ValueError):
            pass
        try:
            return IPv6Address(inet_pton(AF_INET6, value))
        except (OSError, ValueError):
            pass
    if isinstance(value, IPv4Address):
        return value
    if isinstance(value, IPv6Address):
        if value.scope_id is not None:
            # A zone index names an interface of one host; it has no meaning in a retained record
            # and the 16-byte packed form the codec stores cannot carry it.
            raise ValueError("an IPv6 address with a zone index (%...) is not accepted")
        return value
    if isinstance(value, bytes):
        if len(value) not in (4, 16):
            raise ValueError("a packed IP address must be 4 (IPv4) or 16 (IPv6) bytes long")
        return ip_address(value)
    if isinstance(value, str):
        try:
            address = ip_address(value)
        except ValueError:
            raise ValueError("not a valid IPv4 or IPv6 address") from None
        return _to_ip_address(address)
    raise ValueError("an IP address must be an ipaddress object, a string or packed bytes")


# The validator replaces pydantic's own union of the two address types, which would also take
# integers and would format every IPv6 address as text while trying IPv4 first.
IPAddress = Annotated[
    IPv4Address | IPv6Address,
    PlainValidator(_to_ip_address),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}
    ),
]
"""An IPv4 or IPv6 address; accepts an ``ipaddress`` object, its text, or its packed bytes."""

Port = Annotated[int, Strict(), Field(ge=0, le=65535)]
"""A TCP, UDP or SCTP port number."""

_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def _to_utc_datetime(value: object, parse: ValidatorFunctionWrapHandler) -> datetime:
    # One validator around pydantic's parser, not one before and one after: this runs for every
    # time of every record.
    if type(value) is datetime:
        parsed = value
    elif isinstance(value, datetime) or (isinstance(value, str) and _RFC3339_START.match(value)):
        parsed = parse(value)
    else:
        # Pydantic would also read numbers and digit strings as Unix seconds and dates as
        # midnight; a retained timestamp must say plainly what instant it means.
        raise ValueError(
            "a time must be a datetime or an RFC 3339 string, e.g. 2026-01-01T00:00:00Z"
        )
    return _to_utc(parsed)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: give a timezone-aware time, e.g. with tzinfo=UTC")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


UtcDateTime = Annotated[datetime, WrapValidator(_to_utc_datetime)]
"""A timezone-aware instant, stored in UTC so that equal instants give equal records."""


def _check_content_size(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        raise ValueError(f"content is {size} bytes in UTF-8; at most {MAX_CONTENT_BYTES} allowed")
    return value


# Every string is bounded; the bounds are listed in docs/records.md. Absent values are None,
# never empty strings, so one fact has one encoding. Pydantic-core refuses strings that are not
# valid Unicode (lone surrogates), so every accepted string encodes to UTF-8.
_Account = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=256)]
_Identifier = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=256)]
_Code = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=128)]
_UserAgent = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1024)]
_LegalName = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=256)]
_DocumentNumber = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=64)]
_Query = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=8192)]
_Phone = Annotated[str, Strict(), StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$")]
# Media types and hashes are case-insensitive; storing them in lowercase keeps equal values equal.
_MediaType = Annotated[
    str,
    Strict(),
    StringConstraints(
        max_length=255,
        to_lower=True,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
    ),
]
_Sha256 = Annotated[str, Strict(), StringConstraints(to_lower=True, pattern=r"^[0-9A-Fa-f]{64}$")]
_Count = Annotated[int, Strict(), Field(ge=0, le=_MAX_INT64)]

# The character bound rejects oversize text before it is encoded; the byte bound is the rule.
_Content = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=MAX_CONTENT_BYTES),
    AfterValidator(_check_content_size),
]


# --- Enumerations ----------------------------------------------------------------------------


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
    """What the log did to itself; later issues add shredding, tombstones, holds, policies."""

    REPAIR = "repair"
    SWEEP = "sweep"
    POLICY = "policy"
    HOLD_ADD = "hold-add"
    HOLD_EXTEND = "hold-extend"
    HOLD_RELEASE = "hold-release"
    KEY_ROTATION = "key-rotation"
    REDACTION = "redaction"


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


# --- Models ----------------------------------------------------------------------------------


def _require_kind_in_schema(schema: dict[str, Any]) -> None:
    # ``kind`` has a default so that models are easy to build in Python, but a document
    # without it cannot be told apart from the other kinds, so the schema requires it.
    if "kind" in schema.get("properties", {}):
        schema["required"] = ["kind", *schema.get("required", [])]


_MODEL_CONFIG = ConfigDict(
    frozen=True,
    extra="forbid",
    # A ValidationError printed by a caller must not echo a user's identifiers or content.
    hide_input_in_errors=True,
    # Attribute docstrings become descriptions in the exported JSON Schema.
    use_attribute_docstrings=True,
    json_schema_extra=_require_kind_in_schema,
)


def _require_address_for_port(model: BaseModel, *pairs: tuple[str, str]) -> None:
    # A port alone identifies nobody (RFC 6302 logs it to tell apart users behind one address).
    for address_field, port_field in pairs:
        if getattr(model, port_field) is not None and getattr(model, address_field) is None:
            raise ValueError(f"{port_field} is given without {address_field}")


class Attachment(BaseModel):
    """A file attached to a chat message, identified by its hash; the file itself is not kept."""

    model_config = _MODEL_CONFIG

    sha256: _Sha256
    """SHA-256 of the file, 64 hexadecimal digits, stored in lowercase."""
    size: _Count
    """Size of the file in bytes."""
    media_type: _MediaType
    """Media type (RFC 6838) such as ``image/jpeg``, without parameters, stored in lowercase."""


_Attachments = Annotated[tuple[Attachment, ...], Field(min_length=1, max_length=1_000)]


class CallParty(BaseModel):
    """One participant of a call and the endpoint it used."""

    model_config = _MODEL_CONFIG

    account: _Account
    """The participant's account (or number, for parties outside the platform)."""
    role: PartyRole
    """The participant's role in the call."""
    signalling_ip: IPAddress | None = None
    """Address the participant's client signalled from."""
    signalling_port: Port | None = None
    """Source port of the participant's signalling connection."""
    device_id: _Identifier | None = None
    """Identifier of the participant's device."""

    @model_validator(mode="after")
    def _check_endpoint(self) -> Self:
        _require_address_for_port(self, ("signalling_ip", "signalling_port"))
        return self


class _RecordBase(BaseModel):
    model_config = _MODEL_CONFIG

    # Each kind narrows ``kind`` to its own literal; pydantic keeps the field in first position.
    kind: str
    """The kind of record; selects the model."""
    occurred_at: UtcDateTime
    """When the event happened (timezone-aware, stored in UTC); retention counts from it."""
    subject: _Account
    """The account the record is about; records are looked up by it."""
    service: _Code
    """The platform service that produced the record."""


class ChatMessage(_RecordBase):
    """A chat message being sent, edited, recalled, deleted or forwarded."""

    kind: Literal["chat"] = "chat"
    message_id: _Identifier
    """The platform's identifier of the message."""
    conversation_id: _Identifier
    """The conversation (one-to-one or group) the message belongs to."""
    sender: _Account
    """The account that sent the message."""
    recipients: Annotated[tuple[_Account, ...], Field(min_length=1, max_length=10_000)]
    """The accounts the message was addressed to (at least one)."""
    operation: ChatOperation
    """What was done to the message."""
    content: _Content | None = None
    """The text of the message; at most 64 KiB in UTF-8."""
    attachments: _Attachments | None = None
    """Files attached to the message; absent when there are none."""
    client_ip: IPAddress | None = None
    """Address the sender's client connected from."""
    client_port: Port | None = None
    """Source port of the sender's connection."""
    device_id: _Identifier | None = None
    """Identifier of the sender's device."""
    user_agent: _UserAgent | None = None
    """The sender's client software, as it identified itself."""

    @model_validator(mode="after")
    def _check_message(self) -> Self:
        carries_message = self.operation in (
            ChatOperation.SEND,
            ChatOperation.EDIT,
            ChatOperation.FORWARD,
        )
        if carries_message and self.content is None and self.attachments is None:
            raise ValueError(f"a {self.operation} operation needs content or attachments")
        _require_address_for_port(self, ("client_ip", "client_port"))
        return self


class CallRecord(_RecordBase):
    """A voice or video call, answered or not."""

    kind: Literal["call"] = "call"
    call_id: _Identifier
    """The platform's identifier of the call."""
    parties: Annotated[tuple[CallParty, ...], Field(min_length=2, max_length=1_000)]
    """Everyone in the call, with their roles; exactly one caller."""
    media: CallMedia
    """Voice or video."""
    attempted_at: UtcDateTime
    """When the caller started the call."""
    answered_at: UtcDateTime | None = None
    """When the call was answered; absent for an unanswered call."""
    ended_at: UtcDateTime | None = None
    """When the call ended."""
    duration_us: _Count | None = None
    """Talk time in microseconds, from answer to end."""
    end_reason: CallEndReason | None = None
    """Why the call ended."""

    @model_validator(mode="after")
    def _check_call(self) -> Self:
        callers = sum(party.role is PartyRole.CALLER for party in self.parties)
        if callers != 1:
            raise ValueError(f"a call has exactly one party with role caller, not {callers}")
        if self.answered_at is not None and self.answered_at < self.attempted_at:
            raise ValueError("answered_at is earlier than attempted_at")
        start = self.attempted_at if self.answered_at is None else self.answered_at
        if self.ended_at is not None and self.ended_at < start:
            raise ValueError("ended_at is earlier than answered_at or attempted_at")
        if self.duration_us is not None and self.answered_at is None:
            raise ValueError("duration_us is given for a call that was not answered")
        if (
            self.duration_us is not None
            and self.answered_at is not None
            and self.ended_at is not None
            and (self.ended_at - self.answered_at) // _MICROSECOND != self.duration_us
        ):
            raise ValueError("duration_us does not equal ended_at minus answered_at")
        return self


class NetworkAddressRecord(_RecordBase):
    """An IP address and port in use by an account (RFC 6302 source-port logging)."""

    kind: Literal["network"] = "network"
    account: _Account | None = None
    """The account name presented, when the event names one."""
    event: NetworkEvent
    """The event that put the address on record."""
    source_ip: IPAddress
    """The client's source address as the server saw it."""
    source_port: Port | None = None
    """The client's source port (RFC 6302)."""
    transport: Transport | None = None
    """The transport protocol of the connection."""
    destination_ip: IPAddress | None = None
    """The server address the client connected to."""
    destination_port: Port | None = None
    """The server port the client connected to."""
    nat_public_ip: IPAddress | None = None
    """The public address a NAT translated the source address to."""
    nat_public_port: Port | None = None
    """The public port a NAT translated the source port to."""
    device_id: _Identifier | None = None
    """Identifier of the client's device."""
    user_agent: _UserAgent | None = None
    """The client software, as it identified itself."""
    status: NetworkStatus | None = None
    """The outcome of the event."""

    @model_validator(mode="after")
    def _check_endpoints(self) -> Self:
        _require_address_for_port(
            self,
            ("destination_ip", "destination_port"),
            ("nat_public_ip", "nat_public_port"),
        )
        return self


class IdentityVerification(_RecordBase):
    """A check of who stands behind an account (real-name verification)."""

    kind: Literal["identity"] = "identity"
    account: _Account
    """The account whose holder was checked."""
    method: IdentityMethod
    """How the identity was checked."""
    provider: _Code | None = None
    """Who performed the check (carrier, bank, identity service)."""
    result: IdentityResult
    """The outcome of the check."""
    phone: _Phone | None = None
    """The phone number checked, in E.164 form (``+`` and up to 15 digits)."""
    legal_name: _LegalName | None = None
    """The holder's legal name as verified."""
    document_type: DocumentType | None = None
    """The kind of identity document checked."""
    document_number: _DocumentNumber | None = None
    """The number of the identity document checked."""

    @model_validator(mode="after")
    def _check_document(self) -> Self:
        if self.document_number is not None and self.document_type is None:
            raise ValueError("document_number is given without document_type")
        return self


class Activity(_RecordBase):
    """Any other user activity the platform must retain."""

    kind: Literal["activity"] = "activity"
    account: _Account
    """The account that acted."""
    action: _Code
    """What was done, as a platform-defined code such as ``profile.update``."""
    object_type: _Code | None = None
    """The type of the thing acted on."""
    object_id: _Identifier | None = None
    """The identifier of the thing acted on."""
    outcome: ActivityOutcome | None = None
    """The outcome of the action."""
    client_ip: IPAddress | None = None
    """Address the client connected from."""
    client_port: Port | None = None
    """Source port of the client's connection."""
    device_id: _Identifier | None = None
    """Identifier of the client's device."""
    user_agent: _UserAgent | None = None
    """The client software, as it identified itself."""

    @model_validator(mode="after")
    def _check_client(self) -> Self:
        _require_address_for_port(self, ("client_ip", "client_port"))
        return self


class AccessRecord(_RecordBase):
    """A read of the log itself: who looked, why, and how much they got."""

    kind: Literal["access"] = "access"
    actor: _Account
    """Who read the log."""
    role: _Code
    """The actor's role, such as ``inspector`` or ``operator``."""
    purpose: _Code
    """The stated purpose of the read, as a code."""
    legal_basis: _Code | None = None
    """The legal provision the read relies on."""
    case_id: _Identifier | None = None
    """The case or request the read answers."""
    query: _Query
    """The query that was run, as text."""
    records_returned: _Count
    """How many records the read returned."""


LOG_SUBJECT: Final = "auditlog"


class LogEvent(_RecordBase):
    """Something the log did to itself (a repair, later shreds and holds), kept in the log.

    Its ``subject`` is always ``auditlog``: it is about the log, never about a user, and its
    ``detail`` names only chains, segments, offsets and indexes.
    """

    kind: Literal["log"] = "log"
    event: LogEventType
    """What happened."""
    chain: _Code
    """The chain it happened to."""
    detail: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=4096)]
    """What was done, where, and what it cost, in words."""
    actor: _Account | None = None
    """Who asked for it, when someone did."""


def log_event(
    *, occurred_at: datetime, event: LogEventType | str, chain: str, detail: str
) -> LogEvent:
    """A ``LogEvent`` about ``chain``, with the log as its subject and service."""
    return LogEvent(
        occurred_at=occurred_at,
        subject=LOG_SUBJECT,
        service=LOG_SUBJECT,
        event=LogEventType(event),
        chain=chain,
        detail=detail,
    )


Record = Annotated[
    ChatMessage
    | CallRecord
    | NetworkAddressRecord
    | IdentityVerification
    | Activity
    | AccessRecord
    | LogEvent,
    Field(discriminator="kind"),
]
"""Any record; ``kind`` selects the model."""

RECORD_TYPES: Mapping[RecordKind, type[BaseModel]] = MappingProxyType(
    {
        RecordKind.CHAT: ChatMessage,
        RecordKind.CALL: CallRecord,
        RecordKind.NETWORK: NetworkAddressRecord,
        RecordKind.IDENTITY: IdentityVerification,
        RecordKind.ACTIVITY: Activity,
        RecordKind.ACCESS: AccessRecord,
        RecordKind.LOG: LogEvent,
    }
)
"""The model of each kind of record."""

_RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)

# Field names are safe to show; a key that does not look like one may be user data.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_KINDS_TEXT: Final = ", ".join(repr(str(kind)) for kind in RecordKind)


def _describe(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    # A tagged union puts the tag first in the location; the path reads better without it.
    if loc and loc[0] in RECORD_TYPES:
        loc = loc[1:]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # Pydantic's own message quotes the tag it was given, which is input.
        return f"kind: must be one of {_KINDS_TEXT}"
    parts = [
        str(part) if isinstance(part, int) or _FIELD_NAME.fullmatch(part) else "<field>"
        for part in loc
    ]
    path = ".".join(parts) if parts else "(record)"
    return f"{path}: {error['msg']}"


def parse_record(data: Mapping[str, Any] | str | bytes) -> Record:
    """Validate ``data`` (a mapping, or a JSON document as text or bytes) into a record.

    Raises ``RecordValidationError`` listing each problem as ``field.path: message``. The
    message never contains the offending values, which may be a user's identifiers or content.
    """
    try:
        if isinstance(data, str | bytes):
            return _RECORD_ADAPTER.validate_json(data)
        if not isinstance(data, Mapping):
            raise RecordValidationError(
                f"a record must be a mapping or a JSON document, not {type(data).__name__}"
            )
        # Pydantic takes a dict as it is; other mappings (read-only views, ...) are copied.
        return _RECORD_ADAPTER.validate_python(data if type(data) is dict else dict(data))
    except ValidationError as exc:
        problems = exc.errors(include_input=False, include_url=False, include_context=False)
        lines = "\n".join(f"  {_describe(problem)}" for problem in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        raise RecordValidationError(f"invalid record, {len(problems)} {noun}:\n{lines}") from None


def record_json_schema(kind: RecordKind | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of record, for validation outside Python."""
    try:
        model = RECORD_TYPES[RecordKind(kind)]
    except ValueError:
        raise ConfigurationError(f"unknown record kind; expected one of {_KINDS_TEXT}") from None
    return model.model_json_schema()
