"""The quickstart's support chat, sent to Jaeger: five German turns, the fifth answered in English.

    pip install -e ".[openai]"      # from the repository root
    docker compose -f examples/jaeger/compose.yaml up -d
    python examples/jaeger/support_chat.py
    open http://localhost:16686  (service "support-bot")

Uses OpenAI when OPENAI_API_KEY is set, else the local demo server (whose bot slips into
English at the fifth German turn: the incident ``language_match`` catches).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _demo import require  # noqa: E402

require("openai")

import micrometrics  # noqa: E402

# gRPC to localhost:4317; endpoint=, protocol= or OTEL_EXPORTER_OTLP_ENDPOINT point elsewhere.
handle = micrometrics.instrument(service_name="support-bot", exporter="jaeger")

from _demo import model, openai_client  # noqa: E402

TURNS = [
    "Hallo! Ich habe letzte Woche eine Bestellung aufgegeben.",
    "Die Bestellnummer ist 4711. Wo ist mein Paket?",
    "Können Sie nachsehen, wann es ankommt?",
    "Und kann ich die Lieferadresse noch ändern?",
    "Vielen Dank! Eine letzte Frage: kann ich auch per Rechnung zahlen?",
]

with openai_client() as client:
    messages = [{"role": "system", "content": "You are a friendly support agent."}]
    for turn in TURNS:
        messages.append({"role": "user", "content": turn})
        reply = client.chat.completions.create(model=model(), messages=messages)
        answer = reply.choices[0].message.content
        messages.append({"role": "assistant", "content": answer})
        print(f"user: {turn}\nbot:  {answer}\n")

ok = handle.force_flush()
print("sent to Jaeger: open http://localhost:16686 and pick the service 'support-bot'" if ok else
      "Jaeger did not answer: is it running? (docker compose -f examples/jaeger/compose.yaml up -d)")
micrometrics.uninstrument()
