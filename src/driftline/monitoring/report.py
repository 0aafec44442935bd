"""A drift report as one self-contained HTML page: a score table and inline SVG plots.

No script, no external asset, no font download: the page opens offline and in mail
clients that strip JavaScript. Per column, bars compare the reference and current shares
of each bin (numeric) or category, and numeric columns also draw both CDFs over the
reference sketch's points.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.monitoring.models import ColumnDrift, DriftReport

__all__ = ["render_html"]

_REF, _CUR = "#4C72B0", "#DD8452"
_W, _H = 460, 200
_PAD_L, _PAD_B, _PAD_T = 44, 54, 12

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px}
.meta{color:#555;font-size:13px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.badge.drift{background:#c0392b} .badge.no_drift{background:#2e7d32}
.badge.not_scored{background:#777}
table{border-collapse:collapse;font-size:13px;margin-top:10px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.row-drift td{background:#fdecea}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;
 vertical-align:middle}
svg text{font-size:10px;fill:#333}
"""


def render_html(report: DriftReport) -> str:
    """The report as a standalone HTML document."""
    verdict = "drift" if report.drifted else "no_drift"
    head = (
        f"<h1>Drift report <span class='badge {verdict}'>"
        f"{'dataset drift' if report.drifted else 'no dataset drift'}</span></h1>"
        f"<p class='meta'>reference: {escape(report.reference)} ({report.n_ref:,} rows) "
        f"&middot; current: {escape(report.current)} ({report.n_cur:,} rows) &middot; "
        f"{len(report.drifted_columns)} of "
        f"{sum(c.status == 'ok' for c in report.columns.values())} scored columns drifted "
        f"({report.drift_share:.0%}; dataset drift at {report.threshold_share:.0%})</p>"
        "<p class='legend'>"
        f"<span style='background:{_REF}'></span>reference"
        f"<span style='background:{_CUR}'></span>current</p>"
    )
    sections = [_section(c) for c in report.columns.values()]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Drift report</title><style>{_CSS}</style></head><body>"
        f"{head}{_table(report)}{''.join(sections)}</body></html>"
    )


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "&ndash;"
    if v != 0 and abs(v) < 10 ** -(digits - 1):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def _table(report: DriftReport) -> str:
    head = (
        "<table id='scores'><thead><tr><th>column</th><th>kind</th><th>method</th>"
        "<th>score</th><th>threshold</th><th>p-value</th><th>adjusted</th><th>PSI</th>"
        "<th>n ref</th><th>n cur</th><th>verdict</th><th>status</th><th>anomalies</th>"
        "</tr></thead><tbody>"
    )
    rows = []
    for c in report.columns.values():
        rows.append(
            f"<tr class='row-{c.verdict}'><td><a href='#col-{_anchor(c.column)}'>"
            f"{escape(c.column)}</a></td><td>{c.kind}</td><td>{c.method}</td>"
            f"<td>{_fmt(c.score)}</td><td>{_fmt(c.threshold)}</td><td>{_fmt(c.p_value)}</td>"
            f"<td>{_fmt(c.p_adjusted)}</td><td>{_fmt(c.scores.get('psi'))}</td>"
            f"<td>{c.n_ref:,}</td><td>{c.n_cur:,}</td>"
            f"<td><span class='badge {c.verdict}'>{c.verdict.replace('_', ' ')}</span></td>"
            f"<td>{c.status}</td><td>{escape(', '.join(c.anomalies))}</td></tr>"
        )
    return head + "".join(rows) + "</tbody></table>"


def _anchor(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name)


def _section(c: ColumnDrift) -> str:
    plots = []
    if c.bins:
        plots.append(_bars(c))
    if c.cdf_x:
        plots.append(_cdf(c))
    body = "".join(plots) or "<p class='meta'>No values to plot.</p>"
    return (
        f"<h2 id='col-{_anchor(c.column)}'>{escape(c.column)} "
        f"<span class='badge {c.verdict}'>{c.verdict.replace('_', ' ')}</span></h2>"
        f"<p class='meta'>{c.method} {_fmt(c.score)} (threshold {_fmt(c.threshold)}), "
        f"adjusted p {_fmt(c.p_adjusted)}, status {c.status}</p>"
        f"<div class='plots'>{body}</div>"
    )


def _svg(inner: str, title: str) -> str:
    return (
        f"<svg class='plot' xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
        f"viewBox='0 0 {_W} {_H}' role='img' aria-label='{escape(title)}'>"
        f"<title>{escape(title)}</title>{inner}</svg>"
    )


def _axes(top: float) -> str:
    x0, y0, y1 = _PAD_L, _H - _PAD_B, _PAD_T
    ticks = []
    for i in range(5):
        v = top * i / 4
        y = y0 - (y0 - y1) * i / 4
        ticks.append(
            f"<line x1='{x0 - 3}' y1='{y:.1f}' x2='{_W - 6}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{x0 - 5}' y='{y + 3:.1f}' text-anchor='end'>{v:.2g}</text>"
        )
    return (
        "".join(ticks) + f"<line x1='{x0}' y1='{y0}' x2='{_W - 6}' y2='{y0}' stroke='#999'/>"
        f"<line x1='{x0}' y1='{y0}' x2='{x0}' y2='{y1}' stroke='#999'/>"
    )


def _bars(c: ColumnDrift) -> str:
    n = len(c.bins)
    top = max(max(c.ref_shares, default=0.0), max(c.cur_shares, default=0.0), 1e-9)
    x0, y0 = _PAD_L, _H - _PAD_B
    step = (_W - 6 - x0) / n
    bar = step * 0.4
    parts = [_axes(top)]
    for i, label in enumerate(c.bins):
        x = x0 + i * step + step * 0.1
        for j, (share, color) in enumerate(((c.ref_shares[i], _REF), (c.cur_shares[i], _CUR))):
            h = (y0 - _PAD_T) * share / top
            parts.append(
                f"<rect class='bar' x='{x + j * bar:.1f}' y='{y0 - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' fill='{color}'><title>{escape(label)}: {share:.3%}"
                "</title></rect>"
            )
        short = label if len(label) <= 14 else label[:13] + "\u2026"
        cx = x0 + (i + 0.5) * step
        parts.append(
            f"<text x='{cx:.1f}' y='{y0 + 8}' text-anchor='end' "
            f"transform='rotate(-40 {cx:.1f} {y0 + 8})'>{escape(short)}</text>"
        )
    return _svg("".join(parts), f"{c.column}: share per bin, reference vs current")


def _cdf(c: ColumnDrift) -> str:
    xs = c.cdf_x
    lo, hi = xs[0], xs[-1]
    span = (hi - lo) or 1.0
    x0, y0 = _PAD_L, _H - _PAD_B
    width = _W - 6 - x0

    def path(fs: tuple[float, ...]) -> str:
        pts = [
            f"{x0 + width * (x - lo) / span:.1f},{y0 - (y0 - _PAD_T) * f:.1f}"
            for x, f in zip(xs, fs, strict=True)
        ]
        return "M" + " L".join(pts)

    parts = [
        _axes(1.0),
        f"<path class='cdf' d='{path(c.cdf_ref)}' fill='none' stroke='{_REF}' stroke-width='2'/>",
        f"<path class='cdf' d='{path(c.cdf_cur)}' fill='none' stroke='{_CUR}' stroke-width='2'/>",
        f"<text x='{x0}' y='{y0 + 14}'>{_fmt(lo)}</text>",
        f"<text x='{_W - 6}' y='{y0 + 14}' text-anchor='end'>{_fmt(hi)}</text>",
        f"<text x='{x0 + width / 2}' y='{y0 + 30}' text-anchor='middle'>"
        "CDF over the reference quantiles</text>",
    ]
    return _svg("".join(parts), f"{c.column}: cumulative distribution, reference vs current")
