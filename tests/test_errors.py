"""One exception tree: HTTP statuses, wire codes, and ValueError compatibility."""

from __future__ import annotations

import pytest

from driftline import errors
from driftline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    DriftlineError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    SchemaVersionError,
    TooManyAttemptsError,
    UnauthenticatedError,
    UserCodeError,
    error_class_for_code,
)

TREE = [
    (DriftlineError, Exception, 500, "INTERNAL_ERROR"),
    (NotFoundError, DriftlineError, 404, "NOT_FOUND"),
    (AlreadyExistsError, DriftlineError, 409, "ALREADY_EXISTS"),
    (ConflictError, DriftlineError, 409, "CONFLICT"),
    (InvalidArgumentError, DriftlineError, 400, "INVALID_ARGUMENT"),
    (PayloadTooLargeError, InvalidArgumentError, 413, "PAYLOAD_TOO_LARGE"),
    (IntegrityError, DriftlineError, 500, "DATA_INTEGRITY"),
    (PermissionDeniedError, DriftlineError, 403, "PERMISSION_DENIED"),
    (UnauthenticatedError, DriftlineError, 401, "UNAUTHENTICATED"),
    (TooManyAttemptsError, UnauthenticatedError, 429, "TOO_MANY_ATTEMPTS"),
    (BackendError, DriftlineError, 503, "BACKEND_UNAVAILABLE"),
    (SchemaVersionError, BackendError, 503, "SCHEMA_VERSION"),
    (OverloadedError, BackendError, 503, "OVERLOADED"),
    (UserCodeError, DriftlineError, 500, "USER_CODE"),
]


@pytest.mark.parametrize(
    ("cls", "parent", "status", "code"), TREE, ids=[c.__name__ for c, *_ in TREE]
)
def test_each_error_has_its_place_status_and_code(
    cls: type[DriftlineError], parent: type[Exception], status: int, code: str
) -> None:
    assert cls.__bases__[0] is parent
    assert cls.http_status == status
    assert cls.code == code
    assert error_class_for_code(code) is cls
    assert cls.__doc__


def test_codes_are_unique_and_every_error_is_exported() -> None:
    codes = [cls.code for cls, *_ in TREE]
    assert len(codes) == len(set(codes))
    exported = {name for name in errors.__all__ if name.endswith("Error")}
    assert exported == {cls.__name__ for cls, *_ in TREE}


def test_invalid_argument_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad"):
        raise InvalidArgumentError("bad")
    assert not issubclass(NotFoundError, ValueError)


def test_unknown_codes_map_to_the_base_class() -> None:
    assert error_class_for_code("SOMETHING_NEW") is DriftlineError
