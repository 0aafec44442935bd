"""Request bodies of the data-version routes (``/api/v1/data/...``).

Answers are records encoded by :mod:`driftline.api.codec`; these models only describe
what a client sends, so the server can refuse malformed input with a 400 before any
store sees it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from driftline.api.text import Count, Digest, EpochMs, Id, Name, Number, Text

__all__ = ["PutVersionBody", "RunInputBody", "TagBody", "VersionBody"]

_STRICT = ConfigDict(extra="forbid", strict=True)


class VersionBody(BaseModel):
    """A new version of a dataset; its number, author and time are the server's to assign.

    The manifest (``version_id``) and the profile must already be in the server's
    artifact store: upload the objects first, then record the version.
    """

    model_config = _STRICT

    version_id: Digest
    message: Text | None = None
    run_id: Id | None = None
    file_count: Count
    size: Count
    tabular: bool
    profile_digest: Digest | None = None


class PutVersionBody(VersionBody):
    """A version copied under its original number, author and time (a pull from a remote)."""

    author: Name
    created_at: EpochMs


class TagBody(BaseModel):
    """Which version a tag marks."""

    model_config = _STRICT

    number: Number


class RunInputBody(BaseModel):
    """A dataset version a run read."""

    model_config = _STRICT

    dataset: Name
    number: Number
