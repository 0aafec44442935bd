"""Model cards: lineage, params, metrics (and slices), signature, gates, approvals, aliases."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from driftline.registry.evaluation import format_measured, format_metric

__all__ = ["render_card_html", "render_card_text"]


def _sections(facts: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    version = facts["version"]
    run = facts["run"]
    lineage = [
        ("source", version.source),
        ("package", version.package_digest),
        ("flavor", version.flavor),
        ("registered", f"{version.created_at:%Y-%m-%d %H:%M}Z by {version.created_by}"),
    ]
    if run is not None:
        code = run.code
        lineage += [("run", f"{run.name} ({run.id})")]
        if code.commit:
            lineage.append(
                (
                    "code",
                    f"{code.commit[:12]} on {code.branch or 'detached'}"
                    + (" (uncommitted changes)" if code.dirty else ""),
                )
            )
    lineage += [("input data", ref) for ref in facts["inputs"]]
    sections = [("Lineage", lineage)]
    if run is not None and run.params:
        sections.append(("Params", sorted(run.params.items())))
    for evaluation, earlier in _newest_evaluations(facts["evaluations"])[:3]:
        rows = [
            (k, format_metric(v)) for k, v in evaluation.metrics.items() if k != "confusion_matrix"
        ]
        for column, per_value in evaluation.slices.items():
            for value, metrics in per_value.items():
                shown = ", ".join(
                    f"{k} {format_metric(v)}" for k, v in metrics.items() if isinstance(v, float)
                )
                rows.append((f"slice {column}={value}", f"{metrics.get('rows')} rows: {shown}"))
        if earlier:
            rows.append(("earlier evaluations", f"{earlier} on the same data (newest shown)"))
        sections.append(
            (
                f"Evaluation on {evaluation.dataset or 'a DataFrame'}, target "
                f"{evaluation.target} ({evaluation.rows} rows, {evaluation.created_at:%Y-%m-%d})",
                rows,
            )
        )
    if version.signature:
        from driftline.models import Signature

        parsed = Signature.from_dict(version.signature)
        sections.append(
            ("Signature", [("inputs", _specs(parsed.inputs)), ("outputs", _specs(parsed.outputs))])
        )
    for entry in facts.get("promotions", []):
        alias = entry.entity.partition("@")[2]
        gates = (entry.after or {}).get("gates") or []
        sections.append(
            (
                f"Gates passed for @{alias} ({entry.at:%Y-%m-%d %H:%M}Z, by {entry.actor})",
                [(g["gate"], _gate_line(g)) for g in gates] or [("", "no gates")],
            )
        )
    sections.append(
        (
            "Approvals",
            [
                (
                    a.alias,
                    f"{a.actor} at {a.created_at:%Y-%m-%d %H:%M}Z"
                    + (f": {a.comment}" if a.comment else ""),
                )
                for a in facts["approvals"]
            ]
            or [("", "none")],
        )
    )
    sections.append(
        (
            "Alias history",
            [
                (
                    move.alias,
                    f"{move.reason}: v{move.previous_version or '-'} -> v{move.version or '-'} "
                    f"by {move.actor} at {move.at:%Y-%m-%d %H:%M}Z",
                )
                for move in facts["aliases"]
            ]
            or [("", "never aliased")],
        )
    )
    return sections


def _newest_evaluations(evaluations: Any) -> list[tuple[Any, int]]:
    """The newest evaluation per dataset version and target (evaluations come newest
    first), with how many earlier ones of the same data it stands for. Evaluations on a
    DataFrame have no dataset ref; their row count stands in for it."""
    shown: dict[tuple[Any, ...], list[Any]] = {}
    for evaluation in evaluations:
        key = (evaluation.dataset, evaluation.target) + (
            () if evaluation.dataset else (evaluation.rows,)
        )
        shown.setdefault(key, [evaluation, 0])[1] += 1
    return [(evaluation, count - 1) for evaluation, count in shown.values()]


def _gate_line(gate: Mapping[str, Any]) -> str:
    line = f"measured {format_measured(gate['measured'])}, threshold {gate['threshold']}"
    detail = gate.get("detail")
    return f"{line} ({detail})" if detail and detail != "ok" else line


def _specs(specs: Any) -> str:
    parts = []
    for spec in specs:
        kind = getattr(spec, "type", None) or f"{spec.dtype}{list(spec.shape)}"
        parts.append(f"{spec.name}: {kind}" if spec.name else str(kind))
    return ", ".join(parts) or "-"


def render_card_text(facts: Mapping[str, Any]) -> str:
    """The card as plain text (Markdown-friendly)."""
    version = facts["version"]
    lines = [f"# Model card: {version.name} version {version.version}"]
    if version.description:
        lines.append(version.description)
    if version.aliases:
        lines.append(f"Aliases: {', '.join(version.aliases)}")
    for title, rows in _sections(facts):
        lines += ["", f"## {title}"]
        lines += [f"- {key}: {value}" if key else f"- {value}" for key, value in rows]
    return "\n".join(lines) + "\n"


def render_card_html(facts: Mapping[str, Any]) -> str:
    """The card as a self-contained HTML page (every value escaped)."""
    version = facts["version"]
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {e(version.name)} v{version.version}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;"
        "color:#222}table{border-collapse:collapse;width:100%;margin-bottom:1.5em}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;"
        "vertical-align:top}th{width:30%;color:#555;font-weight:600}"
        ".alias{background:#e8f0fe;border-radius:4px;padding:2px 6px;margin-right:4px}</style>",
        "</head><body>",
        f"<h1>{e(version.name)} <small>version {version.version}</small></h1>",
    ]
    if version.aliases:
        parts.append(
            "<p>" + "".join(f"<span class='alias'>@{e(a)}</span>" for a in version.aliases) + "</p>"
        )
    if version.description:
        parts.append(f"<p>{e(version.description)}</p>")
    for title, rows in _sections(facts):
        parts.append(f"<h2>{e(title)}</h2><table>")
        parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
