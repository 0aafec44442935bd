"""Data schemas: what a table's columns must look like, inferred conservatively, edited by people.

:func:`infer_schema` follows TensorFlow Data Validation's caution, because an overfitted
schema (exact min and max, as pandera infers) fails the next normal batch:

- every column gets its type; it is ``required`` only if the profile saw no null in it;
- a string column gets a ``domain`` only when the profile counted all of its values and
  there were at most :data:`~driftline.data.profile.DOMAIN_LIMIT` (100) of them; bool
  columns get none, their type already limits them;
- numeric ranges (``min``/``max``) and null budgets are never inferred: only people set them;
- thresholds keep their defaults; nothing here ever loosens one.

A schema is saved as YAML with a stable key order, to be read and edited by people::

    allow_extra_columns: false
    numeric_drift_threshold: 0.1     # Jensen-Shannon distance (base 2) on reference bins
    categorical_drift_threshold: 0.2 # largest change of one category's share
    min_domain_share: 0.0            # share of out-of-domain values tolerated (a warning)
    columns:
    - name: age
      type: int
      required: true
      min: 0
    - name: country
      type: string
      required: true
      domain: [DE, FR, US]

``required`` means the column must be present; it also allows no nulls unless
``max_null_fraction`` says how many may be missing. Unknown keys are errors, so a typo never
silently disables a check.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.data.profile import DOMAIN_LIMIT, LOGICAL_TYPES, TableProfile
from driftline.errors import InvalidArgumentError, NotFoundError

__all__ = ["ColumnSchema", "Schema", "infer_schema"]

_NUMERIC = ("int", "float")
_CATEGORICAL = ("string", "bool")
_HEADER = (
    "# driftline data schema. Edit freely; unknown keys are errors.\n"
    "# Column keys: name, type, required, domain, min, max, max_null_fraction, drift_threshold.\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnSchema:
    """What one column must look like.

    Attributes:
        name: Column name.
        type: Logical type, one of :data:`~driftline.data.profile.LOGICAL_TYPES`.
        required: The column must be present and, unless ``max_null_fraction`` is set,
            hold no nulls.
        domain: Allowed values of a string or bool column (bools as ``"true"``/``"false"``).
        min: Smallest allowed value of a numeric column (only people set it).
        max: Largest allowed value of a numeric column (only people set it).
        max_null_fraction: Largest share of nulls allowed.
        drift_threshold: This column's drift threshold, overriding the schema's default.
    """

    name: str
    type: str
    required: bool
    domain: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    max_null_fraction: float | None = None
    drift_threshold: float | None = None

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError(f"A schema column needs a non-empty name, got {self.name!r}")
        if self.type not in LOGICAL_TYPES:
            raise InvalidArgumentError(
                f"Unknown type {self.type!r} for {where}; use one of {', '.join(LOGICAL_TYPES)}"
            )
        if not isinstance(self.required, bool):
            raise InvalidArgumentError(f"'required' of {where} must be true or false")
        if self.domain is not None and self.type not in _CATEGORICAL:
            raise InvalidArgumentError(
                f"A domain needs a string or bool column; {where} is {self.type}"
            )
        if (self.min is not None or self.max is not None) and self.type not in _NUMERIC:
            raise InvalidArgumentError(
                f"min/max need an int or float column; {where} is {self.type}"
            )
        for key in ("min", "max"):
            _check_number(getattr(self, key), key, where)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidArgumentError(f"min {self.min} is above max {self.max} for {where}")
        for key in ("max_null_fraction", "drift_threshold"):
            _check_number(getattr(self, key), key, where, unit=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """The columns a table must have, and how much change is tolerated.

    Attributes:
        columns: One entry per expected column, in table order.
        allow_extra_columns: Whether columns the schema does not name are accepted.
        numeric_drift_threshold: Largest Jensen-Shannon distance (base 2, so 0..1) between
            the reference's and the batch's shares of the reference histogram bins.
        categorical_drift_threshold: Largest L-infinity distance (0..1) between the
            reference's and the batch's category shares (top-k values plus "other").
        min_domain_share: Share of non-null values outside a column's domain that is
            tolerated: up to it they are a warning, above it an error. The default 0.0
            makes any out-of-domain value an error.
    """

    columns: tuple[ColumnSchema, ...]
    allow_extra_columns: bool = False
    numeric_drift_threshold: float = 0.1
    categorical_drift_threshold: float = 0.2
    min_domain_share: float = 0.0

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidArgumentError(f"Schema names columns more than once: {dupes}")
        for key in ("numeric_drift_threshold", "categorical_drift_threshold", "min_domain_share"):
            _check_number(getattr(self, key), key, "the schema", unit=True, optional=False)

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``; :class:`NotFoundError` if the schema has none."""
        for c in self.columns:
            if c.name == name:
                return c
        raise NotFoundError(
            f"The schema has no column {name!r}; it has {[c.name for c in self.columns]}"
        )

    def drift_threshold(self, column: ColumnSchema) -> float:
        """The column's own drift threshold, else the schema's default for its type."""
        if column.drift_threshold is not None:
            return column.drift_threshold
        return (
            self.numeric_drift_threshold
            if column.type in _NUMERIC
            else self.categorical_drift_threshold
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML file's key order; unset optional keys are left out."""
        columns = []
        for c in self.columns:
            d: dict[str, Any] = {"name": c.name, "type": c.type, "required": c.required}
            for key in ("domain", "min", "max", "max_null_fraction", "drift_threshold"):
                value = getattr(c, key)
                if value is not None:
                    d[key] = list(value) if key == "domain" else value
            columns.append(d)
        return {
            "allow_extra_columns": self.allow_extra_columns,
            "numeric_drift_threshold": self.numeric_drift_threshold,
            "categorical_drift_threshold": self.categorical_drift_threshold,
            "min_domain_share": self.min_domain_share,
            "columns": columns,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "schema") -> Schema:
        """Build a schema from :meth:`to_dict`-shaped data, rejecting unknown keys."""
        if not isinstance(d, Mapping):
            raise InvalidArgumentError(f"{source}: expected a mapping of schema keys")
        top = ("allow_extra_columns", "numeric_drift_threshold", "categorical_drift_threshold")
        _no_unknown_keys(d, (*top, "min_domain_share", "columns"), source)
        columns = d.get("columns") or []
        if not isinstance(columns, list):
            raise InvalidArgumentError(f"{source}: 'columns' must be a list of column entries")
        allow = d.get("allow_extra_columns", False)
        if not isinstance(allow, bool):
            raise InvalidArgumentError(f"{source}: 'allow_extra_columns' must be true or false")
        return cls(
            columns=tuple(_column_from_dict(c, source) for c in columns),
            allow_extra_columns=allow,
            **{k: d[k] for k in (*top[1:], "min_domain_share") if k in d},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the schema as human-editable YAML (a header comment, stable key order)."""
        import yaml

        class Dumper(yaml.SafeDumper):
            pass

        def flow(dumper: yaml.SafeDumper, values: _Flow) -> yaml.Node:
            return dumper.represent_sequence("tag:yaml.org,2002:seq", values, flow_style=True)

        Dumper.add_representer(_Flow, flow)
        data = self.to_dict()
        for c in data["columns"]:
            if "domain" in c:
                c["domain"] = _Flow(c["domain"])
        text = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=96)
        Path(path).write_text(_HEADER + text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by :meth:`save` or by hand."""
        import yaml

        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(
                f"Cannot read schema file {os.fspath(path)!r}: {exc}"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(
                f"Schema file {os.fspath(path)!r} is not valid YAML: {exc}"
            ) from None
        return cls.from_dict(
            data if data is not None else {}, source=f"schema file {os.fspath(path)!r}"
        )


def infer_schema(profile: TableProfile) -> Schema:
    """Infer a conservative schema from a profile (see the module docstring for the rules).

    Example::

        schema = infer_schema(profile_table(["train.parquet"]))
        schema.save("train.schema.yaml")  # review and tighten by hand
    """
    columns = []
    for p in profile.columns.values():
        domain = None
        if p.type == "string" and p.non_null and p.top_k_complete and len(p.top_k) <= DOMAIN_LIMIT:
            domain = tuple(sorted(v for v, _ in p.top_k))
        columns.append(
            ColumnSchema(
                name=p.name, type=p.type, required=p.count > 0 and p.nulls == 0, domain=domain
            )
        )
    return Schema(columns=tuple(columns))


class _Flow(list[Any]):
    """A list that YAML writes on one line: ``[a, b, c]``."""


def _check_number(
    value: Any, key: str, where: str, *, unit: bool = False, optional: bool = True
) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"'{key}' of {where} must be a finite number, got {value!r}")
    if unit and not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"'{key}' of {where} must be between 0 and 1, got {value}")


def _no_unknown_keys(d: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in d:
        if key not in known:
            raise InvalidArgumentError(
                f"{where}: unknown key {key!r}; the known keys are {', '.join(known)}"
            )


def _column_from_dict(d: Any, source: str) -> ColumnSchema:
    if not isinstance(d, Mapping) or "name" not in d:
        raise InvalidArgumentError(f"{source}: each column entry needs at least 'name' and 'type'")
    where = f"{source}, column {d['name']!r}"
    known = ("name", "type", "required", "domain", "min", "max", "max_null_fraction")
    _no_unknown_keys(d, (*known, "drift_threshold"), where)
    if "type" not in d:
        raise InvalidArgumentError(
            f"{where}: 'type' is missing; use one of {', '.join(LOGICAL_TYPES)}"
        )
    domain = d.get("domain")
    if domain is not None:
        if not isinstance(domain, list):
            raise InvalidArgumentError(f"{where}: 'domain' must be a list of values")
        domain = tuple(_domain_value(v, d["type"], where) for v in domain)
    return ColumnSchema(
        name=d["name"],
        type=d["type"],
        required=d.get("required", False),
        domain=domain,
        **{k: d[k] for k in ("min", "max", "max_null_fraction", "drift_threshold") if k in d},
    )


def _domain_value(value: Any, type_: str, where: str) -> str:
    if type_ == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        # YAML reads yes/no/1/01 as bools and numbers; their original text is lost
        raise InvalidArgumentError(f"{where}: domain value {value!r} must be a quoted string")
    return value
