"""Quickstart: a short multi-turn support chat, instrumented in one line.

    pip install -e ".[openai]"      # from the repository root
    python examples/quickstart.py

Uses OpenAI when OPENAI_API_KEY is set, else the local demo server. With the default
console exporter each call prints one line on stderr: the span, its tokens, and the
micro-metric labels. ``MICROMETRICS_EXPORTER=jaeger`` (or ``otlp``, ``datadog``) sends
the same telemetry to a backend instead.
"""

from _demo import model, openai_client, require

require("openai")

import micrometrics  # noqa: E402

micrometrics.instrument(service_name="support-bot")

TURNS = [
    "Hallo! Ich habe letzte Woche eine Bestellung aufgegeben.",
    "Die Bestellnummer ist 4711. Wo ist mein Paket?",
]

with openai_client() as client:
    messages = [{"role": "system", "content": "You are a friendly support agent. Answer in the customer's language."}]
    for turn in TURNS:
        messages.append({"role": "user", "content": turn})
        reply = client.chat.completions.create(model=model(), messages=messages)
        answer = reply.choices[0].message.content
        messages.append({"role": "assistant", "content": answer})
        print(f"user: {turn}\nbot:  {answer}\n")

    # Streaming works the same way: the span ends when the stream does.
    messages.append({"role": "user", "content": "Danke! Können Sie mir die Lieferadresse bestätigen?"})
    print("bot (streamed): ", end="")
    for chunk in client.chat.completions.create(model=model(), messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print("\n")

micrometrics.uninstrument()  # flushes pending metrics, prints the last spans
