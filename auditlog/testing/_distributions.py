"""The weighted choices the workload draws from: how often each kind, value and account occurs.

``_Weighted`` draws one choice with one random number; the tables below give the weights, and
``_accounts`` the Zipf-distributed pool of pseudonymous account ids.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import random
from collections.abc import Iterable
from typing import Final, Generic, TypeVar

from auditlog.records import (
    ActivityOutcome,
    CallEndReason,
    ChatOperation,
    DocumentType,
    IdentityMethod,
    IdentityResult,
    RecordKind,
)

_T = TypeVar("_T")


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
