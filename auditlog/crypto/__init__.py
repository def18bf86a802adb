"""Layer 3: keys and encryption — root-key providers, per-period data keys, subkeys."""

from auditlog.crypto.keys import ChainKeyring, PeriodKeys, derive_subkey
from auditlog.crypto.providers import (
    PASSPHRASE_ENV,
    EnvKeyProvider,
    KeyProvider,
    PassphraseKeyProvider,
)

__all__ = [
    "PASSPHRASE_ENV",
    "ChainKeyring",
    "EnvKeyProvider",
    "KeyProvider",
    "PassphraseKeyProvider",
    "PeriodKeys",
    "derive_subkey",
]
