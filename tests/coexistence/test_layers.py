"""uninstrument() takes micrometrics' own layer off a method, wherever it is, and leaves the application's wrappers."""

from __future__ import annotations

import openai
import wrapt
from openai.resources.chat.completions import Completions

import micrometrics
from micrometrics_instrumentation import layers

MESSAGES = [{"role": "user", "content": "Hallo, wo ist meine Bestellung?"}]


def test_an_application_wrapper_added_after_instrument_survives_uninstrument(demo, telemetry):
    telemetry.instrument(metrics=[])
    seen = []

    def audit(wrapped, instance, args, kwargs):  # the application's own wrapper, e.g. an audit log
        seen.append(kwargs["model"])
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(Completions, "create", audit)
    try:
        client = openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert [s.name for s in telemetry.spans()] == ["chat gpt-4o-mini"]
        micrometrics.uninstrument()
        # `unwrap` would have taken the outermost layer, the application's, and left ours.
        assert [fn for fn, _ in layers.chain(Completions, "create")[0]] == [audit]
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert seen == ["gpt-4o-mini", "gpt-4o-mini"]
        assert [s.name for s in telemetry.spans()] == ["chat gpt-4o-mini"]  # no new span of ours
    finally:
        setattr(Completions, "create", layers.chain(Completions, "create")[1])  # the application's wrapper off


def test_an_application_wrapper_is_not_gated_and_our_layer_stays_where_it_is(demo, telemetry):
    """Only other GenAI instrumentations' layers stand down; a plain wrapper runs as the application wrote it."""
    telemetry.instrument(metrics=[])
    seen = []

    def audit(wrapped, instance, args, kwargs):
        seen.append(1)
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(Completions, "create", audit)
    try:
        assert not layers.ours_innermost(Completions, "create")
        openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert seen == [1]
        assert [s.name for s in telemetry.spans()] == ["chat gpt-4o-mini"]
    finally:
        micrometrics.uninstrument()
        setattr(Completions, "create", layers.chain(Completions, "create")[1])
