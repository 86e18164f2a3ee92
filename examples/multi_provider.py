"""One support question, many providers, the same telemetry.

    pip install -e ".[openai,anthropic,google-genai,bedrock]"      # from the repository root
    pip install -e ".[mistral,cohere,ollama,groq,litellm]" # optional: five more clients
    python examples/multi_provider.py

Asks OpenAI, Anthropic, Google Gen AI and Amazon Bedrock the same German support question,
each with its own client library as an app would (boto3 for Bedrock), instrumented by the same one line;
then Mistral, Cohere, Ollama and Groq, those whose library is installed, and the same question through the
LiteLLM gateway library (one span per call: LiteLLM's, not a second one for the OpenAI client under it).
A provider uses its real API when its key is set (OPENAI_API_KEY, ANTHROPIC_API_KEY,
GOOGLE_API_KEY or GEMINI_API_KEY, AWS_ACCESS_KEY_ID or AWS_PROFILE with AWS_REGION, MISTRAL_API_KEY, CO_API_KEY, GROQ_API_KEY; for
Ollama, OLLAMA_HOST names the server); otherwise the local demo server answers, which
speaks all their wire formats, so the example runs offline. The console exporter
prints one span per provider on stderr: the same span shape, token usage, finish
reasons and micro metrics, whichever provider answered.

Models: MICROMETRICS_OPENAI_MODEL, MICROMETRICS_ANTHROPIC_MODEL, MICROMETRICS_GEMINI_MODEL, MICROMETRICS_BEDROCK_MODEL,
MICROMETRICS_MISTRAL_MODEL, MICROMETRICS_COHERE_MODEL, MICROMETRICS_OLLAMA_MODEL, MICROMETRICS_GROQ_MODEL,
MICROMETRICS_LITELLM_MODEL (a LiteLLM model string, ``openai/gpt-4.1-mini`` by default).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo import require  # noqa: E402

require("openai", "anthropic", "google-genai", "boto3")

import micrometrics  # noqa: E402

micrometrics.instrument(service_name="support-bot", exporter="console")

import anthropic  # noqa: E402
import boto3  # noqa: E402
import openai  # noqa: E402
from google import genai  # noqa: E402

QUESTION = "Hallo! Ich habe letzte Woche eine Bestellung aufgegeben, die Nummer ist 4711. Wo ist mein Paket?"
SYSTEM = "You are the friendly support assistant of an online shop. Answer in the customer's language."


#: The optional clients: (module, the variable that points it at the real service).
MORE = {"mistralai": "MISTRAL_API_KEY", "cohere": "CO_API_KEY", "ollama": "OLLAMA_HOST", "groq": "GROQ_API_KEY", "litellm": "OPENAI_API_KEY"}
INSTALLED = [name for name in MORE if importlib.util.find_spec(name) is not None]


def clients(stack: ExitStack) -> tuple[openai.OpenAI, anthropic.Anthropic, genai.Client, Any, Any]:
    """Real clients where a key is set, clients of one local demo server for the others."""
    google_key = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    server = None
    aws = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
    real = [os.environ.get("OPENAI_API_KEY"), os.environ.get("ANTHROPIC_API_KEY"), google_key, aws, *(os.environ.get(MORE[n]) for n in INSTALLED)]
    if not all(real):
        from demo_server import DemoServer

        server = stack.enter_context(DemoServer(chunk_delay=0.01))
        print(f"(providers without an API key use the local demo server at {server.base_url})\n", file=sys.stderr)

    if os.environ.get("OPENAI_API_KEY"):
        openai_client = openai.OpenAI()
    else:
        openai_client = openai.OpenAI(base_url=server.openai_base_url, api_key="demo", max_retries=0)
    if os.environ.get("ANTHROPIC_API_KEY"):
        anthropic_client = anthropic.Anthropic()
    else:
        anthropic_client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="demo", max_retries=0)
    if google_key:
        google_client = genai.Client(api_key=google_key)
    else:
        google_client = genai.Client(api_key="demo", http_options={"base_url": server.google_base_url})
    if aws:
        bedrock_client = boto3.client("bedrock-runtime", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    else:
        bedrock_client = boto3.client("bedrock-runtime", endpoint_url=server.base_url, region_name="us-east-1",
                                      aws_access_key_id="demo", aws_secret_access_key="demo")
    return openai_client, anthropic_client, google_client, bedrock_client, server


def more_providers(server: Any) -> None:
    """Mistral, Cohere, Ollama and Groq, each through its own client library, and LiteLLM: one span each, the same shape."""
    def local(variable: str) -> bool:
        return not os.environ.get(variable)

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    if "mistralai" in INSTALLED:  # a plain chat completion
        from mistralai.client import Mistral

        mistral = Mistral(api_key="demo", server_url=server.mistral_base_url) if local("MISTRAL_API_KEY") else Mistral(api_key=os.environ["MISTRAL_API_KEY"])
        reply = mistral.chat.complete(model=os.environ.get("MICROMETRICS_MISTRAL_MODEL", "mistral-small-latest"), messages=messages)
        print(f"mistral:   {reply.choices[0].message.content}\n")
    if "cohere" in INSTALLED:  # a streamed chat (API v2)
        import cohere

        co = cohere.ClientV2(api_key="demo", base_url=server.cohere_base_url, max_retries=0) if local("CO_API_KEY") else cohere.ClientV2()
        print("cohere:    ", end="")
        for event in co.chat_stream(model=os.environ.get("MICROMETRICS_COHERE_MODEL", "command-a-03-2025"), messages=messages):
            if event.type == "content-delta":
                print(event.delta.message.content.text, end="", flush=True)
        print("\n")
    if "ollama" in INSTALLED:  # a local model, streamed
        import ollama

        local_model = ollama.Client(host=server.ollama_host) if local("OLLAMA_HOST") else ollama.Client()
        print("ollama:    ", end="")
        for chunk in local_model.chat(os.environ.get("MICROMETRICS_OLLAMA_MODEL", "llama3.2"), messages, stream=True):
            print(chunk.message.content, end="", flush=True)
        print("\n")
    if "groq" in INSTALLED:  # the OpenAI wire format, Groq's SDK
        import groq

        gq = groq.Groq(api_key="demo", base_url=server.groq_base_url, max_retries=0) if local("GROQ_API_KEY") else groq.Groq()
        reply = gq.chat.completions.create(model=os.environ.get("MICROMETRICS_GROQ_MODEL", "llama-3.3-70b-versatile"), messages=messages)
        print(f"groq:      {reply.choices[0].message.content}\n")
    if "litellm" in INSTALLED:  # a gateway library over the OpenAI client: one span, LiteLLM's
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import
        import litellm

        route = {"api_base": server.openai_base_url, "api_key": "demo"} if local("OPENAI_API_KEY") else {}
        reply = litellm.completion(model=os.environ.get("MICROMETRICS_LITELLM_MODEL", "openai/gpt-4.1-mini"), messages=messages, **route)
        print(f"litellm:   {reply.choices[0].message.content}\n")


with ExitStack() as stack:
    openai_client, anthropic_client, google_client, bedrock_client, server = clients(stack)

    # OpenAI: a plain chat completion.
    reply = openai_client.chat.completions.create(
        model=os.environ.get("MICROMETRICS_OPENAI_MODEL", "gpt-4o-mini"),
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
    )
    print(f"openai:    {reply.choices[0].message.content}\n")

    # Anthropic: the streaming helper; the span ends when the stream does.
    print("anthropic: ", end="")
    with anthropic_client.messages.stream(
        model=os.environ.get("MICROMETRICS_ANTHROPIC_MODEL", "claude-haiku-4-5"),
        max_tokens=400,
        system=SYSTEM,
        messages=[{"role": "user", "content": QUESTION}],
    ) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
    print("\n")

    # Google Gen AI: a streamed generate_content.
    print("gemini:    ", end="")
    for chunk in google_client.models.generate_content_stream(
        model=os.environ.get("MICROMETRICS_GEMINI_MODEL", "gemini-2.5-flash"),
        contents=QUESTION,
        config={"system_instruction": SYSTEM},
    ):
        print(chunk.text or "", end="", flush=True)
    print("\n")

    # Amazon Bedrock through boto3: a streamed Converse call (any model Bedrock hosts, one request shape).
    print("bedrock:   ", end="")
    response = bedrock_client.converse_stream(
        modelId=os.environ.get("MICROMETRICS_BEDROCK_MODEL", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        system=[{"text": SYSTEM}],
        messages=[{"role": "user", "content": [{"text": QUESTION}]}],
        inferenceConfig={"maxTokens": 400},
    )
    for event in response["stream"]:
        print(event.get("contentBlockDelta", {}).get("delta", {}).get("text", ""), end="", flush=True)
    print("\n")

    more_providers(server)

    micrometrics.uninstrument()  # flushes: the monitors' results, then one span line per provider
