"""Compile a search AST (see :mod:`driftline.tracking.search`) to SQLAlchemy Core.

Every user value becomes a bound parameter; nothing is interpolated into SQL text.
Each distinct metric, param or tag a query mentions becomes one LEFT JOIN on that
table's ``(run_id, key)`` primary key, shared by the filter and the ordering.

Comparisons are two-valued: a run that lacks the field (or has NaN for a metric) does
not satisfy ``metrics.auc > 0.8``, and therefore does satisfy ``not metrics.auc > 0.8``.
``is null`` means "was never logged". Outside ``not``, SQL's NULL already filters like
false, so comparisons are wrapped in ``coalesce(..., false)`` only under a negation:
the bare form lets PostgreSQL turn the LEFT JOINs into inner joins and use the
``latest_metrics (key, value)`` index.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from driftline.tracking import _tables as t
from driftline.tracking.search import And, Comparison, Field, Node, Not, Or, OrderBy

__all__ = ["RunSearchCompiler", "too_complex"]

_RUN_COLUMNS = {
    "run_id": t.runs.c.run_id,
    "name": t.runs.c.name,
    "status": t.runs.c.status,
    "user": t.runs.c.user_id,
    "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
    "experiment_id": t.runs.c.experiment_id,
    "parent_run_id": t.runs.c.parent_run_id,
}
_TABLES = {"metric": t.latest_metrics, "param": t.params, "tag": t.tags}

# What a database says when a statement passes one of its size limits. The search
# language's own limits keep filters below these; this is the backstop that turns a
# shape they missed into a 400 rather than a 500.
_SQLITE_LIMITS = (
    "parser stack overflow",
    "expression tree is too large",
    "too many sql variables",
    "tables in a join",
)
_POSTGRES_LIMITS = "54"  # SQLSTATE class 54: program limit exceeded (statement too complex)


def too_complex(exc: sa.exc.DBAPIError) -> bool:
    """Whether a database refused a statement for its size or depth, not for its data."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(code, str) and code.startswith(_POSTGRES_LIMITS):
        return True
    message = str(exc.orig).lower()
    return any(limit in message for limit in _SQLITE_LIMITS)


class RunSearchCompiler:
    """Builds one SELECT over ``runs`` with the joins a filter and ordering need."""

    def __init__(self) -> None:
        self._joins: dict[tuple[str, str], Any] = {}

    def _alias(self, field: Field) -> Any:
        ident = (field.kind, field.key)
        if ident not in self._joins:
            self._joins[ident] = _TABLES[field.kind].alias(f"{field.kind}_{len(self._joins)}")
        return self._joins[ident]

    def select_from(self, select: Select[Any]) -> Select[Any]:
        """Add the LEFT JOINs collected so far to ``select`` (call after compiling)."""
        source: Any = t.runs
        for (_kind, key), alias in self._joins.items():
            source = source.outerjoin(
                alias, sa.and_(alias.c.run_id == t.runs.c.run_id, alias.c.key == key)
            )
        return select.select_from(source)

    def column(self, field: Field, *, numeric: bool = False) -> ColumnElement[Any]:
        """The SQL column that holds a field's value."""
        if field.kind == "attribute":
            return _RUN_COLUMNS[field.key]
        alias = self._alias(field)
        if field.kind == "param" and numeric:
            return alias.c.value_num  # type: ignore[no-any-return]
        return alias.c.value  # type: ignore[no-any-return]

    def where(self, node: Node, *, negated: bool = False) -> ColumnElement[bool]:
        """The boolean SQL expression of a filter node (``negated``: under an odd ``not``)."""
        if isinstance(node, And):
            return sa.and_(*(self.where(item, negated=negated) for item in node.items))
        if isinstance(node, Or):
            return sa.or_(*(self.where(item, negated=negated) for item in node.items))
        if isinstance(node, Not):
            return sa.not_(self.where(node.item, negated=not negated))
        expression = self._comparison(node)
        if negated and node.op != "is null":
            # NOT NULL is NULL: make a missing field plain false so `not` complements.
            return sa.func.coalesce(expression, sa.false())
        return expression

    def _comparison(self, node: Comparison) -> ColumnElement[bool]:
        field, op, value = node.field, node.op, node.value
        if op == "is null":
            if field.kind == "attribute":
                return _RUN_COLUMNS[field.key].is_(None)
            return self._alias(field).c.key.is_(None)  # type: ignore[no-any-return]
        sample = value[0] if isinstance(value, tuple) else value
        column = self.column(field, numeric=isinstance(sample, int | float))
        expression: ColumnElement[bool]
        if op == "=":
            expression = column == value
        elif op == "!=":
            expression = column != value
        elif op == "<":
            expression = column < value
        elif op == "<=":
            expression = column <= value
        elif op == ">":
            expression = column > value
        elif op == ">=":
            expression = column >= value
        elif op == "like":
            expression = column.like(value)
        elif op == "ilike":
            expression = column.ilike(value)
        elif op == "in":
            expression = column.in_(value)  # type: ignore[arg-type]
        else:
            raise AssertionError(f"unknown operator {op!r}")
        return expression

    def order_by(self, terms: tuple[OrderBy, ...]) -> list[ColumnElement[Any]]:
        """ORDER BY terms, missing values last, with a stable tie-break for paging."""
        clauses: list[ColumnElement[Any]] = []
        for term in terms:
            column = self.column(term.field, numeric=term.field.kind == "param")
            if term.field.kind == "param":
                # Numbers first in numeric order, then the text values.
                clauses.append((column.desc() if term.descending else column.asc()).nulls_last())
                column = self.column(term.field)
            clauses.append((column.desc() if term.descending else column.asc()).nulls_last())
        # Ties break by creation order (ids sort by creation time), in the direction the
        # caller asked start_time to go, newest first otherwise.
        oldest_first = any(
            term.field == Field("attribute", "start_time") and not term.descending for term in terms
        )
        if oldest_first:
            clauses += [t.runs.c.start_time.asc(), t.runs.c.run_id.asc()]
        else:
            clauses += [t.runs.c.start_time.desc(), t.runs.c.run_id.desc()]
        return clauses
