"""Realistic, seeded record workloads for tests, benchmarks and the demo.

Chat text is real multilingual dialogue from the ``chatterbot-corpus`` package; network records
come from a real OpenSSH server log shipped in ``data/`` (see ``data/README.md``). Everything
else is drawn from one ``random.Random(seed)``, so a seed always yields the same records.

The OpenSSH log parser is in ``_openssh`` and the weights the workload draws with in
``_distributions``; this module holds the chat corpus, the record generator and ``workload``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from auditlog.errors import ConfigurationError
from auditlog.records import (
    AccessRecord,
    Activity,
    Attachment,
    CallEndReason,
    CallMedia,
    CallParty,
    CallRecord,
    ChatMessage,
    ChatOperation,
    IdentityMethod,
    IdentityVerification,
    NetworkAddressRecord,
    PartyRole,
    Record,
    RecordKind,
)
from auditlog.testing._distributions import (
    _ACCESS_KINDS,
    _ACCESS_PURPOSES,
    _ACTIVITIES,
    _ACTIVITY_OUTCOMES,
    _CHAT_OPERATIONS,
    _DOCUMENT_TYPES,
    _END_REASONS_UNANSWERED,
    _FAMILY_NAMES,
    _GIVEN_NAMES,
    _IDENTITY_METHODS,
    _IDENTITY_PROVIDERS,
    _IDENTITY_RESULTS,
    _KINDS,
    _MEDIA_TYPES,
    _PHONE_PLANS,
    _USER_AGENTS,
    _accounts,
    _digest,
    _Weighted,
)
from auditlog.testing._openssh import (
    OPENSSH_LOG_YEAR,
    _bundled_openssh_records,
    parse_openssh_log,
)

__all__ = ["OPENSSH_LOG_YEAR", "parse_openssh_log", "workload"]

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
