"""The incident, reproduced: a German support chat answered in English at turn five.

    pip install -e ".[openai]"      # from the repository root
    python examples/language_guard.py

Run 1, the monitor: LanguageMatch runs off the request path and reports
``language_match=mismatch`` on the fifth turn's span; the user got English.
Run 2, the guard: LanguageMatch(mode="guard") detects the wrong language in
milliseconds, retries the call with a corrective instruction, and the user gets
German. Each attempt is its own span (``attempt=2``).
"""

import sys

from _demo import model, openai_client, require

require("openai")

import micrometrics  # noqa: E402
from micrometrics.metrics import LanguageMatch  # noqa: E402

TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 4711, bitte prüfen Sie den Status.",
    "Danke. Wann kommt das Paket denn an?",
    "Kann ich die Lieferadresse noch ändern?",
    "Und wie lange dauert die Rücksendung, wenn mir etwas nicht passt?",
]


def conversation(client) -> str:
    messages = [{"role": "system", "content": "You are the support assistant of an online shop."}]
    answer = ""
    for turn in TURNS:
        messages.append({"role": "user", "content": turn})
        answer = client.chat.completions.create(model=model(), messages=messages).choices[0].message.content
        messages.append({"role": "assistant", "content": answer})
    return answer


for title, metric in (
    ("Run 1: monitor (reports, does not act)", LanguageMatch()),
    ("Run 2: guard (detects and retries before the user sees it)", LanguageMatch(mode="guard", max_retries=1)),
):
    print(f"\n=== {title} ===", file=sys.stderr, flush=True)
    handle = micrometrics.instrument(service_name="support-bot", exporter="console", metrics=[metric])
    with openai_client() as client:
        last = conversation(client)
    handle.shutdown()  # flush: print every span of this run
    print(f"turn 5, what the customer read: {last}\n", file=sys.stderr, flush=True)
