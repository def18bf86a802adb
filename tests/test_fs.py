"""File primitives: temporary names unique per call, and nothing left behind when a write fails."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from auditlog import _fs


def _race(count: int, target: object) -> list[BaseException | None]:
    """Run ``target(i)`` in ``count`` threads released at once; what each raised, or None."""
    barrier = threading.Barrier(count)
    outcomes: list[BaseException | None] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            target(i)  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - kept for the assertions
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_threads_creating_one_file_at_once_never_mix_their_bytes(tmp_path: Path) -> None:
    """Eight threads create the same file at once, each with its own megabyte, twenty times
    over: one wins each time and the file holds its bytes whole, the others get
    FileExistsError, and no temporary file is left (the temporary name was once one per
    process, so the threads wrote into one file)."""
    contents = [bytes([i]) * (1 << 20) for i in range(8)]
    for round_ in range(20):
        target = tmp_path / f"file-{round_}"
        outcomes = _race(8, lambda i, target=target: _fs.create_exclusive(target, contents[i]))
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1
        assert all(isinstance(o, FileExistsError) for o in outcomes if o is not None)
        assert target.read_bytes() == contents[winners[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"file-{i}" for i in range(20))


def test_threads_creating_different_files_at_once_all_succeed(tmp_path: Path) -> None:
    """Sixteen threads each create their own file at once; every file holds its own bytes."""
    outcomes = _race(16, lambda i: _fs.create_exclusive(tmp_path / f"f{i}", b"%d" % i * 4096))
    assert outcomes == [None] * 16
    for i in range(16):
        assert (tmp_path / f"f{i}").read_bytes() == b"%d" % i * 4096
    assert len(list(tmp_path.iterdir())) == 16


@pytest.mark.parametrize("write", [_fs.create_exclusive, _fs.atomic_replace])
def test_a_failed_write_leaves_no_temporary_file(
    write: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the file system refuses the bytes (a full disk), neither creating nor replacing a
    file leaves a temporary file behind, and a replaced file keeps its old bytes."""
    target = tmp_path / "state"
    target.write_bytes(b"old")

    def full(fd: int, data: bytes) -> None:
        os.write(fd, bytes(data)[:1])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_fs, "write_all", full)
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="No space"):
        write(fresh if write is _fs.create_exclusive else target, b"new bytes")  # type: ignore[operator]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    assert target.read_bytes() == b"old"
