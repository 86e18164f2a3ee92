"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Sequence

from micrometrics.offline.report import label_order
from micrometrics.offline.terminal import describe_cost, percent

_PASS, _FAIL, _OTHER = "#2f9e44", "#e03131", "#adb5bd"

_CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#e3e8ee; --bg:#f6f8fa; --pass:#2f9e44; --fail:#e03131; --warn:#f08c00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--ink); background:var(--bg); }
header { background:#15202b; color:#fff; padding:20px 32px; }
header h1 { margin:0 0 4px; font-size:20px; font-weight:600; }
header p { margin:0; color:#c5ced8; }
main { padding:20px 32px 40px; max-width:1280px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:0 0 18px; }
h2 { font-size:16px; margin:0 0 12px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin-bottom:18px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:190px; flex:1; }
.card .name { font-weight:600; }
.card .rate { font-size:26px; font-weight:600; }
.card .sub { color:var(--muted); font-size:12px; }
.good { color:var(--pass); } .bad { color:var(--fail); } .meh { color:var(--warn); }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.03em; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.charts { display:flex; flex-wrap:wrap; gap:18px; }
.chart { flex:1; min-width:300px; }
.chart h3 { font-size:13px; margin:0 0 4px; }
.legend span { display:inline-block; margin-right:14px; font-size:12px; color:var(--muted); }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:-1px; }
.warning { background:#fff4e6; border:1px solid #ffd8a8; color:#7a4100; border-radius:8px; padding:10px 14px; margin-bottom:18px; }
.fail-row { border-top:1px solid var(--line); padding:10px 0; }
.fail-row:first-of-type { border-top:0; }
.badge { display:inline-block; border-radius:10px; padding:0 8px; font-size:12px; font-weight:600; background:#ffe3e3; color:#c92a2a; margin-right:6px; }
.tag { display:inline-block; border-radius:10px; padding:0 7px; font-size:11px; background:#e7f5ff; color:#1c7ed6; margin-right:4px; }
.why { margin:4px 0; }
.quote { background:var(--bg); border-left:3px solid var(--line); padding:6px 10px; margin:4px 0; white-space:pre-wrap; font-size:13px; }
.quote.resp { border-left-color:#ffa8a8; }
.muted { color:var(--muted); font-size:12px; }
.heat td.cell { text-align:center; font-variant-numeric:tabular-nums; }
details summary { cursor:pointer; color:var(--muted); font-size:12px; }
"""


def _rate_class(rate: float | None) -> str:
    if rate is None:
        return ""
    return "good" if rate >= 0.95 else "meh" if rate >= 0.8 else "bad"


def _heat(rate: float | None) -> str:
    if rate is None:
        return "#f1f3f5"
    # red (0%) -> amber (80%) -> green (100%): most of the scale is spent where decisions are made
    if rate >= 0.8:
        t = (rate - 0.8) / 0.2
        r, g, b = int(255 - t * (255 - 211)), int(236 - t * (236 - 249)), int(153 - t * (153 - 216))
    else:
        t = rate / 0.8
        r, g, b = 255, int(201 + t * (236 - 201)), int(201 - t * (201 - 153))
    return f"#{r:02x}{g:02x}{b:02x}"


def pass_rate_chart(summary: Mapping[str, Any]) -> str:
    """Horizontal stacked bars: pass / fail / other results of each metric."""
    names = list(summary)
    bar_h, gap, label_w, width = 22, 12, 170, 640
    plot_w = width - label_w - 70
    height = len(names) * (bar_h + gap) + 30
    out = [f'<svg role="img" aria-label="Pass rate by metric" class="pass-rate-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i in range(0, 101, 25):
        x = label_w + plot_w * i / 100
        out.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 22}" stroke="#e3e8ee"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="11" fill="#6b7785" text-anchor="middle">{i}%</text>')
    for i, name in enumerate(names):
        s = summary[name]
        y = i * (bar_h + gap) + 4
        total = s["evaluated"] or 1
        other = s["evaluated"] - s["passed"] - s["failed"]
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" font-size="12" fill="#1f2933" text-anchor="end">{escape(name)}</text>')
        x = float(label_w)
        for count, colour, what in ((s["passed"], _PASS, "passed"), (s["failed"], _FAIL, "failed"), (other, _OTHER, "other")):
            w = plot_w * count / total
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"><title>{escape(name)}: {count} {what}</title></rect>')
            x += w
        out.append(f'<text x="{label_w + plot_w + 6}" y="{y + bar_h * 0.7:.1f}" font-size="12" font-weight="600" fill="#1f2933">{percent(s["pass_rate"])}</text>')
    out.append("</svg>")
    return "".join(out)


def score_histogram(name: str, score: Mapping[str, Any]) -> str:
    hist = score["histogram"]
    counts: Sequence[int] = hist["counts"]
    width, height, pad_l, pad_b = 300, 150, 30, 22
    plot_w, plot_h = width - pad_l - 8, height - pad_b - 10
    peak = max(counts) or 1
    bw = plot_w / len(counts)
    out = [f'<svg role="img" aria-label="Score distribution of {escape(name)}" class="score-histogram" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    out.append(f'<line x1="{pad_l}" y1="{10 + plot_h}" x2="{pad_l + plot_w}" y2="{10 + plot_h}" stroke="#adb5bd"/>')
    out.append(f'<text x="{pad_l - 4}" y="16" font-size="10" fill="#6b7785" text-anchor="end">{peak}</text>')
    out.append(f'<text x="{pad_l - 4}" y="{10 + plot_h}" font-size="10" fill="#6b7785" text-anchor="end">0</text>')
    low, high = hist["low"], hist["high"]
    for i, c in enumerate(counts):
        h = plot_h * c / peak
        x = pad_l + i * bw
        lo = low + (high - low) * i / len(counts)
        hi = low + (high - low) * (i + 1) / len(counts)
        out.append(f'<rect x="{x + 1:.1f}" y="{10 + plot_h - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#4c6ef5"><title>{lo:.2f}–{hi:.2f}: {c}</title></rect>')
    for frac in (0.0, 0.5, 1.0):
        x = pad_l + plot_w * frac
        out.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="10" fill="#6b7785" text-anchor="middle">{low + (high - low) * frac:g}</text>')
    out.append("</svg>")
    return "".join(out)


def _group_table(summary: Mapping[str, Any], group: str, title: str) -> str:
    names = list(summary)
    keys = sorted({k for s in summary.values() for k in s[group]})
    if not keys:
        return ""
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = []
    for key in keys:
        cells = []
        for n in names:
            c = summary[n][group].get(key)
            rate = c["pass_rate"] if c else None
            text = f"{percent(rate)}<br><span class=muted>{c['passed']}/{c['passed'] + c['failed']}</span>" if c else "-"
            cells.append(f'<td class="cell" style="background:{_heat(rate)}">{text}</td>')
        body.append(f"<tr><td>{escape(key)}</td>{''.join(cells)}</tr>")
    return f'<section><h2>Pass rate by {escape(title)}</h2><table class="heat"><tr><th>{escape(title)}</th>{head}</tr>{"".join(body)}</table></section>'


def _clip(text: str | None, limit: int = 700) -> str:
    text = text or ""
    return escape(text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]")


def render(report: Mapping[str, Any], title: str = "micrometrics evaluation", max_failures: int = 200) -> str:
    summary = report["summary"]
    info = {m["name"]: m for m in report["metrics"]}
    source = report.get("source", {})
    subtitle = f"{escape(str(source.get('kind', 'dataset')))} <b>{escape(str(source.get('path', '')))}</b> · {len(report['rows'])} rows"
    replay = source.get("replay")
    if replay:
        subtitle += f" · replayed on <b>{escape(str(replay.get('model')))}</b>"
        if replay.get("system_prompt"):
            subtitle += f" with system prompt <b>{escape(str(replay['system_prompt']))}</b>"
    cost_line = describe_cost(report.get("cost"))
    if cost_line:
        subtitle += f" · {escape(cost_line)}"
    subtitle += f" · {escape(report.get('created_at', ''))} · micrometrics {escape(report.get('micrometrics_version', ''))}"

    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
             f"<header><h1>{escape(title)}</h1><p>{subtitle}</p></header><main>"]

    for m in report["metrics"]:
        if m.get("overdue"):
            parts.append(f'<div class="warning">⚠ <b>{escape(m["name"])}</b> (owner: {escape(m.get("owner") or "unknown")}) was due for review on '
                         f'{escape(m["review_by"])}: keep it (set a new review_by) or retire it.</div>')

    cards = []
    for name, s in summary.items():
        m = info.get(name.split("@")[0], {})
        cost = s["cost"]
        cost_text = f" · failures cost <b>{cost['total']:.2f} {escape(str(cost['currency']))}</b>" if cost["total"] is not None else ""
        owner = f"owner {escape(m['owner'])} · " if m.get("owner") else ""
        cards.append(
            f'<div class="card metric-card"><div class="name">{escape(name)}</div>'
            f'<div class="rate {_rate_class(s["pass_rate"])}">{percent(s["pass_rate"])}</div>'
            f'<div class="sub">{s["passed"]} pass · {s["failed"]} fail · {s["evaluated"] - s["passed"] - s["failed"]} other{cost_text}</div>'
            f'<div class="sub">{owner}{escape(m.get("mode", ""))}</div></div>'
        )
    parts.append(f'<div class="cards">{"".join(cards)}</div>')

    parts.append('<section><h2>Pass rate by metric</h2><div class="legend">'
                 f'<span><i style="background:{_PASS}"></i>pass</span><span><i style="background:{_FAIL}"></i>fail</span>'
                 f'<span><i style="background:{_OTHER}"></i>undetermined / error / timeout</span></div>'
                 f"{pass_rate_chart(summary)}</section>")

    hists = []
    for name, s in summary.items():
        sc = s["score"]
        if sc["count"]:
            hists.append(f'<div class="chart"><h3>{escape(name)} <span class="muted">({sc["count"]} scores, mean {sc["mean"]:.2f})</span></h3>{score_histogram(name, sc)}</div>')
    if hists:
        parts.append(f'<section><h2>Score distributions</h2><div class="charts">{"".join(hists)}</div></section>')

    rows = []
    for name, s in summary.items():
        labels = ", ".join(f"{escape(k)} {v}" for k, v in ((k, s["labels"][k]) for k in label_order(s["labels"])))
        cost = s["cost"]
        cost_text = f"{cost['total']:.2f} {escape(str(cost['currency']))} <span class=muted>({cost['per_failure']:g} each)</span>" if cost["total"] is not None else "-"
        m = info.get(name.split("@")[0], {})
        review = escape(m.get("review_by") or "-") + (' <span class="badge">overdue</span>' if m.get("overdue") else "")
        rows.append(f"<tr><td>{escape(name)}</td><td class=num>{s['evaluated']}</td><td class=num>{percent(s['pass_rate'])}</td>"
                    f"<td>{labels}</td><td class=num>{cost_text}</td><td>{escape(m.get('owner') or '-')}</td><td>{review}</td></tr>")
    parts.append("<section><h2>Metrics</h2><table><tr><th>metric</th><th>evaluated</th><th>pass rate</th><th>labels</th>"
                 f"<th>failure cost</th><th>owner</th><th>review by</th></tr>{''.join(rows)}</table></section>")

    failing = [row for row in report["rows"] if any(r["passed"] is False for r in row["results"].values())]
    items = []
    for row in failing[:max_failures]:
        badges = []
        whys = []
        for name, r in row["results"].items():
            if r["passed"] is False:
                badges.append(f'<span class="badge">{escape(name)}: {escape(r["label"])}</span>')
                whys.append(f'<div class="why"><b>{escape(name)}</b>: {escape(r.get("explanation") or "(no explanation)")}</div>')
        tags = "".join(f'<span class="tag">{escape(t)}</span>' for t in row.get("tags") or ())
        convo = "".join(f'<div class="quote"><b>{escape(str(m["role"]))}</b>: {_clip(m["content"], 400)}</div>' for m in row.get("messages") or ())
        items.append(
            f'<div class="fail-row" id="row-{escape(row["id"])}"><div><b>{escape(row["id"])}</b> {"".join(badges)} {tags}'
            f' <span class="muted">{escape(row.get("model") or "")} · {row.get("user_turns", 0)} user turns</span></div>{"".join(whys)}'
            f'<div class="quote"><b>user</b>: {_clip(row.get("last_user_message"), 400)}</div>'
            f'<div class="quote resp"><b>response</b>: {_clip(row.get("response") if row.get("error") is None else "replay failed: " + str(row["error"]))}</div>'
            f"<details><summary>whole conversation</summary>{convo}</details></div>"
        )
    more = f'<p class="muted">… and {len(failing) - max_failures} more failing rows in the JSON report.</p>' if len(failing) > max_failures else ""
    parts.append(f'<section class="failing-rows"><h2>Failing rows ({len(failing)})</h2>{"".join(items) or "<p>None: every determinate result passed.</p>"}{more}</section>')
    # Failing rows first: they are what a reader acts on; the breakdowns follow.
    parts.append(_group_table(summary, "by_model", "model"))
    parts.append(_group_table(summary, "by_tag", "tag"))
    parts.append("</main></body></html>\n")
    return "".join(parts)
