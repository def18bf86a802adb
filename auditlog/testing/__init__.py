"""Helpers for testing code that uses auditlog: realistic, seeded record workloads.

``workload`` needs the ``auditlog[testing]`` extra (chatterbot-corpus and PyYAML).
"""

from auditlog.testing._workload import parse_openssh_log, workload

__all__ = ["parse_openssh_log", "workload"]
