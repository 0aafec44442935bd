"""Users, API tokens and per-resource grants of a driftline server (``--auth``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, String, Table

from driftline.core.metadata.schema import metadata

ID = String(32)

users = Table(
    "auth_users",
    metadata,
    Column("user_id", ID, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # A salted, slow hash (``scrypt$...``); NULL for users who only use tokens.
    Column("password_hash", String(256), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_id", ID, primary_key=True),
    Column(
        "user_id",
        ID,
        ForeignKey("auth_users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(128), nullable=False),
    # A salted hash of the token's secret part; the secret itself is never stored.
    Column("secret_hash", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

grants = Table(
    "auth_grants",
    metadata,
    Column(
        "user_id",
        ID,
        ForeignKey("auth_users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # "experiment" or "model"; the resource is named (experiments and models have
    # unique names), so a grant can be given before the resource exists.
    Column("resource_kind", String(16), primary_key=True),
    Column("resource_name", String(256), primary_key=True),
    Column("permission", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
