"""Options of performance and check: one frozen object, validated when made, the same
through the public functions, the service and the REST client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from driftline.errors import InvalidArgumentError
from driftline.monitoring import MonitoringService
from driftline.monitoring._http import _body
from driftline.monitoring.models import DriftThresholds
from driftline.monitoring.options import CheckOptions, PerformanceOptions, WindowOptions
from driftline.workspace import Workspace


def test_options_are_frozen_and_normalized_once() -> None:
    opts = CheckOptions(checks=["drift"], thresholds={"psi": 0.3})  # type: ignore[arg-type]
    assert opts.checks == ("drift",)
    assert isinstance(opts.thresholds, DriftThresholds)
    assert opts.thresholds.psi == 0.3
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.task = "binary"  # type: ignore[misc]
    perf = CheckOptions(min_labels=7, task="binary", label_delay="2d").performance
    assert (perf.min_rows, perf.task, perf.label_delay, perf.segment) == (7, "binary", "2d", None)


@pytest.mark.parametrize(
    ("kind", "field", "value", "message"),
    [
        (PerformanceOptions, "window", "0s", "window"),
        (PerformanceOptions, "since", "soon", "since"),
        (PerformanceOptions, "until", "tomorrow", "until"),
        (PerformanceOptions, "task", "ranking", "Unknown task"),
        (PerformanceOptions, "threshold", 1.5, "threshold"),
        (PerformanceOptions, "threshold", True, "threshold"),
        (PerformanceOptions, "min_rows", 0, "min_rows"),
        (PerformanceOptions, "label_delay", "-1d", "label delay"),
        (PerformanceOptions, "join_window", "later", "join window"),
        (PerformanceOptions, "segment", "", "segment"),
        (CheckOptions, "checks", ("drift", "vibes"), "Unknown checks"),
        (CheckOptions, "checks", (), "Unknown checks"),
        (CheckOptions, "thresholds", {"loud": 1}, "Unknown threshold"),
        (CheckOptions, "min_labels", 2.5, "min_labels"),
        (CheckOptions, "reference", "", "reference"),
    ],
)
def test_a_bad_option_is_a_typed_error_naming_it(
    kind: type, field: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        kind(**{field: value})


def test_the_service_takes_an_options_object_or_its_keywords_not_both(
    open_workspace: Callable[..., Workspace],
) -> None:
    svc = open_workspace("sqlite://").service("monitoring", MonitoringService)
    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(days=2)
    by_object = svc.performance(
        "none", PerformanceOptions(since=since, until=until, estimate=False)
    )
    by_keywords = svc.performance("none", since=since, until=until, estimate=False)
    assert by_object.windows == by_keywords.windows
    with pytest.raises(InvalidArgumentError, match="not both"):
        svc.performance("none", PerformanceOptions(), task="binary")
    with pytest.raises(InvalidArgumentError, match=r"Unknown options \['min_labels'\]"):
        svc.performance("none", min_labels=3)
    with pytest.raises(InvalidArgumentError, match="must be a CheckOptions"):
        svc.check("none", PerformanceOptions())  # type: ignore[arg-type]


def test_the_rest_body_carries_every_field_as_json() -> None:
    until = datetime(2026, 3, 2, tzinfo=UTC)
    opts = CheckOptions(
        window=timedelta(hours=6),
        since=until - timedelta(days=1),
        until=until,
        checks=("drift", "performance"),
        thresholds=DriftThresholds(psi=0.3),
        join_window=timedelta(days=3),
    )
    body = _body(opts)
    assert body["window"] == "6h"
    assert body["since"] == int((until - timedelta(days=1)).timestamp() * 1000)
    assert body["until"] == int(until.timestamp() * 1000)
    assert body["checks"] == ["drift", "performance"]
    assert body["thresholds"]["psi"] == 0.3
    assert body["join_window"] == "3d"
    assert "reference" not in body  # None is left out
    assert "quality" not in body
    names = {f.name for f in dataclasses.fields(CheckOptions)}
    assert set(body) <= names


@pytest.mark.parametrize(
    ("body", "kind"), [("PerformanceBody", PerformanceOptions), ("CheckBody", CheckOptions)]
)
def test_the_wire_body_and_the_options_name_the_same_fields(body: str, kind: type) -> None:
    from driftline.api import monitoring as wire

    fields = {f.name for f in dataclasses.fields(kind)}
    assert set(getattr(wire, body).model_fields) == fields
    assert {f.name for f in dataclasses.fields(WindowOptions)} < fields
