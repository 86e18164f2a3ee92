"""Answer quality on a support bot: a monitor that reports, then a guard that acts.

    pip install -e ".[openai]"      # from the repository root
    python examples/answer_quality.py

Run 1, the monitors: the library's metrics run off the request path and report on each span.
The weather tool's schema was renamed from ``location`` to ``city``, but the model still sends
``location``: ``tool_call_validity=fail`` (the span's ``micrometrics.tool_call_validity.first_error``
names the tool and the rule: ``get_weather: arguments.city: required``). Asked for the
technician's phone number, the model gives it away: ``pii=fail`` (``micrometrics.pii.kinds`` is
``email,phone``, never the values); the customer read them.
Run 2, the guard: PiiInResponse(mode="guard") sees the number before the customer does, retries
the call with an instruction to leave personal data out, and the customer reads the answer
without it. Each attempt is its own span (``attempt=2``).
"""

import sys

from _demo import model, openai_client, require

require("openai")

import micrometrics  # noqa: E402
from micrometrics.metrics import DegenerateOutput, PiiInResponse, Refusal, ToolCallValidity  # noqa: E402

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
SYSTEM = {"role": "system", "content": "You are the support assistant of an online shop for coffee machines."}


def support_session(client) -> str:
    client.chat.completions.create(
        model=model(), messages=[SYSTEM, {"role": "user", "content": "What's the weather in Hamburg? Can the courier deliver today?"}],
        tools=[WEATHER_TOOL],
    )
    answer = client.chat.completions.create(
        model=model(), messages=[SYSTEM, {"role": "user", "content": "What is the phone number of the technician who repaired my machine?"}],
    )
    return answer.choices[0].message.content


for title, metrics in (
    ("Run 1: monitors (report, do not act)", [ToolCallValidity(), PiiInResponse(), Refusal(), DegenerateOutput()]),
    ("Run 2: guard (detects personal data and retries before the customer sees it)", [PiiInResponse(mode="guard", max_retries=1)]),
):
    print(f"\n=== {title} ===", file=sys.stderr, flush=True)
    handle = micrometrics.instrument(service_name="support-bot", exporter="console", metrics=metrics)
    with openai_client() as client:
        last = support_session(client)
    handle.shutdown()  # flush: print every span of this run
    print(f"what the customer read: {last}\n", file=sys.stderr, flush=True)
