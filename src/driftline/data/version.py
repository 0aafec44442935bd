"""The handle users hold: a version record plus the ways to read it.

Every read is verified against content hashes: a corrupted object raises
:class:`~driftline.errors.IntegrityError` naming the file and the version, never
returns wrong data.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from driftline.core.artifacts import Destination
from driftline.core.artifacts.files import LINK_MODES, LinkMode, place_file
from driftline.data.models import DatasetVersion, ManifestEntry
from driftline.data.tabular import read_table, supported_formats, table_format
from driftline.errors import IntegrityError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from driftline.data.profile import TableProfile
    from driftline.data.service import DataService

__all__ = ["Version"]


class Version:
    """An immutable dataset version you can read, check out and profile.

    Attributes of the record (``dataset``, ``number``, ``id``, ``message``, ``created_at``,
    ``run_id``, ``tags``, ...) are available directly.

    Example:
        >>> v = dl.data.get("customers@3")   # doctest: +SKIP
        >>> v.to_pandas().head()              # doctest: +SKIP
    """

    def __init__(self, service: DataService, record: DatasetVersion) -> None:
        self._service = service
        self.record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    def __repr__(self) -> str:
        return (
            f"Version({self.record.ref}, id={self.record.id[:19]}..., "
            f"files={self.record.file_count}, size={self.record.size})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and other.record == self.record

    def __hash__(self) -> int:
        return hash(self.record)

    @property
    def ref(self) -> str:
        """``customers@3``."""
        return self.record.ref

    @property
    def files(self) -> list[ManifestEntry]:
        """The files of the version, by path."""
        return list(self._service.manifest(self.record).entries)

    @property
    def profile(self) -> TableProfile:
        """Column statistics computed at commit (tabular versions only)."""
        return self._service.profile(self.record)

    def _entry(self, path: str) -> ManifestEntry:
        entry = self._service.manifest(self.record).by_path.get(path)
        if entry is None:
            raise NotFoundError(f"{self.record.ref} has no file {path!r}")
        return entry

    def _name(self, entry: ManifestEntry) -> str:
        return f"{entry.path} of {self.record.ref}"

    def open(self, path: str) -> BinaryIO:
        """Stream one file without fetching the others (verified at end of stream)."""
        entry = self._entry(path)
        return self._service.content.open(entry.digest, name=self._name(entry))  # type: ignore[return-value]

    def _local_files(self, entries: list[ManifestEntry], scratch: Path) -> list[tuple[str, Path]]:
        content = self._service.content
        folder = Destination(scratch, exclusive=True)
        pairs = []
        local = content.backend.capabilities.local_paths
        for entry in entries:
            stored = content.backend.local_path(_key(entry.digest)) if local else None
            if stored is not None:
                content.verify(entry.digest, name=self._name(entry))
                pairs.append((entry.path, stored))
            else:
                get = partial(content.get_file, entry.digest, name=self._name(entry))
                pairs.append((entry.path, folder.put(entry.path, get)))
        return pairs

    def to_arrow(self, columns: list[str] | None = None) -> pa.Table:
        """The version as one Arrow table (Parquet and CSV files, concatenated by path)."""
        import tempfile

        entries = self._service.manifest(self.record).entries
        other = [e.path for e in entries if table_format(e.path) is None]
        if other:
            raise InvalidArgumentError(
                f"{self.record.ref} is not tabular ({other[0]} is not a table); tabular "
                f"formats are {supported_formats()}. Use .open(path) or .checkout(folder)."
            )
        with tempfile.TemporaryDirectory(prefix="driftline-read-") as scratch:
            return read_table(self._local_files(list(entries), Path(scratch)), columns)

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The version as a pandas DataFrame."""
        return self.to_arrow(columns).to_pandas()

    def checkout(
        self, folder: str | Path, *, verify: bool = True, link: LinkMode = "reflink"
    ) -> Path:
        """Materialize the version's files in an empty (or new) folder, read-only.

        Args:
            folder: Where to put the files; it must be empty or not exist yet.
            verify: Re-hash each stored object first (a corrupt one raises
                :class:`~driftline.errors.IntegrityError` naming the file).
            link: How files are made from the local artifact store. ``reflink`` (the
                default) clones them copy-on-write where the filesystem can (btrfs, XFS),
                else copies them; ``copy`` always copies. Either way the checkout is
                independent of the store. ``hardlink`` makes each file another name of
                the stored object: instant and free of space, but a write to a
                checked-out file (after a ``chmod``, or by root) then changes the only
                stored copy. Objects not in a local store (packed, or remote) are
                always verified copies.

        Nothing is written outside ``folder``: paths are checked when the manifest is
        read, and a symbolic link in ``folder`` is never followed.

        Example:
            >>> dl.data.get("customers@3").checkout("data/customers")  # doctest: +SKIP
        """
        if link not in LINK_MODES:
            raise InvalidArgumentError(
                f"Unknown link mode {link!r}; use one of {', '.join(LINK_MODES)}"
            )
        dest = Path(folder)
        if dest.exists() and any(dest.iterdir()):
            raise InvalidArgumentError(f"Cannot check out into {dest}: the folder is not empty")
        manifest = self._service.manifest(self.record)  # IntegrityError if unsafe
        target = Destination(dest, exclusive=True)
        for entry in manifest.entries:
            target.put(entry.path, partial(self._place, entry, verify=verify, link=link))
        return dest

    def _place(self, entry: ManifestEntry, target: Path, *, verify: bool, link: LinkMode) -> None:
        content = self._service.content
        # Only a store that declares hard links hands out its own files to link to.
        linkable = content.backend.capabilities.hard_links
        stored = content.backend.local_path(_key(entry.digest)) if linkable else None
        if stored is None:
            content.get_file(entry.digest, target, name=self._name(entry))
        else:
            if verify:
                content.verify(entry.digest, name=self._name(entry))
            try:
                place_file(stored, target, link)
            except FileNotFoundError:
                raise IntegrityError(
                    f"Object of {self._name(entry)} is missing from the artifact store"
                ) from None
            if link == "hardlink" and os.path.samefile(target, stored):
                return  # the stored object itself: read-only already
        os.chmod(target, 0o444)


def _key(digest: str) -> str:
    from driftline.core.hashing import digest_key

    return digest_key(digest)
