"""Benchmarks of auditlog next to what platforms run today; results go to docs/benchmarks.md.

Run everything with ``python -m benchmarks`` (or ``make bench``); run one bench alone with
``python -m benchmarks.bench_write --records 100000`` (likewise ``bench_scale``, ``bench_read``,
``bench_profile``). Timing lives here only: the test suite runs each bench once at a tiny size so
that the code cannot rot, and asserts nothing about speed.
"""
