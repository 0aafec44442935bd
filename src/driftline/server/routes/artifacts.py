"""REST routes: artifacts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["artifacts"])
