"""Root keys, data keys and subkeys (layer 2)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from auditlog.crypto import ChainKeyring, EnvKeyProvider, PassphraseKeyProvider, PeriodKeys
from auditlog.errors import (
    ConfigurationError,
    KeyMaterialError,
    KeyShreddedError,
    PassphraseError,
)

N = 2**10


def test_root_key_file_is_private_and_holds_no_key_in_clear(tmp_path: Path) -> None:
    """The root key file is created 0600 and does not contain the root key bytes."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    mode = stat.S_IMODE((tmp_path / "root.key").stat().st_mode)
    assert mode == 0o600
    assert provider._root_key not in (tmp_path / "root.key").read_bytes()


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    """Opening the root key with another passphrase raises PassphraseError."""
    PassphraseKeyProvider.create(tmp_path / "root.key", "right", scrypt_n=N)
    with pytest.raises(PassphraseError):
        PassphraseKeyProvider.open(tmp_path / "root.key", "wrong")


def test_passphrase_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an argument the passphrase comes from AUDITLOG_PASSPHRASE; absent, it is an error."""
    monkeypatch.setenv("AUDITLOG_PASSPHRASE", "from-env")
    created = PassphraseKeyProvider.create(tmp_path / "root.key", scrypt_n=N)
    opened = PassphraseKeyProvider.open(tmp_path / "root.key")
    assert opened.unwrap(created.wrap(b"k" * 32, b"ctx"), b"ctx") == b"k" * 32
    monkeypatch.delenv("AUDITLOG_PASSPHRASE")
    with pytest.raises(ConfigurationError, match="AUDITLOG_PASSPHRASE"):
        PassphraseKeyProvider.open(tmp_path / "root.key")


def test_change_passphrase_keeps_the_root_key(tmp_path: Path) -> None:
    """After a passphrase change, keys wrapped before still unwrap; the old passphrase fails."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "old", scrypt_n=N)
    wrapped = provider.wrap(b"d" * 32, b"ctx")
    provider.change_passphrase("new")
    reopened = PassphraseKeyProvider.open(tmp_path / "root.key", "new")
    assert reopened.unwrap(wrapped, b"ctx") == b"d" * 32
    with pytest.raises(PassphraseError):
        PassphraseKeyProvider.open(tmp_path / "root.key", "old")
    assert not list(tmp_path.glob(".root.key.*")), "no stale copy of the old key file remains"


def test_wrapped_keys_are_bound_to_their_context(tmp_path: Path) -> None:
    """A data key wrapped for one (chain, period) does not unwrap for another."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    wrapped = provider.wrap(b"d" * 32, b"chain-a/1")
    with pytest.raises(KeyMaterialError):
        provider.unwrap(wrapped, b"chain-b/1")


def test_env_key_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment provider takes a base64 32-byte key and refuses anything else."""
    monkeypatch.setenv("AUDITLOG_ROOT_KEY", base64.b64encode(os.urandom(32)).decode())
    provider = EnvKeyProvider()
    assert provider.unwrap(provider.wrap(b"x" * 32, b"c"), b"c") == b"x" * 32
    monkeypatch.setenv("AUDITLOG_ROOT_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="32 bytes"):
        EnvKeyProvider()
    monkeypatch.delenv("AUDITLOG_ROOT_KEY")
    with pytest.raises(ConfigurationError, match="not set"):
        EnvKeyProvider()


def test_keyring_persists_data_keys_wrapped(tmp_path: Path) -> None:
    """A period key created by one keyring is found, identical, by a keyring opened later."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    first = ChainKeyring(tmp_path / "keyring", provider, "o/c").get_or_create(20_000)
    again = ChainKeyring(tmp_path / "keyring", provider, "o/c").get(20_000)
    assert first.leaf_salts(0, 4) == again.leaf_salts(0, 4)
    assert stat.S_IMODE((tmp_path / "keyring").stat().st_mode) == 0o600
    assert first._data_key not in (tmp_path / "keyring").read_bytes()


def test_keyring_refuses_unknown_and_names_the_period(tmp_path: Path) -> None:
    """Asking for a period that has no key raises KeyMaterialError naming the period."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    keyring = ChainKeyring(tmp_path / "keyring", provider, "o/c")
    with pytest.raises(KeyMaterialError, match="period 7"):
        keyring.get(7)


def test_keyring_of_another_origin_does_not_unwrap(tmp_path: Path) -> None:
    """Keyring files moved to another chain fail to unwrap: keys are bound to their origin."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    ChainKeyring(tmp_path / "keyring", provider, "o/a").get_or_create(1)
    with pytest.raises(KeyMaterialError):
        ChainKeyring(tmp_path / "keyring", provider, "o/b").get(1)


def test_shredded_period_raises_key_shredded(tmp_path: Path) -> None:
    """A period listed as shredded raises KeyShreddedError, for reading and for writing."""
    provider = PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=N)
    keyring = ChainKeyring(tmp_path / "keyring", provider, "o/c")
    keyring._shredded[5] = 0
    with pytest.raises(KeyShreddedError, match="period 5"):
        keyring.get(5)
    with pytest.raises(KeyShreddedError):
        keyring.get_or_create(5)


def test_subkeys_are_independent() -> None:
    """Salts differ per index and per data key; block keys differ per block salt."""
    keys = PeriodKeys(1, b"k" * 32)
    other = PeriodKeys(1, b"j" * 32)
    salts = keys.leaf_salts(0, 1000)
    chunks = {salts[i : i + 16] for i in range(0, len(salts), 16)}
    assert len(chunks) == 1000
    assert keys.leaf_salts(10, 3) == salts[160:208]
    assert other.leaf_salts(0, 1) != salts[:16]
    nonce = bytes(12)
    a = keys.frame_aead(b"a" * 16).encrypt(nonce, b"same", None)
    b = keys.frame_aead(b"b" * 16).encrypt(nonce, b"same", None)
    assert a != b
