"""The one exception tree of driftline.

Every error driftline raises on purpose is a :class:`DriftlineError`. Each class
carries the HTTP status the server answers with, and a stable ``code`` that the
wire format uses, so a remote client can raise the same class again::

    DriftlineError                      500  INTERNAL_ERROR
     ├── NotFoundError                  404  NOT_FOUND
     ├── AlreadyExistsError             409  ALREADY_EXISTS
     ├── ConflictError                  409  CONFLICT
     ├── InvalidArgumentError           400  INVALID_ARGUMENT   (also a ValueError)
     │    └── PayloadTooLargeError      413  PAYLOAD_TOO_LARGE  (too many rows, too large a body)
     ├── IntegrityError                 500  DATA_INTEGRITY     (bytes do not match their hash)
     ├── PermissionDeniedError          403  PERMISSION_DENIED
     ├── UnauthenticatedError           401  UNAUTHENTICATED
     │    └── TooManyAttemptsError      429  TOO_MANY_ATTEMPTS  (failed password checks)
     ├── BackendError                   503  BACKEND_UNAVAILABLE
     │    ├── SchemaVersionError        503  SCHEMA_VERSION     (run `driftline db upgrade`)
     │    └── OverloadedError           503  OVERLOADED         (shed load: retry after a while)
     └── UserCodeError                  500  USER_CODE          (wraps user code's exception)

Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "ConflictError",
    "DriftlineError",
    "IntegrityError",
    "InvalidArgumentError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "SchemaVersionError",
    "TooManyAttemptsError",
    "UnauthenticatedError",
    "UserCodeError",
    "error_class_for_code",
]


class DriftlineError(Exception):
    """Base class of every error driftline raises on purpose."""

    http_status: int = 500
    code: str = "INTERNAL_ERROR"


class NotFoundError(DriftlineError):
    """A named or referenced object does not exist."""

    http_status = 404
    code = "NOT_FOUND"


class AlreadyExistsError(DriftlineError):
    """An object with that name or key exists already."""

    http_status = 409
    code = "ALREADY_EXISTS"


class ConflictError(DriftlineError):
    """The request contradicts the stored state (a write-once value, a stale compare-and-set)."""

    http_status = 409
    code = "CONFLICT"


class InvalidArgumentError(DriftlineError, ValueError):
    """An argument is malformed or out of range."""

    http_status = 400
    code = "INVALID_ARGUMENT"


class PayloadTooLargeError(InvalidArgumentError):
    """A request carries more rows or bytes than the server accepts."""

    http_status = 413
    code = "PAYLOAD_TOO_LARGE"


class IntegrityError(DriftlineError):
    """A stored object's bytes no longer match the content hash they were stored under."""

    http_status = 500
    code = "DATA_INTEGRITY"


class PermissionDeniedError(DriftlineError):
    """The caller is known but lacks the permission for this action."""

    http_status = 403
    code = "PERMISSION_DENIED"


class UnauthenticatedError(DriftlineError):
    """The caller presented no credentials, or credentials that are not valid."""

    http_status = 401
    code = "UNAUTHENTICATED"


class TooManyAttemptsError(UnauthenticatedError):
    """Too many failed password checks from this client: wait ``retry_after`` seconds."""

    http_status = 429
    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(DriftlineError):
    """A storage backend (database, object store, server) failed or is unreachable."""

    http_status = 503
    code = "BACKEND_UNAVAILABLE"


class SchemaVersionError(BackendError):
    """The metadata database's schema is not the one this driftline expects."""

    code = "SCHEMA_VERSION"


class OverloadedError(BackendError):
    """The server sheds load (its queue is full or the request waited too long): retry
    after ``retry_after`` seconds."""

    code = "OVERLOADED"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UserCodeError(DriftlineError):
    """User code (a step, a custom model, a callback) raised; the original is ``__cause__``."""

    http_status = 500
    code = "USER_CODE"


_BY_CODE: dict[str, type[DriftlineError]] = {
    cls.code: cls
    for cls in (
        DriftlineError,
        NotFoundError,
        AlreadyExistsError,
        ConflictError,
        InvalidArgumentError,
        PayloadTooLargeError,
        IntegrityError,
        PermissionDeniedError,
        UnauthenticatedError,
        TooManyAttemptsError,
        BackendError,
        SchemaVersionError,
        OverloadedError,
        UserCodeError,
    )
}


def error_class_for_code(code: str) -> type[DriftlineError]:
    """Return the error class for a wire ``code``; unknown codes map to :class:`DriftlineError`."""
    return _BY_CODE.get(code, DriftlineError)
