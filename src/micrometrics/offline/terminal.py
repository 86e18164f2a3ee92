"""Plain-text tables for a run report and a comparison (colour only on a terminal)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

_GREEN, _RED, _YELLOW, _BOLD, _DIM, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[1m", "\033[2m", "\033[0m"


class Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour else text


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> list[str]:
    right = right or [i > 0 for i in range(len(headers))]
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _describe_source(source: Mapping[str, Any]) -> str:
    text = f"{source.get('kind', 'dataset')} {source.get('path', '')}".strip()
    if source.get("rows") is not None:
        text += f" · {source['rows']} rows"
    replay = source.get("replay")
    if replay:
        text += f" · replayed on {replay.get('model')}"
        if replay.get("system_prompt"):
            text += f" with system prompt {replay['system_prompt']}"
    if source.get("tags"):
        text += f" · tags {', '.join(source['tags'])}"
    return text


def usd(value: float) -> str:
    return f"{value:,.6f} USD"


def describe_cost(cost: Mapping[str, Any] | None) -> str | None:
    """One line: what the run's LLM calls cost, how many of them had a price, and what the metrics' own calls cost."""
    if not cost or not cost.get("calls"):
        return None
    if cost.get("total") is None:
        text = f"cost of the run: unknown (none of its {cost['calls']} calls has usage and a known model's price)"
    else:
        text = f"cost of the run: {usd(cost['total'])} ({cost['priced_calls']} of {cost['calls']} calls priced"
        text += f", prices of {cost['prices_date']})" if cost.get("prices_date") else ")"
    if cost.get("evaluation") is not None:
        text += f"; the metrics' LLM calls: {usd(cost['evaluation'])}"
    return text


def render_report(report: Mapping[str, Any], colour: bool = False, failures: int = 10) -> str:
    paint = Painter(colour)
    summary = report["summary"]
    info = {m["name"]: m for m in report["metrics"]}
    lines = [paint("micrometrics eval", _BOLD) + " · " + _describe_source(report.get("source", {})), ""]

    headers = ["metric", "mode", "evaluated", "pass", "fail", "other", "pass rate", "mean score", "failure cost"]
    body = []
    for name, s in summary.items():
        m = info.get(name.split("@")[0], {})
        other = s["evaluated"] - s["passed"] - s["failed"]
        cost = s["cost"]
        cost_text = f"{cost['total']:.2f} {cost['currency']}" if cost["total"] is not None else "-"
        rate = percent(s["pass_rate"])
        if s["pass_rate"] is not None and colour:
            rate = paint(rate, _GREEN if s["pass_rate"] >= 0.95 else _YELLOW if s["pass_rate"] >= 0.8 else _RED)
        body.append([name, m.get("mode", "-"), str(s["evaluated"]), str(s["passed"]), str(s["failed"]), str(other), rate, number(s["score"]["mean"]), cost_text])
    lines += table(headers, body, [False, False] + [True] * 7)
    cost_line = describe_cost(report.get("cost"))
    if cost_line:
        lines += ["", cost_line]

    names = list(summary)
    for group, title in (("by_model", "by model"), ("by_tag", "by tag")):
        keys: list[str] = []
        for s in summary.values():
            keys += [k for k in s[group] if k not in keys]
        if not keys or (group == "by_model" and len(keys) < 1):
            continue
        rows = []
        for key in sorted(keys):
            cells = [key]
            for name in names:
                c = summary[name][group].get(key)
                cells.append(f"{percent(c['pass_rate'])} ({c['passed'] + c['failed']})" if c else "-")
            rows.append(cells)
        lines += ["", paint(f"pass rate {title}", _BOLD) + paint("  (determinate results in brackets)", _DIM)]
        lines += table([title.split()[-1], *names], rows)

    failing = [(row, name, r) for row in report["rows"] for name, r in row["results"].items() if r["passed"] is False]
    if failing and failures > 0:
        lines += ["", paint(f"failing rows ({len(failing)})", _BOLD)]
        for row, name, r in failing[:failures]:
            lines.append(f"  {row['id']:<12} {paint(name + '=' + r['label'], _RED)}  {r.get('explanation') or ''}".rstrip())
        if len(failing) > failures:
            lines.append(paint(f"  ... {len(failing) - failures} more (see --html or --json)", _DIM))

    for m in report["metrics"]:
        if m.get("overdue"):
            lines += ["", paint(
                f"! {m['name']} (owner: {m.get('owner') or 'unknown'}) was due for review on {m['review_by']}: "
                "keep it (set a new review_by) or retire it", _YELLOW)]
    return "\n".join(lines) + "\n"


def render_metrics(metrics: Sequence[Mapping[str, Any]], colour: bool = False) -> str:
    paint = Painter(colour)
    rows = []
    for m in metrics:
        review = m["review_by"] or "-"
        if m.get("overdue"):
            review = paint(review + " OVERDUE", _RED)
        cost = f"{m['cost_per_failure']:g} {m['currency']}" if m.get("cost_per_failure") is not None else "-"
        rows.append([m["name"], m["class"], m["mode"], f"{m['sample_rate']:g}", ",".join(m["applies_to"]), m.get("owner") or "-", review, cost])
    return "\n".join(table(["metric", "class", "mode", "sample rate", "applies to", "owner", "review by", "cost per failure"], rows, [False] * 8)) + "\n"
