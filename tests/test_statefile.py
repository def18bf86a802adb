"""One way to read a state file: every way a file can be bad is one ``StateFileError`` naming it.

The unit tests of ``auditlog._statefile`` and ``auditlog.crypto.wrapped``; the state files of a
real log are damaged on disk and opened through the public API.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog import AuditLog, IntegrityError, KeyMaterialError, StateFileError, TrustedState
from auditlog._statefile import StateFile, decode_state, read_state, state_bytes
from auditlog.crypto.keys import KeyringFile, KeyringFileV1
from auditlog.crypto.providers import EnvKeyProvider, RootKeyFile
from auditlog.crypto.wrapped import WrappedKeyFile
from auditlog.log.holds_file import HoldsFile, HoldsFileV1
from auditlog.log.key_material import (
    CheckpointKeyFile,
    CheckpointKeyFileV1,
    HoldKeyFile,
    HoldKeyFileV1,
)
from auditlog.log.manifest import Manifest, ManifestV1
from auditlog.log.retention.journal import SweepJournal
from auditlog.proofs import TrustedStateFile
from auditlog.segment.frames import DictionaryFile
from auditlog.testing import TEST_PASSPHRASE, workload

FIXTURE = Path(__file__).parent / "fixtures" / "logs" / "v1"

# The state files of format v1, with the models that read them (to migrate a v1 log).
MODELS_V1: list[tuple[str, type[StateFile]]] = [
    ("log/manifest.json", ManifestV1),
    ("log/holds.json", HoldsFileV1),
    ("log/keys/root.key", RootKeyFile),
    ("log/keys/checkpoint.key", CheckpointKeyFileV1),
    ("log/keys/hold.key", HoldKeyFileV1),
    ("trusted.json", TrustedStateFile),
]
# The state files of format v2 and their models.
MODELS: list[tuple[str, type[StateFile]]] = [
    ("manifest.json", Manifest),
    ("holds.json", HoldsFile),
    ("keys/root.key", RootKeyFile),
    ("keys/checkpoint.key", CheckpointKeyFile),
    ("keys/hold.key", HoldKeyFile),
]


def _fixture_state_files() -> list[tuple[Path, type[StateFile]]]:
    files: list[tuple[Path, type[StateFile]]] = [(FIXTURE / name, m) for name, m in MODELS_V1]
    files += [(p, KeyringFileV1) for p in sorted(FIXTURE.glob("log/chains/*/keyring"))]
    files += [(p, DictionaryFile) for p in sorted(FIXTURE.glob("log/chains/*/dicts/*.zdict"))]
    return files


@pytest.mark.parametrize(
    ("path", "model"), _fixture_state_files(), ids=lambda v: getattr(v, "name", "")
)
def test_format_v1_state_files_read_without_loss(path: Path, model: type[StateFile]) -> None:
    """Each state file written by format v1 reads into its (v1) model and writes back
    unchanged: byte for byte, but for configuration fields added since, with their defaults."""
    written = state_bytes(read_state(path, model))
    if model is ManifestV1:
        old, new = json.loads(path.read_bytes()), json.loads(written)
        added = set(new["config"]) - set(old["config"])
        assert {k: v for k, v in new["config"].items() if k not in added} == old["config"]
        assert {k: v for k, v in new.items() if k != "config"} == {
            k: v for k, v in old.items() if k != "config"
        }
    else:
        assert written == path.read_bytes()


class _Example(StateFile):
    FORMAT: ClassVar[str] = "auditlog-example"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the example file"
    REMEDY: ClassVar[str] = "restore it from the example backup"

    count: int
    names: list[str]


class _ExamplePacked(_Example):
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "is empty"),
        (b'{"format": "auditlog-example", "version": 2, "count"', "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[]", "is not a auditlog-example file"),
        (b'{"format": "other", "version": 2, "count": 1, "names": []}', "not a auditlog-example"),
        (b'{"format": "auditlog-example", "version": 3, "count": 1, "names": []}', "upgrade"),
        (b'{"format": "auditlog-example", "version": 1, "count": 1, "names": []}', "version"),
        (b'{"format": "auditlog-example", "version": "2", "count": 1, "names": []}', "version"),
        (b'{"format": "auditlog-example", "version": 2, "names": []}', "count"),
        (b'{"format": "auditlog-example", "version": 2, "count": [], "names": []}', "count"),
    ],
)
def test_every_bad_json_file_is_one_error_naming_the_file(
    tmp_path: Path, raw: bytes, problem: str
) -> None:
    """Empty, truncated, non-UTF-8, wrong-shape, wrong-format and unknown-version files all give
    StateFileError with the file, the problem and the remedy in its message."""
    path = tmp_path / "example.json"
    path.write_bytes(raw)
    with pytest.raises(StateFileError) as info:
        read_state(path, _Example)
    message = str(info.value)
    assert str(path) in message
    assert problem in message
    assert "upgrade auditlog" in message or "restore it from the example backup" in message
    assert info.value.path == path
    assert info.value.location == {"file": "example.json"}


def test_unknown_keys_are_ignored_as_the_format_promises(tmp_path: Path) -> None:
    """A file that gained a key it does not know still reads (docs/format.md, "Versions and
    evolution": maps may gain keys)."""
    path = tmp_path / "example.json"
    path.write_text('{"format": "auditlog-example", "version": 2, "count": 1, "names": [], "x": 1}')
    assert read_state(path, _Example).count == 1


def test_a_missing_or_unreadable_file_is_one_error_naming_it(tmp_path: Path) -> None:
    """A missing file, a directory in its place and an unreadable file are StateFileErrors."""
    with pytest.raises(StateFileError, match="is missing"):
        read_state(tmp_path / "absent.json", _Example)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(StateFileError, match="is a directory"):
        read_state(tmp_path / "dir.json", _Example)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    """Whatever bytes a file holds, decoding them gives a model or a StateFileError (JSON and
    msgpack alike), never KeyError, TypeError, UnicodeDecodeError or ValidationError."""
    for model in (_Example, _ExamplePacked):
        with contextlib.suppress(StateFileError):
            decode_state(raw, Path("any"), model)


def test_format_and_version_are_written_first_and_filled_in(tmp_path: Path) -> None:
    """A model made without format and version gets its class's, and msgpack files keep field
    order with format and version first."""
    example = _ExamplePacked(count=3, names=["a"])
    assert (example.format, example.version) == ("auditlog-example", 2)
    assert list(msgpack.unpackb(state_bytes(example))) == ["format", "version", "count", "names"]
    with pytest.raises(ValueError, match="version 2"):
        _Example(format="auditlog-example", version=1, count=1, names=[])


def test_wrapped_key_files_bind_their_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrapped key unwraps only under its own context; rewrapping keeps its public fields and
    names the new root key; creating over an existing file is refused."""
    monkeypatch.setenv("AUDITLOG_TEST_ROOT_A", "A" * 43 + "=")
    monkeypatch.setenv("AUDITLOG_TEST_ROOT_B", "B" * 43 + "=")
    first = EnvKeyProvider("AUDITLOG_TEST_ROOT_A")
    second = EnvKeyProvider("AUDITLOG_TEST_ROOT_B")
    path = tmp_path / "checkpoint.key"
    file = WrappedKeyFile(path, CheckpointKeyFile, b"context one")
    file.create(b"secret", first, verifier_key="vk")
    assert file.unwrap(first) == b"secret"
    with pytest.raises(KeyMaterialError):
        WrappedKeyFile(path, CheckpointKeyFile, b"context two").unwrap(first)
    with pytest.raises(FileExistsError):
        file.create(b"other", first, verifier_key="vk")

    class _Both(EnvKeyProvider):
        def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
            try:
                return super().unwrap(wrapped, context)
            except KeyMaterialError:
                return first.unwrap(wrapped, context)

    file.rewrap(first, _Both("AUDITLOG_TEST_ROOT_B", key_id=second.key_id))
    doc = file.read()
    assert (doc.root_key_id, doc.verifier_key) == (second.key_id, "vk")
    assert file.unwrap(second) == b"secret"
    with pytest.raises(KeyMaterialError):
        file.unwrap(first)


def _damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _damage_not_a_document(path: Path) -> None:
    path.write_bytes(b"\x00garbage\x00")


def _damage_future_version(path: Path) -> None:
    raw = path.read_bytes()
    if raw.startswith(b"{"):
        doc = json.loads(raw)
        doc["version"] = 99
        path.write_text(json.dumps(doc))
    else:
        packed = msgpack.unpackb(raw, strict_map_key=False)
        packed["version"] = 99
        path.write_bytes(msgpack.packb(packed))


Damage = Callable[[Path], None]
DAMAGES: list[Damage] = [_damage_truncate, _damage_not_a_document, _damage_future_version]


@pytest.mark.parametrize(
    "name",
    ["manifest.json", "holds.json", "keys/checkpoint.key", "chains/chat/keyring"],
)
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__.removeprefix("_damage_"))
def test_a_damaged_state_file_of_a_log_is_refused_by_name(
    tmp_path: Path, name: str, damage: Damage
) -> None:
    """Opening, planning a sweep, verifying and signing on a (migrated) copy of the v1 fixture
    with one state file damaged gives an IntegrityError (a StateFileError, or the head's
    refusal) that names that file; nothing else escapes and the file is left as it was."""
    expected = json.loads((FIXTURE / "expected.json").read_text())
    root = tmp_path / "copy"
    shutil.copytree(FIXTURE, root)
    AuditLog.migrate(root / "log", passphrase=expected["passphrase"])
    target = root / "log" / name
    damage(target)
    damaged = target.read_bytes()
    with pytest.raises(IntegrityError) as info:
        _open_plan_verify_sign(root / "log", expected["passphrase"])
    assert target.name in str(info.value)
    assert target.read_bytes() == damaged


def _open_plan_verify_sign(path: Path, passphrase: str) -> None:
    with AuditLog.open(path, passphrase=passphrase) as log:
        log.retention.sweep(dry_run=True)
        log.verify()
        log.proofs.sign_checkpoints()


def test_a_damaged_trusted_state_is_refused_not_reset(tmp_path: Path) -> None:
    """A trusted state that does not parse is an error, never an empty state (which would let
    a cut-back log pass)."""
    path = tmp_path / "trusted.json"
    shutil.copy(FIXTURE / "trusted.json", path)
    _damage_truncate(path)
    with pytest.raises(StateFileError, match="trusted-checkpoint state"):
        TrustedState(path)


def test_a_log_written_now_has_state_files_its_models_read(tmp_path: Path) -> None:
    """The state files a new log writes (manifest, holds, keys, keyrings, a journal's model)
    all read back through their models."""
    from datetime import UTC, datetime, timedelta

    from auditlog import RetentionPolicy

    with AuditLog.create(tmp_path / "log", passphrase=TEST_PASSPHRASE, scrypt_n=2**10) as log:
        start = datetime(2026, 3, 1, tzinfo=UTC)
        log.append_many(workload(200, seed=3, start=start))
        log.retention.set_policy(
            "chat",
            RetentionPolicy(keep_at_least=timedelta(0), delete_after=timedelta(days=1)),
            actor="t",
        )
        log.retention.add_hold("case", ["chat"], start, start + timedelta(hours=1), actor="t")
    for name, model in MODELS:
        read_state(tmp_path / "log" / name, model)
    read_state(tmp_path / "log/chains/chat/keyring", KeyringFile)
    assert SweepJournal.FORMAT == "auditlog-sweep-journal"
