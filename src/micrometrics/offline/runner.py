"""Offline runs: the configured MicroMetric objects, evaluated by ``micrometrics.evaluation`` on records built from rows.

No metric is reimplemented here: each row becomes the call records an instrumentation
would have built online, and ``micrometrics.evaluation.evaluate`` runs each metric on a
``CallView`` of them, exactly as the monitors worker does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from micrometrics import evaluation
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics.offline.dataset import Row, calls
from micrometrics.reading import provider_for_host
from micrometrics.records import message_text
from micrometrics_semconv import values as V


@dataclass
class Evaluated:
    """One row and the result of every metric that applied to it, by metric name."""

    row: Row
    results: dict[str, Result] = field(default_factory=dict)


def evaluate_row(row: Row, metrics: Sequence[MicroMetric]) -> Evaluated:
    out = Evaluated(row)
    if row.error is not None:
        # The replay failed: every inference metric reports it, so the run shows the gap.
        for m in metrics:
            if any(op in m.applies_to for op in ("chat", "text_completion", "generate_content")):
                out.results[m.name] = Result("error", explanation=f"replay failed: {row.error}"[:500])
        return out
    for call in calls(row):
        record = call.record
        view = CallView(record, call)
        for m in metrics:
            if record.operation not in m.applies_to:
                continue
            result, _ = evaluation.evaluate(m, view)
            if result is None:
                continue
            key = m.name if m.name not in out.results else f"{m.name}@{record.operation}"
            out.results[key] = result
    return out


def evaluate_rows(rows: Sequence[Row], metrics: Sequence[MicroMetric], advance: Callable[[], None] | None = None) -> list[Evaluated]:
    """Every metric on every row; sample rates are a production cost control and do not apply offline."""
    out = []
    for row in rows:
        out.append(evaluate_row(row, metrics))
        if advance is not None:
            advance()
    return out


# ---- replay ---------------------------------------------------------------------------------


def openai_messages(row: Row, system_prompt: str | None) -> list[dict[str, Any]]:
    """The row's conversation as OpenAI chat messages; ``system_prompt`` replaces the row's own."""
    out: list[dict[str, Any]] = []
    if system_prompt is not None:
        out.append({"role": "system", "content": system_prompt})
    elif row.system_instructions:
        out.append({"role": "system", "content": "\n".join(p.get("content") or "" for p in row.system_instructions if p.get("type") == "text")})
    for m in row.messages:
        role = m.get("role")
        if role == "system" and system_prompt is not None:
            continue
        if role == "tool":
            continue  # a replayed conversation has no pending tool call to answer
        out.append({"role": role, "content": message_text(m)})
    # A trailing assistant turn is the old answer: the replay asks for a new one.
    while out and out[-1]["role"] == "assistant":
        out.pop()
    return out


def replay_row(client: Any, row: Row, model: str, system_prompt: str | None, **params: Any) -> Row:
    """Send the row's conversation to ``model`` through the (instrumented) client."""
    import micrometrics

    context: dict[str, Any] = {"conversation_id": row.id}
    if row.expected_language:
        context["expected_language"] = row.expected_language
    try:
        with micrometrics.context(**context):
            response = client.chat.completions.create(model=model, messages=openai_messages(row, system_prompt), **params)
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content if choice is not None else None) or ""
        usage = getattr(response, "usage", None)
        fields: dict[str, Any] = {"response_model": getattr(response, "model", None) or model}
        if choice is not None and choice.finish_reason:
            fields["finish_reasons"] = [str(choice.finish_reason)]
        if usage is not None:
            fields["input_tokens"] = getattr(usage, "prompt_tokens", None)
            fields["output_tokens"] = getattr(usage, "completion_tokens", None)
            fields["cache_read_tokens"] = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
            fields["reasoning_tokens"] = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None)
        # The provider as the instrumentation names it (an OpenAI-compatible host has its own prices).
        provider = provider_for_host(getattr(getattr(client, "base_url", None), "host", None), V.PROVIDER_OPENAI)
        return replace(row.with_response(text, model, **fields), provider=provider)
    except Exception as exc:  # one failed row must not lose the run
        return row.with_response(None, model, error=f"{type(exc).__name__}: {exc}"[:300])


def replay(
    client: Any,
    rows: Sequence[Row],
    model: str,
    system_prompt: str | None = None,
    concurrency: int = 1,
    advance: Callable[[], None] | None = None,
    **params: Any,
) -> list[Row]:
    """New responses for every row, in row order."""

    def one(row: Row) -> Row:
        new = replay_row(client, row, model, system_prompt, **params)
        if advance is not None:
            advance()
        return new

    if concurrency <= 1:
        return [one(r) for r in rows]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="micrometrics-replay") as pool:
        return list(pool.map(one, rows))


def find_demo_server() -> Path | None:
    """``examples/demo_server.py`` of a source checkout: from the working directory up, then beside the package."""
    candidates = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for base in candidates:
        path = base / "examples" / "demo_server.py"
        if path.is_file():
            return path
    return None


class ReplayTarget:
    """Where ``--replay`` sends requests: OPENAI_BASE_URL, OpenAI itself, or the local demo server."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.api_key = env.get("OPENAI_API_KEY") or None
        self.base_url = env.get("OPENAI_BASE_URL") or None
        self.demo: Any = None
        self.description = self.base_url or "https://api.openai.com/v1"

    def __enter__(self) -> "ReplayTarget":
        if self.api_key is None and self.base_url is None:
            path = find_demo_server()
            if path is None:
                raise RuntimeError(
                    "--replay needs a model server: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server), "
                    "or run from a checkout of micrometrics, whose examples/demo_server.py then answers"
                )
            spec = importlib.util.spec_from_file_location("micrometrics_demo_server", path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[spec.name] = module  # type: ignore[union-attr]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            self.demo = module.DemoServer().start()
            self.base_url = self.demo.openai_base_url
            self.description = f"the demo server ({path}) at {self.base_url}"
        return self

    def client(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise RuntimeError("--replay needs the openai package: pip install 'micrometrics[openai]'") from exc
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "sk-micrometrics-replay", max_retries=2)

    def __exit__(self, *exc: object) -> None:
        if self.demo is not None:
            self.demo.stop()
            self.demo = None


# ---- choosing metrics -------------------------------------------------------------------------


def load_metrics(spec: str) -> list[MicroMetric]:
    """``path/to/metrics.py`` (its ``METRICS`` list), ``path.py:NAME`` or ``package.module:NAME``."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        target, attr = spec, "METRICS"
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"--metrics {spec}: no such file {path}")
        mod_name = f"micrometrics_user_metrics_{abs(hash(str(path.resolve())))}"
        spec_ = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec_)  # type: ignore[arg-type]
        sys.modules[mod_name] = module
        spec_.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        module = importlib.import_module(target)
    value = getattr(module, attr, None)
    if value is None:
        raise ValueError(f"--metrics {spec}: {target} defines no {attr} (a list of MicroMetric instances)")
    if callable(value) and not isinstance(value, MicroMetric):
        value = value()
    metrics = list(value) if not isinstance(value, MicroMetric) else [value]
    for m in metrics:
        if not isinstance(m, MicroMetric):
            raise ValueError(f"--metrics {spec}: {m!r} is not a MicroMetric instance")
        m.validate()
    return metrics
