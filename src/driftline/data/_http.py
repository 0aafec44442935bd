"""The remote backend of data versions: :class:`~driftline.data.store.DataStore` over HTTP.

Only metadata travels here; the bytes of a commit (files, manifest, profile) go through
the workspace's content store first, and the server refuses a version whose manifest it
does not hold. Records come back through :mod:`driftline.api.codec`.

The server assigns a new version's author (the authenticated caller) and time (its own
clock); a version copied from a remote (:meth:`HttpDataStore.put_version`) keeps both.

The routes address datasets by name while the protocol hands back the id the service got
from :meth:`~HttpDataStore.ensure_dataset`; the store remembers which name each id it
has seen belongs to. Ids and names never change, so that memory cannot go stale.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode
from driftline.data.models import Dataset, DatasetVersion
from driftline.data.store import NewVersion
from driftline.errors import NotFoundError

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpDataStore"]


def _seg(text: str) -> str:
    """One path segment, escaped."""
    return quote(text, safe="")


class HttpDataStore:
    """:class:`~driftline.data.store.DataStore` of a driftline server.

    Args:
        client: The shared client of the server (``Workspace.client``).
    """

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- datasets -------------------------------------------------------------------

    def _dataset(self, data: Any) -> Dataset:
        dataset = decode(Dataset, data)
        with self._lock:
            self._names[dataset.id] = dataset.name
        return dataset

    def _name(self, dataset_id: str) -> str:
        with self._lock:
            name = self._names.get(dataset_id)
        if name is None:
            self.list_datasets()  # learns every id
            with self._lock:
                name = self._names.get(dataset_id)
        if name is None:
            raise NotFoundError(f"No dataset with id {dataset_id!r} on {self.client.base_url}")
        return name

    def ensure_dataset(self, name: str) -> Dataset:
        return self._dataset(self.client.put_json(f"data/datasets/{_seg(name)}"))

    def list_datasets(self) -> list[Dataset]:
        answer = self.client.get_json("data/datasets")
        return [self._dataset(item) for item in answer["datasets"]]

    # -- versions -------------------------------------------------------------------

    def add_version(self, dataset_id: str, new: NewVersion) -> tuple[DatasetVersion, bool]:
        body = {
            "version_id": new.version_id,
            "message": new.message,
            "run_id": new.run_id,
            "file_count": new.file_count,
            "size": new.size,
            "tabular": new.tabular,
            "profile_digest": new.profile_digest,
        }
        # Safe to retry: identical content to the latest version returns that version.
        answer = self.client.post_json(
            f"data/datasets/{_seg(self._name(dataset_id))}/versions", body, idempotent=True
        )
        return decode(DatasetVersion, answer["version"]), bool(answer["created"])

    def put_version(self, dataset_id: str, number: int, new: NewVersion) -> DatasetVersion:
        body = {
            "version_id": new.version_id,
            "author": new.author,
            "message": new.message,
            "created_at": new.created_at,
            "run_id": new.run_id,
            "file_count": new.file_count,
            "size": new.size,
            "tabular": new.tabular,
            "profile_digest": new.profile_digest,
        }
        path = f"data/datasets/{_seg(self._name(dataset_id))}/versions/{int(number)}"
        return decode(DatasetVersion, self.client.put_json(path, body))

    def find_version(
        self,
        dataset: str,
        *,
        number: int | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        as_of: int | None = None,
    ) -> DatasetVersion | None:
        selectors = {"number": number, "tag": tag, "id_prefix": id_prefix, "as_of": as_of}
        params = {k: v for k, v in selectors.items() if v is not None}
        answer = self.client.get_json(f"data/datasets/{_seg(dataset)}/versions/find", params=params)
        found = answer["version"]
        return None if found is None else decode(DatasetVersion, found)

    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        try:
            answer = self.client.get_json(f"data/datasets/{_seg(dataset)}/versions")
        except NotFoundError:
            return []  # the protocol: an unknown dataset has no versions
        return _versions(answer)

    def all_versions(self) -> list[DatasetVersion]:
        return _versions(self.client.get_json("data/versions"))

    # -- tags and lineage -----------------------------------------------------------

    def add_tag(
        self, dataset_id: str, tag: str, number: int, created_at: int, *, actor: str
    ) -> None:
        # The server records its own time and the authenticated caller as the actor.
        del created_at, actor
        path = f"data/datasets/{_seg(self._name(dataset_id))}/tags/{_seg(tag)}"
        self.client.put_json(path, {"number": number})

    def add_run_input(self, run_id: str, dataset_id: str, number: int, created_at: int) -> None:
        del created_at  # the server's clock
        body = {"dataset": self._name(dataset_id), "number": number}
        self.client.post_json(f"data/runs/{_seg(run_id)}/inputs", body, idempotent=True)

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        return _versions(self.client.get_json(f"data/runs/{_seg(run_id)}/inputs"))

    def readers(self, dataset: str, number: int) -> list[str]:
        path = f"data/datasets/{_seg(dataset)}/versions/{int(number)}/readers"
        return [str(run_id) for run_id in self.client.get_json(path)["run_ids"]]

    def versions_by_run(self, run_id: str) -> list[DatasetVersion]:
        return _versions(self.client.get_json(f"data/runs/{_seg(run_id)}/outputs"))


def _versions(answer: Any) -> list[DatasetVersion]:
    return [decode(DatasetVersion, item) for item in answer["versions"]]
