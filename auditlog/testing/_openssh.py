"""Parsing OpenSSH server logs into network-address records, for the workload and for tests.

Each syslog line from sshd that names a client address becomes one ``NetworkAddressRecord``;
every other line is reported by number, never dropped unseen. The parsed records of the real log
shipped in ``data/`` (see ``data/README.md``) are what the workload's network records replay.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from ipaddress import ip_address
from typing import Final

from pydantic import ValidationError

from auditlog.records import NetworkAddressRecord, NetworkEvent, NetworkStatus, Transport

__all__ = ["OPENSSH_LOG_YEAR", "parse_openssh_log"]

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
