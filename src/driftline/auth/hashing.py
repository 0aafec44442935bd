"""Password and token hashing: only salted hashes are stored, never a secret.

Passwords get a deliberately slow, memory-hard hash (scrypt) with a random salt; its
parameters are part of the stored string, so they can be raised later without breaking
old hashes::

    scrypt$n=16384,r=8,p=1$<salt, base64>$<hash, base64>

Tokens are ``dl_<token_id>_<secret>``: the id (32 hex digits) finds the row, and the
secret (256 random bits) is compared with a salted SHA-256 in constant time. A slow
hash adds nothing to a secret that long, and tokens are checked on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from driftline.errors import InvalidArgumentError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_strength",
    "format_token",
    "hash_password",
    "hash_token_secret",
    "looks_like_token",
    "new_token_secret",
    "parse_token",
    "verify_password",
    "verify_token_secret",
    "waste_password_check",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# 16 MiB of memory and ~50 ms per hash: cheap for a login, costly for a guessing attack.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_LEN = 32
_TOKEN = re.compile(r"^dl_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * n * r
    )


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short, too long, or shaped like a token."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"A password has at most {MAX_PASSWORD_LENGTH} characters")
    if looks_like_token(password):
        # Basic auth takes a token as the password; a password of that shape would be
        # ambiguous.
        raise InvalidArgumentError("A password must not look like an API token (dl_...)")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` with its parameters."""
    check_password_strength(password)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN)
    params = f"n={_SCRYPT_N},r={_SCRYPT_R},p={_SCRYPT_P}"
    return f"scrypt${params}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password`."""
    try:
        scheme, params, salt_b64, digest_b64 = stored.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, KeyError):
        return False
    if scheme != "scrypt" or len(password) > MAX_PASSWORD_LENGTH:
        return False
    actual = _scrypt(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)


# A hash nobody's password matches: checking it when the user does not exist makes a
# wrong name take as long as a wrong password, so timing does not reveal user names.
_DUMMY_HASH = (
    f"scrypt$n={_SCRYPT_N},r={_SCRYPT_R},p={_SCRYPT_P}$"
    f"{_b64(b'driftline-dummy!')}${_b64(bytes(_SCRYPT_LEN))}"
)


def waste_password_check(password: str) -> None:
    """Spend the time of one password check (for unknown user names)."""
    verify_password(password, _DUMMY_HASH)


def new_token_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def format_token(token_id: str, secret: str) -> str:
    """The string a caller presents: ``dl_<token_id>_<secret>``."""
    return f"dl_{token_id}_{secret}"


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of a driftline token."""
    return _TOKEN.fullmatch(value) is not None


def parse_token(value: str) -> tuple[str, str]:
    """``(token_id, secret)`` of a token string, or ``InvalidArgumentError``."""
    match = _TOKEN.fullmatch(value)
    if match is None:
        raise InvalidArgumentError("Not a driftline token (expected dl_<id>_<secret>)")
    return match.group(1), match.group(2)


def hash_token_secret(secret: str) -> str:
    """A salted SHA-256 of a token's secret part: ``sha256$<salt hex>$<digest hex>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode("ascii")).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def verify_token_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a hash made by :func:`hash_token_secret` (constant time)."""
    try:
        scheme, salt_hex, expected = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    actual = hashlib.sha256(salt + secret.encode("utf-8", "replace")).hexdigest()
    return hmac.compare_digest(actual, expected)
