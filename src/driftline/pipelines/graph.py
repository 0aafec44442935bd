"""The DAG: nodes built by calling steps inside a pipeline function, ordered and drawn.

Calling a step while a pipeline is being built records a :class:`Node` and returns a
:class:`StepOutput` placeholder; passing that placeholder to another step makes an edge.
Everything else passed to a step is a parameter (hashed into its cache key).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.pipelines.step import Step

__all__ = ["Graph", "GraphBuilder", "Node", "StepOutput", "current_builder", "layers", "render"]

OUTPUT = "output"  # the one output of a step


@dataclass(frozen=True, slots=True)
class StepOutput:
    """A placeholder for a step's output while a pipeline is being built."""

    node: str

    def __repr__(self) -> str:
        return f"<output of step {self.node}>"

    def __bool__(self) -> bool:
        raise InvalidArgumentError(
            f"The output of step {self.node!r} has no value while the pipeline is being "
            "built: branch inside a step, not in the pipeline function"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One call of a step in a DAG."""

    name: str
    step: Step[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)  # argument -> upstream node
    run_name: str | None = None  # the step run's name when not the node's

    @property
    def upstream(self) -> tuple[str, ...]:
        """The nodes this one reads from, sorted, without duplicates."""
        return tuple(sorted(set(self.inputs.values())))


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """A validated DAG: nodes in topological order and what the pipeline returns."""

    nodes: Mapping[str, Node]
    order: tuple[str, ...]
    result: Any = None  # a StepOutput, a tuple/dict of them, or None


_BUILDER: ContextVar[GraphBuilder | None] = ContextVar("driftline_pipeline_builder", default=None)


def current_builder() -> GraphBuilder | None:
    """The builder of the pipeline being defined in this context, if any."""
    return _BUILDER.get()


class GraphBuilder:
    """Collects nodes while a pipeline function runs."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    @contextmanager
    def active(self) -> Iterator[GraphBuilder]:
        """Make step calls in this block add nodes here."""
        token = _BUILDER.set(self)
        try:
            yield self
        finally:
            _BUILDER.reset(token)

    def add(
        self, step: Step[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepOutput:
        """Record a call of ``step``; names repeat as ``train``, ``train_2``, ..."""
        name, n = step.name, 1
        while name in self.nodes:
            n += 1
            name = f"{step.name}_{n}"
        signature = inspect.signature(step.fn)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(
                f"Missing or unexpected input for step {name!r}: {exc}. Its signature is "
                f"{step.name}{signature}"
            ) from None
        bound.apply_defaults()
        params: dict[str, Any] = {}
        inputs: dict[str, str] = {}
        for arg, value in bound.arguments.items():
            kind = signature.parameters[arg].kind
            values = value.items() if kind is inspect.Parameter.VAR_KEYWORD else [(arg, value)]
            for key, item in values:
                if isinstance(item, StepOutput):
                    inputs[key] = item.node
                elif _contains_output(item):
                    raise InvalidArgumentError(
                        f"Step {name!r} got step outputs inside {key!r}: pass each output "
                        "as its own argument"
                    )
                else:
                    params[key] = item
        self.nodes[name] = Node(
            name=name, step=step, params=params, inputs=inputs, run_name=step.run_name(params)
        )
        return StepOutput(name)

    def build(self, result: Any) -> Graph:
        """Validate the DAG and order it."""
        return Graph(nodes=dict(self.nodes), order=tuple(toposort(self.nodes)), result=result)


def _contains_output(value: Any) -> bool:
    if isinstance(value, list | tuple | set | frozenset):
        return any(_contains_output(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_output(v) for v in value.values())
    return isinstance(value, StepOutput)


def toposort(nodes: Mapping[str, Node]) -> list[str]:
    """Nodes in an order where each comes after its inputs (ties by definition order).

    Raises:
        InvalidArgumentError: An input names a node that is not in the DAG, or the
            nodes form a cycle; the message names the steps.
    """
    for node in nodes.values():
        for arg, source in node.inputs.items():
            if source not in nodes:
                raise InvalidArgumentError(
                    f"Step {node.name!r} reads input {arg!r} from step {source!r}, which is "
                    f"not in the pipeline (its steps: {', '.join(nodes) or 'none'})"
                )
    remaining = {name: set(node.upstream) for name, node in nodes.items()}
    order: list[str] = []
    while remaining:
        ready = [name for name, ups in remaining.items() if not ups]
        if not ready:
            raise InvalidArgumentError(
                f"The pipeline has a cycle through steps {_cycle(remaining)}: a step cannot "
                "depend on its own output"
            )
        for name in ready:
            order.append(name)
            del remaining[name]
        for ups in remaining.values():
            ups.difference_update(ready)
    return order


def _cycle(remaining: Mapping[str, set[str]]) -> str:
    """One cycle among ``remaining`` as ``a -> b -> a``."""
    start = next(iter(remaining))
    path, seen = [start], {start}
    while True:
        nxt = sorted(remaining[path[-1]] & set(remaining))[0]
        if nxt in seen:
            cycle = [*path[path.index(nxt) :], nxt]
            return " -> ".join(reversed(cycle))
        path.append(nxt)
        seen.add(nxt)


def layers(graph: Graph) -> list[list[str]]:
    """Nodes grouped by depth: each layer only reads from earlier layers."""
    depth: dict[str, int] = {}
    for name in graph.order:
        ups = graph.nodes[name].upstream
        depth[name] = 1 + max((depth[u] for u in ups), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in graph.order:
        grouped[depth[name]].append(name)
    return grouped


def render(graph: Graph, fmt: str = "text") -> str:
    """The DAG as layered text, Mermaid (``flowchart TD``) or Graphviz ``dot``."""
    if fmt == "mermaid":
        lines = ["flowchart TD"]
        lines += [f"    {n}[{n}]" for n in graph.order]
        lines += [f"    {u} --> {n}" for n in graph.order for u in graph.nodes[n].upstream]
        return "\n".join(lines)
    if fmt == "dot":
        lines = ["digraph pipeline {", "    rankdir=TB;"]
        lines += [f'    "{n}";' for n in graph.order]
        lines += [f'    "{u}" -> "{n}";' for n in graph.order for u in graph.nodes[n].upstream]
        return "\n".join([*lines, "}"])
    if fmt != "text":
        raise InvalidArgumentError(f"Unknown graph format {fmt!r}; known: text, mermaid, dot")
    lines = []
    for i, layer in enumerate(layers(graph)):
        for name in layer:
            node = graph.nodes[name]
            reads = f"  <- {', '.join(node.upstream)}" if node.upstream else ""
            lines.append(f"{'  ' * i}{name}{reads}")
    return "\n".join(lines)
