"""File-system primitives shared by every layer that writes: private modes, fsync, atomic replace.

Every file auditlog creates is 0600 and every directory 0700, whatever the process umask, because
log directories hold wrapped keys and ciphertext whose sizes alone are worth protecting.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final

from auditlog.errors import IntegrityError

FILE_MODE = 0o600
DIR_MODE = 0o700


def read_note(path: Path, what: str, location: dict[str, object]) -> str:
    """The text of a signed note file; ``IntegrityError`` if it is not UTF-8 (damaged)."""
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError(
            f"{what} {path.name} is not UTF-8 text: it was damaged; restore it from a backup",
            location=location,
        ) from None


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a created, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700 directories; durable once this returns."""
    if path.is_dir():
        return
    make_private_dir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, DIR_MODE)  # the umask may have removed bits; we want exactly 0700
    fsync_dir(path.parent)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a 0600 file, created if missing); waits for it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data``; os.write may write less than asked on signals or full disks."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated, exactly 0600) and sync its bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        # The umask may have removed bits from the mode at creation, and a truncated file
        # keeps the mode it had: set exactly 0600 either way.
        os.fchmod(fd, FILE_MODE)
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def create_exclusive(path: Path, data: bytes) -> None:
    """Create a new private file holding ``data``, durably and whole; fail if it exists.

    The bytes go to a temporary name first and are linked into place only once synced, so a
    crash never leaves a partly written file under ``path``.
    """
    # The temporary name is unique per call, not per process: two threads creating the same
    # file at once would otherwise write into one temporary file, and the winner of the link
    # could hold the loser's bytes.
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(8)}")
    try:
        _write_synced(tmp, data)
        os.link(tmp, path)  # atomic, and refuses an existing name
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)  # also when the write failed (a full disk): leave nothing half made
    fsync_dir(path.parent)


def atomic_replace(path: Path, data: bytes, *, scrub_old: bool = True) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file, whole.

    The old content is kept under a hard link until the new file is durable, then overwritten
    with zeros and removed, so replaced key material does not linger in freed blocks (a best
    effort: copy-on-write file systems, SSD remapping and backups may still keep copies; see
    docs/design.md). A crash in between leaves the link behind; ``discard_stale`` removes it.

    Unlike ``create_exclusive``'s, the temporary names here are one per ``path``, so that what a
    crash left can be found again: callers replacing one file from several threads or
    processes hold that file's lock (the log lock, the chain lock, the witness lock).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    old = path.with_name(f".{path.name}.old")
    discard_stale(path)
    try:
        _write_synced(tmp, data)
    except BaseException:
        overwrite_with_zeros(tmp)  # a part of a secret is still a secret
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    had_old = scrub_old and path.exists()
    if had_old:
        os.link(path, old)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    if had_old:
        overwrite_with_zeros(old)
        os.unlink(old)
        fsync_dir(path.parent)


def discard_stale(path: Path) -> None:
    """Destroy what an interrupted ``atomic_replace`` of ``path`` left behind."""
    for leftover in (path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")):
        _destroy_leftover(leftover, path)


def _destroy_leftover(leftover: Path, original: Path) -> None:
    """Zero and remove ``leftover`` — unless it is still a second name of ``original`` (the
    crash came between linking the old copy and replacing it): then only the name goes."""
    try:
        status = os.stat(leftover)
    except FileNotFoundError:
        return
    try:
        live = os.stat(original)
    except FileNotFoundError:
        live = None
    if live is None or (live.st_ino, live.st_dev) != (status.st_ino, status.st_dev):
        overwrite_with_zeros(leftover)
    with suppress(FileNotFoundError):
        leftover.unlink()
    fsync_dir(leftover.parent)


_LEFTOVER: Final = re.compile(r"\.(?P<name>.+)\.(?:tmp|old|new-(?P<pid>[0-9]+)-[0-9a-f]+)")


def discard_leftovers(directory: Path) -> list[str]:
    """Destroy what interrupted replacements and creations left in ``directory`` (the caller
    holds the lock under which its files change): ``.<name>.tmp`` and ``.<name>.old`` of
    ``atomic_replace`` (an old copy may hold replaced key material or redacted frames), and
    ``.<name>.new-<pid>-<hex>`` of ``create_exclusive`` whose process is gone. Returns the
    names destroyed."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    gone = []
    for name in names:
        match = _LEFTOVER.fullmatch(name)
        if match is None:
            continue
        pid = match.group("pid")
        if pid is not None and _alive(int(pid)):
            continue
        _destroy_leftover(directory / name, directory / match.group("name"))
        gone.append(name)
    return gone


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_zeroed(path: Path) -> bool:
    """Whether a file holds only zero bytes (``secure_delete`` overwrote it and was stopped
    before it removed it); False for an empty or missing file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return bool(data) and not data.strip(b"\0")


def secure_delete(path: Path) -> None:
    """Overwrite a file with zeros, then remove it durably."""
    overwrite_with_zeros(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def overwrite_with_zeros(path: Path) -> None:
    """Overwrite a file's bytes in place with zeros and sync, before it is removed or replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(size, 1 << 20))
        done = 0
        while done < size:
            chunk = zeros[: min(len(zeros), size - done)]
            os.pwrite(fd, chunk, done)
            done += len(chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
