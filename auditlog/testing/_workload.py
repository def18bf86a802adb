"""Realistic, seeded record workloads for tests, benchmarks and the demo.

Chat text is real multilingual dialogue from the ``chatterbot-corpus`` package; network records
come from a real OpenSSH server log shipped in ``data/`` (see ``data/README.md``). Everything
else is drawn from one ``random.Random(seed)``, so a seed always yields the same records.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Final, Generic, TypeVar

from pydantic import ValidationError

from auditlog.errors import ConfigurationError
from auditlog.records import (
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
)

__all__ = ["OPENSSH_LOG_YEAR", "parse_openssh_log", "workload"]

_T = TypeVar("_T")

# --- OpenSSH log -----------------------------------------------------------------------------

OPENSSH_LOG_YEAR: Final = 2026
"""Syslog lines carry no year; the bundled log is read as if written in this year, in UTC."""

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_SYSLOG_LINE: Final = re.compile(
    r"(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hour>\d{2}):(?P<minute>\d{2}):"
    r"(?P<second>\d{2}) \S+ sshd\[\d+\]: (?P<message>.*)"
)
# syslog folds identical consecutive messages into one line that quotes the message.
_REPEATED: Final = re.compile(r"message repeated \d+ times: \[ (?P<message>.*)\]")


@dataclass(frozen=True)
class _SshdMessage:
    """One shape of sshd message that names a client address, and what it means."""

    pattern: re.Pattern[str]
    event: NetworkEvent
    status: NetworkStatus | None


# Order matters: the first pattern that matches decides, so narrower shapes come first.
_SSHD_MESSAGES: Final = tuple(
    _SshdMessage(re.compile(pattern), event, status)
    for pattern, event, status in (
        (
            r"Accepted \S+ for (?P<user>.+) from (?P<ip>\S+) port (?P<port>\d+)",
            NetworkEvent.LOGIN,
            NetworkStatus.SUCCESS,
        ),
        (
            r"Failed \S+ for invalid user (?P<user>.*) from (?P<ip>\S+) port (?P<port>\d+)",
            NetworkEvent.LOGIN,
            NetworkStatus.UNKNOWN_ACCOUNT,
        ),
        (
            r"Failed \S+ for (?P<user>.+) from (?P<ip>\S+) port (?P<port>\d+)",
            NetworkEvent.LOGIN,
            NetworkStatus.FAILURE,
        ),
        (
            r"Invalid user (?P<user>.*) from (?P<ip>\S+?)(?: port (?P<port>\d+))?$",
            NetworkEvent.LOGIN,
            NetworkStatus.UNKNOWN_ACCOUNT,
        ),
        (
            r"(?:pam_unix\(sshd:auth\): authentication failure|PAM \d+ more authentication "
            r"failures?);.* rhost=(?P<ip>\S+)(?:\s+user=(?P<user>\S+))?",
            NetworkEvent.LOGIN,
            NetworkStatus.FAILURE,
        ),
        (
            r"reverse mapping checking getaddrinfo for \S+ \[(?P<ip>[^\]]+)\] failed",
            NetworkEvent.SESSION_START,
            None,
        ),
        (
            r"error: Received disconnect from (?P<ip>\S+?)(?: port (?P<port>\d+))?: \d+: ",
            NetworkEvent.SESSION_END,
            NetworkStatus.FAILURE,
        ),
        (
            r"Received disconnect from (?P<ip>\S+?)(?: port (?P<port>\d+))?: \d+: ",
            NetworkEvent.SESSION_END,
            None,
        ),
        (
            r"Connection closed by (?P<ip>\S+?)(?: port (?P<port>\d+))?(?: \[preauth\])?$",
            NetworkEvent.SESSION_END,
            None,
        ),
        (
            r"Did not receive identification string from (?P<ip>\S+?)(?: port (?P<port>\d+))?$",
            NetworkEvent.SESSION_END,
            NetworkStatus.FAILURE,
        ),
    )
)


def parse_openssh_log(lines: Iterable[str]) -> tuple[list[NetworkAddressRecord], list[int]]:
    """Parse OpenSSH server log lines (syslog format) into network-address records.

    Every line that names the client's IP address gives one record: the address, the source
    port and the user name when the line has them, the event (login, session start or end) and
    its status (success, failure, unknown account). The subject is the user name, or the
    address when the line names no user. Syslog carries no year and no zone: times are read as
    UTC in ``OPENSSH_LOG_YEAR``.

    Returns the records and the 1-based numbers of the lines that gave none, so that no line is
    dropped unseen: ``len(records) + len(unparsed)`` is the number of lines.
    """
    records: list[NetworkAddressRecord] = []
    unparsed: list[int] = []
    for number, line in enumerate(lines, start=1):
        record = _parse_sshd_line(line.rstrip("\r\n"))
        if record is None:
            unparsed.append(number)
        else:
            records.append(record)
    return records, unparsed


def _parse_sshd_line(line: str) -> NetworkAddressRecord | None:
    header = _SYSLOG_LINE.fullmatch(line)
    if header is None or header["month"] not in _MONTHS:
        return None
    try:
        occurred_at = datetime(
            OPENSSH_LOG_YEAR,
            _MONTHS[header["month"]],
            int(header["day"]),
            int(header["hour"]),
            int(header["minute"]),
            int(header["second"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    message = header["message"]
    repeated = _REPEATED.fullmatch(message)
    if repeated is not None:
        message = repeated["message"]
    for shape in _SSHD_MESSAGES:
        match = shape.pattern.match(message)
        if match is None:
            continue
        fields = match.groupdict()
        user = fields.get("user") or None
        port = fields.get("port")
        try:
            # A line that names the client by host name only has no address to record.
            source_ip = ip_address(fields["ip"])
            return NetworkAddressRecord(
                occurred_at=occurred_at,
                subject=user or str(source_ip),
                service="sshd",
                account=user,
                event=shape.event,
                source_ip=source_ip,
                source_port=None if port is None else int(port),
                transport=Transport.TCP,
                status=shape.status,
            )
        except (ValueError, ValidationError):
            return None
    return None


@functools.cache
def _bundled_openssh_records() -> tuple[NetworkAddressRecord, ...]:
    log = resources.files("auditlog.testing").joinpath("data", "OpenSSH_2k.log")
    records, _ = parse_openssh_log(log.read_text(encoding="utf-8").splitlines())
    return tuple(records)


# --- Chat corpus -----------------------------------------------------------------------------

# Weights follow, roughly, how many people write in each language online, not corpus sizes.
_CHAT_LANGUAGES: Final = (
    ("english", 30.0),
    ("chinese", 20.0),
    ("spanish", 10.0),
    ("russian", 6.0),
    ("portuguese", 6.0),
    ("japanese", 5.0),
    ("indonesian", 4.0),
    ("german", 4.0),
    ("french", 4.0),
    ("korean", 3.0),
    ("turkish", 3.0),
    ("italian", 2.0),
    ("ukrainian", 2.0),
    ("hindi", 1.0),
)


@functools.cache
def _chat_corpus() -> dict[str, tuple[str, ...]]:
    """Every utterance of the chosen languages' conversations, per language, loaded once."""
    install_hint = "pip install 'auditlog[testing]'"
    try:
        import yaml

        data = resources.files("chatterbot_corpus").joinpath("data")
    except ImportError as exc:
        raise ConfigurationError(
            "auditlog.testing.workload needs the chatterbot-corpus and PyYAML packages for its "
            f"chat text; install them with: {install_hint}"
        ) from exc
    # The C loader is the same safe loader as yaml.safe_load, ten times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    corpus: dict[str, tuple[str, ...]] = {}
    for language, _ in _CHAT_LANGUAGES:
        folder = data.joinpath(language)
        if not folder.is_dir():
            continue
        lines: list[str] = []
        for file in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if not file.name.endswith(".yml"):
                continue
            document = yaml.load(file.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
            for conversation in document.get("conversations") or ():
                lines.extend(text for text in conversation if isinstance(text, str) and text)
        if lines:
            corpus[language] = tuple(lines)
    if not corpus:
        raise ConfigurationError(
            f"the chatterbot-corpus package has no conversations; reinstall it: {install_hint}"
        )
    return corpus


# --- Drawing ---------------------------------------------------------------------------------


class _Weighted(Generic[_T]):
    """A weighted choice drawn with one random number and a binary search."""

    def __init__(self, choices: Iterable[tuple[_T, float]]) -> None:
        pairs = list(choices)
        self._values = [value for value, _ in pairs]
        self._cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def draw(self, rng: random.Random) -> _T:
        # bisect_left keeps the index in range even when the product rounds up to the total.
        point = rng.random() * self._cumulative[-1]
        return self._values[bisect.bisect_left(self._cumulative, point)]


def _digest(*parts: str) -> str:
    return hashlib.blake2s("\x00".join(parts).encode(), digest_size=8).hexdigest()


_ACCOUNT_POOL_SIZE: Final = 50_000
_ZIPF_EXPONENT: Final = 1.1


@functools.cache
def _accounts() -> _Weighted[str]:
    """Pseudonymous account ids; the account of rank k is drawn with weight 1 / k**1.1."""
    return _Weighted(
        (f"acct-{_digest('account', str(rank))}", rank**-_ZIPF_EXPONENT)
        for rank in range(1, _ACCOUNT_POOL_SIZE + 1)
    )


_KINDS: Final = _Weighted(
    (
        (RecordKind.CHAT, 45.0),
        (RecordKind.NETWORK, 30.0),
        (RecordKind.CALL, 10.0),
        (RecordKind.ACTIVITY, 9.0),
        (RecordKind.IDENTITY, 4.0),
        (RecordKind.ACCESS, 2.0),
    )
)
_CHAT_OPERATIONS: Final = _Weighted(
    (
        (ChatOperation.SEND, 88.0),
        (ChatOperation.EDIT, 4.0),
        (ChatOperation.FORWARD, 3.0),
        (ChatOperation.RECALL, 3.0),
        (ChatOperation.DELETE, 2.0),
    )
)
_MEDIA_TYPES: Final = _Weighted(
    (
        ("image/jpeg", 50.0),
        ("image/png", 15.0),
        ("video/mp4", 12.0),
        ("audio/ogg", 10.0),
        ("application/pdf", 8.0),
        ("application/zip", 5.0),
    )
)
_USER_AGENTS: Final = _Weighted(
    (
        ("ExampleChat/8.2.1 (Android 14; SM-S918B)", 35.0),
        ("ExampleChat/8.2.0 (iOS 17.4; iPhone15,2)", 30.0),
        ("ExampleChat/8.1.7 (Android 12; Redmi Note 11)", 15.0),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            12.0,
        ),
        ("ExampleChat-Desktop/3.9.2 (macOS 14.4)", 8.0),
    )
)
_END_REASONS_UNANSWERED: Final = _Weighted(
    (
        (CallEndReason.NO_ANSWER, 50.0),
        (CallEndReason.REJECTED, 20.0),
        (CallEndReason.BUSY, 15.0),
        (CallEndReason.CANCELLED, 10.0),
        (CallEndReason.FAILED, 5.0),
    )
)
_IDENTITY_METHODS: Final = _Weighted(
    (
        (IdentityMethod.PHONE, 50.0),
        (IdentityMethod.ID_DOCUMENT, 25.0),
        (IdentityMethod.FACE, 15.0),
        (IdentityMethod.BANK_CARD, 7.0),
        (IdentityMethod.EID, 3.0),
    )
)
_IDENTITY_PROVIDERS: Final = {
    IdentityMethod.PHONE: "carrier-otp",
    IdentityMethod.ID_DOCUMENT: "document-check",
    IdentityMethod.FACE: "face-match",
    IdentityMethod.BANK_CARD: "bank-card-check",
    IdentityMethod.EID: "eid-gateway",
}
_IDENTITY_RESULTS: Final = _Weighted(
    (
        (IdentityResult.PASSED, 88.0),
        (IdentityResult.FAILED, 9.0),
        (IdentityResult.INCONCLUSIVE, 3.0),
    )
)
_DOCUMENT_TYPES: Final = _Weighted(
    (
        (DocumentType.NATIONAL_ID, 70.0),
        (DocumentType.PASSPORT, 20.0),
        (DocumentType.DRIVING_LICENCE, 7.0),
        (DocumentType.RESIDENCE_PERMIT, 3.0),
    )
)
# (country code, first national digits, how many random digits follow): mobile number plans.
_PHONE_PLANS: Final = _Weighted(
    (
        (("+86", "1", 10), 40.0),
        (("+1", "", 10), 15.0),
        (("+34", "6", 8), 10.0),
        (("+7", "9", 9), 10.0),
        (("+55", "119", 8), 10.0),
        (("+44", "7", 9), 8.0),
        (("+49", "15", 9), 7.0),
    )
)
# Synthetic legal names: common given and family names, no real person's record.
_GIVEN_NAMES: Final = (
    "Wei",
    "Fang",
    "María",
    "José",
    "Olga",
    "Dmitri",
    "Ana",
    "João",
    "Emma",
    "Oliver",
    "Aarav",
    "Yuki",
    "Mehmet",
    "Siti",
)
_FAMILY_NAMES: Final = (
    "Wang",
    "Li",
    "García",
    "Fernández",
    "Ivanova",
    "Petrov",
    "Silva",
    "Santos",
    "Smith",
    "Müller",
    "Sharma",
    "Sato",
    "Yılmaz",  # noqa: RUF001 -- the Turkish dotless i is the point of this name.
    "Rahman",
)
# (action, type of the object acted on, service) of the activities a platform retains.
_ACTIVITIES: Final = _Weighted(
    (
        (("profile.update", "profile", "accounts"), 18.0),
        (("contact.add", "contact", "chat"), 16.0),
        (("group.join", "group", "chat"), 12.0),
        (("file.upload", "file", "files"), 12.0),
        (("post.publish", "post", "feed"), 12.0),
        (("group.create", "group", "chat"), 6.0),
        (("file.share", "file", "files"), 6.0),
        (("post.delete", "post", "feed"), 5.0),
        (("payment.send", "payment", "payments"), 5.0),
        (("password.change", "account", "accounts"), 4.0),
        (("session.revoke", "session", "accounts"), 2.0),
        (("mfa.enable", "account", "accounts"), 2.0),
    )
)
_ACTIVITY_OUTCOMES: Final = _Weighted(
    (
        (ActivityOutcome.SUCCESS, 94.0),
        (ActivityOutcome.FAILURE, 4.0),
        (ActivityOutcome.DENIED, 2.0),
    )
)
# (purpose, legal basis, role of the reader) of reads of the log.
_ACCESS_PURPOSES: Final = _Weighted(
    (
        (("law-enforcement-request", "criminal-procedure", "inspector"), 45.0),
        (("court-order", "court-order", "inspector"), 20.0),
        (("regulator-inspection", "retention-regulation", "inspector"), 15.0),
        (("data-subject-access", "gdpr-art-15", "privacy-officer"), 15.0),
        (("internal-audit", "retention-regulation", "auditor"), 5.0),
    )
)
_ACCESS_KINDS: Final = ("chat", "call", "network", "chat,call", "chat,call,network")

_MICROSECOND: Final = timedelta(microseconds=1)
_SECOND_US: Final = 1_000_000


class _WorkloadGenerator:
    """Draws records of every kind from one seeded random number generator."""

    def __init__(self, seed: int) -> None:
        # A seeded, reproducible generator is the point here; nothing drawn from it is secret.
        self._rng = random.Random(seed)  # noqa: S311
        self._accounts = _accounts()
        self._corpus = _chat_corpus()
        self._languages = _Weighted(
            (language, weight) for language, weight in _CHAT_LANGUAGES if language in self._corpus
        )
        self._ssh = _bundled_openssh_records()
        self._next_ssh = 0

    def records(self, n: int, start: datetime, span: timedelta) -> Iterator[Record]:
        span_us = span // _MICROSECOND
        for index in range(n):
            # Record i falls at a random point of the i-th of n equal slices of the span, so
            # times never decrease and spread over the whole span.
            offset_us = (span_us * index + int(self._rng.random() * span_us)) // n
            yield self._record(_KINDS.draw(self._rng), start + offset_us * _MICROSECOND)

    def _record(self, kind: RecordKind, at: datetime) -> Record:
        subject = self._accounts.draw(self._rng)
        if kind is RecordKind.CHAT:
            return self._chat(at, subject)
        if kind is RecordKind.NETWORK:
            return self._network(at, subject)
        if kind is RecordKind.CALL:
            return self._call(at, subject)
        if kind is RecordKind.ACTIVITY:
            return self._activity(at, subject)
        if kind is RecordKind.IDENTITY:
            return self._identity(at, subject)
        return self._access(at, subject)

    def _chat(self, at: datetime, subject: str) -> ChatMessage:
        rng = self._rng
        if rng.random() < 0.15:
            # dict.fromkeys drops repeats but, unlike a set, keeps a seed-determined order.
            recipients = tuple(
                dict.fromkeys(self._peer(subject) for _ in range(rng.randint(2, 30)))
            )
            conversation_id = f"group-{rng.randrange(20_000):05d}"
        else:
            peer = self._peer(subject)
            recipients = (peer,)
            conversation_id = f"direct-{_digest(*sorted((subject, peer)))}"
        operation = _CHAT_OPERATIONS.draw(rng)
        content: str | None = None
        attachments: tuple[Attachment, ...] | None = None
        if operation in (ChatOperation.SEND, ChatOperation.EDIT, ChatOperation.FORWARD):
            if rng.random() < 0.06:
                attachments = tuple(self._attachment() for _ in range(rng.randint(1, 3)))
                content = self._text() if rng.random() < 0.5 else None
            else:
                content = self._text()
        return ChatMessage(
            occurred_at=at,
            subject=subject,
            service="chat",
            message_id=f"msg-{rng.getrandbits(64):016x}",
            conversation_id=conversation_id,
            sender=subject,
            recipients=recipients,
            operation=operation,
            content=content,
            attachments=attachments,
            client_ip=self._ip(),
            client_port=self._port(),
            device_id=_device_id(subject),
            user_agent=_USER_AGENTS.draw(rng),
        )

    def _network(self, at: datetime, subject: str) -> NetworkAddressRecord:
        # Real addresses, ports, user names and outcomes, in the log's order, on the workload's
        # clock and subjects; the log is replayed from its start when it runs out.
        base = self._ssh[self._next_ssh]
        self._next_ssh = (self._next_ssh + 1) % len(self._ssh)
        return NetworkAddressRecord(
            occurred_at=at,
            subject=subject,
            service=base.service,
            account=base.account,
            event=base.event,
            source_ip=base.source_ip,
            source_port=base.source_port,
            transport=base.transport,
            status=base.status,
        )

    def _call(self, at: datetime, subject: str) -> CallRecord:
        rng = self._rng
        parties = [self._party(subject, PartyRole.CALLER)]
        shape = rng.random()
        if shape < 0.06:
            members = dict.fromkeys(self._peer(subject) for _ in range(rng.randint(2, 7)))
            parties.extend(self._party(member, PartyRole.CONFERENCE_MEMBER) for member in members)
        else:
            callee = self._peer(subject)
            parties.append(self._party(callee, PartyRole.CALLEE))
            if shape < 0.11:
                parties.append(self._party(self._peer(callee), PartyRole.FORWARDED_TO))
        answered_at = ended_at = None
        duration_us = None
        if rng.random() < 0.72:
            answered_at = at + rng.randint(1 * _SECOND_US, 20 * _SECOND_US) * _MICROSECOND
            # Talk time is log-normal with a median of about 75 seconds, capped at four hours.
            duration_us = min(int(rng.lognormvariate(4.3, 1.1) * _SECOND_US), 4 * 3600 * _SECOND_US)
            ended_at = answered_at + duration_us * _MICROSECOND
            end_reason = CallEndReason.COMPLETED
        else:
            ended_at = at + rng.randint(1 * _SECOND_US, 45 * _SECOND_US) * _MICROSECOND
            end_reason = _END_REASONS_UNANSWERED.draw(rng)
        return CallRecord(
            occurred_at=at,
            subject=subject,
            service="calls",
            call_id=f"call-{rng.getrandbits(64):016x}",
            parties=tuple(parties),
            media=CallMedia.VIDEO if rng.random() < 0.25 else CallMedia.VOICE,
            attempted_at=at,
            answered_at=answered_at,
            ended_at=ended_at,
            duration_us=duration_us,
            end_reason=end_reason,
        )

    def _activity(self, at: datetime, subject: str) -> Activity:
        rng = self._rng
        action, object_type, service = _ACTIVITIES.draw(rng)
        return Activity(
            occurred_at=at,
            subject=subject,
            service=service,
            account=subject,
            action=action,
            object_type=object_type,
            object_id=f"{object_type}-{rng.getrandbits(48):012x}",
            outcome=_ACTIVITY_OUTCOMES.draw(rng),
            client_ip=self._ip(),
            client_port=self._port(),
            device_id=_device_id(subject),
            user_agent=_USER_AGENTS.draw(rng),
        )

    def _identity(self, at: datetime, subject: str) -> IdentityVerification:
        rng = self._rng
        method = _IDENTITY_METHODS.draw(rng)
        phone = legal_name = document_number = None
        document_type = None
        if method in (IdentityMethod.PHONE, IdentityMethod.BANK_CARD):
            country, lead, digits = _PHONE_PLANS.draw(rng)
            phone = f"{country}{lead}{rng.randrange(10**digits):0{digits}d}"
        if method is not IdentityMethod.PHONE:
            legal_name = f"{rng.choice(_GIVEN_NAMES)} {rng.choice(_FAMILY_NAMES)}"
        if method in (IdentityMethod.ID_DOCUMENT, IdentityMethod.FACE):
            document_type = _DOCUMENT_TYPES.draw(rng)
            document_number = f"{rng.getrandbits(40):010X}"
        return IdentityVerification(
            occurred_at=at,
            subject=subject,
            service="accounts",
            account=subject,
            method=method,
            provider=_IDENTITY_PROVIDERS[method],
            result=_IDENTITY_RESULTS.draw(rng),
            phone=phone,
            legal_name=legal_name,
            document_type=document_type,
            document_number=document_number,
        )

    def _access(self, at: datetime, subject: str) -> AccessRecord:
        # The subject of a read is the account whose records were read.
        rng = self._rng
        purpose, legal_basis, role = _ACCESS_PURPOSES.draw(rng)
        until = at - rng.randint(0, 30) * timedelta(days=1)
        since = until - rng.randint(1, 90) * timedelta(days=1)
        return AccessRecord(
            occurred_at=at,
            subject=subject,
            service="auditlog",
            actor=f"staff-{rng.randrange(1, 41):03d}",
            role=role,
            purpose=purpose,
            legal_basis=legal_basis,
            case_id=f"case-{at.year}-{rng.randrange(100_000):05d}",
            query=(
                f"subject={subject} kinds={rng.choice(_ACCESS_KINDS)} "
                f"since={since:%Y-%m-%d} until={until:%Y-%m-%d}"
            ),
            records_returned=int(rng.expovariate(1 / 40)),
        )

    def _peer(self, account: str) -> str:
        """Another account than ``account``: people rarely message or call themselves."""
        while True:
            peer = self._accounts.draw(self._rng)
            if peer != account:
                return peer

    def _party(self, account: str, role: PartyRole) -> CallParty:
        return CallParty(
            account=account,
            role=role,
            signalling_ip=self._ip(),
            signalling_port=self._port(),
            device_id=_device_id(account),
        )

    def _attachment(self) -> Attachment:
        rng = self._rng
        return Attachment(
            sha256=f"{rng.getrandbits(256):064x}",
            size=max(1, int(rng.lognormvariate(11.5, 1.5))),
            media_type=_MEDIA_TYPES.draw(rng),
        )

    def _text(self) -> str:
        return self._rng.choice(self._corpus[self._languages.draw(self._rng)])

    def _ip(self) -> IPv4Address | IPv6Address:
        rng = self._rng
        if rng.random() < 0.25:
            # Global unicast IPv6 (2000::/3).
            return IPv6Address((0b001 << 125) | rng.getrandbits(125))
        while True:
            # Public-looking IPv4: not 0/8, 10/8 or 127/8, not multicast or reserved.
            value = rng.getrandbits(32)
            if (value >> 24) not in (0, 10, 127) and (value >> 24) < 224:
                return IPv4Address(value)

    def _port(self) -> int:
        # Clients connect from the ephemeral range most systems use.
        return self._rng.randrange(32768, 61000)


@functools.lru_cache(maxsize=65_536)
def _device_id(account: str) -> str:
    return f"dev-{_digest('device', account)}"


def workload(
    n: int,
    seed: int = 0,
    *,
    start: datetime | None = None,
    span: timedelta = timedelta(days=1),
) -> Iterator[Record]:
    """Yield ``n`` validated records of every kind, the same ones for the same ``seed``.

    Times never decrease: they run from ``start`` (default 2026-01-01T00:00Z) across ``span``.
    Kinds are mixed about as a messaging platform retains them (chat 45 %, network 30 %, call
    10 %, activity 9 %, identity 4 %, access 2 %); subjects are drawn from 50,000 pseudonymous
    accounts with a Zipf law (s = 1.1), so a few accounts have many records. Chat text is real
    dialogue in fourteen languages; network records replay a real OpenSSH log.

    Raises ``ConfigurationError`` for a negative ``n`` or ``span``, a naive ``start``, or when
    the ``auditlog[testing]`` extra (chatterbot-corpus, PyYAML) is not installed.
    """
    if n < 0:
        raise ConfigurationError("workload: n must be zero or more")
    if span < timedelta(0):
        raise ConfigurationError("workload: span must not be negative")
    if start is None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
    elif start.utcoffset() is None:
        raise ConfigurationError("workload: start must be timezone-aware, e.g. tzinfo=UTC")
    # Build eagerly so that a missing corpus is reported by this call, not by the first next().
    generator = _WorkloadGenerator(seed)
    return generator.records(n, start.astimezone(UTC), span)
