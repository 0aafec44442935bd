"""The handle users hold: a version record plus the ways to read it.

Every read is verified against content hashes: a corrupted object raises
:class:`~driftline.errors.IntegrityError` naming the file and the version, never
returns wrong data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

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
        pairs = []
        for entry in entries:
            stored = content.backend.local_path(_key(entry.digest))
            if stored is not None:
                content.verify(entry.digest, name=self._name(entry))
                pairs.append((entry.path, stored))
            else:
                target = scratch / entry.path
                content.get_file(entry.digest, target, name=self._name(entry))
                pairs.append((entry.path, target))
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

    def checkout(self, folder: str | Path, *, verify: bool = True) -> Path:
        """Materialize the version's files in an empty (or new) folder, read-only.

        Files are hard links into the local artifact store where possible (no copy),
        else verified copies. Objects are verified first unless ``verify=False``.
        """
        dest = Path(folder)
        if dest.exists() and any(dest.iterdir()):
            raise InvalidArgumentError(f"Cannot check out into {dest}: the folder is not empty")
        content = self._service.content
        for entry in self._service.manifest(self.record).entries:
            target = dest / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            stored = content.backend.local_path(_key(entry.digest))
            if stored is None:
                content.get_file(entry.digest, target, name=self._name(entry))
                os.chmod(target, 0o444)
                continue
            if verify:
                content.verify(entry.digest, name=self._name(entry))
            try:
                os.link(stored, target)
            except FileNotFoundError:
                raise IntegrityError(
                    f"Object of {self._name(entry)} is missing from the artifact store"
                ) from None
            except OSError:  # another filesystem: copy instead
                shutil.copyfile(stored, target)
                os.chmod(target, 0o444)
        return dest


def _key(digest: str) -> str:
    from driftline.core.hashing import digest_key

    return digest_key(digest)
