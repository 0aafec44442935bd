"""Data-version rules: committing, resolving references, tags, lineage.

References read like ``customers`` (latest), ``customers@3``, ``customers@latest``,
``customers@october`` (a tag) or ``customers@4f1c2a`` (a version-id prefix of at least
6 hex digits); time travel is ``as_of=`` with a datetime (a naive one means UTC) and
resolves by recorded commit time, never by file modification times.

Committing identical content to the *latest* version returns that version. Committing
content equal to an older version makes a new version (a revert is an event in the
history, as in git).
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.artifacts import ContentStore
from driftline.core.clock import now_ms, to_ms
from driftline.core.values import check_ms
from driftline.data.manifest import (
    Manifest,
    check_manifest,
    read_manifest,
    shard_digests,
    write_manifest,
)
from driftline.data.models import (
    Dataset,
    DatasetVersion,
    LineageEdge,
    LineageGraph,
    ManifestEntry,
)
from driftline.data.scan import Progress, StatCache, ingest, list_files, listing_fingerprint
from driftline.data.store import DataStore, NewVersion
from driftline.data.tabular import TABLE_FILE, is_table_object, table_format, write_table
from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from driftline.data.profile import TableProfile

__all__ = ["DataService", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_HEX = re.compile(r"^[0-9a-f]{6,64}$")


def check_dataset_name(name: str) -> str:
    """Dataset names: 1-128 letters, digits, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"Invalid dataset name {name!r}: use 1-128 letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_tag(tag: str) -> str:
    """Tags read like names, but never like ``latest``, a number or a version-id prefix."""
    if (
        not isinstance(tag, str)
        or not _NAME.match(tag)
        or tag == "latest"
        or tag.isdigit()
        or _HEX.match(tag)
    ):
        raise InvalidArgumentError(
            f"Invalid tag {tag!r}: use letters, digits, '_', '.', '-'; not 'latest', "
            "not a number and not something that reads as a version-id prefix"
        )
    return tag


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``name@selector`` into its parts (the selector is ``None`` for a bare name)."""
    name, sep, selector = ref.partition("@")
    check_dataset_name(name)
    if sep and not selector:
        raise InvalidArgumentError(f"Empty version after '@' in {ref!r}")
    return name, (selector if sep else None)


class DataService:
    """Datasets and their immutable versions.

    Args:
        store: The metadata backend.
        content: Where file bytes and manifests live.
        stat_cache: Where to remember file hashes by stat (``None`` disables it).
        user: Recorded as the author of versions.
        run_exists: Checks a run id before recording lineage.
    """

    def __init__(
        self,
        store: DataStore,
        content: ContentStore,
        *,
        stat_cache: Path | None,
        user: str,
        run_exists: Callable[[str], bool] = lambda _run_id: True,
    ) -> None:
        self.store = store
        self.content = content
        self.user = user
        self._stat_cache_path = stat_cache
        self._stat_cache: StatCache | None = None
        self._run_exists = run_exists

    # -- commit ---------------------------------------------------------------------

    def commit(
        self,
        name: str,
        source: Any,
        *,
        message: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Commit a file, a folder (recursively), a DataFrame or an Arrow table.

        Example:
            >>> service.commit("customers", "data/customers.parquet", message="october")
            ... # doctest: +SKIP
        """
        check_dataset_name(name)
        if run_id is not None and not self._run_exists(run_id):
            raise NotFoundError(f"No run with id {run_id!r} to record as the producer")
        if is_table_object(source):
            with tempfile.TemporaryDirectory(prefix="driftline-commit-") as scratch:
                path = Path(scratch) / TABLE_FILE
                write_table(source, path)
                return self._commit_files(
                    name, path, message, tags, run_id, progress, use_cache=False
                )
        if not isinstance(source, str | Path):
            raise InvalidArgumentError(
                f"Cannot commit a {type(source).__name__}: give a file or folder path, "
                "a pandas DataFrame or a pyarrow Table"
            )
        return self._commit_files(
            name, Path(source), message, tags, run_id, progress, use_cache=True
        )

    def _commit_files(
        self,
        name: str,
        source: Path,
        message: str | None,
        tags: tuple[str, ...] | list[str],
        run_id: str | None,
        progress: Progress | None,
        *,
        use_cache: bool,
    ) -> DatasetVersion:
        files = list_files(source)
        before = self.store.find_version(name)
        cache = self._cache() if use_cache else None
        cache_root = f"{self.content.url}|{source.absolute()}"
        fingerprint = listing_fingerprint(files) if cache is not None else None
        if (
            cache is not None
            and fingerprint is not None
            and before is not None
            and cache.find_manifest(cache_root, fingerprint) == before.id
        ):
            # Every file is as it was when the latest version was committed from here:
            # nothing to read (its objects are kept by gc as that version refers to them).
            return self._tag_all(before, tags)
        entries = ingest(
            files,
            self.content,
            cache=cache,
            cache_root=cache_root,
            progress=progress,
            referenced=lambda: self._version_digests(before),
        )
        dataset = self.store.ensure_dataset(name)
        latest = self.store.find_version(name)
        if latest is not None and self._lists_same_files(latest, entries):
            version_id = latest.id  # the same listing: the same manifest, stored already
        else:
            version_id, _shards = write_manifest(entries, self.content)
        if latest is not None and latest.id == version_id:
            version = latest
        else:
            tabular = all(table_format(e.path) is not None for e in entries)
            profile_digest = self._profile(files) if tabular else None
            version, _created = self.store.add_version(
                dataset.id,
                NewVersion(
                    version_id=version_id,
                    author=self.user,
                    message=message,
                    created_at=now_ms(),
                    run_id=run_id,
                    file_count=len(entries),
                    size=sum(e.size for e in entries),
                    tabular=tabular,
                    profile_digest=profile_digest,
                ),
            )
        if cache is not None and fingerprint is not None:
            cache.store_manifest(cache_root, fingerprint, version.id)
        return self._tag_all(version, tags)

    def _tag_all(
        self, version: DatasetVersion, tags: tuple[str, ...] | list[str]
    ) -> DatasetVersion:
        for tag in tags:
            version = self.tag(version.ref, tag)
        return version

    def _version_digests(self, version: DatasetVersion | None) -> set[str]:
        """The digests of ``version``'s files (none if it is None or unreadable)."""
        if version is None:
            return set()
        try:
            return {entry.digest for entry in self.manifest(version).entries}
        except DriftlineError:
            return set()

    def _lists_same_files(self, version: DatasetVersion, entries: list[ManifestEntry]) -> bool:
        """Whether ``entries`` (sorted by path) are exactly the files of ``version``.

        Reading the version's manifest (cached in process) costs less than encoding,
        hashing and looking up a new one, which is what makes re-committing unchanged
        data cheap. An unreadable manifest answers False: writing it again repairs it.
        """
        if version.file_count != len(entries):
            return False
        try:
            return self.manifest(version).entries == entries
        except DriftlineError:
            return False

    def _profile(self, files: list[Any]) -> str:
        from driftline.data.profile import profile_table

        profile = profile_table([str(f.location) for f in files])
        data = json.dumps(profile.to_dict(), sort_keys=True, allow_nan=False).encode()
        return self.content.put_bytes(data).digest

    def _cache(self) -> StatCache | None:
        if self._stat_cache is None and self._stat_cache_path is not None:
            self._stat_cache = StatCache(self._stat_cache_path)
        return self._stat_cache

    # -- lookup ---------------------------------------------------------------------

    def get(self, ref: str, *, as_of: datetime | int | None = None) -> DatasetVersion:
        """Resolve a reference (see the module docstring) to a version."""
        name, selector = parse_ref(ref)
        when = None if as_of is None else check_ms(to_ms(as_of), "as_of")
        found: DatasetVersion | None
        if selector is None or selector == "latest":
            found = self.store.find_version(name, as_of=when)
        elif selector.isdigit():
            found = self.store.find_version(name, number=int(selector))
        else:
            found = self.store.find_version(name, tag=selector)
            if found is None and _HEX.match(selector):
                found = self.store.find_version(name, id_prefix=selector)
        if found is None:
            raise NotFoundError(self._not_found_message(name, selector, ref, when))
        return found

    def _not_found_message(
        self, name: str, selector: str | None, ref: str, when: int | None
    ) -> str:
        names = [d.name for d in self.store.list_datasets()]
        if name not in names:
            return _unknown_dataset(name, names)
        versions = self.store.list_versions(name)
        if not versions:
            return f"Dataset {name} has no versions yet"
        if when is not None:
            return f"Dataset {name} has no version committed at or before that time"
        tags = sorted({tag for v in versions for tag in v.tags})
        latest = versions[0].number if versions else None
        return f"No version {selector!r} of dataset {name} ({ref}); it has versions 1..{latest}" + (
            f" and tags {', '.join(tags)}" if tags else ""
        )

    def find_version(
        self,
        name: str,
        *,
        number: int | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        as_of: int | None = None,
    ) -> DatasetVersion | None:
        """The version a store lookup names (else the latest), or ``None``.

        An id prefix is 6 to 64 lowercase hex digits: a shorter one would match most
        versions.
        """
        check_dataset_name(name)
        if id_prefix is not None and not _HEX.match(id_prefix):
            raise InvalidArgumentError(
                f"Invalid version-id prefix {id_prefix!r}: give 6 to 64 lowercase hex digits"
            )
        return self.store.find_version(
            name, number=number, tag=tag, id_prefix=id_prefix, as_of=as_of
        )

    def dataset(self, name: str) -> Dataset:
        """The dataset called ``name``; ``NotFoundError`` names near ones."""
        check_dataset_name(name)
        datasets = self.store.list_datasets()
        for dataset in datasets:
            if dataset.name == name:
                return dataset
        raise NotFoundError(_unknown_dataset(name, [d.name for d in datasets]))

    def ensure_dataset(self, name: str) -> Dataset:
        """The dataset called ``name``, created if missing."""
        return self.store.ensure_dataset(check_dataset_name(name))

    def versions(self, name: str) -> list[DatasetVersion]:
        """The versions of a dataset, newest first (none for a dataset not committed to)."""
        versions = self.store.list_versions(check_dataset_name(name))
        if not versions:
            self.dataset(name)  # NotFoundError for an unknown dataset
        return versions

    def record_version(
        self, name: str, version: NewVersion, *, number: int | None = None
    ) -> tuple[DatasetVersion, bool]:
        """Record a version whose objects are stored already (``number``: under that
        number, as a version copied from a remote keeps it); ``(version, created)``.

        What is checked, because the objects may come from anyone (a server's client): the
        manifest (and profile) are in the content store, the manifest is a safe one
        (:func:`~driftline.data.manifest.check_manifest`) and states the version's file
        count and size, and the producing run exists.
        """
        check_dataset_name(name)
        self._check_objects(version)
        dataset = self.store.ensure_dataset(name)
        if number is None:
            return self.store.add_version(dataset.id, version)
        return self.store.put_version(dataset.id, number, version), True

    def _check_objects(self, version: NewVersion) -> None:
        from driftline.core.hashing import parse_digest
        from driftline.data.manifest import check_manifest

        for digest, what in ((version.version_id, "manifest"), (version.profile_digest, "profile")):
            if digest is None:
                continue
            parse_digest(digest)  # InvalidArgumentError for a malformed digest
            if not self.content.exists(digest):
                raise NotFoundError(
                    f"The {what} {digest} is not in the artifact store: upload the "
                    "version's objects before recording it"
                )
        manifest = check_manifest(version.version_id, self.content)
        if (version.file_count, version.size) != (len(manifest), manifest.size):
            raise InvalidArgumentError(
                f"The version states {version.file_count} files and {version.size} bytes, "
                f"but its manifest lists {len(manifest)} files and {manifest.size} bytes"
            )
        if version.run_id is not None and not self._run_exists(version.run_id):
            raise NotFoundError(f"No run with id {version.run_id!r}")

    def find_latest(self, name: str) -> DatasetVersion | None:
        """The latest version of a dataset, or ``None`` if it has none yet."""
        return self.store.find_version(check_dataset_name(name))

    def list_datasets(self) -> list[Dataset]:
        """Every dataset with its latest version number."""
        return self.store.list_datasets()

    def log(self, name: str) -> list[DatasetVersion]:
        """The versions of a dataset, newest first."""
        self.get(name)  # a clear NotFoundError for unknown names
        return self.store.list_versions(name)

    def manifest(self, version: DatasetVersion) -> Manifest:
        """The files of a version."""
        return read_manifest(version.id, self.content)

    def profile(self, version: DatasetVersion) -> TableProfile:
        """The column statistics computed when a tabular version was committed."""
        if version.profile_digest is None:
            raise InvalidArgumentError(
                f"{version.ref} is not tabular, so it has no profile; tabular versions hold "
                "only Parquet or CSV files"
            )
        from driftline.data.profile import TableProfile

        raw = self.content.read_bytes(version.profile_digest, name=f"profile of {version.ref}")
        return TableProfile.from_dict(json.loads(raw))

    # -- tags and lineage -----------------------------------------------------------

    def tag(self, ref: str, tag: str, *, actor: str | None = None) -> DatasetVersion:
        """Give a version an immutable tag (``customers@october``).

        ``actor``: who tags (a server passes its caller); the service's user by default.
        """
        check_tag(tag)
        version = self.get(ref)
        dataset = self.store.ensure_dataset(version.dataset)
        self.store.add_tag(
            dataset.id, tag, version.number, now_ms(), actor=self.user if actor is None else actor
        )
        return self.get(f"{version.dataset}@{version.number}")

    def log_input(self, run_id: str, ref: str | DatasetVersion) -> DatasetVersion:
        """Record that a run read a version."""
        version = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        if not self._run_exists(run_id):
            raise NotFoundError(f"No run with id {run_id!r}")
        dataset = self.store.ensure_dataset(version.dataset)
        self.store.add_run_input(run_id, dataset.id, version.number, now_ms())
        return version

    def readers(self, name: str, number: int) -> list[str]:
        """Ids of the runs that read a version."""
        return self.store.readers(check_dataset_name(name), number)

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        """The dataset versions a run read."""
        return self.store.run_inputs(run_id)

    def run_outputs(self, run_id: str) -> list[DatasetVersion]:
        """The dataset versions a run produced."""
        return self.store.versions_by_run(run_id)

    def all_versions(self) -> list[DatasetVersion]:
        """Every version of every dataset (garbage collection, remotes)."""
        return self.store.all_versions()

    def lineage(self, ref: str, *, depth: int = 3) -> LineageGraph:
        """Runs and versions upstream (what made it) and downstream (what used it)."""
        root = self.get(ref)
        upstream: list[LineageEdge] = []
        downstream: list[LineageEdge] = []
        self._walk_up(root, depth, upstream, set())
        self._walk_down(root, depth, downstream, set())
        return LineageGraph(
            root=_node(root), upstream=tuple(upstream), downstream=tuple(downstream)
        )

    def _walk_up(
        self, version: DatasetVersion, depth: int, edges: list[LineageEdge], seen: set[str]
    ) -> None:
        if depth <= 0 or version.run_id is None or version.run_id in seen:
            return
        seen.add(version.run_id)
        run = f"run:{version.run_id}"
        edges.append(LineageEdge(source=run, target=_node(version), kind="output"))
        for parent in self.store.run_inputs(version.run_id):
            edges.append(LineageEdge(source=_node(parent), target=run, kind="input"))
            self._walk_up(parent, depth - 1, edges, seen)

    def _walk_down(
        self, version: DatasetVersion, depth: int, edges: list[LineageEdge], seen: set[str]
    ) -> None:
        if depth <= 0:
            return
        for run_id in self.store.readers(version.dataset, version.number):
            if run_id in seen:
                continue
            seen.add(run_id)
            run = f"run:{run_id}"
            edges.append(LineageEdge(source=_node(version), target=run, kind="input"))
            for child in self.store.versions_by_run(run_id):
                edges.append(LineageEdge(source=run, target=_node(child), kind="output"))
                self._walk_down(child, depth - 1, edges, seen)

    # -- storage --------------------------------------------------------------------

    def store_folder(self, folder: Path) -> list[ManifestEntry]:
        """Put every file of a folder in the content store; return its manifest entries."""
        return ingest(list_files(folder), self.content)

    def pin(self, entries: list[ManifestEntry]) -> str:
        """Store a listing of stored files as a manifest; its digest pins them all."""
        digest, _shards = write_manifest(entries, self.content)
        return digest

    def pin_objects(self, digest: str) -> set[str]:
        """Every object a pin keeps alive: the manifest, its shards and the files."""
        return {
            digest,
            *shard_digests(digest, self.content),
            *(e.digest for e in self.pinned(digest)),
        }

    def pinned(self, digest: str) -> list[ManifestEntry]:
        """The files a :meth:`pin` digest stands for (verified)."""
        return list(read_manifest(digest, self.content).entries)

    def accept_pin(self, digest: str) -> list[ManifestEntry]:
        """The files of a pin a client uploaded itself; ``InvalidArgumentError`` unless it
        is a manifest whose every path is safe to write (see ``check_manifest``)."""
        return list(check_manifest(digest, self.content).entries)

    def version_objects(self, version: DatasetVersion) -> set[str]:
        """Every object a version needs: manifest, shards, files and profile."""
        digests = {version.id, *shard_digests(version.id, self.content)}
        digests |= self.manifest(version).digests()
        if version.profile_digest:
            digests.add(version.profile_digest)
        return digests

    def referenced_digests(self) -> set[str]:
        """Every object any version refers to (garbage collection marks from these)."""
        digests: set[str] = set()
        for version in self.store.all_versions():
            digests |= self.version_objects(version)
        return digests

    def close(self) -> None:
        """Release the stat cache."""
        if self._stat_cache is not None:
            self._stat_cache.close()
            self._stat_cache = None


def _unknown_dataset(name: str, names: list[str]) -> str:
    near = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
    return f"No dataset named {name!r}{hint}"


def _node(version: DatasetVersion) -> str:
    return f"data:{version.ref}"
