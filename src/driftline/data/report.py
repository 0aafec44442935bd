"""A validation report as one self-contained HTML page.

Inline CSS and inline SVG charts drawn here, no script and no network, so the page can be
attached to a CI run or mailed as is. Every string that came from data or from users
(column names, values, messages) is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.data.profile import ColumnProfile
    from driftline.data.validation import ValidationReport

__all__ = ["render_html"]

_REF, _NEW = "#8da0cb", "#fc8d62"
_MAX_CATEGORIES = 20
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:.2em .7em;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.fail{background:#c62828}.warning{color:#8a6d00}.error{color:#c62828}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f5f5f5}td.num{text-align:right}
.cols{display:flex;flex-wrap:wrap;gap:1em}.col{border:1px solid #ddd;border-radius:6px;
padding:.6em;width:520px}.col h3{margin:.1em 0 .4em;font-size:1.05em}.legend span{margin-right:1em}
.sw{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin-right:.3em}
code{background:#f3f3f3;padding:0 .2em}
"""


def render_html(report: ValidationReport, *, title: str = "driftline data validation") -> str:
    """Render a report as a standalone HTML page.

    The page has a summary (verdict, rows, anomalies by kind), the anomalies table, and
    per column the reference and batch distributions side by side: histogram bars on the
    reference bins for numeric columns, category shares for string and bool columns.

    Example::

        Path("report.html").write_text(render_html(validate(batch, schema=schema)))
    """
    errors = sum(a.severity == "error" for a in report.anomalies)
    warnings = len(report.anomalies) - errors
    verdict = (
        '<span class="badge ok">OK</span>'
        if report.ok
        else '<span class="badge fail">FAILED</span>'
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{verdict} &nbsp; {report.rows:,} rows, {len(report.profile.columns)} columns, "
        f"{errors} errors, {warnings} warnings"
        + ("" if report.reference is None else f", reference of {report.reference.rows:,} rows")
        + "</p>",
        _kinds_table(report),
        "<h2>Anomalies</h2>",
        _anomalies_table(report),
        "<h2>Columns</h2>",
        f'<p class="legend"><span><i class="sw" style="background:{_REF}"></i>reference</span>'
        f'<span><i class="sw" style="background:{_NEW}"></i>this batch</span></p>',
        '<div class="cols">',
        *(_column_section(report, name) for name in report.profile.columns),
        "</div></body></html>",
    ]
    return "\n".join(parts)


def _kinds_table(report: ValidationReport) -> str:
    counts = report.counts_by_kind()
    if not counts:
        return "<p>No anomalies.</p>"
    rows = "".join(
        f'<tr><td>{escape(k)}</td><td class="num">{n}</td></tr>' for k, n in sorted(counts.items())
    )
    return f"<table><tr><th>kind</th><th>count</th></tr>{rows}</table>"


def _anomalies_table(report: ValidationReport) -> str:
    if not report.anomalies:
        return "<p>None: every check passed.</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("severity", "column", "kind", "measured", "threshold", "examples", "message")
    )
    rows = []
    for a in report.anomalies:
        cells = (
            f'<td class="{escape(a.severity)}">{escape(a.severity)}</td>',
            f"<td>{escape(a.column or '(table)')}</td>",
            f"<td>{escape(a.kind)}</td>",
            f'<td class="num">{escape(_fmt(a.measured))}</td>',
            f'<td class="num">{escape(_fmt(a.threshold))}</td>',
            "<td>" + ", ".join(f"<code>{escape(e)}</code>" for e in a.examples) + "</td>",
            f"<td>{escape(a.message)}</td>",
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _column_section(report: ValidationReport, name: str) -> str:
    new = report.profile.columns[name]
    ref = report.reference.columns.get(name) if report.reference is not None else None
    drift = report.drift.get(name)
    stats = [("type", new.type), ("nulls", f"{new.nulls:,} of {new.count:,}")]
    if new.mean is not None:
        stats += [("mean", _fmt(new.mean)), ("std", _fmt(new.std))]
        stats += [("min", _fmt(new.min)), ("max", _fmt(new.max))]
    if ref is not None and ref.mean is not None:
        stats += [("reference mean", _fmt(ref.mean)), ("reference std", _fmt(ref.std))]
    if drift is not None:
        stats.append(("drift", f"{drift:.4f}"))
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in stats)
    return f'<div class="col"><h3>{escape(name)}</h3>{_chart(new, ref)}<table>{cells}</table></div>'


def _chart(new: ColumnProfile, ref: ColumnProfile | None) -> str:
    if new.histogram is not None:
        h = new.histogram
        series = [(_NEW, _shares(h.counts))]
        same_bins = ref is not None and ref.histogram is not None
        if same_bins and ref is not None and ref.histogram is not None:
            same_bins = len(ref.histogram.counts) == len(h.counts)
            if same_bins:
                series.insert(0, (_REF, _shares(ref.histogram.counts)))
        labels = [_fmt(e) for e in h.edges]
        return _vertical_bars(labels, series)
    if new.top_k or (ref is not None and ref.top_k):
        values = [v for v, _ in (ref.top_k if ref is not None else ())]
        values += [v for v, _ in new.top_k if v not in values]
        values = values[:_MAX_CATEGORIES]
        series = []
        if ref is not None and ref.top_k and ref.non_null:
            got = dict(ref.top_k)
            series.append((_REF, [got.get(v, 0) / ref.non_null for v in values]))
        if new.non_null:
            got = dict(new.top_k)
            series.append((_NEW, [got.get(v, 0) / new.non_null for v in values]))
        return _horizontal_bars(values, series) if series else ""
    return ""


def _shares(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _vertical_bars(edge_labels: list[str], series: list[tuple[str, list[float]]]) -> str:
    """Grouped bars per bin; ``edge_labels`` has one more entry than each series."""
    width, height, left, bottom = 500, 170, 36, 34
    bins = len(series[0][1])
    top = max((max(s) for _, s in series), default=0.0) or 1.0
    slot = (width - left - 6) / bins
    bar = slot * 0.8 / len(series)
    out = [_svg_open(width, height), _y_axis(left, height - bottom, top)]
    for k, (color, shares) in enumerate(series):
        for i, share in enumerate(shares):
            h = (height - bottom - 8) * share / top
            x = left + i * slot + slot * 0.1 + k * bar
            out.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(edge_labels[i])} to '
                f"{escape(edge_labels[i + 1])}: {share:.2%}</title></rect>"
            )
    step = max(1, math.ceil(bins / 5))
    for i in range(0, bins + 1, step):
        x = left + i * slot
        out.append(
            f'<text x="{x:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{escape(edge_labels[i])}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _horizontal_bars(labels: list[str], series: list[tuple[str, list[float]]]) -> str:
    """Grouped horizontal bars, one group per category."""
    row = 8 * len(series) + 6
    width, left = 500, 130
    height = row * len(labels) + 8
    top = max((max(s) for _, s in series if s), default=0.0) or 1.0
    out = [_svg_open(width, height)]
    for i, label in enumerate(labels):
        y = 4 + i * row
        short = label if len(label) <= 20 else label[:19] + "\u2026"
        out.append(
            f'<text x="{left - 4}" y="{y + row / 2 + 3:.1f}" font-size="10" '
            f'text-anchor="end">{escape(short)}</text>'
        )
        for k, (color, shares) in enumerate(series):
            w = (width - left - 50) * shares[i] / top
            out.append(
                f'<rect x="{left}" y="{y + k * 8}" width="{w:.1f}" height="7" fill="{color}">'
                f"<title>{escape(label)}: {shares[i]:.2%}</title></rect>"
                f'<text x="{left + w + 3:.1f}" y="{y + k * 8 + 7}" font-size="9">'
                f"{shares[i]:.1%}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    )


def _y_axis(left: int, base: float, top: float) -> str:
    return (
        f'<line x1="{left}" y1="8" x2="{left}" y2="{base}" stroke="#999"/>'
        f'<line x1="{left}" y1="{base}" x2="500" y2="{base}" stroke="#999"/>'
        f'<text x="{left - 3}" y="14" font-size="10" text-anchor="end">{top:.0%}</text>'
        f'<text x="{left - 3}" y="{base}" font-size="10" text-anchor="end">0</text>'
    )


def _fmt(value: object) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
