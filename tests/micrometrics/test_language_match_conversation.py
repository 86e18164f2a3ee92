"""LanguageMatch infers the expected language from the conversation so far, not only from the last message: a German
customer who ends with "OK" or "Danke!" (too short to tell a language by) still expects German."""

from __future__ import annotations

import openai
import pytest

from demo_server import _DE_REPLIES, INCIDENT_REPLY
from micrometrics.metric import CallView
from micrometrics.metrics import language
from micrometrics.metrics.language_match import LanguageMatch
from micrometrics.records import InferenceRecord, text_part

EARLIER = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Meine Bestellnummer ist 12345. Wo ist mein Paket?",
    "Warum dauert die Lieferung so lange?",
    "Kann ich die Lieferadresse noch ändern?",
]


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


def conversation(last: str) -> list[dict]:
    out = []
    for i, text in enumerate(EARLIER):
        out += [{"role": "user", "content": text}, {"role": "assistant", "content": _DE_REPLIES[i]}]
    return [*out, {"role": "user", "content": last}]


def view(messages: list[dict], answer: str) -> CallView:
    record = InferenceRecord(
        operation="chat", provider="openai", model="m",
        input_messages=[{"role": m["role"], "parts": [text_part(m["content"])]} for m in messages],
        output_messages=[{"role": "assistant", "parts": [text_part(answer)], "finish_reason": "stop"}],
    )
    return CallView(record)


@pytest.mark.parametrize("last", ["OK", "Danke!", "ok 👍"])
def test_a_short_last_turn_takes_the_language_of_the_earlier_turns(last):
    metric = LanguageMatch()
    alone = metric.evaluate(view([{"role": "user", "content": last}], INCIDENT_REPLY))
    assert alone.label == "undetermined" or alone.details.get("expected") != "de"  # the last turn alone says no German
    result = metric.evaluate(view(conversation(last), INCIDENT_REPLY))
    assert result.label == "mismatch"
    assert result.details["expected"] == "de" and result.details["expected_source"] == "inferred"
    assert metric.evaluate(view(conversation(last), _DE_REPLIES[4])).label == "match"


def test_the_guard_retries_a_conversation_that_ends_with_danke(demo, telemetry):
    """Turn five is "Danke!": the demo model slips into English; the guard expects German from the earlier turns."""
    telemetry.instrument(metrics=[LanguageMatch(mode="guard", max_retries=1)])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=conversation("Danke!"))
    assert reply.choices[0].message.content != INCIDENT_REPLY
    first, retry = sorted(telemetry.spans(), key=lambda s: s.start_time)
    assert first.attributes["micrometrics.language_match.label"] == "mismatch"
    assert first.attributes["micrometrics.language_match.expected"] == "de"
    assert retry.attributes["micrometrics.attempt"] == 2 and retry.attributes["micrometrics.language_match.label"] == "match"
