"""The retrieval tests' knowledge base, and the chat answers the demo server is scripted with."""

from __future__ import annotations

#: A tiny support knowledge base: ids are what the labels and citations refer to.
CORPUS = {
    "refund-policy": "Refunds are issued within 14 days of receiving the returned item.",
    "shipping-germany": "Shipping to Germany takes 3 to 5 business days with DHL.",
    "shipping-costs": "Shipping costs 4.90 euros; orders over 50 euros ship free.",
    "office-berlin": "Our office is in Berlin and open Monday to Friday.",
    "warranty": "Every device has a two year warranty against manufacturing defects.",
}
SHIPPING_QUESTION = "How long does shipping to Germany take?"


def chat_completion(text: str, model: str = "gpt-4o-mini") -> dict:
    """An OpenAI chat completion body for ``demo.enqueue(json=...)``: the answer a test needs."""
    words = len(text.split())
    return {
        "id": "chatcmpl-rag",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": words, "total_tokens": 40 + words},
    }
