"""A monitor's history as one self-contained HTML page: figures over time, the alert
timeline, and the latest window's distributions against the reference.

Like :mod:`.report` (whose plots it reuses for the distributions), the page has no
script and no external asset: inline SVG and CSS only, so it opens offline. Sections:

- drift over time: the dataset's drifted share, and each column's drift score;
- every other check's dataset-level figures over time (performance, label coverage,
  data quality: whatever figures those checks store appear here without changes);
- the alert timeline, and a table of the alerts with their deliveries;
- per column, reference vs current distributions of the latest scored window;
- the evaluations, one row each.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from driftline.monitoring.report import _CSS, _CUR, _REF, _anchor, _fmt, _section

if TYPE_CHECKING:
    from driftline.monitoring.monitor_models import Alert, Evaluation, Monitor

__all__ = ["render_history"]

_W, _H = 720, 240
_L, _R, _T, _B = 52, 150, 14, 36  # plot padding; the right side holds the legend
_PALETTE = (
    "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
    "#CCB974", "#64B5CD",
)  # fmt: skip
_SEVERITY = {"warning": "#e69f00", "critical": "#c0392b"}
_EXTRA_CSS = """
.status{display:inline-block;padding:1px 8px;border-radius:8px;color:#fff;font-size:12px}
.status.healthy{background:#2e7d32} .status.alert{background:#c0392b}
.status.error{background:#6a1b9a} .status.insufficient_data{background:#777}
.sev-critical{color:#c0392b;font-weight:600} .sev-warning{color:#b26a00;font-weight:600}
td.msg{text-align:left;max-width:520px}
"""

Series = dict[str, list[tuple[int, float]]]


def render_history(monitor: Monitor, evaluations: list[Evaluation], alerts: list[Alert]) -> str:
    """The report of ``monitor`` over ``evaluations`` (oldest first) and ``alerts``."""
    period = (
        f"{_day(evaluations[0].window_end)} to {_day(evaluations[-1].window_end)}"
        if evaluations
        else "no evaluation yet"
    )
    counts: dict[str, int] = defaultdict(int)
    for e in evaluations:
        counts[e.status] += 1
    head = (
        f"<h1>Monitor {escape(monitor.name)}</h1>"
        f"<p class='meta'>deployment {escape(monitor.deployment)} &middot; window "
        f"{monitor.window} &middot; checks {escape(', '.join(monitor.checks))} &middot; "
        f"cooldown {monitor.cooldown} &middot; alerts to "
        f"{escape(', '.join(monitor.channels) or 'no channel')}</p>"
        f"<p class='meta'>{len(evaluations)} evaluations ({period}): "
        + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        + f" &middot; {len(alerts)} alerts</p>"
    )
    body = [
        head,
        _drift_over_time(evaluations, _share_threshold(monitor)),
        _other_figures(evaluations),
        _alert_timeline(evaluations, alerts),
        _distributions(evaluations),
        _evaluation_table(evaluations),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Monitor {escape(monitor.name)}</title><style>{_CSS}{_EXTRA_CSS}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _series(evaluations: list[Evaluation], check: str, column: str | None, metric: str) -> Series:
    out: Series = defaultdict(list)
    for e in evaluations:
        for f in e.figures:
            if f.check == check and f.metric == metric and f.value is not None:
                if column == "*" and f.column is not None:
                    out[f.column].append((_ms(f.window_end), f.value))
                elif column is None and f.column is None:
                    out[metric].append((_ms(f.window_end), f.value))
    return dict(out)


def _drift_over_time(evaluations: list[Evaluation], threshold: float) -> str:
    share = _series(evaluations, "drift", None, "drift_share")
    scores = _series(evaluations, "drift", "*", "score")
    if not share and not scores:
        return "<h2>Drift over time</h2><p class='meta'>No drift figures yet.</p>"
    return (
        "<h2 id='drift-over-time'>Drift over time</h2><div class='plots'>"
        + _lines(share, "share of drifted columns", fixed_top=1.0, threshold=threshold)
        + _lines(scores, "drift score per column (its method's effect size)")
        + "</div>"
    )


def _share_threshold(monitor: Monitor) -> float:
    from driftline.monitoring.models import DriftThresholds

    value = (monitor.thresholds or {}).get("drift_share", DriftThresholds().drift_share)
    return float(value)


def _other_figures(evaluations: list[Evaluation]) -> str:
    """Dataset-level figures of every check but drift, one chart per check."""
    by_check: dict[str, Series] = defaultdict(dict)
    for e in evaluations:
        for f in e.figures:
            if f.check != "drift" and f.column is None and f.value is not None:
                by_check[f.check].setdefault(f.metric, []).append((_ms(f.window_end), f.value))
    parts = []
    for check, series in sorted(by_check.items()):
        parts.append(
            f"<h2 id='check-{_anchor(check)}'>{escape(check)} over time</h2>"
            f"<div class='plots'>{_lines(series, f'{check} figures per window')}</div>"
        )
    return "".join(parts)


def _alert_timeline(evaluations: list[Evaluation], alerts: list[Alert]) -> str:
    head = "<h2 id='alerts'>Alerts</h2>"
    if not alerts:
        return head + "<p class='meta'>No alert in this period.</p>"
    times = [_ms(a.created_at) for a in alerts] + [_ms(e.window_end) for e in evaluations]
    lo, hi = min(times), max(times)
    span = (hi - lo) or 1
    width = _W - _L - _R
    checks = sorted({a.check for a in alerts})
    height = _T + _B + 28 * len(checks)
    parts = []
    for i, check in enumerate(checks):
        y = _T + 28 * i + 14
        parts.append(
            f"<text x='{_L - 6}' y='{y + 3}' text-anchor='end'>{escape(check)}</text>"
            f"<line x1='{_L}' y1='{y}' x2='{_L + width}' y2='{y}' stroke='#eee'/>"
        )
    for a in alerts:
        x = _L + width * (_ms(a.created_at) - lo) / span
        y = _T + 28 * checks.index(a.check) + 14
        parts.append(
            f"<circle class='alert' cx='{x:.1f}' cy='{y}' r='{6 + min(a.repeats, 6)}' "
            f"fill='{_SEVERITY.get(a.severity, '#777')}' fill-opacity='0.85'>"
            f"<title>{_day(a.created_at)} {escape(a.severity)}: {escape(a.message)}"
            f" (repeated {a.repeats} times)</title></circle>"
        )
    base = height - _B + 6
    parts += [
        f"<line x1='{_L}' y1='{base}' x2='{_L + width}' y2='{base}' stroke='#999'/>",
        f"<text x='{_L}' y='{base + 14}'>{_day(_dt(lo))}</text>",
        f"<text x='{_L + width}' y='{base + 14}' text-anchor='end'>{_day(_dt(hi))}</text>",
        _legend([(s, c) for s, c in _SEVERITY.items()], top=_T),
    ]
    svg = _svg("".join(parts), "alert timeline", height)
    rows = "".join(
        f"<tr><td>{_day(a.created_at)}</td><td>{escape(a.check)}</td>"
        f"<td class='sev-{escape(a.severity)}'>{escape(a.severity)}</td>"
        f"<td class='msg'>{escape(a.message)}</td><td>{a.repeats}</td>"
        f"<td class='msg'>{escape(_deliveries(a))}</td></tr>"
        for a in reversed(alerts)
    )
    table = (
        "<table id='alert-table'><thead><tr><th>raised</th><th>check</th><th>severity</th>"
        "<th>message</th><th>repeats</th><th>deliveries</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    return head + svg + table


def _deliveries(alert: Alert) -> str:
    return "; ".join(
        f"{d.channel}: {d.state}" + (f" ({d.last_error})" if d.last_error else "")
        for d in alert.deliveries
    )


def _distributions(evaluations: list[Evaluation]) -> str:
    """Reference vs current per column, from the newest evaluation whose drift scored."""
    from driftline.monitoring.models import DriftReport

    for e in reversed(evaluations):
        for outcome in e.checks:
            if outcome.check == "drift" and outcome.details:
                report = DriftReport.from_dict(outcome.details)
                legend = (
                    "<p class='legend'>"
                    f"<span style='background:{_REF}'></span>reference ({escape(report.reference)})"
                    f"<span style='background:{_CUR}'></span>current (window ending "
                    f"{_day(e.window_end)})</p>"
                )
                sections = "".join(_section(c) for c in report.columns.values())
                return (
                    "<h2 id='distributions'>Distributions in the latest window</h2>"
                    + legend
                    + sections
                )
    return ""


def _evaluation_table(evaluations: list[Evaluation]) -> str:
    rows = "".join(
        f"<tr><td>{_day(e.window_end)}</td><td><span class='status {e.status}'>"
        f"{e.status.replace('_', ' ')}</span></td><td>{e.rows:,}</td><td class='msg'>"
        + escape(" | ".join(f"{c.check}: {c.status} {c.message}".strip() for c in e.checks))
        + "</td></tr>"
        for e in reversed(evaluations)
    )
    return (
        "<h2 id='evaluations'>Evaluations</h2><table id='evaluation-table'><thead><tr>"
        "<th>window end</th><th>status</th><th>requests</th><th>checks</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _dt(ms: int) -> datetime:
    from driftline.core.clock import from_ms

    return from_ms(ms)


def _svg(inner: str, title: str, height: int = _H) -> str:
    return (
        f"<svg class='plot' xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{height}' "
        f"viewBox='0 0 {_W} {height}' role='img' aria-label='{escape(title)}'>"
        f"<title>{escape(title)}</title>{inner}</svg>"
    )


def _legend(items: list[tuple[str, str]], top: int) -> str:
    x = _W - _R + 12
    return "".join(
        f"<rect x='{x}' y='{top + 16 * i}' width='10' height='10' fill='{color}'/>"
        f"<text x='{x + 14}' y='{top + 16 * i + 9}'>{escape(_short(label))}</text>"
        for i, (label, color) in enumerate(items[:12])
    )


def _short(label: str) -> str:
    return label if len(label) <= 20 else label[:19] + "\u2026"


def _lines(
    series: Series, title: str, *, fixed_top: float | None = None, threshold: float | None = None
) -> str:
    """One line per series over time, a dot per window (hover: time and value)."""
    if not series:
        return ""
    points = [p for values in series.values() for p in values]
    lo = min(t for t, _ in points)
    hi = max(t for t, _ in points)
    span = (hi - lo) or 1
    top = fixed_top or max(max(v for _, v in points), 1e-9)
    bottom = min(0.0, min(v for _, v in points))
    height = (top - bottom) or 1.0
    width = _W - _L - _R
    y0 = _H - _B

    def xy(t: int, v: float) -> tuple[float, float]:
        x = _L + (width * (t - lo) / span if hi > lo else width / 2)
        return x, y0 - (y0 - _T) * (v - bottom) / height

    parts = []
    for i in range(5):
        v = bottom + height * i / 4
        y = y0 - (y0 - _T) * i / 4
        parts.append(
            f"<line x1='{_L}' y1='{y:.1f}' x2='{_L + width}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{_L - 5}' y='{y + 3:.1f}' text-anchor='end'>{_fmt(v, 3)}</text>"
        )
    parts += [
        f"<line x1='{_L}' y1='{y0}' x2='{_L + width}' y2='{y0}' stroke='#999'/>",
        f"<text x='{_L}' y='{y0 + 16}'>{_day(_dt(lo))}</text>",
        f"<text x='{_L + width}' y='{y0 + 16}' text-anchor='end'>{_day(_dt(hi))}</text>",
    ]
    if threshold is not None and bottom <= threshold <= top:
        y = xy(lo, threshold)[1]
        parts.append(
            f"<line class='threshold' x1='{_L}' y1='{y:.1f}' x2='{_L + width}' y2='{y:.1f}' "
            f"stroke='#c0392b' stroke-dasharray='5,4'><title>dataset drift at "
            f"{threshold:.0%}</title></line>"
        )
    legend = []
    for i, (label, values) in enumerate(sorted(series.items())):
        color = _PALETTE[i % len(_PALETTE)]
        coords = [xy(t, v) for t, v in sorted(values)]
        if len(coords) > 1:
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f"<path class='series' d='{d}' fill='none' stroke='{color}' stroke-width='2'/>"
            )
        for (x, y), (t, v) in zip(coords, sorted(values), strict=True):
            parts.append(
                f"<circle class='point' cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{color}'>"
                f"<title>{escape(label)} {_day(_dt(t))}: {_fmt(v)}</title></circle>"
            )
        legend.append((label, color))
    parts.append(_legend(legend, top=_T))
    return _svg("".join(parts), title)
