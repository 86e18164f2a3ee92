"""The ``micrometrics`` command: ``eval``, ``compare`` and ``metrics``.

Exit codes: 0 done (compare: no regression), 1 compare found a regression beyond the
threshold, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

from micrometrics.metric import MicroMetric

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2
#: ``eval --push-datadog``: the report was written, but Datadog did not take every evaluation.
EXIT_PUSH_FAILED = 3


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


def _colour(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


# ---- metrics ------------------------------------------------------------------------------------


def choose_metrics(spec: str | None, names: Sequence[str] | None) -> tuple[list[MicroMetric], list[MicroMetric]]:
    """(as written in code, with MICROMETRICS_CONFIG applied)."""
    from micrometrics import metric_overrides
    from micrometrics.settings import default_metrics
    from micrometrics.offline.runner import load_metrics

    names = list(names or ())
    try:
        if spec:
            base = load_metrics(spec)
            if names:
                by_name = {m.name: m for m in base}
                unknown = [n for n in names if n not in by_name]
                if unknown:
                    raise UsageError(f"--metric {', '.join(unknown)}: not in {spec} (it defines {', '.join(by_name) or 'none'})")
                base = [by_name[n] for n in names]
        elif names:
            builtins = metric_overrides.builtin_metrics()
            unknown = [n for n in names if n not in builtins]
            if unknown:
                raise UsageError(f"--metric {', '.join(unknown)}: not a built-in metric; built-ins: {', '.join(sorted(builtins))} (your own: --metrics FILE.py)")
            base = [builtins[n]() for n in names]
            for m in base:
                m.validate()
        else:
            base = default_metrics()
        return base, metric_overrides.apply_env(base)
    except UsageError:
        raise
    except (ValueError, TypeError, ImportError, OSError, SyntaxError) as exc:
        raise UsageError(str(exc)) from exc


# ---- eval -----------------------------------------------------------------------------------------


def _default_exporter() -> str | None:
    env = os.environ
    if env.get("MICROMETRICS_EXPORTER") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return None  # the environment says where: like production
    return "none"


def _replay(args: argparse.Namespace, rows: list, base_metrics: list[MicroMetric], progress_enabled: bool | None) -> tuple[list, dict[str, Any]]:
    import micrometrics
    from micrometrics import installation
    from micrometrics.offline.progress import Progress
    from micrometrics.offline.runner import ReplayTarget, replay
    from micrometrics.offline.traces import OTLPJsonFileSpanExporter

    system_prompt = None
    if args.system_prompt:
        try:
            system_prompt = Path(args.system_prompt).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--system-prompt {args.system_prompt}: {exc.strerror or exc}") from exc
    params: dict[str, Any] = {}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    handle = installation.current()
    owned = handle is None
    try:
        with ReplayTarget() as target:
            if owned:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    handle = micrometrics.instrument(
                        service_name=os.environ.get("OTEL_SERVICE_NAME") or "micrometrics-eval",
                        exporter=args.exporter or _default_exporter(),
                        instrumentations=["openai"],
                        metrics=base_metrics,
                        capture_content=True if args.capture_content else None,
                    )
                for w in caught:  # e.g. an overdue review_by: one line, not a source excerpt
                    print(f"warning: {w.message}", file=sys.stderr)
            if args.traces_out:
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor

                Path(args.traces_out).unlink(missing_ok=True)
                handle.tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(args.traces_out)))
            print(f"replaying {len(rows)} rows on {args.replay} via {target.description}", file=sys.stderr)
            with Progress(len(rows), "replay", enabled=progress_enabled) as bar:
                new_rows = replay(target.client(), rows, args.replay, system_prompt, concurrency=args.concurrency, advance=bar.advance, **params)
            handle.force_flush(timeout_s=10)
    except RuntimeError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        if owned and handle is not None:
            micrometrics.uninstrument()
    failed = sum(1 for r in new_rows if r.error)
    if failed:
        print(f"warning: {failed} of {len(rows)} replayed rows failed (first: {next(r.error for r in new_rows if r.error)})", file=sys.stderr)
    return new_rows, {"model": args.replay, "system_prompt": args.system_prompt, "target": target.description, "failed": failed}


def cmd_eval(args: argparse.Namespace) -> int:
    from micrometrics.offline import dataset, report as report_mod, terminal
    from micrometrics.offline.progress import Progress
    from micrometrics.offline.runner import evaluate_rows

    if bool(args.dataset) == bool(args.traces):
        raise UsageError("give a dataset (micrometrics eval DATASET.jsonl) or --traces FILE, not both or neither")
    if args.system_prompt and not args.replay:
        raise UsageError("--system-prompt is sent with --replay MODEL; without a replay the recorded responses are evaluated")
    if args.traces_out and not args.replay:
        raise UsageError("--traces-out records the spans of a --replay run")
    if args.push_datadog and (not args.traces or args.replay):
        raise UsageError("--push-datadog joins results to the spans of --traces FILE; a dataset or a --replay has no recorded span")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be 1 or more")
    base_metrics, metrics = choose_metrics(args.metrics, args.metric)
    if not metrics:
        raise UsageError("no metric to run: MICROMETRICS_CONFIG turned every chosen metric off")
    try:
        from micrometrics import pricing

        prices = pricing.resolve()  # the shipped prices under MICROMETRICS_CONFIG's, as online
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc

    source: dict[str, Any]
    try:
        if args.traces:
            from micrometrics.offline.traces import read_traces

            rows, stats = read_traces(args.traces)
            source = {"kind": "traces", "path": args.traces, "spans": stats}
            print(
                f"read {stats['spans']} spans from {args.traces}: {stats['evaluable']} with content, "
                f"{stats['without_content']} without (export them with capture_content=True), {stats['other']} not LLM calls",
                file=sys.stderr,
            )
            if not rows:
                raise UsageError(f"{args.traces}: no span carries captured content to evaluate")
        else:
            rows = dataset.read_jsonl(args.dataset)
            source = {"kind": "dataset", "path": args.dataset}
    except dataset.DatasetError as exc:
        raise UsageError(str(exc)) from exc
    rows = dataset.select(rows, args.tag or (), args.limit)
    if not rows:
        raise UsageError(f"no row carries any of the tags {', '.join(args.tag)}")
    source["rows"] = len(rows)
    source["tags"] = list(args.tag or ())
    source["replay"] = None

    progress_enabled = False if args.no_progress else None
    if args.replay:
        rows, source["replay"] = _replay(args, rows, base_metrics, progress_enabled)
    else:
        missing = [r.id for r in rows if r.response is None and r.output_messages is None and not r.documents]
        if missing:
            raise UsageError(f"{len(missing)} rows have no 'response' (first: {missing[0]}): add one, or generate them with --replay MODEL")

    with Progress(len(rows), "evaluate", enabled=progress_enabled) as bar:
        evaluated = evaluate_rows(rows, metrics, advance=bar.advance)
    report = report_mod.build(evaluated, metrics, source, prices)

    if args.json:
        _write(args.json, report_mod.dumps(report))
    if args.html:
        from micrometrics.offline.html import render

        _write(args.html, render(report, title=args.title))
    if args.json != "-" and not args.quiet:
        sys.stdout.write(terminal.render_report(report, colour=_colour(sys.stdout), failures=args.failures))
    for path, what in ((args.json, "JSON report"), (args.html, "HTML report")):
        if path and path != "-":
            print(f"{what}: {path}", file=sys.stderr)
    if args.push_datadog:
        return _push_datadog(evaluated)
    return EXIT_OK


def _push_datadog(evaluated: list) -> int:
    from micrometrics.offline.datadog_push import push

    try:
        pushed = push(evaluated)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(
        f"pushed {pushed.evaluations} evaluations of {pushed.spans} spans to {pushed.where}"
        + (f" ({pushed.unjoined} rows name no span)" if pushed.unjoined else ""),
        file=sys.stderr,
    )
    if not pushed.delivered:
        print("Datadog did not take every evaluation (see the warnings above); rerun to push again", file=sys.stderr)
        return EXIT_PUSH_FAILED
    return EXIT_OK


# ---- compare ----------------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from micrometrics.offline import compare as compare_mod, report as report_mod

    if not 0.0 <= args.max_regression <= 1.0:
        raise UsageError(f"--max-regression {args.max_regression}: a fraction between 0 and 1 (0.02 = 2 points)")
    if not 0.5 <= args.confidence < 1.0:
        raise UsageError(f"--confidence {args.confidence}: a level such as 0.95")
    try:
        baseline = report_mod.load(args.baseline)
        candidate = report_mod.load(args.candidate)
    except report_mod.ReportError as exc:
        raise UsageError(str(exc)) from exc
    result = compare_mod.compare(
        baseline, candidate, max_regression=args.max_regression, confidence=args.confidence,
        require_significant=args.require_significant, baseline_name=args.baseline, candidate_name=args.candidate,
    )
    if args.json:
        _write(args.json, json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    if args.json != "-":
        sys.stdout.write(compare_mod.render(result, colour=_colour(sys.stdout)))
    return EXIT_REGRESSION if result.regressions else EXIT_OK


# ---- metrics -------------------------------------------------------------------------------------------


def cmd_metrics(args: argparse.Namespace) -> int:
    import json

    from micrometrics.offline.report import metric_info
    from micrometrics.offline.terminal import render_metrics

    _, metrics = choose_metrics(args.metrics, args.metric)
    infos = [metric_info(m) for m in metrics]
    if args.json:
        sys.stdout.write(json.dumps(infos, indent=2) + "\n")
    else:
        config = os.environ.get("MICROMETRICS_CONFIG")
        if config:
            print(f"with settings from MICROMETRICS_CONFIG={config}", file=sys.stderr)
        sys.stdout.write(render_metrics(infos, colour=_colour(sys.stdout)))
        for m in infos:
            if m["overdue"]:
                print(f"warning: {m['name']} (owner: {m['owner'] or 'unknown'}) was due for review on {m['review_by']}: keep it (set a new review_by) or retire it", file=sys.stderr)
    return EXIT_OK


# ---- parser ----------------------------------------------------------------------------------------------


def _fraction(text: str) -> float:
    try:
        return float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (0.02 or 2%)") from None


def parser() -> argparse.ArgumentParser:
    from micrometrics import __version__

    p = argparse.ArgumentParser(prog="micrometrics", description="Run micro metrics offline, compare runs, list the configured metrics.")
    p.add_argument("--version", action="version", version=f"micrometrics {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{eval,compare,metrics}")

    def metric_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--metrics", metavar="SPEC", help="where your metrics are: FILE.py (its METRICS list), FILE.py:NAME or package.module:NAME; default: the built-in defaults")
        q.add_argument("--metric", action="append", metavar="NAME", help="run only this metric (repeatable); without --metrics, a built-in metric by name")

    e = sub.add_parser("eval", help="run metrics on a dataset (JSONL) or on recorded traces (OTLP JSON)",
                       description="Run micro metrics on every row of a dataset or on recorded spans, offline.")
    e.add_argument("dataset", nargs="?", help="JSONL dataset, one conversation per line (see docs/evaluation.md)")
    e.add_argument("--traces", metavar="FILE", help="re-evaluate spans exported as OTLP JSON (with content captured)")
    metric_options(e)
    e.add_argument("--tag", action="append", metavar="TAG", help="only rows with this tag (repeatable: any of them)")
    e.add_argument("--limit", type=int, metavar="N", help="only the first N rows")
    e.add_argument("--replay", metavar="MODEL", help="first send each row's messages to MODEL through the instrumented OpenAI client")
    e.add_argument("--system-prompt", metavar="FILE", help="with --replay: the system prompt to send instead of the rows' own")
    e.add_argument("--temperature", type=float, help="with --replay: the sampling temperature")
    e.add_argument("--concurrency", type=int, default=1, metavar="N", help="with --replay: requests in flight (default 1)")
    e.add_argument("--exporter", choices=("console", "otlp", "jaeger", "datadog", "none"), help="with --replay: where the replay's telemetry goes (default: the OTEL_* environment, else none)")
    e.add_argument("--capture-content", action="store_true", help="with --replay: export prompts and responses on the spans")
    e.add_argument("--traces-out", metavar="FILE", help="with --replay: also write the replay's spans as OTLP JSON lines")
    e.add_argument("--push-datadog", action="store_true", help="with --traces: send the results to Datadog LLM Observability as evaluations of the recorded spans (configured as exporter='datadog': DD_API_KEY, DD_SITE, MICROMETRICS_DATADOG_AGENTLESS, MICROMETRICS_DATADOG_EVALUATIONS)")
    e.add_argument("--json", metavar="FILE", help="write the run report as JSON ('-' for stdout); compare reads it")
    e.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    e.add_argument("--title", default="micrometrics evaluation", help="title of the HTML report")
    e.add_argument("--failures", type=int, default=10, metavar="N", help="failing rows to list in the terminal (default 10)")
    e.add_argument("--quiet", action="store_true", help="no terminal table")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="compare two run reports; exit 1 when a metric regressed beyond --max-regression",
                       description="Per metric: the change in pass rate with its confidence interval, and the rows that flipped.")
    c.add_argument("baseline", help="run report (JSON) of the baseline")
    c.add_argument("candidate", help="run report (JSON) of the candidate")
    c.add_argument("--max-regression", type=_fraction, default=0.0, metavar="FRACTION",
                   help="allowed drop in pass rate, e.g. 0.02 (= 2 points); default 0: any drop fails")
    c.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    c.add_argument("--require-significant", action="store_true", help="fail only when the whole interval is below zero too")
    c.add_argument("--json", metavar="FILE", help="write the comparison as JSON ('-' for stdout)")
    c.set_defaults(func=cmd_compare)

    m = sub.add_parser("metrics", help="list the configured metrics: mode, sample rate, owner, review date, cost",
                       description="The metrics instrument() would run, with MICROMETRICS_CONFIG applied.")
    metric_options(m)
    m.add_argument("--json", action="store_true", help="as JSON")
    m.set_defaults(func=cmd_metrics)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from micrometrics.metric_overrides import MetricsConfigError

    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except (UsageError, MetricsConfigError) as exc:
        print(f"micrometrics {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
