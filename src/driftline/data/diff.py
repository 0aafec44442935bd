"""Differences between two versions: files, and for tables schema, statistics and rows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from driftline.data.models import DatasetDiff, FileChange, RowDiff
from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.data.manifest import Manifest
    from driftline.data.version import Version

__all__ = ["diff_versions"]

_STATS = ("count", "nulls", "distinct", "min", "max", "mean", "std")
_SAMPLE = 5


def diff_files(a: Manifest, b: Manifest) -> list[FileChange]:
    """Added, removed, modified and renamed (same content, new path) files."""
    removed = {p: e for p, e in a.by_path.items() if p not in b.by_path}
    added = {p: e for p, e in b.by_path.items() if p not in a.by_path}
    changes: list[FileChange] = []
    by_digest: dict[str, list[str]] = {}
    for path, entry in sorted(added.items()):
        by_digest.setdefault(entry.digest, []).append(path)
    for path, entry in sorted(removed.items()):
        targets = by_digest.get(entry.digest)
        if targets:
            new_path = targets.pop(0)
            del added[new_path]
            changes.append(
                FileChange(
                    kind="renamed",
                    path=new_path,
                    old_path=path,
                    old_digest=entry.digest,
                    new_digest=entry.digest,
                )
            )
        else:
            changes.append(
                FileChange(
                    kind="removed", path=path, old_digest=entry.digest, size_delta=-entry.size
                )
            )
    for path, entry in added.items():
        changes.append(
            FileChange(kind="added", path=path, new_digest=entry.digest, size_delta=entry.size)
        )
    for path, old in a.by_path.items():
        new = b.by_path.get(path)
        if new is not None and new.digest != old.digest:
            changes.append(
                FileChange(
                    kind="modified",
                    path=path,
                    old_digest=old.digest,
                    new_digest=new.digest,
                    size_delta=new.size - old.size,
                )
            )
    return sorted(changes, key=lambda c: c.path)


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)
    return bool(x == y)


def diff_versions(a: Version, b: Version, *, key: list[str] | None = None) -> DatasetDiff:
    """Compare two versions; with ``key`` (tabular versions) also match rows on those columns."""
    files = diff_files(a._service.manifest(a.record), b._service.manifest(b.record))
    if not (a.record.tabular and b.record.tabular):
        if key:
            raise InvalidArgumentError("A row diff by key needs two tabular versions")
        return DatasetDiff(a=a.ref, b=b.ref, files=tuple(files))
    pa_, pb = a.profile, b.profile
    schema_changes = [f"removed column {c}" for c in pa_.columns if c not in pb.columns]
    schema_changes += [f"added column {c}" for c in pb.columns if c not in pa_.columns]
    column_changes: dict[str, dict[str, tuple[object, object]]] = {}
    for name, old in pa_.columns.items():
        new = pb.columns.get(name)
        if new is None:
            continue
        if old.type != new.type:
            schema_changes.append(f"column {name}: type {old.type} -> {new.type}")
        changed = {
            stat: (getattr(old, stat), getattr(new, stat))
            for stat in _STATS
            if not _same(getattr(old, stat), getattr(new, stat))
        }
        if changed:
            column_changes[name] = changed
    rows = None
    if key and not files:
        rows = RowDiff(key=tuple(key), added=0, removed=0, changed=0, unchanged=pb.rows)
    elif key:
        rows = _row_diff(a, b, key)
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        files=tuple(files),
        rows=(pa_.rows, pb.rows),
        schema_changes=tuple(schema_changes),
        column_changes=column_changes,
        row_diff=rows,
    )


def _row_diff(a: Version, b: Version, key: list[str]) -> RowDiff:
    import duckdb

    left, right = a.to_arrow(), b.to_arrow()
    for name, table in (("a", left), ("b", right)):
        missing = [k for k in key if k not in table.column_names]
        if missing:
            raise InvalidArgumentError(
                f"Key column(s) {', '.join(missing)} not in version {name}; "
                f"its columns: {', '.join(table.column_names)}"
            )
    common = [c for c in left.column_names if c in right.column_names and c not in key]

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    on = " AND ".join(f"a.{q(k)} IS NOT DISTINCT FROM b.{q(k)}" for k in key)
    a_missing = " AND ".join(f"a.{q(k)} IS NULL" for k in key)
    b_missing = " AND ".join(f"b.{q(k)} IS NULL" for k in key)
    differs = " OR ".join(f"a.{q(c)} IS DISTINCT FROM b.{q(c)}" for c in common) or "false"
    con = duckdb.connect()
    try:
        con.register("a_table", left)
        con.register("b_table", right)
        con.execute(
            f"CREATE TEMP VIEW joined AS SELECT "
            f"CASE WHEN {a_missing} THEN 'added' WHEN {b_missing} THEN 'removed' "
            f"WHEN {differs} THEN 'changed' ELSE 'unchanged' END AS kind, "
            f"{', '.join(f'coalesce(b.{q(k)}, a.{q(k)}) AS {q(k)}' for k in key)} "
            f"FROM a_table a FULL OUTER JOIN b_table b ON {on}"
        )
        counts = dict(con.execute("SELECT kind, count(*) FROM joined GROUP BY kind").fetchall())
        samples: dict[str, list[dict[str, object]]] = {}
        for kind in ("added", "removed", "changed"):
            cursor = con.execute(
                f"SELECT * EXCLUDE (kind) FROM joined WHERE kind = ? LIMIT {_SAMPLE}", [kind]
            )
            names = [d[0] for d in cursor.description]
            samples[kind] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return RowDiff(
        key=tuple(key),
        added=counts.get("added", 0),
        removed=counts.get("removed", 0),
        changed=counts.get("changed", 0),
        unchanged=counts.get("unchanged", 0),
        samples=samples,
    )
