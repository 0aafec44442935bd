"""``@dl.pipeline``: a function that calls steps; calling ``.run()`` runs the DAG.

Decorating registers the pipeline by name in this process, which is how the CLI finds
pipelines after importing the module that defines them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.pipelines.graph import Graph, GraphBuilder

if TYPE_CHECKING:
    from driftline.pipelines.service import RunResult
    from driftline.workspace import Workspace

__all__ = ["Pipeline", "get_pipeline", "list_pipelines", "pipeline"]

_REGISTRY: dict[str, Pipeline] = {}


class Pipeline:
    """A named DAG of steps with parameters.

    Example:
        >>> @dl.pipeline
        ... def churn_training(dataset: str = "customers@latest", C: float = 1.0):
        ...     df = load(dataset)
        ...     return train(df, C=C)
        >>> run = churn_training.run(C=0.5)          # doctest: +SKIP
        >>> run.status, run.result                   # doctest: +SKIP
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.module = fn.__module__
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter name -> default (``inspect.Parameter.empty`` when required)."""
        return {name: p.default for name, p in self.signature.parameters.items()}

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` against the pipeline's and fill in defaults."""
        known = self.parameters
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidArgumentError(
                f"Pipeline {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters: {_describe(known)}"
            )
        values = {k: v for k, v in known.items() if v is not inspect.Parameter.empty}
        values.update(params)
        missing = sorted(set(known) - set(values))
        if missing:
            raise InvalidArgumentError(
                f"Pipeline {self.name!r} needs parameter {', '.join(map(repr, missing))}; "
                f"its parameters: {_describe(known)}"
            )
        return values

    def graph(self, **params: Any) -> Graph:
        """Build the DAG for these parameters (defaults fill the rest)."""
        values = self.bind(params)
        builder = GraphBuilder()
        with builder.active():
            result = self.fn(**values)
        return builder.build(result)

    def run(
        self,
        *,
        executor: str = "local",
        force: bool = False,
        workspace: Workspace | None = None,
        experiment: str | None = None,
        max_workers: int | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunResult:
        """Run the pipeline; cached steps reuse their outputs.

        Args:
            executor: ``"local"`` (in this process, one step at a time),
                ``"processes"`` (independent steps in parallel worker processes),
                ``"ray"`` (Ray tasks with each step's ``resources``: the Ray this process
                is connected to, else ``RAY_ADDRESS``, else a local Ray with
                ``max_workers`` CPUs) or ``"ray://HOST:PORT"`` (a Ray cluster).
            force: Run every step, ignoring the cache.
            workspace: Where to record (default: the default workspace).
            experiment: The experiment of the run (default: the pipeline's name).
            max_workers: Steps at once for ``"processes"`` and ``"ray"`` (default: the
                CPU count of the machine or the Ray cluster).
            params: Pipeline parameters, for names that clash with these arguments.
            **kwargs: Pipeline parameters.

        Returns:
            The run: ``status``, ``steps`` (with cache decisions), ``result`` (what the
            pipeline function returned, loaded), ``output(step)``.

        Raises:
            UserCodeError: A step raised; the run is recorded as FAILED and can be
                resumed (``driftline pipelines resume RUN_ID``).
        """
        from driftline.pipelines.service import PipelineService

        values = self.bind({**(params or {}), **kwargs})
        service = PipelineService.for_workspace(workspace)
        return service.run(
            self,
            values,
            executor=executor,
            force=force,
            experiment=experiment,
            max_workers=max_workers,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({self.module})>"


def _describe(params: Mapping[str, Any]) -> str:
    if not params:
        return "none"
    return ", ".join(
        name if default is inspect.Parameter.empty else f"{name}={default!r}"
        for name, default in params.items()
    )


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a pipeline, registered under its name.

    Example:
        >>> @dl.pipeline
        ... def churn_training(dataset: str = "customers@latest", C: float = 1.0):
        ...     df = load(dataset)
        ...     model = train(df, C=C)
        ...     return evaluate(model, df)
        >>> churn_training.run(C=0.5).result      # doctest: +SKIP
    """

    def wrap(function: Callable[..., Any]) -> Pipeline:
        made = Pipeline(function, name)
        # Re-importing a module (or redefining in a notebook) replaces the pipeline.
        _REGISTRY[made.name] = made
        return made

    return wrap(fn) if fn is not None else wrap


def list_pipelines() -> list[Pipeline]:
    """Pipelines defined in this process (import their modules first), by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_pipeline(name: str) -> Pipeline:
    """A pipeline defined in this process; ``NotFoundError`` lists the known ones."""
    found = _REGISTRY.get(name)
    if found is None:
        known = ", ".join(sorted(_REGISTRY)) or "none (import the module that defines them)"
        raise NotFoundError(f"No pipeline named {name!r}; known pipelines: {known}")
    return found
