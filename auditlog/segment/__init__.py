"""Layer 4: segments — the on-disk format, the chain writer, readers and recovery.

Unstable machinery: use ``auditlog.AuditLog``. docs/format.md specifies the bytes.
"""
