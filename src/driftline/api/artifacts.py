"""Wire bodies of the content-object API (``/api/v1/artifacts/...``).

The server reads these bodies itself, with a byte cap (:data:`MAX_JSON_BODY`), because
the artifact routes share the large upload limit of their prefix; :func:`parse_body`
turns a schema violation into :class:`~driftline.errors.InvalidArgumentError`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from driftline.errors import InvalidArgumentError

__all__ = [
    "MAX_DIGESTS",
    "MAX_JSON_BODY",
    "MissingRequest",
    "MissingResponse",
    "StoredObject",
    "UploadRequest",
    "UploadState",
    "json_body_schema",
    "parse_body",
]

# Digests one "missing" request may ask about; clients send larger sets in batches.
MAX_DIGESTS = 10_000
# A digest is '<algorithm>:<64 hex>' (71-72 characters); the cap keeps junk cheap to refuse.
MAX_JSON_BODY = 2 * 1024 * 1024

_Digest = Annotated[str, StringConstraints(max_length=100)]

_Model = TypeVar("_Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MissingRequest(_Body):
    """Which of these objects does the server lack?"""

    digests: list[_Digest] = Field(max_length=MAX_DIGESTS)


class MissingResponse(_Body):
    """The requested digests the server does not store (in request order)."""

    missing: list[str]


class UploadRequest(_Body):
    """Begin (or resume) a chunked upload of one object."""

    digest: _Digest
    size: StrictInt = Field(ge=0)


class UploadState(_Body):
    """Where a chunked upload stands; ``stored`` when the server has the object already."""

    upload_id: str | None
    digest: str
    size: int
    offset: int
    stored: bool


class StoredObject(_Body):
    """An object the server now stores."""

    digest: str
    size: int


class StoredBatch(_Body):
    """The objects of a batch upload, all now stored."""

    objects: int
    size: int


def parse_body(model: type[_Model], data: bytes) -> _Model:
    """Validate a JSON body; ``InvalidArgumentError`` listing every problem otherwise."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
        raise InvalidArgumentError("Invalid request body: " + "; ".join(problems)) from None


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI ``requestBody`` for a route that reads ``model`` itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
