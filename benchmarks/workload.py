"""What every benchmark mode runs: the same OpenAI client, the same canned answers, the same telemetry sink.

The client talks to an in-process httpx2 transport, so the only code measured is the
``openai`` client and the instrumentation under test. Every mode exports through one
``BatchSpanProcessor`` into memory; metrics go to an in-memory reader, logs to a batch
processor into memory.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Sequence

MODEL = "gpt-4o-mini"
STREAM_CHUNKS = 50

#: A German support conversation: LanguageMatch infers "de" from the user and checks the answer.
MESSAGES = [
    {"role": "system", "content": "Du bist ein hilfsbereiter Kundenservice-Assistent eines Onlineshops."},
    {"role": "user", "content": "Hallo, ich habe vor zwei Wochen eine Bestellung aufgegeben und sie ist immer noch nicht angekommen. Können Sie mir helfen?"},
]

#: A realistic answer of about 300 characters (German, like the conversation).
ANSWER = (
    "Das tut mir leid zu hören! Ich habe Ihre Bestellung überprüft: Das Paket wurde am Montag "
    "verschickt, liegt aber seit drei Tagen im Verteilzentrum. Ich habe beim Versanddienstleister "
    "eine Nachforschung eingeleitet. Sie erhalten innerhalb von 48 Stunden eine E-Mail mit dem "
    "neuen Liefertermin. Kann ich sonst noch etwas für Sie tun?"
)

_CREATED = 1767225600

#: Support answers in seven languages, to cut into many distinct ~300-character responses.
CORPUS = {
    "en": (
        "Thank you for your patience. I have checked your order and the parcel left our warehouse on Monday, "
        "but it has been waiting at the regional sorting centre for three days. I have opened an investigation "
        "with the carrier and you will receive an email with the new delivery date within 48 hours. If the "
        "parcel does not arrive by Friday, we will send a replacement free of charge or refund the full amount, "
        "whichever you prefer. You can also follow the shipment at any time in your customer account under "
        "Orders. Is there anything else I can help you with today? We are happy to help with returns, invoices "
        "and questions about your warranty as well."
    ),
    "de": (
        "Vielen Dank für Ihre Geduld. Ich habe Ihre Bestellung überprüft: Das Paket hat unser Lager am Montag "
        "verlassen, liegt aber seit drei Tagen im regionalen Verteilzentrum. Ich habe beim Versanddienstleister "
        "eine Nachforschung eingeleitet, und Sie erhalten innerhalb von 48 Stunden eine E-Mail mit dem neuen "
        "Liefertermin. Sollte das Paket bis Freitag nicht ankommen, schicken wir Ihnen kostenlos Ersatz oder "
        "erstatten den vollen Betrag, ganz wie Sie möchten. Sie können die Sendung jederzeit in Ihrem "
        "Kundenkonto unter Bestellungen verfolgen. Kann ich sonst noch etwas für Sie tun? Wir helfen auch gern "
        "bei Rücksendungen, Rechnungen und Fragen zur Garantie."
    ),
    "fr": (
        "Merci pour votre patience. J'ai vérifié votre commande : le colis a quitté notre entrepôt lundi, mais "
        "il attend depuis trois jours au centre de tri régional. J'ai ouvert une enquête auprès du transporteur "
        "et vous recevrez dans les 48 heures un e-mail avec la nouvelle date de livraison. Si le colis n'arrive "
        "pas d'ici vendredi, nous vous enverrons gratuitement un remplacement ou nous vous rembourserons "
        "intégralement, comme vous le préférez. Vous pouvez aussi suivre l'envoi à tout moment dans votre "
        "compte client, rubrique Commandes. Puis-je vous aider pour autre chose aujourd'hui ? Nous répondons "
        "aussi volontiers à vos questions sur les retours, les factures et la garantie."
    ),
    "es": (
        "Gracias por su paciencia. He revisado su pedido: el paquete salió de nuestro almacén el lunes, pero "
        "lleva tres días esperando en el centro de clasificación regional. He abierto una investigación con la "
        "empresa de transporte y recibirá en las próximas 48 horas un correo con la nueva fecha de entrega. Si "
        "el paquete no llega antes del viernes, le enviaremos un reemplazo sin coste o le devolveremos el "
        "importe completo, como usted prefiera. También puede seguir el envío en cualquier momento desde su "
        "cuenta de cliente, en el apartado Pedidos. ¿Puedo ayudarle con algo más hoy? Con gusto le ayudamos "
        "también con devoluciones, facturas y preguntas sobre la garantía."
    ),
    "it": (
        "Grazie per la pazienza. Ho controllato il suo ordine: il pacco è partito dal nostro magazzino lunedì, "
        "ma da tre giorni è fermo nel centro di smistamento regionale. Ho aperto una verifica con il corriere e "
        "entro 48 ore riceverà un'email con la nuova data di consegna. Se il pacco non arriva entro venerdì, le "
        "invieremo gratuitamente un prodotto sostitutivo oppure le rimborseremo l'intero importo, come "
        "preferisce. Può anche seguire la spedizione in qualsiasi momento dal suo account cliente, nella "
        "sezione Ordini. Posso aiutarla in qualcos'altro oggi? Siamo felici di aiutarla anche con resi, "
        "fatture e domande sulla garanzia."
    ),
    "pt": (
        "Obrigado pela sua paciência. Verifiquei a sua encomenda: a embalagem saiu do nosso armazém na "
        "segunda-feira, mas está parada há três dias no centro de distribuição regional. Abri uma investigação "
        "junto da transportadora e vai receber, dentro de 48 horas, um e-mail com a nova data de entrega. Se a "
        "encomenda não chegar até sexta-feira, enviamos gratuitamente uma substituição ou devolvemos o valor "
        "total, como preferir. Também pode acompanhar o envio a qualquer momento na sua conta de cliente, na "
        "secção Encomendas. Posso ajudar em mais alguma coisa hoje? Ajudamos com todo o gosto em devoluções, "
        "faturas e questões sobre a garantia."
    ),
    "nl": (
        "Bedankt voor uw geduld. Ik heb uw bestelling gecontroleerd: het pakket heeft ons magazijn maandag "
        "verlaten, maar ligt al drie dagen in het regionale sorteercentrum. Ik heb een onderzoek gestart bij de "
        "vervoerder en u ontvangt binnen 48 uur een e-mail met de nieuwe leverdatum. Als het pakket vrijdag nog "
        "niet binnen is, sturen we u kosteloos een vervanging of betalen we het volledige bedrag terug, net wat "
        "u wilt. U kunt de zending ook altijd volgen in uw klantaccount onder Bestellingen. Kan ik u vandaag nog "
        "ergens anders mee helpen? We helpen u ook graag met retouren, facturen en vragen over de garantie."
    ),
}


#: The user's question in each corpus language (LanguageMatch infers the expected language from it).
QUESTIONS = {
    "en": "Hello, I ordered a coffee machine two weeks ago and it still has not arrived. Can you tell me where my parcel is?",
    "de": "Hallo, ich habe vor zwei Wochen eine Kaffeemaschine bestellt und sie ist immer noch nicht da. Wo ist mein Paket?",
    "fr": "Bonjour, j'ai commandé une machine à café il y a deux semaines et elle n'est toujours pas arrivée. Où est mon colis ?",
    "es": "Hola, pedí una cafetera hace dos semanas y todavía no ha llegado. ¿Me puede decir dónde está mi paquete?",
    "it": "Buongiorno, ho ordinato una macchina del caffè due settimane fa e non è ancora arrivata. Dov'è il mio pacco?",
    "pt": "Olá, encomendei uma máquina de café há duas semanas e ainda não chegou. Pode dizer-me onde está a minha encomenda?",
    "nl": "Hallo, ik heb twee weken geleden een koffiezetapparaat besteld en het is nog steeds niet aangekomen. Waar is mijn pakket?",
}


def responses(count: int, size: int = 300, languages: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``count`` distinct (language, text) pairs of about ``size`` characters, cut at word boundaries."""
    langs = list(languages or CORPUS)
    out: list[tuple[str, str]] = []
    offset = 0
    while len(out) < count:
        for lang in langs:
            words = CORPUS[lang].split(" ")
            start = offset % max(1, len(words) - 60)
            text, i = "", start
            while len(text) < size and i < len(words):
                text = f"{text} {words[i]}" if text else words[i]
                i += 1
            out.append((lang, f"{text} ({offset})"))  # the suffix keeps texts distinct across rounds
            if len(out) == count:
                break
        offset += 1
    return out



def completion_body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": _CREATED,
            "model": MODEL + "-2026-01-01",
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 52,
                "completion_tokens": 78,
                "total_tokens": 130,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    ).encode()


def _pieces(text: str, n: int) -> list[str]:
    size = -(-len(text) // n)
    out = [text[i : i + size] for i in range(0, len(text), size)]
    while len(out) < n:
        out.append("")
    return out[:n]


def stream_body(chunks: int = STREAM_CHUNKS) -> bytes:
    """An SSE stream of ``chunks`` content chunks (the answer split evenly), a finish chunk, a usage chunk."""
    head = {"id": "chatcmpl-bench0002", "object": "chat.completion.chunk", "created": _CREATED, "model": MODEL + "-2026-01-01", "system_fingerprint": "fp_bench"}
    events = []
    for i, piece in enumerate(_pieces(ANSWER, chunks)):
        delta: dict[str, Any] = {"content": piece}
        if i == 0:
            delta["role"] = "assistant"
        events.append({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
    events.append({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    events.append({**head, "choices": [], "usage": {"prompt_tokens": 52, "completion_tokens": 78, "total_tokens": 130}})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


class Transport:
    """The canned answers as an httpx2 transport; ``delay_s`` simulates the provider's latency."""

    def __init__(self, delay_s: float = 0.0, stream_chunks: int = STREAM_CHUNKS) -> None:
        self.delay_s = delay_s
        self._json = completion_body()
        self._sse = stream_body(stream_chunks)
        self._local = threading.local()
        self._httpx = http_module()
        self.mock = self._httpx.MockTransport(self.handle)

    @property
    def waited(self) -> float:
        """Seconds this thread spent inside the transport (its delay) so far."""
        return getattr(self._local, "waited", 0.0)

    def handle(self, request: Any) -> Any:
        if self.delay_s:
            t0 = time.perf_counter()
            time.sleep(self.delay_s)
            self._local.waited = self.waited + (time.perf_counter() - t0)
        if b'"stream":true' in request.content.replace(b" ", b""):
            return self._httpx.Response(200, content=self._sse, headers={"content-type": "text/event-stream"})
        return self._httpx.Response(200, content=self._json, headers={"content-type": "application/json"})


def http_module() -> Any:
    """openai 3.x speaks httpx2; older releases (some peers need them) speak httpx."""
    import openai

    if int(openai.__version__.split(".")[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx


def client(transport: Transport) -> Any:
    import openai

    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://127.0.0.1:9/v1",  # never dialled: the transport answers in-process
        max_retries=0,
        http_client=http_module().Client(transport=transport.mock),
    )


def chat(c: Any) -> Any:
    return c.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=200)


def chat_streamed(c: Any) -> int:
    n = 0
    for chunk in c.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=200, stream=True, stream_options={"include_usage": True}):
        n += 1
    return n


def litellm_chat(c: Any) -> Any:
    """The same call through LiteLLM's OpenAI route, on the same client (LiteLLM calls its ``post``)."""
    import litellm

    return litellm.completion(model=f"openai/{MODEL}", messages=MESSAGES, temperature=0.2, max_tokens=200, client=c)


def litellm_chat_streamed(c: Any) -> int:
    import litellm

    n = 0
    for chunk in litellm.completion(model=f"openai/{MODEL}", messages=MESSAGES, temperature=0.2, max_tokens=200, client=c,
                                    stream=True, stream_options={"include_usage": True}):
        n += 1
    return n


def calls(mode: str) -> tuple[Callable[[Any], Any], Callable[[Any], int]]:
    """(a non-streamed call, a streamed call read to its end) as ``mode`` makes them: LiteLLM's row goes through LiteLLM."""
    if mode == LITELLM:
        import os

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download
        return litellm_chat, litellm_chat_streamed
    return chat, chat_streamed


# ---- telemetry sink ---------------------------------------------------------------------------


class CountingSpanExporter:
    """In-memory span exporter that keeps only the latest batch (memory stays flat over 100k calls)."""

    def __init__(self) -> None:
        self.count = 0
        self.last: Sequence[Any] = ()

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.count += len(spans)
        self.last = spans
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class CountingLogExporter:
    def __init__(self) -> None:
        self.count = 0
        self.last: Sequence[Any] = ()

    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult  # type: ignore[attr-defined]

        self.count += len(batch)
        self.last = batch
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Sink:
    """Tracer, meter and logger providers shared by every mode; installed as the globals too."""

    def __init__(self, span_exporter: Any = None, log_exporter: Any = None, metric_exporter: Any = None) -> None:
        from opentelemetry import _logs, metrics, trace
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.spans = span_exporter or CountingSpanExporter()
        self.logs = log_exporter or CountingLogExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.spans))
        self.reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=5000) if metric_exporter else InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(self.logs))
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        _logs.set_logger_provider(self.logger_provider)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        self.meter_provider.force_flush()


# ---- modes ----------------------------------------------------------------------------------

#: mode -> (pip distribution that provides it, or None for ours / none)
PEERS = {
    "otel-openai-v2": "opentelemetry-instrumentation-openai-v2",
    "otel-genai-openai": "opentelemetry-instrumentation-genai-openai",
    "openinference": "openinference-instrumentation-openai",
    "openllmetry": "opentelemetry-instrumentation-openai",
}
#: Our added cost over LiteLLM alone: the same call through litellm.completion, LiteLLM uninstrumented vs instrumented.
LITELLM = "micrometrics-litellm"
OURS = ("micrometrics-default", "micrometrics-no-metrics", LITELLM)
#: The least an SDK instrumentation of the call can do under the conventions (floor.py): a reference, not a peer.
FLOOR = "floor"
MODES = ("none",) + OURS + tuple(PEERS) + (FLOOR,)


class Switch:
    """Turns ``mode``'s instrumentation on and off in this process (the peers and we all can undo it)."""

    def __init__(self, mode: str, sink: Sink) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        self.sink = sink
        self.state = "off"
        self._handle: Any = None
        self._peer: Any = None
        if mode in PEERS or mode == FLOOR:
            self._peer = _peer_instrumentor(mode)

    def on(self) -> None:
        if self.state == "on" or self.mode == "none":
            self.state = "on"
            return
        tp, mp, lp = self.sink.tracer_provider, self.sink.meter_provider, self.sink.logger_provider
        if self.mode in OURS:
            import micrometrics

            self._handle = micrometrics.instrument(
                exporter="none",
                instrumentations=["openai"] + (_litellm_instrumentation() if self.mode == LITELLM else []),
                metrics=None if self.mode == "micrometrics-default" else [],
                tracer_provider=tp,
                meter_provider=mp,
                logger_provider=lp,
            )
        else:
            self._peer.instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
        self.state = "on"

    def off(self) -> None:
        if self.state == "off" or self.mode == "none":
            self.state = "off"
            return
        self.flush()
        if self.mode in OURS:
            self._handle.shutdown()
            self._handle = None
            if self.mode == LITELLM and _LITELLM_BY_HAND:
                _LITELLM_BY_HAND[0].uninstrument()
        else:
            self._peer.uninstrument()
        self.state = "off"

    def set(self, state: str) -> None:
        self.on() if state == "on" else self.off()

    def flush(self) -> None:
        """Drain our evaluation worker, then the batch processors."""
        if self._handle is not None:
            self._handle.runtime.flush(60.0)
        self.sink.flush()

    @property
    def dropped(self) -> int:
        return self._handle.runtime.worker.dropped if self._handle is not None else 0


#: LiteLLM's instrumentor when the installed micrometrics predates its entry point (instrumented by hand, not by name).
_LITELLM_BY_HAND: list[Any] = []


def _litellm_instrumentation() -> list[str]:
    """``["litellm"]`` for ``instrument()``; with no such entry point installed yet, its instrumentor is turned on here."""
    from micrometrics import registry

    if "litellm" in registry.supported():
        return ["litellm"]
    from micrometrics_instrumentation.litellm import LiteLLMInstrumentor

    inst = LiteLLMInstrumentor()
    inst.instrument(skip_dep_check=True)
    _LITELLM_BY_HAND[:] = [inst]
    return []


def _peer_instrumentor(mode: str) -> Any:
    if mode == FLOOR:
        from floor import FloorInstrumentor

        return FloorInstrumentor()
    if mode == "otel-openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif mode == "otel-genai-openai":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    elif mode == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    return OpenAIInstrumentor()


def setup(mode: str, sink: Sink) -> Callable[[], None]:
    """Instrument for ``mode`` for good; returns a flush that also drains our evaluation worker."""
    switch = Switch(mode, sink)
    switch.on()
    return switch.flush


def versions(mode: str) -> dict[str, str]:
    from importlib import metadata

    names = ["openai", http_module().__name__, "opentelemetry-sdk", "opentelemetry-instrumentation"]
    if mode in OURS:
        names.append("micrometrics")
    if mode == LITELLM:
        names.append("litellm")
    elif mode in PEERS:
        names.append(PEERS[mode])
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "-"
    return out


def publish(data: Any, json_path: Any, report: Callable[[Any], str]) -> int:
    """A benchmark's last step: the raw figures to ``--json`` (when given), the report to stdout; main()'s exit code."""
    if json_path:
        json_path.write_text(json.dumps(data, indent=1))
    print(report(data))
    return 0
