"""Nothing readable at rest: no identifier, content or address appears in any byte of a log.

Records of every kind carry distinctive markers in their text fields and marker IP addresses;
after writing them (enough for dictionaries to be trained, so that segments, dictionaries,
keyrings, manifest, root key and lock files all exist) every byte of every file is searched for
every marker in UTF-8, UTF-16-LE, and for addresses also in packed and textual forms.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest
from _integrity_helpers import TEST_PASSPHRASE, TEST_SCRYPT_N
from pydantic import ValidationError

from auditlog import AuditLog, LogConfig, RecordValidationError, parse_record
from auditlog.records import (
    AccessRecord,
    Activity,
    CallParty,
    CallRecord,
    ChatMessage,
    IdentityVerification,
    NetworkAddressRecord,
    Record,
)

RECORDS_PER_KIND = 40  # beyond dictionary_samples, and beyond one segment of 32 records
CONFIG = LogConfig(block_max_records=8, max_segment_records=32, dictionary_samples=16)
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# Text markers: each appears in exactly one kind of field, in every record of its kind.
TEXT_MARKERS = {
    "subject": "qzSubjectMarkerAlice",
    "service": "qzServiceMarker",
    "message_id": "qzMessageIdMarker",
    "conversation_id": "qzConversationMarker",
    "sender": "qzSenderMarkerBob",
    "recipient": "qzRecipientMarkerCarol",
    "content": "qzContentMarker the secret plan",
    "content_unicode": "qzÜmlautInhaltMarker 秘密",
    "user_agent": "qzUserAgentMarker/1.0",
    "device_id": "qzDeviceIdMarker",
    "call_id": "qzCallIdMarker",
    "party": "qzPartyAccountMarkerDave",
    "account": "qzAccountMarkerErin",
    "phone": "+4915799887766",
    "legal_name": "Zoë qzLegalNameMärker",
    "document_number": "qzDocNo9938271",
    "provider": "qzProviderMarker",
    "object_id": "qzObjectIdMarker",
    "actor": "qzActorMarkerInspector",
    "case_id": "qzCaseIdMarker",
    "query": "subject = 'qzQueryMarkerFrank'",
}
IP_MARKERS: dict[str, IPv4Address | IPv6Address] = {
    "client_v4": IPv4Address("198.51.100.203"),
    "source_v6": IPv6Address("2001:db8:c0de:face:1234:5678:9abc:def0"),
    "destination_v4": IPv4Address("203.0.113.147"),
    "nat_v4": IPv4Address("192.0.2.231"),
    "signalling_v6": IPv6Address("2001:db8:feed:beef::4242"),
    "activity_v6": IPv6Address("fd12:3456:789a:1::77"),
}


def _records(number: int) -> Iterator[Record]:
    """The records of round ``number``: one of each kind, every one full of markers."""
    m = TEXT_MARKERS
    ip = IP_MARKERS
    at = START + timedelta(seconds=number)
    common: dict[str, Any] = {"occurred_at": at, "subject": m["subject"], "service": m["service"]}
    content = m["content"] if number % 2 else m["content_unicode"]
    yield ChatMessage(
        **common,
        message_id=f"{m['message_id']}{number}",
        conversation_id=m["conversation_id"],
        sender=m["sender"],
        recipients=(m["recipient"],),
        operation="send",
        content=content,
        client_ip=ip["client_v4"],
        client_port=51234,
        device_id=m["device_id"],
        user_agent=m["user_agent"],
    )
    yield CallRecord(
        **common,
        call_id=f"{m['call_id']}{number}",
        parties=(
            CallParty(account=m["party"], role="caller", signalling_ip=ip["signalling_v6"]),
            CallParty(account=m["recipient"], role="callee", device_id=m["device_id"]),
        ),
        media="voice",
        attempted_at=at,
    )
    yield NetworkAddressRecord(
        **common,
        account=m["account"],
        event="login",
        source_ip=ip["source_v6"],
        source_port=40000 + number,
        destination_ip=ip["destination_v4"],
        destination_port=443,
        nat_public_ip=ip["nat_v4"],
        nat_public_port=60000,
        device_id=m["device_id"],
        user_agent=m["user_agent"],
    )
    yield IdentityVerification(
        **common,
        account=m["account"],
        method="id-document",
        provider=m["provider"],
        result="passed",
        phone=m["phone"],
        legal_name=m["legal_name"],
        document_type="passport",
        document_number=m["document_number"],
    )
    yield Activity(
        **common,
        account=m["account"],
        action="profile.update",
        object_id=m["object_id"],
        client_ip=ip["activity_v6"],
        device_id=m["device_id"],
        user_agent=m["user_agent"],
    )
    yield AccessRecord(
        **common,
        actor=m["actor"],
        role="inspector",
        purpose="lawful-request",
        case_id=m["case_id"],
        query=m["query"],
        records_returned=number,
    )


def _needles() -> dict[str, bytes]:
    """Every byte string that must not occur at rest, named for the failure message."""
    needles: dict[str, bytes] = {}
    for name, text in TEXT_MARKERS.items():
        needles[f"{name} utf-8"] = text.encode("utf-8")
        needles[f"{name} utf-16-le"] = text.encode("utf-16-le")
    for name in ("content", "content_unicode", "legal_name", "query"):
        # Distinctive parts too, in case a field were stored split or normalised.
        core = TEXT_MARKERS[name].split()[0].strip("'")
        needles[f"{name} core utf-8"] = core.encode("utf-8")
    for name, address in IP_MARKERS.items():
        needles[f"{name} packed"] = address.packed
        for form in {str(address), address.exploded}:
            needles[f"{name} text {form}"] = form.encode("ascii")
            needles[f"{name} text {form} utf-16-le"] = form.encode("utf-16-le")
    return needles


@pytest.fixture(scope="module")
def private_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed log holding RECORDS_PER_KIND marker-laden records of every kind."""
    path = tmp_path_factory.mktemp("privacy") / "log"
    previous = os.umask(0)  # permissive umask: private modes must not depend on it
    try:
        with AuditLog.create(
            path, passphrase=TEST_PASSPHRASE, config=CONFIG, scrypt_n=TEST_SCRYPT_N
        ) as log:
            for number in range(RECORDS_PER_KIND):
                for record in _records(number):
                    log.append(record)
                if number % 5 == 4:
                    log.flush()
        # Reopening and reading adds nothing readable either (nor do lock files of readers).
        with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as log:
            assert log.verify().records == 6 * RECORDS_PER_KIND
            assert len(list(log.read("chat"))) == RECORDS_PER_KIND
    finally:
        os.umask(previous)
    return path


def test_records_round_trip(private_log: Path) -> None:
    """The marker records read back exactly, so the markers really were written."""
    expected: dict[str, list[Record]] = {}
    for number in range(RECORDS_PER_KIND):
        for record in _records(number):
            expected.setdefault(str(record.kind), []).append(record)
    with AuditLog.open(private_log, mode="read", passphrase=TEST_PASSPHRASE) as log:
        assert log.chains() == sorted(expected)
        for chain, records in expected.items():
            assert list(log.read(chain)) == records


def test_log_holds_every_kind_of_file(private_log: Path) -> None:
    """The log has segments (sealed and open), dictionaries, keyrings, manifest, root key, locks."""
    names = {p.relative_to(private_log).as_posix() for p in private_log.rglob("*") if p.is_file()}
    assert {"manifest.json", "keys/root.key"} <= names
    for chain in ("chat", "call", "network", "identity", "activity", "access"):
        assert {f"chains/{chain}/LOCK", f"chains/{chain}/keyring"} <= names
        assert f"chains/{chain}/segments/0000000000.seg" in names
        assert f"chains/{chain}/segments/0000000001.seg" in names
    assert any(name.endswith(".zdict") for name in names), "no dictionary was trained"


def test_no_marker_in_any_byte_at_rest(private_log: Path) -> None:
    """No marker appears in any file's bytes or name, in any encoding or address form."""
    needles = _needles()
    files = [p for p in private_log.rglob("*") if p.is_file()]
    assert len(files) >= 20
    leaks: list[str] = []
    for path in private_log.rglob("*"):
        name = path.relative_to(private_log).as_posix().encode()
        data = path.read_bytes() if path.is_file() else b""
        leaks.extend(
            f"{needle_name} in {name.decode()}"
            for needle_name, needle in needles.items()
            if needle in data or needle in name
        )
    assert not leaks


def test_files_and_directories_are_private(private_log: Path) -> None:
    """Files are 0600, sealed segments 0400 and directories 0700, even under umask 0."""
    wrong: list[str] = []
    sealed = 0
    for path in [private_log, *private_log.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            expected = 0o700
        elif path.suffix == ".seg" and path.name != _last_segment(path.parent).name:
            expected = 0o400
            sealed += 1
        else:
            expected = 0o600
        if mode != expected:
            wrong.append(f"{path.relative_to(private_log)}: {mode:o} != {expected:o}")
    assert not wrong
    assert sealed >= 6


def _last_segment(directory: Path) -> Path:
    return max(directory.glob("*.seg"))


def _valid_chat() -> dict[str, Any]:
    return {
        "kind": "chat",
        "occurred_at": "2026-03-02T09:30:00Z",
        "subject": "someone",
        "service": "chat",
        "message_id": "m1",
        "conversation_id": "c1",
        "sender": "someone",
        "recipients": ["other"],
        "operation": "send",
        "content": "hello",
    }


BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "invalid-ip": ({"client_ip": "300.12.34.56"}, "300.12.34.56"),
    "ip-with-zone": ({"client_ip": "fe80::1234:abcd%eth7"}, "fe80::1234:abcd"),
    "packed-ip-wrong-length": ({"client_ip": b"qzPk\x01"}, "qzPk"),
    "subject-too-long": ({"subject": "qzLongSubject" * 30}, "qzLongSubject"),
    "subject-not-text": ({"subject": 918273645}, "918273645"),
    "empty-recipient-list-member": ({"recipients": ["ok", 5647382910]}, "5647382910"),
    "naive-time": ({"occurred_at": "2031-07-19T13:14:15"}, "2031-07-19T13:14:15"),
    "time-as-number": ({"occurred_at": 1987654321}, "1987654321"),
    "garbled-time": ({"occurred_at": "2031-07-19TqzGarbledTime"}, "qzGarbledTime"),
    "unknown-kind": ({"kind": "qzSecretKind"}, "qzSecretKind"),
    "unknown-field-name": ({"qz secret key!": "qzExtraValue"}, "qz secret key!"),
    "unknown-field-value": ({"extra_field": "qzExtraFieldValue"}, "qzExtraFieldValue"),
    "port-out-of-range": ({"client_ip": "10.0.0.1", "client_port": 987654}, "987654"),
    "bad-operation": ({"operation": "qzSecretOperation"}, "qzSecretOperation"),
    "content-too-large": ({"content": "qzHugeContent " * 5000}, "qzHugeContent"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_validation_errors_do_not_echo_input(case: str) -> None:
    """A RecordValidationError (and the pydantic error behind a direct model) never quotes input."""
    change, secret = BAD_INPUTS[case]
    data = {**_valid_chat(), **change}
    with pytest.raises(RecordValidationError) as caught:
        parse_record(data)
    for text in (str(caught.value), repr(caught.value), caught.value.diagnostics()):
        assert secret not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    fields = {k: v for k, v in data.items() if k != "kind"}
    # Pydantic itself names an unknown key in its error; only values are hidden there.
    if case not in ("unknown-kind", "unknown-field-name"):
        with pytest.raises(ValidationError) as direct:
            ChatMessage(**fields)
        assert secret not in str(direct.value)
        assert secret not in repr(direct.value)


@pytest.mark.parametrize(
    ("document", "secret"),
    [
        ('{"kind": "chat", "subject": "qzUnterminatedJson', "qzUnterminatedJson"),
        (b'{"kind": "identity", "phone": "+0qzBadPhone", "x": 1}', "qzBadPhone"),
        ('{"kind": "network", "source_ip": "qzNotAnAddress"}', "qzNotAnAddress"),
        ('["qzNotAMapping"]', "qzNotAMapping"),
    ],
)
def test_validation_errors_of_json_documents_do_not_echo_input(
    document: str | bytes, secret: str
) -> None:
    """Invalid JSON documents give a RecordValidationError without any of their text."""
    with pytest.raises(RecordValidationError) as caught:
        parse_record(document)
    assert secret not in str(caught.value)
