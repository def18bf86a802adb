"""The scrypt parameters of ``keys/root.key`` are bounded when the file is read, before scrypt
runs: a file whose cost was raised is refused with a clear error instead of hanging an open or
exhausting its memory."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditlog import ConfigurationError, StateFileError
from auditlog._statefile import decode_state
from auditlog.crypto import providers
from auditlog.crypto.providers import DEFAULT_SCRYPT_N, PassphraseKeyProvider, RootKeyFile
from auditlog.testing import TEST_SCRYPT_N


def _in_bounds(n: int, r: int, p: int) -> bool:
    power_of_two = n > 0 and n & (n - 1) == 0
    return (
        power_of_two
        and 2**10 <= n <= 2**20
        and 1 <= r <= 32
        and 1 <= p <= 16
        and (128 * n * r <= 1 << 30)
    )


def _root_key_bytes(n: int, r: int, p: int) -> bytes:
    document = {
        "format": RootKeyFile.FORMAT,
        "version": RootKeyFile.VERSION,
        "key_id": "root-00000000",
        "kdf": "scrypt",
        "n": n,
        "r": r,
        "p": p,
        "salt": b"s" * 16,
        "nonce": b"n" * 12,
        "wrapped": b"w" * 48,
    }
    packed: bytes = msgpack.packb(document)
    return packed


POWERS = st.integers(min_value=0, max_value=40).map(lambda e: 2**e)
COSTS = st.one_of(POWERS, st.integers(min_value=-5, max_value=2**21))


@given(
    n=COSTS, r=st.integers(min_value=-2, max_value=40), p=st.integers(min_value=-2, max_value=20)
)
def test_the_file_is_read_exactly_when_its_cost_is_in_bounds(n: int, r: int, p: int) -> None:
    """A root key file reads when n is a power of two from 2**10 to 2**20, r is 1-32, p is 1-16
    and scrypt's memory (128 n r bytes) is at most 1 GiB; otherwise it is a StateFileError
    naming the file and the bound."""
    path = Path("keys/root.key")
    raw = _root_key_bytes(n, r, p)
    if _in_bounds(n, r, p):
        assert decode_state(raw, path, RootKeyFile).n == n
    else:
        with pytest.raises(StateFileError, match=r"root key file .*scrypt") as refused:
            decode_state(raw, path, RootKeyFile)
        assert refused.value.path == path


def test_the_costs_auditlog_writes_are_in_bounds() -> None:
    """The default cost and the tests' low cost are both within the bounds."""
    for n in (DEFAULT_SCRYPT_N, TEST_SCRYPT_N):
        assert _in_bounds(n, 8, 1)


def test_a_raised_cost_is_refused_before_scrypt_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a root key file whose n was raised to 2**30 fails at once with StateFileError,
    without running scrypt (which would need 1 TiB)."""
    path = tmp_path / "root.key"
    PassphraseKeyProvider.create(path, "pw", scrypt_n=TEST_SCRYPT_N)
    document = msgpack.unpackb(path.read_bytes())
    document["n"] = 2**30
    path.write_bytes(msgpack.packb(document))

    def no_scrypt(*args: object) -> bytes:
        raise AssertionError("scrypt ran")

    monkeypatch.setattr(providers, "_scrypt", no_scrypt)
    with pytest.raises(StateFileError, match="scrypt n must be a power of two"):
        PassphraseKeyProvider.open(path, "pw")


@pytest.mark.parametrize("n", [2**9, 2**21, 1000])
def test_a_key_file_is_never_written_with_a_cost_it_could_not_be_read_with(
    tmp_path: Path, n: int
) -> None:
    """Creating a root key with a cost outside the bounds is a ConfigurationError, and no file
    is written."""
    with pytest.raises(ConfigurationError, match="scrypt n"):
        PassphraseKeyProvider.create(tmp_path / "root.key", "pw", scrypt_n=n)
    assert list(tmp_path.iterdir()) == []
