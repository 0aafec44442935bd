"""Low-level file operations of the local byte store, its packs and checkouts."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Literal, get_args

from driftline.errors import InvalidArgumentError

__all__ = ["LINK_MODES", "LinkMode", "copy_range", "place_file", "reserve"]

LinkMode = Literal["reflink", "copy", "hardlink"]
"""How a stored object becomes a file of a checkout (see :func:`place_file`)."""
LINK_MODES: tuple[str, ...] = get_args(LinkMode)

# Linux's ioctl that makes a new file share another's blocks, copy-on-write (btrfs,
# XFS, bcachefs, ...): instant, no extra space, and a write to either copies the block.
_FICLONE = 0x40049409
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def reserve(fd: int, offset: int, length: int) -> None:
    """Reserve disk space for ``length`` bytes at ``offset`` (best effort).

    Writing into reserved space skips the filesystem's block allocation on the way
    (measured on ext4: 10,000 appends of 100 KiB 0.36 s -> 0.27 s). Where the filesystem
    cannot reserve, nothing is done.
    """
    if length > 0 and hasattr(os, "posix_fallocate"):
        with contextlib.suppress(OSError):
            os.posix_fallocate(fd, offset, length)


def copy_range(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes between descriptors in the kernel, from offset 0 of both."""
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(src, dst, size - done, done, done)
            if copied == 0:
                break  # the source shrank while we copied: the hash check catches it
            done += copied
    except OSError:  # no copy_file_range between these files (an old kernel, say)
        os.lseek(src, done, os.SEEK_SET)
        os.lseek(dst, done, os.SEEK_SET)
        while chunk := os.read(src, 1 << 20):
            os.write(dst, chunk)


def place_file(source: str | Path, target: str | Path, mode: LinkMode = "reflink") -> None:
    """Create ``target`` (it must not exist) with the bytes of ``source``.

    - ``reflink`` (the default): a copy-on-write clone where the filesystem makes one,
      else a copy. Either way ``target`` is a file of its own: writing it never changes
      ``source``.
    - ``copy``: the bytes written anew.
    - ``hardlink``: ``target`` *is* ``source`` (another name of the same inode), so it
      costs nothing, but writing it writes ``source``; a copy where no link can be made
      (another filesystem).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        FileExistsError: ``target`` exists (even as a link: it is never written through).
    """
    if mode not in LINK_MODES:
        raise InvalidArgumentError(
            f"Unknown link mode {mode!r}; use one of {', '.join(LINK_MODES)}"
        )
    if mode == "hardlink":
        try:
            os.link(source, target)
            return
        except (FileNotFoundError, FileExistsError):
            raise
        except OSError:  # another filesystem, or links not allowed: copy instead
            pass
    with (
        open(source, "rb") as src,
        os.fdopen(os.open(target, _NEW_FILE, 0o644), "wb") as out,
    ):
        try:
            if not (mode == "reflink" and _clone(src.fileno(), out.fileno())):
                shutil.copyfileobj(src, out, 1 << 20)
        except BaseException:
            Path(target).unlink(missing_ok=True)  # no half-written file stays behind
            raise


def _clone(src: int, dst: int) -> bool:
    """Whether ``dst`` was made a copy-on-write clone of ``src``."""
    if not sys.platform.startswith("linux"):
        return False
    import fcntl

    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError:  # EOPNOTSUPP, EXDEV, EINVAL: this filesystem does not clone
        return False
    return True
