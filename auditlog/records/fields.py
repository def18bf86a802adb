"""The scalar field types of records: addresses, ports, UTC times and bounded strings.

Each type is an ``Annotated`` alias carrying its own validation, so a model states a field's
bounds by naming its type. The public aliases (``IPAddress``, ``Port``, ``UtcDateTime``) are
re-exported by ``auditlog.records``; the bounded string and count types stay private to the
package, and their bounds are listed in ``docs/records.md``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from socket import AF_INET, AF_INET6, inet_pton
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

__all__ = ["MAX_CONTENT_BYTES", "IPAddress", "Port", "UtcDateTime"]

# Chat content is bounded in UTF-8 bytes, not characters, because bytes are what the log stores.
MAX_CONTENT_BYTES: Final = 64 * 1024
# Counts and sizes must fit a signed 64-bit integer so every msgpack reader can decode them.
_MAX_INT64: Final = 2**63 - 1
# The validation context key set when a record is read back from a log (parse_stored_record):
# rules added after records were first stored are not applied to them, so old records still read.
_STORED: Final = "auditlog.stored"


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


def _check_subject(value: str, info: ValidationInfo) -> str:
    # A blank subject names nobody, so the record could never be found, held or erased by it.
    # Records stored before this rule existed are read back as they were.
    if value.strip() or (info.context is not None and info.context.get(_STORED)):
        return value
    raise PydanticCustomError("blank_subject", "must not be empty or only whitespace")


_Subject = Annotated[_Account, AfterValidator(_check_subject)]
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
