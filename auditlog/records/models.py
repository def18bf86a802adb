"""The record models: one frozen pydantic model per kind, the nested models, and their union.

The field order of each model is part of the storage format (see ``auditlog.records``): fields
are never reordered, renamed or reused, and a new field is appended with the default ``None``.
Every model forbids unknown fields, hides its input from error messages and requires ``kind``
in its JSON Schema. ``RECORD_TYPES`` maps each kind to its model; ``Record`` is their union,
discriminated by ``kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from auditlog.records.fields import (
    IPAddress,
    Port,
    UtcDateTime,
    _Account,
    _Code,
    _Content,
    _Count,
    _DocumentNumber,
    _Identifier,
    _LegalName,
    _MediaType,
    _Phone,
    _Query,
    _Sha256,
    _Subject,
    _UserAgent,
)
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

__all__ = [
    "LOG_SUBJECT",
    "RECORD_TYPES",
    "AccessRecord",
    "Activity",
    "Attachment",
    "CallParty",
    "CallRecord",
    "ChatMessage",
    "IdentityVerification",
    "LogEvent",
    "NetworkAddressRecord",
    "Record",
    "log_event",
]

_MICROSECOND: Final = timedelta(microseconds=1)


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
    subject: _Subject
    """The account the record is about; records are looked up by it (not blank)."""
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
    """Something the log did to itself (a sweep, a hold, a key rotation, a redaction, ...), kept in
    the log's own events chain ``_log``.

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
    state: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1024)] | None = None
    """The state file the event changed, as ``<path> <generation> <SHA-256>`` (format v2), so
    that a state file put back from an older copy is caught against the event."""
    head: Annotated[int, Strict(), Field(ge=0, le=(1 << 63) - 1)] | None = None
    """The generation of the log's signed head when the event was appended (format v2): an
    event is appended and bound under one hold of the log lock, so a head found one event
    behind must be of this generation, or it was put back from an older copy."""


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
