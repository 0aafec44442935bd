"""The workspace builds a stage's service on first use, after the stages it uses; gc
still asks every stage for its roots, and close closes what was built."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from driftline.core.stage import Kernel, Services, Stage
from driftline.errors import NotFoundError
from driftline.gc import referenced_digests
from driftline.settings import Settings
from driftline.workspace import Workspace

#: What the toy stages did, in order: ("build" | "close", stage name).
EVENTS: list[tuple[str, str]] = []


class Toy:
    """A toy stage's service: its name and the services it was given."""

    def __init__(self, name: str, uses: dict[str, Toy]) -> None:
        self.name = name
        self.uses = uses


def _toy(name: str, *uses: str) -> Stage[Toy]:
    def build(_kernel: Kernel, given: Services) -> Toy:
        toy = Toy(name, {used: given.get(used, Toy) for used in uses})
        EVENTS.append(("build", name))  # after the stages it uses were built
        return toy

    def roots(_service: Toy) -> Iterable[str]:
        return [f"root-of-{name}"]

    def close(_service: Toy, _timeout: float | None) -> None:
        EVENTS.append(("close", name))

    return Stage(name=name, build=build, gc_roots=roots, uses=uses, close=close)


BASE = _toy("base")
MIDDLE = _toy("middle", "base")
TOP = _toy("top", "middle", "base")
ALONE = _toy("alone")
TOY_STAGES = [f"{__name__}:{attr}" for attr in ("BASE", "MIDDLE", "TOP", "ALONE")]


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    EVENTS.clear()
    workspace = Workspace.from_settings(
        Settings.load(home=tmp_path / ".driftline", capture_environment=False),
        stages=TOY_STAGES,
    )
    yield workspace
    workspace.close()


def test_opening_builds_no_stage_and_first_use_builds_what_it_uses(ws: Workspace) -> None:
    assert EVENTS == []
    top = ws.service("top", Toy)
    assert EVENTS == [("build", "base"), ("build", "middle"), ("build", "top")]
    assert top.uses["middle"].uses["base"] is top.uses["base"] is ws.service("base", Toy)
    assert ws.service("top", Toy) is top
    assert len(EVENTS) == 3  # built once


def test_close_closes_only_what_was_built_users_first(ws: Workspace) -> None:
    ws.service("middle", Toy)
    ws.close()
    assert EVENTS == [
        ("build", "base"),
        ("build", "middle"),
        ("close", "middle"),
        ("close", "base"),
    ]


def test_a_stage_first_used_after_close_is_closed_like_the_others(ws: Workspace) -> None:
    ws.close()
    ws.service("alone", Toy)
    assert EVENTS == [("build", "alone"), ("close", "alone")]


def test_gc_sees_every_stage_roots(ws: Workspace) -> None:
    ws.service("alone", Toy)
    assert referenced_digests(ws) == {f"root-of-{n}" for n in ("base", "middle", "top", "alone")}
    assert sorted(name for event, name in EVENTS if event == "build") == [
        "alone",
        "base",
        "middle",
        "top",
    ]


def test_an_unknown_stage_names_the_declared_ones(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match=r"No stage 'nope'.*base, middle, top, alone"):
        ws.service("nope", Toy)
    assert EVENTS == []
