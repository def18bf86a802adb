"""Layer 4: where a log's files live.

Today that is one local directory (``LogLayout``, docs/format.md "Layout"); the chains' own
files are laid out by ``auditlog.segment.files.ChainFiles``. Object storage (S3 with Object
Lock) will plug in here, behind the same layout, without the layers above changing.
"""

from auditlog.storage.layout import CHAIN_ID_PATTERN, LogLayout, check_chain_id

__all__ = ["CHAIN_ID_PATTERN", "LogLayout", "check_chain_id"]
