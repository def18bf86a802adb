"""Helpers for testing code that uses auditlog: a fixed clock, throwaway logs, realistic
workloads, and ``tamper`` — ways to damage a log on purpose, to test that it is noticed.

``workload`` needs the ``auditlog[testing]`` extra (chatterbot-corpus and PyYAML).
"""

from auditlog.testing import tamper
from auditlog.testing._helpers import (
    TEST_PASSPHRASE,
    TEST_SCRYPT_N,
    FixedClock,
    settle,
    temporary_log,
)
from auditlog.testing._workload import parse_openssh_log, workload

__all__ = [
    "TEST_PASSPHRASE",
    "TEST_SCRYPT_N",
    "FixedClock",
    "parse_openssh_log",
    "settle",
    "tamper",
    "temporary_log",
    "workload",
]
