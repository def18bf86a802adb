"""Record models: strict validation, private error messages, and the contract with the codec."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from auditlog.errors import AuditLogError, ConfigurationError, RecordValidationError
from auditlog.records import (
    MAX_CONTENT_BYTES,
    RECORD_TYPES,
    AccessRecord,
    Activity,
    ActivityOutcome,
    Attachment,
    CallEndReason,
    CallMedia,
    CallParty,
    CallRecord,
    ChatMessage,
    ChatOperation,
    DocumentType,
    IdentityMethod,
    IdentityResult,
    IdentityVerification,
    NetworkAddressRecord,
    NetworkEvent,
    NetworkStatus,
    PartyRole,
    Record,
    RecordKind,
    Transport,
    parse_record,
    parse_stored_record,
    record_json_schema,
)

# --- The codec contract ----------------------------------------------------------------------
# These two functions restate the contract the codec relies on (see docs/records.md) so that the
# record models are tested against it on their own, whatever the codec module does on top.


def _pack_ip(value: object) -> bytes:
    if isinstance(value, IPv4Address | IPv6Address):
        return value.packed
    raise TypeError(f"not a record value: {type(value).__name__}")


def encode(record: Record) -> bytes:
    data = record.__pydantic_serializer__.to_python(record, exclude_none=True)
    packed: bytes = msgpack.packb(data, datetime=True, default=_pack_ip)
    return packed


def decode(raw: bytes) -> Record:
    return parse_record(msgpack.unpackb(raw, timestamp=3))


# --- Sample records --------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def chat(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "chat",
        "occurred_at": T0,
        "subject": "acct-1",
        "service": "chat",
        "message_id": "m-1",
        "conversation_id": "c-1",
        "sender": "acct-1",
        "recipients": ["acct-2"],
        "operation": "send",
        "content": "hello",
    }
    data.update(changes)
    return data


def call(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "call",
        "occurred_at": T0,
        "subject": "acct-1",
        "service": "calls",
        "call_id": "call-1",
        "parties": [
            {"account": "acct-1", "role": "caller"},
            {"account": "acct-2", "role": "callee"},
        ],
        "media": "voice",
        "attempted_at": T0,
        "answered_at": T0 + timedelta(seconds=5),
        "ended_at": T0 + timedelta(seconds=65),
        "duration_us": 60_000_000,
    }
    data.update(changes)
    return data


def network(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "network",
        "occurred_at": T0,
        "subject": "acct-1",
        "service": "sshd",
        "event": "login",
        "source_ip": "203.0.113.7",
        "source_port": 51234,
    }
    data.update(changes)
    return data


def problems(data: Any) -> str:
    with pytest.raises(RecordValidationError) as caught:
        parse_record(data)
    return str(caught.value)


# --- Strict validation -----------------------------------------------------------------------


def test_naive_datetime_is_rejected_with_a_clear_message() -> None:
    """A datetime without a timezone is refused, and the message says so and names the field."""
    message = problems(chat(occurred_at=datetime(2026, 3, 1, 12, 0)))
    assert "occurred_at:" in message
    assert "naive datetime" in message


def test_naive_datetime_text_is_rejected() -> None:
    """An RFC 3339 string without an offset is as naive as a naive datetime and is refused."""
    assert "naive datetime" in problems(json.dumps(chat(occurred_at="2026-03-01T12:00:00")))


@pytest.mark.parametrize("value", [1_767_225_600, 1_767_225_600.5, "1767225600", T0.date()])
def test_numbers_and_dates_are_not_times(value: object) -> None:
    """Unix numbers, digit strings and bare dates are refused as timestamps: they are ambiguous."""
    assert "occurred_at: Value error, a time must be a datetime" in problems(
        chat(occurred_at=value)
    )


def test_occurred_at_is_normalized_to_utc() -> None:
    """Equal instants in different zones give equal records whose times are in UTC."""
    plus_two = timezone(timedelta(hours=2))
    local = parse_record(chat(occurred_at=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two)))
    utc = parse_record(chat())
    assert local == utc
    assert local.occurred_at.tzinfo is UTC
    assert encode(local) == encode(utc)


def test_nested_times_are_normalized_to_utc() -> None:
    """Every time field, not only occurred_at, is stored in UTC."""
    minus_five = timezone(timedelta(hours=-5))
    record = parse_record(call(answered_at=datetime(2026, 3, 1, 7, 0, 5, tzinfo=minus_five)))
    assert isinstance(record, CallRecord)
    assert record.answered_at == T0 + timedelta(seconds=5)
    assert record.answered_at is not None
    assert record.answered_at.tzinfo is UTC


@pytest.mark.parametrize("port", [-1, 65536, 2**70, True, "22", 22.0])
def test_bad_ports_are_rejected(port: object) -> None:
    """A port is an int from 0 to 65535: no bools, strings, floats or values out of range."""
    assert "source_port:" in problems(network(source_port=port))


@pytest.mark.parametrize("port", [0, 65535])
def test_port_bounds_are_inclusive(port: int) -> None:
    """Ports 0 and 65535 are valid."""
    record = parse_record(network(source_port=port))
    assert isinstance(record, NetworkAddressRecord)
    assert record.source_port == port


@pytest.mark.parametrize(
    "address",
    [
        "300.1.2.3",
        "not-an-address",
        "",
        b"\x01\x02\x03",
        b"\x00" * 5,
        3_405_803_783,
        "fe80::1%eth0",
    ],
)
def test_bad_ip_addresses_are_rejected(address: object) -> None:
    """Malformed text, packed bytes of the wrong length, integers and zoned IPv6 are refused."""
    assert "source_ip: Value error" in problems(network(source_ip=address))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("203.0.113.7", IPv4Address("203.0.113.7")),
        (IPv4Address("203.0.113.7"), IPv4Address("203.0.113.7")),
        (bytes([203, 0, 113, 7]), IPv4Address("203.0.113.7")),
        ("2001:db8::1", IPv6Address("2001:db8::1")),
        (IPv6Address("2001:db8::1").packed, IPv6Address("2001:db8::1")),
        ("::ffff:203.0.113.7", IPv6Address("::ffff:203.0.113.7")),
    ],
)
def test_ip_addresses_accept_objects_text_and_packed_bytes(
    given: object, expected: IPv4Address | IPv6Address
) -> None:
    """An IP field takes an ipaddress object, its text or its packed bytes; it stores the object."""
    record = parse_record(network(source_ip=given))
    assert isinstance(record, NetworkAddressRecord)
    assert record.source_ip == expected
    assert type(record.source_ip) is type(expected)


def _stdlib_address(text: str) -> IPv4Address | IPv6Address | None:
    # What the records accept for an address given as text, by the standard library alone.
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.scope_id is not None:
        return None
    return address


_ADDRESS_PARTS = st.sampled_from(
    [
        "0",
        "1",
        "01",
        "00",
        "255",
        "256",
        "999",
        "0x1",
        "ff",
        "FFFF",
        "fffff",
        "db8",
        "2001",
        "1.2.3.4",
        "::",
        ":",
        ".",
        "%eth0",
        "%1",
        " ",
        "\x00",
        "٣",
        "-1",
        "+1",
        "",
    ]
)


@given(st.lists(_ADDRESS_PARTS, max_size=10).map("".join) | st.text(max_size=45))
@settings(max_examples=3000, deadline=None)
def test_ip_text_is_accepted_exactly_as_the_standard_library_parses_it(text: str) -> None:
    """The records' fast C parser of addresses never accepts, or reads differently, any text
    that ``ipaddress.ip_address`` refuses or reads otherwise (zone indexes are refused)."""
    expected = _stdlib_address(text)
    try:
        record = parse_record(network(source_ip=text))
    except RecordValidationError:
        assert expected is None
        return
    assert isinstance(record, NetworkAddressRecord)
    assert record.source_ip == expected
    assert type(record.source_ip) is type(expected)
    assert str(record.source_ip) == str(expected)


@given(
    st.integers(0, 2**32 - 1).map(lambda n: str(IPv4Address(n)))
    | st.integers(0, 2**128 - 1).map(lambda n: IPv6Address(n).exploded)
    | st.integers(0, 2**128 - 1).map(lambda n: str(IPv6Address(n)))
    | st.integers(0, 2**32 - 1).map(lambda n: "::ffff:" + str(IPv4Address(n)))
)
@settings(max_examples=1000, deadline=None)
def test_every_address_text_form_reads_as_the_standard_library_reads_it(text: str) -> None:
    """Dotted, compressed, exploded and IPv4-mapped forms all give the stdlib's address."""
    record = parse_record(network(source_ip=text))
    assert isinstance(record, NetworkAddressRecord)
    assert record.source_ip == ip_address(text)
    assert type(record.source_ip) is type(ip_address(text))


def test_unknown_fields_are_rejected() -> None:
    """A field the model does not define is an error, not silently dropped."""
    message = problems(chat(colour="blue"))
    assert "colour: Extra inputs are not permitted" in message


def test_unknown_field_names_that_may_be_data_are_not_shown() -> None:
    """An unknown key that does not look like a field name is reported without its text."""
    message = problems(chat(**{"alice@example.com": 1}))
    assert "alice" not in message
    assert "<field>: Extra inputs are not permitted" in message


def test_oversize_content_is_rejected_by_utf8_bytes() -> None:
    """Content is bounded in UTF-8 bytes: 64 KiB of ASCII passes, fewer but wider chars do not."""
    assert parse_record(chat(content="a" * MAX_CONTENT_BYTES))
    euro_signs = "€" * (MAX_CONTENT_BYTES // 3 + 1)  # 3 bytes each, under the character bound
    message = problems(chat(content=euro_signs))
    assert f"content: Value error, content is {len(euro_signs) * 3} bytes" in message
    assert "€" not in message


def test_every_string_is_bounded() -> None:
    """Over-long identifiers are refused just as over-long content is."""
    assert "subject: String should have at most 256 characters" in problems(chat(subject="x" * 257))
    assert "user_agent: String should have at most 1024" in problems(chat(user_agent="u" * 1025))


def test_empty_strings_and_empty_sequences_are_rejected() -> None:
    """Absent values are None, never empty, so one fact has one encoding."""
    message = problems(chat(device_id="", recipients=[], attachments=[]))
    assert "device_id: String should have at least 1 character" in message
    assert "recipients: Tuple should have at least 1 item" in message
    assert "attachments: Tuple should have at least 1 item" in message


def test_lone_surrogates_are_rejected() -> None:
    """Text that UTF-8 cannot encode is refused before it can reach the codec."""
    assert "content:" in problems(chat(content="broken \ud800 text"))


def test_records_are_frozen() -> None:
    """A record cannot be changed after validation."""
    record = parse_record(chat())
    with pytest.raises(ValidationError):
        record.subject = "someone-else"


def test_enumerations_are_stored_as_members() -> None:
    """Enumeration fields hold StrEnum members whatever form they were given in."""
    record = parse_record(chat(operation="edit"))
    assert isinstance(record, ChatMessage)
    assert record.operation is ChatOperation.EDIT


def test_sha256_is_stored_in_lowercase_and_checked() -> None:
    """Attachment hashes are 64 hex digits, stored lowercase; others are refused."""
    attachment = {"sha256": "AB" * 32, "size": 10, "media_type": "Image/JPEG"}
    record = parse_record(chat(attachments=[attachment]))
    assert isinstance(record, ChatMessage)
    assert record.attachments == (Attachment(sha256="ab" * 32, size=10, media_type="image/jpeg"),)
    bad = {"sha256": "ab" * 31, "size": 10, "media_type": "image/jpeg"}
    assert "attachments.0.sha256: String should match pattern" in problems(chat(attachments=[bad]))


# --- Cross-field checks ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["send", "edit", "forward"])
def test_message_operations_need_content_or_attachments(operation: str) -> None:
    """Sending, editing or forwarding nothing is refused."""
    assert "needs content or attachments" in problems(chat(operation=operation, content=None))


@pytest.mark.parametrize("operation", ["recall", "delete"])
def test_recall_and_delete_need_no_content(operation: str) -> None:
    """Recalling or deleting a message names it by id and carries no text."""
    record = parse_record(chat(operation=operation, content=None))
    assert isinstance(record, ChatMessage)
    assert record.content is None


def test_attachments_alone_make_a_message() -> None:
    """A message of attachments only is valid."""
    attachment = {"sha256": "0" * 64, "size": 0, "media_type": "image/png"}
    assert parse_record(chat(content=None, attachments=[attachment]))


def test_a_port_needs_its_address() -> None:
    """A port without the address it belongs to identifies nobody and is refused."""
    assert "client_port is given without client_ip" in problems(chat(client_port=4000))
    assert "destination_port is given without destination_ip" in problems(
        network(destination_port=22)
    )
    party = {"account": "a", "role": "callee", "signalling_port": 5060}
    message = problems(call(parties=[{"account": "b", "role": "caller"}, party]))
    assert "parties.1: Value error, signalling_port is given without signalling_ip" in message


def test_call_times_must_be_in_order() -> None:
    """A call is answered after it is attempted and ends after it is answered."""
    early = T0 - timedelta(seconds=1)
    assert "answered_at is earlier than attempted_at" in problems(call(answered_at=early))
    assert "ended_at is earlier" in problems(call(ended_at=T0 + timedelta(seconds=1)))
    assert "ended_at is earlier" in problems(
        call(answered_at=None, duration_us=None, ended_at=early)
    )


def test_call_duration_matches_its_times() -> None:
    """duration_us equals ended_at minus answered_at, and an unanswered call has none."""
    assert "duration_us does not equal" in problems(call(duration_us=59_999_999))
    assert "not answered" in problems(call(answered_at=None))
    assert parse_record(call(ended_at=None))


@pytest.mark.parametrize(
    "roles", [["callee", "callee"], ["caller", "caller"], ["caller", "callee", "caller"]]
)
def test_a_call_has_exactly_one_caller(roles: list[str]) -> None:
    """Exactly one party of a call has the role caller."""
    parties = [{"account": f"acct-{i}", "role": role} for i, role in enumerate(roles)]
    assert "exactly one party with role caller" in problems(call(parties=parties))


def test_document_number_needs_document_type() -> None:
    """An identity document number alone does not say what document it is."""
    data = {
        "kind": "identity",
        "occurred_at": T0,
        "subject": "acct-1",
        "service": "accounts",
        "account": "acct-1",
        "method": "id-document",
        "result": "passed",
        "document_number": "X123",
    }
    assert "document_number is given without document_type" in problems(data)


# --- Private error messages ------------------------------------------------------------------

SECRET = "SECRET-7f3a"


def _secret_inputs() -> list[dict[str, Any]]:
    """Records that are wrong in every field, each bad value carrying the secret marker."""
    return [
        chat(
            subject=SECRET * 100,
            sender=SECRET * 100,
            recipients=[SECRET * 100],
            content=SECRET * 10_000,
            client_ip=SECRET,
            client_port=SECRET,
            device_id=SECRET * 100,
            operation=SECRET,
            occurred_at=SECRET,
            attachments=[{"sha256": SECRET, "size": SECRET, "media_type": SECRET}],
            **{SECRET: SECRET},
        ),
        {"kind": SECRET},
        {"kind": 5, "subject": SECRET},
        network(source_ip=SECRET.encode(), status=SECRET, transport=SECRET, event=SECRET),
        call(parties=[{"account": SECRET * 100, "role": SECRET, "signalling_ip": SECRET}]),
        {**chat(), "kind": "identity", "phone": f"+{SECRET}"},
    ]


@pytest.mark.parametrize("data", _secret_inputs())
def test_error_messages_never_contain_input_values(data: dict[str, Any]) -> None:
    """Neither the message nor the diagnostics of a validation error echo what the user sent."""
    with pytest.raises(RecordValidationError) as caught:
        parse_record(data)
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.diagnostics()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_json_errors_never_contain_input_values() -> None:
    """Input given as JSON is as private as input given as a mapping."""
    data = chat(occurred_at=T0.isoformat(), content=SECRET * 10_000, client_ip=SECRET)
    message = problems(json.dumps(data))
    assert SECRET not in message


def test_direct_construction_errors_hide_input() -> None:
    """A pydantic ValidationError from building a model directly does not echo the input."""
    with pytest.raises(ValidationError) as caught:
        NetworkAddressRecord(**network(source_ip=SECRET))
    assert SECRET not in str(caught.value)


def test_unknown_kind_lists_the_valid_kinds() -> None:
    """A missing or unknown kind is reported with the kinds that exist."""
    expected = "kind: must be one of 'chat', 'call', 'network', 'identity', 'activity', 'access'"
    assert expected in problems({"kind": "fax"})
    assert expected in problems({})


def test_validation_error_is_an_auditlog_error() -> None:
    """Callers can catch every auditlog failure with one except clause."""
    with pytest.raises(AuditLogError):
        parse_record({})


def test_validation_error_is_a_value_error_naming_the_fields() -> None:
    """A refused record is a ValueError too, as a bad argument is in Python, and the error
    lists the path of each field at fault, never its value."""
    with pytest.raises(ValueError, match="subject") as refused:
        parse_record(chat(subject=" ", sender=None))
    assert isinstance(refused.value, RecordValidationError)
    assert refused.value.fields == ("subject", "sender")


WHITESPACE = st.text(
    alphabet=st.characters(categories=["Zs", "Zl", "Zp", "Cc"]).filter(str.isspace), max_size=20
)


@given(WHITESPACE)
def test_a_blank_subject_is_refused(subject: str) -> None:
    """A subject that is empty or only whitespace, of any script, is refused by field name."""
    assert problems(chat(subject=subject)).startswith("invalid record, 1 problem:\n  subject: ")


@given(WHITESPACE, st.characters().filter(lambda c: not c.isspace()), WHITESPACE)
def test_a_subject_with_a_visible_character_is_taken(before: str, visible: str, after: str) -> None:
    """Whitespace around a subject is kept as given: only a subject of nothing else is refused."""
    subject = before + visible + after
    assert parse_record(chat(subject=subject)).subject == subject


def test_a_stored_record_with_a_blank_subject_still_reads() -> None:
    """A record stored before blank subjects were refused reads back as it was stored."""
    stored = {**chat(subject="  "), "occurred_at": T0}
    assert parse_stored_record(stored).subject == "  "
    with pytest.raises(RecordValidationError, match="subject"):
        parse_record(stored)


def test_messages_count_the_problems() -> None:
    """The message says how many problems there are and lists one per line."""
    message = problems(network(source_port=-1, source_ip="x"))
    assert message.startswith("invalid record, 2 problems:\n")
    assert message.count("\n") == 2


# --- parse_record ----------------------------------------------------------------------------


def test_parse_record_accepts_a_mapping_json_text_and_json_bytes() -> None:
    """The three input forms give the same record."""
    as_mapping = parse_record(network())
    as_text = parse_record(json.dumps(network(occurred_at=T0.isoformat())))
    as_bytes = parse_record(json.dumps(network(occurred_at="2026-03-01T12:00:00Z")).encode())
    assert as_mapping == as_text == as_bytes
    assert isinstance(as_mapping, NetworkAddressRecord)


def test_parse_record_reports_malformed_json() -> None:
    """A broken JSON document is a validation error, not a crash."""
    assert "Invalid JSON" in problems('{"kind": "chat"')


@pytest.mark.parametrize("data", [None, 5, ["kind", "chat"]])
def test_parse_record_rejects_other_types(data: Any) -> None:
    """Only mappings and JSON documents are records."""
    with pytest.raises(RecordValidationError):
        parse_record(data)


def test_kind_selects_the_model() -> None:
    """Each kind value parses into its own model class."""
    assert type(parse_record(chat())) is ChatMessage
    assert type(parse_record(call())) is CallRecord
    assert type(parse_record(network())) is NetworkAddressRecord


# --- Shape of the models ---------------------------------------------------------------------

# The declared field order is part of the storage format. These lists may only grow at the end.
FROZEN_FIELDS: dict[RecordKind, list[str]] = {
    RecordKind.CHAT: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "message_id",
        "conversation_id",
        "sender",
        "recipients",
        "operation",
        "content",
        "attachments",
        "client_ip",
        "client_port",
        "device_id",
        "user_agent",
    ],
    RecordKind.CALL: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "call_id",
        "parties",
        "media",
        "attempted_at",
        "answered_at",
        "ended_at",
        "duration_us",
        "end_reason",
    ],
    RecordKind.NETWORK: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "account",
        "event",
        "source_ip",
        "source_port",
        "transport",
        "destination_ip",
        "destination_port",
        "nat_public_ip",
        "nat_public_port",
        "device_id",
        "user_agent",
        "status",
    ],
    RecordKind.IDENTITY: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "account",
        "method",
        "provider",
        "result",
        "phone",
        "legal_name",
        "document_type",
        "document_number",
    ],
    RecordKind.ACTIVITY: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "account",
        "action",
        "object_type",
        "object_id",
        "outcome",
        "client_ip",
        "client_port",
        "device_id",
        "user_agent",
    ],
    RecordKind.ACCESS: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "actor",
        "role",
        "purpose",
        "legal_basis",
        "case_id",
        "query",
        "records_returned",
    ],
    RecordKind.LOG: [
        "kind",
        "occurred_at",
        "subject",
        "service",
        "event",
        "chain",
        "detail",
        "actor",
    ],
}
FROZEN_NESTED_FIELDS: dict[type[BaseModel], list[str]] = {
    Attachment: ["sha256", "size", "media_type"],
    CallParty: ["account", "role", "signalling_ip", "signalling_port", "device_id"],
}


@pytest.mark.parametrize("kind", list(RecordKind))
def test_field_order_is_frozen(kind: RecordKind) -> None:
    """Fields are never reordered or renamed; any new field comes last and defaults to None."""
    fields = RECORD_TYPES[kind].model_fields
    frozen = FROZEN_FIELDS[kind]
    assert list(fields)[: len(frozen)] == frozen
    for name in list(fields)[len(frozen) :]:
        assert fields[name].default is None, f"appended field {name} must default to None"


@pytest.mark.parametrize("model", list(FROZEN_NESTED_FIELDS))
def test_nested_field_order_is_frozen(model: type[BaseModel]) -> None:
    """Nested models follow the same append-only rule as records."""
    frozen = FROZEN_NESTED_FIELDS[model]
    assert list(model.model_fields)[: len(frozen)] == frozen


def test_record_types_cover_every_kind() -> None:
    """RECORD_TYPES maps each kind to the model whose kind literal it is."""
    assert set(RECORD_TYPES) == set(RecordKind)
    for kind, model in RECORD_TYPES.items():
        assert model.model_fields["kind"].default == kind


def test_optional_fields_default_to_none() -> None:
    """Every field that may be omitted defaults to None (except kind, which names the model)."""
    for model in [*RECORD_TYPES.values(), *FROZEN_NESTED_FIELDS]:
        for name, field in model.model_fields.items():
            if not field.is_required() and name != "kind":
                assert field.default is None, f"{model.__name__}.{name}"


def test_enumerations_are_str_enums() -> None:
    """Every enumeration is a StrEnum, so it encodes as its string value."""
    for enumeration in (
        RecordKind,
        ChatOperation,
        PartyRole,
        CallMedia,
        CallEndReason,
        NetworkEvent,
        Transport,
        NetworkStatus,
        IdentityMethod,
        IdentityResult,
        DocumentType,
        ActivityOutcome,
    ):
        assert issubclass(enumeration, enum.StrEnum)


# --- JSON Schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(RecordKind))
def test_json_schema_is_exported_for_every_kind(kind: RecordKind) -> None:
    """Each kind has a plain-JSON schema that requires kind and forbids unknown fields."""
    schema = record_json_schema(kind)
    assert json.loads(json.dumps(schema)) == schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"][0] == "kind"
    assert schema["properties"]["kind"]["const"] == kind.value
    assert list(schema["properties"]) == list(RECORD_TYPES[kind].model_fields)
    assert all(
        "description" in prop for name, prop in schema["properties"].items() if name != "kind"
    )
    assert record_json_schema(kind.value) == schema


def test_json_schema_describes_addresses_and_times() -> None:
    """IP fields are strings in ipv4 or ipv6 format and times are date-time strings."""
    properties = record_json_schema(RecordKind.NETWORK)["properties"]
    assert properties["source_ip"]["anyOf"] == [
        {"type": "string", "format": "ipv4"},
        {"type": "string", "format": "ipv6"},
    ]
    assert properties["occurred_at"]["format"] == "date-time"
    assert properties["source_port"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 65535,
    }


def test_json_schema_of_an_unknown_kind_is_a_configuration_error() -> None:
    """Asking for the schema of a kind that does not exist is a clear error."""
    with pytest.raises(ConfigurationError, match="unknown record kind"):
        record_json_schema("fax")


# --- Hypothesis strategies -------------------------------------------------------------------

offsets = st.builds(
    timezone,
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
        lambda minutes: timedelta(minutes=minutes)
    ),
)
times = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)
texts = st.text(min_size=1, max_size=40)
ids = st.text(min_size=1, max_size=256)
subjects = ids.filter(str.strip)  # a blank subject names nobody and is refused
ports = st.integers(min_value=0, max_value=65535)
addresses = st.ip_addresses().flatmap(
    lambda address: st.sampled_from([address, str(address), address.packed])
)
counts = st.integers(min_value=0, max_value=2**63 - 1)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def endpoint(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[Any, Any]:
    """An optional address and, only when there is an address, an optional port."""
    address = draw(optional(addresses))
    return address, (draw(optional(ports)) if address is not None else None)


@st.composite
def attachments(draw: Any) -> Attachment:
    return Attachment(
        sha256=draw(st.from_regex(r"[0-9A-Fa-f]{64}", fullmatch=True)),
        size=draw(counts),
        media_type=draw(
            st.from_regex(r"[a-z]{1,10}/[A-Za-z0-9][A-Za-z0-9.+-]{0,19}", fullmatch=True)
        ),
    )


@st.composite
def chat_messages(draw: Any) -> ChatMessage:
    operation = draw(st.sampled_from(ChatOperation))
    content = draw(optional(st.text(min_size=1, max_size=300)))
    files = draw(optional(st.lists(attachments(), min_size=1, max_size=3)))
    if operation in ("send", "edit", "forward") and content is None and files is None:
        content = draw(texts)
    client_ip, client_port = endpoint(draw)
    return ChatMessage(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        message_id=draw(ids),
        conversation_id=draw(ids),
        sender=draw(ids),
        recipients=draw(st.lists(ids, min_size=1, max_size=5)),
        operation=operation,
        content=content,
        attachments=files,
        client_ip=client_ip,
        client_port=client_port,
        device_id=draw(optional(ids)),
        user_agent=draw(optional(st.text(min_size=1, max_size=200))),
    )


@st.composite
def call_parties(draw: Any, role: st.SearchStrategy[PartyRole]) -> CallParty:
    signalling_ip, signalling_port = endpoint(draw)
    return CallParty(
        account=draw(ids),
        role=draw(role),
        signalling_ip=signalling_ip,
        signalling_port=signalling_port,
        device_id=draw(optional(ids)),
    )


@st.composite
def call_records(draw: Any) -> CallRecord:
    attempted_at = draw(times)
    delays = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))
    answered_at = draw(optional(delays.map(lambda delay: attempted_at + delay)))
    start = attempted_at if answered_at is None else answered_at
    ended_at = draw(optional(delays.map(lambda delay: start + delay)))
    duration_us = None
    if answered_at is not None and ended_at is not None and draw(st.booleans()):
        duration_us = (ended_at - answered_at) // timedelta(microseconds=1)
    elif answered_at is not None and ended_at is None:
        duration_us = draw(optional(counts))
    others = st.sampled_from([role for role in PartyRole if role is not PartyRole.CALLER])
    return CallRecord(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        call_id=draw(ids),
        parties=[
            draw(call_parties(st.just(PartyRole.CALLER))),
            *draw(st.lists(call_parties(others), min_size=1, max_size=4)),
        ],
        media=draw(st.sampled_from(CallMedia)),
        attempted_at=attempted_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_us=duration_us,
        end_reason=draw(optional(st.sampled_from(CallEndReason))),
    )


@st.composite
def network_records(draw: Any) -> NetworkAddressRecord:
    destination_ip, destination_port = endpoint(draw)
    nat_public_ip, nat_public_port = endpoint(draw)
    return NetworkAddressRecord(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        account=draw(optional(ids)),
        event=draw(st.sampled_from(NetworkEvent)),
        source_ip=draw(addresses),
        source_port=draw(optional(ports)),
        transport=draw(optional(st.sampled_from(Transport))),
        destination_ip=destination_ip,
        destination_port=destination_port,
        nat_public_ip=nat_public_ip,
        nat_public_port=nat_public_port,
        device_id=draw(optional(ids)),
        user_agent=draw(optional(texts)),
        status=draw(optional(st.sampled_from(NetworkStatus))),
    )


@st.composite
def identity_verifications(draw: Any) -> IdentityVerification:
    document_type = draw(optional(st.sampled_from(DocumentType)))
    return IdentityVerification(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        account=draw(ids),
        method=draw(st.sampled_from(IdentityMethod)),
        provider=draw(optional(texts)),
        result=draw(st.sampled_from(IdentityResult)),
        phone=draw(optional(st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True))),
        legal_name=draw(optional(texts)),
        document_type=document_type,
        document_number=(
            draw(optional(st.text(min_size=1, max_size=64))) if document_type else None
        ),
    )


@st.composite
def activities(draw: Any) -> Activity:
    client_ip, client_port = endpoint(draw)
    return Activity(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        account=draw(ids),
        action=draw(texts),
        object_type=draw(optional(texts)),
        object_id=draw(optional(ids)),
        outcome=draw(optional(st.sampled_from(ActivityOutcome))),
        client_ip=client_ip,
        client_port=client_port,
        device_id=draw(optional(ids)),
        user_agent=draw(optional(texts)),
    )


@st.composite
def access_records(draw: Any) -> AccessRecord:
    return AccessRecord(
        occurred_at=draw(times),
        subject=draw(subjects),
        service=draw(texts),
        actor=draw(ids),
        role=draw(texts),
        purpose=draw(texts),
        legal_basis=draw(optional(texts)),
        case_id=draw(optional(ids)),
        query=draw(st.text(min_size=1, max_size=500)),
        records_returned=draw(counts),
    )


records: st.SearchStrategy[Record] = st.one_of(
    chat_messages(),
    call_records(),
    network_records(),
    identity_verifications(),
    activities(),
    access_records(),
)

# Validation is fast, but a shared CI machine is not: wall-clock deadlines would only flake.
property_settings = settings(deadline=None, max_examples=300)


# --- The codec contract, tested --------------------------------------------------------------


def _assert_codec_types(value: object, path: str = "record") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            _assert_codec_types(item, f"{path}.{key}")
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            _assert_codec_types(item, f"{path}.{index}")
    elif isinstance(value, datetime):
        assert value.tzinfo is UTC, path
    else:
        # StrEnum members are str; bool is refused because no field holds one.
        assert isinstance(value, str | bytes | IPv4Address | IPv6Address) or (type(value) is int), (
            f"{path}: {type(value).__name__}"
        )


@given(records)
@property_settings
def test_to_python_gives_only_types_the_codec_encodes(record: Record) -> None:
    """Serialization yields str, int, bytes, UTC datetimes, IPs, sequences and dicts only."""
    data = record.__pydantic_serializer__.to_python(record, exclude_none=True)
    assert list(data) == [
        name for name in type(record).model_fields if getattr(record, name) is not None
    ]
    _assert_codec_types(data)


@given(records)
@property_settings
def test_records_round_trip_through_the_canonical_encoding(record: Record) -> None:
    """Encoding with msgpack and decoding back gives an equal record, nested models included."""
    assert decode(encode(record)) == record


@given(records)
@property_settings
def test_encoding_is_deterministic(record: Record) -> None:
    """A decoded record encodes to exactly the bytes it was decoded from."""
    raw = encode(record)
    assert encode(decode(raw)) == raw
    assert encode(parse_record(json.loads(record.model_dump_json()))) == raw


@given(records)
@property_settings
def test_records_round_trip_through_json(record: Record) -> None:
    """The JSON form parses back to an equal record."""
    assert parse_record(record.model_dump_json()) == record


def test_equal_records_give_identical_bytes() -> None:
    """Inputs that differ only in form (zone, IP form, case, list or tuple) encode identically."""
    first = parse_record(
        chat(
            occurred_at=datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8))),
            client_ip="2001:db8::7",
            recipients=["acct-2", "acct-3"],
            attachments=[{"sha256": "AB" * 32, "size": 1, "media_type": "IMAGE/PNG"}],
            operation=ChatOperation.SEND,
        )
    )
    second = parse_record(
        chat(
            occurred_at=T0,
            client_ip=IPv6Address("2001:db8::7").packed,
            recipients=("acct-2", "acct-3"),
            attachments=(Attachment(sha256="ab" * 32, size=1, media_type="image/png"),),
            operation="send",
        )
    )
    assert first == second
    assert encode(first) == encode(second)


# A call record frozen in its canonical form: a map of 12 fields in declaration order, times as
# msgpack Timestamp extensions (timestamp 64 for the one with microseconds), IPs as 4- and 16-byte
# bin, enumerations as their strings, the parties as maps without their absent fields.
GOLDEN_CALL_RECORD = bytes.fromhex(
    "8ca46b696e64a463616c6cab6f636375727265645f6174d7ff1d6f280069a42a40a77375626a6563"
    "74a6616363742d31a773657276696365a563616c6c73a763616c6c5f6964a663616c6c2d31a77061"
    "72746965739283a76163636f756e74a161a4726f6c65a663616c6c6572ad7369676e616c6c696e67"
    "5f6970c404c000020183a76163636f756e74a162a4726f6c65a663616c6c6565ad7369676e616c6c"
    "696e675f6970c41020010db8000000000000000000000001a56d65646961a5766f696365ac617474"
    "656d707465645f6174d6ff69a42a40ab616e7377657265645f6174d6ff69a42a45a8656e6465645f"
    "6174d6ff69a42a81ab6475726174696f6e5f7573ce03938700aa656e645f726561736f6ea9636f6d"
    "706c65746564"
)


def test_canonical_bytes_are_stable() -> None:
    """The encoding of a fixed record never changes: stored leaves must verify for years."""
    record = parse_record(
        call(
            occurred_at=T0 + timedelta(microseconds=123_456),
            parties=[
                {"account": "a", "role": "caller", "signalling_ip": "192.0.2.1"},
                {"account": "b", "role": "callee", "signalling_ip": "2001:db8::1"},
            ],
            end_reason="completed",
        )
    )
    assert encode(record) == GOLDEN_CALL_RECORD


@given(records)
@settings(max_examples=300, deadline=None)
def test_library_encoder_equals_the_reference_encoding(record: Record) -> None:
    """The codec's generated encoder gives exactly the reference bytes for any valid record."""
    from auditlog.codec import decode_record, encode_record

    assert encode_record(record) == encode(record)
    assert decode_record(encode_record(record)) == record
