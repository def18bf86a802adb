"""The seeded workload and the OpenSSH log parser in auditlog.testing."""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from ipaddress import IPv4Address

import msgpack
import pytest

from auditlog.errors import ConfigurationError
from auditlog.records import (
    NetworkAddressRecord,
    NetworkEvent,
    NetworkStatus,
    Record,
    RecordKind,
    Transport,
    parse_record,
)
from auditlog.testing import _workload as workload_module
from auditlog.testing import parse_openssh_log, workload

OPENSSH_LINES = (
    resources.files("auditlog.testing")
    .joinpath("data", "OpenSSH_2k.log")
    .read_text(encoding="utf-8")
    .splitlines()
)


def _pack_ip(value: object) -> bytes:
    return value.packed  # type: ignore[attr-defined, no-any-return]


def encode(record: Record) -> bytes:
    data = record.__pydantic_serializer__.to_python(record, exclude_none=True)
    packed: bytes = msgpack.packb(data, datetime=True, default=_pack_ip)
    return packed


@pytest.fixture(scope="module")
def sample() -> list[Record]:
    return list(workload(20_000, seed=7))


# --- workload --------------------------------------------------------------------------------


def test_workload_yields_exactly_n_records() -> None:
    """workload(n) yields n records, and none for n = 0."""
    assert len(list(workload(1_234))) == 1_234
    assert list(workload(0)) == []


def test_workload_is_deterministic_for_a_seed() -> None:
    """The same seed gives the same records, to the byte; another seed gives others."""
    first = [encode(record) for record in workload(3_000, seed=42)]
    again = [encode(record) for record in workload(3_000, seed=42)]
    other = [encode(record) for record in workload(3_000, seed=43)]
    assert first == again
    assert first != other


def test_workload_prefix_does_not_depend_on_n() -> None:
    """The first records of a seed are the same whatever n is, up to the time they fall at."""
    short = list(workload(100, seed=5, span=timedelta(0)))
    long = list(workload(1_000, seed=5, span=timedelta(0)))
    assert short == long[:100]


def test_workload_is_lazy() -> None:
    """Records are produced on demand, so a huge n costs nothing until iterated."""
    assert len(list(itertools.islice(workload(10**12), 5))) == 5


def test_kind_mix_is_realistic(sample: list[Record]) -> None:
    """Kinds come in about the documented proportions, each within 1.5 percentage points."""
    target = {"chat": 45, "network": 30, "call": 10, "activity": 9, "identity": 4, "access": 2}
    counts = Counter(str(record.kind) for record in sample)
    assert set(counts) == {kind.value for kind in RecordKind} - {"log"}  # the log writes those
    for kind, percent in target.items():
        assert abs(100 * counts[kind] / len(sample) - percent) < 1.5, kind


def test_times_are_non_decreasing_across_the_span() -> None:
    """Times never go back, start at or after start and stay within the span."""
    start = datetime(2026, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    span = timedelta(hours=6)
    times = [record.occurred_at for record in workload(5_000, seed=1, start=start, span=span)]
    assert times == sorted(times)
    assert start <= times[0] < start + span / 100
    assert start + span * 0.99 <= times[-1] < start + span
    assert all(time.tzinfo is UTC for time in times)


def test_default_start_is_2026_01_01_utc() -> None:
    """Without a start the workload covers one day from 2026-01-01T00:00Z."""
    times = [record.occurred_at for record in workload(1_000)]
    assert datetime(2026, 1, 1, tzinfo=UTC) <= times[0]
    assert times[-1] < datetime(2026, 1, 2, tzinfo=UTC)


def test_subjects_follow_a_zipf_law(sample: list[Record]) -> None:
    """A few pseudonymous accounts have many records and most have few (Zipf, s = 1.1)."""
    counts = Counter(record.subject for record in sample).most_common()
    top, second = counts[0][1], counts[1][1]
    assert 0.08 < top / len(sample) < 0.2
    assert 1.6 < top / second < 3.0  # 2 ** 1.1 = 2.14 in expectation
    assert len(counts) > 3_000
    assert all(subject.startswith("acct-") for subject, _ in counts)


def test_chat_text_is_multilingual_corpus_text(sample: list[Record]) -> None:
    """Chat content comes from the chatterbot corpus and includes Chinese and Cyrillic text."""
    corpus = {line for lines in workload_module._chat_corpus().values() for line in lines}
    contents = [r.content for r in sample if r.kind == "chat" and r.content is not None]
    assert contents
    assert all(content in corpus for content in contents)
    assert any(any("\u4e00" <= char <= "\u9fff" for char in text) for text in contents)
    assert any(any("\u0400" <= char <= "\u04ff" for char in text) for text in contents)


def test_network_records_replay_the_openssh_log(sample: list[Record]) -> None:
    """Network records cycle through the parsed OpenSSH records, re-timed and re-assigned."""
    parsed, _ = parse_openssh_log(OPENSSH_LINES)
    replayed = [record for record in sample if isinstance(record, NetworkAddressRecord)]
    assert len(replayed) > len(parsed)  # so the replay wraps around at least once
    for index, record in enumerate(replayed):
        source = parsed[index % len(parsed)]
        assert (record.source_ip, record.source_port, record.account, record.event) == (
            source.source_ip,
            source.source_port,
            source.account,
            source.event,
        )
        assert record.status == source.status


def test_workload_records_survive_the_canonical_encoding(sample: list[Record]) -> None:
    """Every workload record decodes back from its canonical bytes to an equal record."""
    for record in sample[:5_000]:
        assert parse_record(msgpack.unpackb(encode(record), timestamp=3)) == record


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n": -1}, "n must be zero or more"),
        ({"n": 1, "span": timedelta(seconds=-1)}, "span must not be negative"),
        ({"n": 1, "start": datetime(2026, 1, 1)}, "start must be timezone-aware"),
    ],
)
def test_workload_rejects_bad_arguments(arguments: dict[str, object], message: str) -> None:
    """Bad arguments raise ConfigurationError when workload is called, not when iterated."""
    with pytest.raises(ConfigurationError, match=message):
        workload(**arguments)  # type: ignore[arg-type]


def test_missing_corpus_asks_for_the_testing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without chatterbot-corpus the error says which extra to install."""
    workload_module._chat_corpus.cache_clear()
    # A None entry in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "chatterbot_corpus", None)
    try:
        with pytest.raises(ConfigurationError, match=r"pip install 'auditlog\[testing\]'"):
            workload(10)
    finally:
        workload_module._chat_corpus.cache_clear()


# --- parse_openssh_log -----------------------------------------------------------------------


def test_openssh_log_parses_and_reports_every_line() -> None:
    """Of the 2,000 real log lines, 1,732 give records and the other 268 are reported by number."""
    records, unparsed = parse_openssh_log(OPENSSH_LINES)
    assert len(OPENSSH_LINES) == 2_000
    assert len(records) == 1_732
    assert len(unparsed) == 268
    assert unparsed[:10] == [3, 4, 10, 11, 12, 17, 18, 23, 24, 28]
    assert unparsed == sorted(set(unparsed))
    assert all(1 <= number <= 2_000 for number in unparsed)


def test_openssh_unparsed_lines_name_no_client_address() -> None:
    """Every reported line is one that carries no client IP address."""
    _, unparsed = parse_openssh_log(OPENSSH_LINES)
    reported = Counter(
        OPENSSH_LINES[number - 1].split("]: ", 1)[1].split(" ")[0] for number in unparsed
    )
    assert reported == Counter(
        {
            "pam_unix(sshd:auth):": 135 + 6,  # "check pass; user unknown" and host-name rhosts
            "input_userauth_request:": 113,
            "PAM": 8,  # "service(sshd) ignoring max retries" and one host-name rhost
            "Disconnecting:": 3,
            "pam_unix(sshd:session):": 2,
            "fatal:": 1,
        }
    )


def test_openssh_outcomes_map_to_events_and_statuses() -> None:
    """Accepted, failed and invalid-user lines become logins with the matching status."""
    records, _ = parse_openssh_log(OPENSSH_LINES)
    by_outcome = Counter((record.event, record.status) for record in records)
    assert by_outcome == {
        (NetworkEvent.LOGIN, NetworkStatus.SUCCESS): 1,
        (NetworkEvent.LOGIN, NetworkStatus.FAILURE): 882,
        (NetworkEvent.LOGIN, NetworkStatus.UNKNOWN_ACCOUNT): 252,
        (NetworkEvent.SESSION_START, None): 85,
        (NetworkEvent.SESSION_END, None): 455,
        (NetworkEvent.SESSION_END, NetworkStatus.FAILURE): 57,
    }
    assert sum(record.source_port is not None for record in records) == 525


def test_openssh_line_fields() -> None:
    """A failed login for an unknown user keeps its time, address, port and user name."""
    line = OPENSSH_LINES[5]
    assert "Failed password for invalid user webmaster from 173.234.31.186 port 38926" in line
    (record,), unparsed = parse_openssh_log([line])
    assert unparsed == []
    assert record == NetworkAddressRecord(
        occurred_at=datetime(2026, 12, 10, 6, 55, 48, tzinfo=UTC),
        subject="webmaster",
        service="sshd",
        account="webmaster",
        event=NetworkEvent.LOGIN,
        source_ip=IPv4Address("173.234.31.186"),
        source_port=38926,
        transport=Transport.TCP,
        status=NetworkStatus.UNKNOWN_ACCOUNT,
    )


def test_openssh_accepted_login_and_anonymous_disconnect() -> None:
    """A successful login names its user; a line without a user has the address as subject."""
    accepted = (
        "Dec 10 09:32:20 LabSZ sshd[24680]: "
        "Accepted password for fztu from 119.137.62.142 port 49116 ssh2"
    )
    closed = "Dec 10 07:02:47 LabSZ sshd[24203]: Connection closed by 212.47.254.145 [preauth]"
    (login, end), unparsed = parse_openssh_log([accepted, closed])
    assert unparsed == []
    assert (login.account, login.status, login.source_port) == (
        "fztu",
        NetworkStatus.SUCCESS,
        49116,
    )
    assert (end.subject, end.account, end.event) == (
        "212.47.254.145",
        None,
        NetworkEvent.SESSION_END,
    )


def test_openssh_repeated_message_lines_are_parsed() -> None:
    """A 'message repeated N times' line is parsed as the message it repeats."""
    line = (
        "Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: "
        "[ Failed password for root from 5.36.59.76 port 42393 ssh2]"
    )
    (record,), _ = parse_openssh_log([line])
    assert (record.account, record.source_port, record.status) == (
        "root",
        42393,
        NetworkStatus.FAILURE,
    )


def test_openssh_malformed_lines_are_reported_not_dropped() -> None:
    """Garbage, impossible dates, bad addresses and host-name-only lines are reported by number."""
    good = "Dec 10 07:02:47 LabSZ sshd[24203]: Connection closed by 212.47.254.145 [preauth]"
    lines = [
        "garbage",
        good,
        good.replace("Dec 10", "Feb 30"),
        good.replace("Dec 10", "Foo 10"),
        good.replace("212.47.254.145", "212.47.254.345"),
        good.replace("212.47.254.145", "host.example.net"),
        "",
        good + "\n",
    ]
    records, unparsed = parse_openssh_log(lines)
    assert unparsed == [1, 3, 4, 5, 6, 7]
    assert len(records) == 2
