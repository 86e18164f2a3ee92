"""The OpenAI chunk accumulator on real ``ChatCompletionChunk``s parsed from wire JSON: reasoning that
OpenAI-compatible servers add as an extra delta field (``reasoning_content``, ``reasoning``) ends the
text part (what a streaming guard waits for), read without pydantic's exception path."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from micrometrics.records import InferenceRecord
from micrometrics_instrumentation.openai.translators import ChatAccumulator

chunk_types = pytest.importorskip("openai.types.chat")


def chunk(delta: dict, finish_reason: str | None = None) -> object:
    return chunk_types.ChatCompletionChunk.model_validate(
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    )


def accumulate(chunks: list) -> ChatAccumulator:
    acc = ChatAccumulator(InferenceRecord(operation="chat", provider="openai", model="m"))
    for c in chunks:
        acc.add(c)
    return acc


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_extra_field_is_non_text(field: str) -> None:
    acc = accumulate([chunk({"role": "assistant", "content": ""}), chunk({field: "The user writes German."})])
    assert acc.non_text is True
    assert acc.text == ""


def test_plain_text_stays_text() -> None:
    acc = accumulate([chunk({"content": "Hallo"}), chunk({"content": " Welt"}), chunk({}, "stop")])
    assert acc.non_text is False
    assert acc.text == "Hallo Welt"


@pytest.mark.parametrize("value", [None, "", 42, ["x"]])
def test_empty_or_malformed_reasoning_is_not_non_text(value: object) -> None:
    assert accumulate([chunk({"content": "Hallo", "reasoning_content": value})]).non_text is False


def test_duck_typed_chunks_are_read_too() -> None:
    delta = SimpleNamespace(content="", tool_calls=None, refusal=None, reasoning="plan")
    acc = accumulate([SimpleNamespace(id="c", model="m", usage=None, choices=[SimpleNamespace(index=0, delta=delta, finish_reason=None)])])
    assert acc.non_text is True
