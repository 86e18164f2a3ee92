"""Refusal: the model declined, deflected, or said it cannot help, in seven languages.

Patterns, not a model: first-person inability or refusal ("I can't help with that", "Dabei kann
ich Ihnen leider nicht helfen", "Je ne peux pas vous aider") in the opening of the answer, after
quoted speech, block quotes and code are taken out (a helpful answer that quotes a refusal did
not refuse). The provider's own refusal (OpenAI's ``refusal`` part) and a ``content_filter``
finish count too.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result
from micrometrics_semconv import values as V

#: Languages the patterns cover (a subset of LanguageMatch's).
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
#: The answer is read up to here: the label depends on its opening, a partial refusal on the rest.
SCAN_MAX_CHARS = 20_000
#: The opening: the first two sentences, at most this many characters.
LEAD_MAX_CHARS = 400
LEAD_SENTENCES = 2

# ---- quoted speech out ------------------------------------------------------------------

_QUOTED = re.compile(
    r"```.*?(?:```|$)"  # code fences (an unclosed one runs to the end)
    r"|`[^`\n]{1,300}`"
    r"|\"[^\"\n]{1,300}\""
    r"|\u201c[^\u201d\n]{1,300}\u201d"  # “...”
    r"|\u201e[^\u201c\u201d\n]{1,300}[\u201c\u201d]"  # „...“
    r"|\u00ab[^\u00bb\n]{1,300}\u00bb"  # «...»
    r"|\u00bb[^\u00ab\n]{1,300}\u00ab"  # »...«
    r"|\u2018[^\u2019\n]{1,300}\u2019(?!\w)"  # ‘...’ (an apostrophe inside stays)
    r"|(?<!\w)'(?:[^'\n]|'(?=\w)){1,300}'(?!\w)"  # '...' around words with apostrophes (can't)
    r"|^[ \t]*>.*$",  # block quotes
    re.DOTALL | re.MULTILINE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u00a0": " "})


def speech(text: str) -> str:
    """The answer's own words: quotes, code and block quotes replaced by a neutral placeholder."""
    return _QUOTED.sub(" \u2026 ", text)


_SENTENCE_END = re.compile(r"[.!?\u3002]+(?:\s|$)|\n\s*\n|\n")


def lead(text: str) -> str:
    """The first ``LEAD_SENTENCES`` sentences, at most ``LEAD_MAX_CHARS`` characters."""
    end = 0
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    for count, m in enumerate(_SENTENCE_END.finditer(stripped, 0, LEAD_MAX_CHARS), start=1):
        end = m.end()
        if count >= LEAD_SENTENCES:
            break
    else:
        end = LEAD_MAX_CHARS
    return text[: offset + end]


# ---- patterns ---------------------------------------------------------------------------
# Each language: refusal patterns, and the words just before a match that make it no refusal
# ("if I can't help ...", "nothing I can't help with").

_EN_OBJECTS = (
    r"(?:you |anyone )?(?:with )?(?:that|this|such|those|these|any|specific|medical|legal|financial|personal|professional|"
    r"information|advice|assistance|help|guidance|instructions|details|an answer|answers|support|content|code|the (?:information|details|code|instructions))"
)
_EN = [
    # "I can't help with that", "I'm not able to provide medical advice", "I won't assist"
    r"\bi(?: really| unfortunately| currently| actually| simply| just)? ?(?:can't|cannot|can not|won't|will not|am unable to|'m unable to|"
    r"am not able to|'m not able to|won't be able to|will not be able to|am not allowed to|'m not allowed to|am not permitted to|"
    r"'m not permitted to|am not in a position to|'m not in a position to|don't think i can|do not think i can|"
    r"'m afraid i can't|am afraid i cannot)"
    r"(?: really| directly| currently| personally| actually)? "
    r"(?:help(?! but\b)(?! \w+ing\b)|assist|answer|comply|fulfil|fulfill|support|do that|do this|engage|continue with|complete (?:that|this)|"
    r"discuss|disclose|reveal|access|browse|look up|look into|check|view|see your|process (?:that|this|your)|generate|create|write|"
    r"(?:provide|give|share|offer|discuss) " + _EN_OBJECTS + r")",
    r"\b(?:i|we) (?:must|have to|will have to|'ll have to|am going to have to|'m going to have to|need to)(?: respectfully| politely)? decline",
    r"\bi(?:'d| would) (?:rather|prefer) not (?:to )?(?:discuss|answer|help|get into|comment|share|go into)",
    r"\bas an ai(?: language model| assistant| model)?,? i (?:can't|cannot|don't|do not|am not|'m not|am unable|'m unable|won't)",
    r"\b(?:that|this|your request|that request|this request|that question|this question)(?:'s| is) (?:outside|beyond|not within|not something i can)"
    r"(?: of)?(?: (?:my|the) (?:scope|capabilities|abilities|expertise|remit|area))?",
    r"\bi can only (?:help|assist|answer|discuss|provide|talk about|support)",
    r"\bi(?:'m| am) (?:only )?(?:able|designed|here|allowed) (?:only )?to (?:help|assist|answer)(?: you)? (?:only )?with (?:questions|topics|requests) (?:about|related|regarding|on)",
    r"\bi (?:don't|do not) have (?:access to|the ability to|any information (?:about|on))",
    r"\b(?:sorry|unfortunately),? (?:but )?(?:i|we) (?:can't|cannot|won't|am unable to|'m unable to|are unable to) (?:do|help|assist|answer|provide)",
]
_EN_NOT_BEFORE = r"(?:\bif|\bunless|\bwhether|\bwhen|\bnothing|\bnever said|\bnot that|\bwhy|\bwhat if|\bin case)\W+(?:\w+\W+){0,2}$"

_DE_VERBS = (
    r"(?:helfen|weiterhelfen|behilflich sein|beantworten|unterstützen|nachkommen|eingehen|zugreifen|einsehen|prüfen|überprüfen|"
    r"bearbeiten|erstellen|schreiben|generieren|sagen|nennen|preisgeben|mitteilen|tun|machen|erfüllen|"
    r"\w*(?:auskunft|auskünfte|rat|ratschläge|beratung|informationen|antwort|empfehlungen?|hilfe|unterstützung|anleitung) (?:geben|erteilen|bieten|anbieten|leisten|liefern))"
)
_DE = [
    # "Ich kann Ihnen dabei leider nicht helfen", "Das kann ich nicht beantworten", "Dazu kann ich nichts sagen"
    r"\b(?:ich (?:kann|darf|werde|könnte)|(?:kann|darf|werde|könnte) ich|wir (?:können|dürfen)|(?:können|dürfen) wir)\b"
    r"(?:[ \t]+(?!(?:nicht|kein|keine|keinen|nichts)\b)[\w-]+){0,4}[ \t]+(?:nicht|keine|keinen|kein|nichts)(?![ \t]+(?:nur|erwarten|genug|abwarten)\b)"
    r"(?:[ \t]+(?!(?:erwarten|abwarten|warten|genug)\b)[\w-]+){0,3}?[ \t]+" + _DE_VERBS + r"\b",
    r"\b(?:ich bin|bin ich) (?:leider |hierzu |dazu |derzeit )?nicht in der lage",
    r"\b(?:es ist mir|mir ist es) (?:leider )?nicht (?:möglich|erlaubt|gestattet)",
    r"\bich muss (?:diese anfrage |ihre anfrage |deine anfrage |das |dies |die anfrage )?(?:leider |höflich )?ablehnen",
    r"\b(?:das|dies|diese anfrage|diese frage) (?:liegt|fällt) (?:leider )?(?:außerhalb|nicht in) (?:meine[rsn]?|des|den)",
    r"\bich habe (?:leider )?keinen zugriff auf",
    r"\bals (?:eine )?(?:ki|künstliche intelligenz|sprachmodell|ki-sprachmodell|ki-assistent)\b,? (?:kann|darf|habe|bin) ich (?:nicht|kein|keine|keinen)",
    r"\bich kann (?:ihnen |dir |euch )?(?:leider )?nur (?:bei|fragen|zu|mit) ",
]
_DE_NOT_BEFORE = r"(?:\bwenn|\bfalls|\bob|\bsollte|\bnichts|\bwarum|\bwieso)\W+(?:\w+\W+){0,2}$"

_FR_VERBS = (
    r"(?:aider|répondre|fournir|donner (?:de |des |d')?(?:conseils?|informations?|avis|réponse)|traiter|accéder|partager|faire (?:ça|cela|ceci)|"
    r"communiquer|assister|divulguer|satisfaire|consulter|vérifier|rédiger|générer|créer|prodiguer|conseiller|"
    r"donner suite|m'occuper|t'aider|vous aider|répondre)"
)
_FR_OBJ = r"(?:(?:vous|te|t'|y|en|lui|leur|l'|le|la|les)\s?)*"
_FR = [
    r"\bje ne (?:peux|pourrai|pourrais|vais|saurais)(?: malheureusement| hélas| vraiment)? pas(?: pouvoir)?(?: malheureusement)? " + _FR_OBJ + _FR_VERBS,
    r"\bje ne suis (?:malheureusement |hélas )?pas (?:en mesure|autorisée?|capable|habilitée?) (?:de |d'|à )" + _FR_OBJ + _FR_VERBS,
    r"\bil m'est (?:malheureusement |hélas )?impossible d",
    r"\bje (?:dois|me vois contraint(?:e)? de) (?:malheureusement |respectueusement )?(?:refuser|décliner)",
    r"\bje n'ai (?:malheureusement )?pas (?:accès|la possibilité|les moyens)",
    r"\ben tant qu'(?:ia|intelligence artificielle|assistant(?:e)? (?:virtuel(?:le)?|ia)|modèle de langage),? je ne",
    r"\b(?:cela|ceci|ça|cette demande|cette question) (?:dépasse|sort du cadre de|ne relève pas de|est hors de) (?:mes|mon|ma|du|de mes)",
    r"\bje ne peux (?:vous |t')?aider qu'",
]
_FR_NOT_BEFORE = r"(?:\bsi|\bmême si|\brien que|\bpourquoi|\bquand)\W+(?:\w+\W+){0,2}$"

_ES_VERBS = (
    r"(?:ayudar(?:te|le|les|lo|la|os)?|responder(?:te|le|la)?|contestar|proporcionar(?:te|le)?|facilitar(?:te|le)?|brindar(?:te|le)?|"
    r"dar(?:te|le)? (?:consejos?|información|asesoramiento|una respuesta|detalles)|ofrecer(?:te|le)? (?:consejos?|información|asesoramiento|ayuda)|"
    r"compartir|hacer eso|hacerlo|acceder|asistir(?:te|le)?|cumplir con|generar|crear|revelar|consultar|verificar|atender)"
)
_ES = [
    r"\bno (?:te |le |les |lo |la |os )?(?:puedo|podré|podría|podemos|voy a poder)(?: lamentablemente| desafortunadamente)? " + _ES_VERBS,
    r"\bno (?:estoy|me encuentro) (?:en condiciones de|autorizad[oa] (?:para|a)|capacitad[oa] para) " + _ES_VERBS,
    r"\bno me es posible\b",
    r"\bdebo (?:lamentablemente |respetuosamente )?(?:rechazar|declinar)",
    r"\bno tengo acceso a\b",
    r"\bcomo (?:una |un )?(?:ia|inteligencia artificial|modelo de lenguaje|asistente virtual),? no (?:puedo|tengo|estoy)",
    r"\b(?:eso|esto|esa pregunta|esta solicitud|esa solicitud) (?:está fuera de|excede|va más allá de) (?:mi|mis|el alcance)",
    r"\bsolo puedo (?:ayudar(?:te|le)?|responder|asistir(?:te|le)?) (?:con|en|a) (?:preguntas|temas|consultas)",
]
_ES_NOT_BEFORE = r"(?:\bsi|\baunque|\bcuando|\bpor qué|\bnada que)\W+(?:\w+\W+){0,2}$"

_IT_VERBS = (
    r"(?:aiutar(?:ti|la|vi|e)|aiutare|rispondere|risponderti|fornir(?:ti|le|e)|dar(?:ti|le|e) (?:consigli|informazioni|una risposta|dettagli|assistenza)|"
    r"offrir(?:ti|le|e) (?:consigli|informazioni|assistenza|aiuto)|condividere|fare (?:questo|ciò|quello)|farlo|accedere|assister(?:ti|la|e)|generare|creare|"
    r"rivelare|verificare|consultare|soddisfare|esaudire|occuparmi)"
)
_IT = [
    r"\bnon (?:ti |la |vi |le |lo |gli )?(?:posso|potrò|potrei|possiamo)(?: purtroppo| davvero)? " + _IT_VERBS,
    r"\bnon sono (?:purtroppo )?(?:in grado di|autorizzat[oa] a|abilitat[oa] a) " + _IT_VERBS,
    r"\bnon mi è (?:purtroppo )?(?:possibile|consentito)",
    r"\bdevo (?:purtroppo |rispettosamente )?(?:rifiutare|declinare)",
    r"\bnon ho accesso a",
    r"\bcome (?:un'|una |un )?(?:ia|intelligenza artificiale|modello linguistico|assistente virtuale),? non (?:posso|ho|sono)",
    r"\b(?:questo|ciò|questa richiesta|questa domanda) (?:esula|va oltre|è al di fuori|è fuori) (?:dalle|dalla|delle|dal|le|il|dai) ",
    r"\bposso (?:solo|soltanto) (?:aiutarti|aiutarla|rispondere) (?:con|a|su) (?:domande|richieste|argomenti)",
]
_IT_NOT_BEFORE = r"(?:\bse|\banche se|\bperché|\bquando|\bnulla che)\W+(?:\w+\W+){0,2}$"

_NL_VERBS = (
    r"(?:helpen|beantwoorden|verstrekken|doen|assisteren|delen|bieden|leveren|inzien|controleren|genereren|maken|schrijven|"
    r"zeggen|vertellen|ingaan|verwerken|voldoen|behandelen|(?:advies|informatie|antwoord|hulp) (?:geven|bieden|verstrekken))"
)
_NL = [
    r"\b(?:ik (?:kan|mag|zal)|(?:kan|mag|zal) ik|wij (?:kunnen|mogen)|we (?:kunnen|mogen)|(?:kunnen|mogen) (?:we|wij))\b"
    r"(?:[ \t]+(?!(?:niet|geen|niets)\b)[\w-]+){0,4}[ \t]+(?:niet|geen|niets)(?![ \t]+(?:alleen|wachten|genoeg)\b)"
    r"(?:[ \t]+(?!(?:wachten|afwachten|genoeg)\b)[\w-]+){0,3}?[ \t]+" + _NL_VERBS + r"\b",
    r"\bik ben (?:helaas |hier |daar )?niet in staat",
    r"\bhet is (?:mij|me) (?:helaas )?niet (?:mogelijk|toegestaan)",
    r"\bik moet (?:dit verzoek |uw verzoek |je verzoek |dit |dat )?(?:helaas |beleefd )?(?:weigeren|afwijzen)",
    r"\bik heb (?:helaas )?geen toegang tot",
    r"\bals (?:een )?(?:ai|taalmodel|ai-assistent|kunstmatige intelligentie),? (?:kan|mag|heb|ben) ik (?:niet|geen)",
    r"\b(?:dat|dit|deze vraag|dit verzoek) valt (?:helaas )?buiten (?:mijn|het)",
    r"\bik kan (?:je |u )?(?:helaas )?alleen (?:helpen )?(?:met|bij) (?:vragen|onderwerpen)",
]
_NL_NOT_BEFORE = r"(?:\bals|\bindien|\bof|\bwaarom|\bniets)\W+(?:\w+\W+){0,2}$"

_PT_VERBS = (
    r"(?:ajudar|ajudá-lo|ajudá-la|ajudar-te|te ajudar|responder|fornecer|dar (?:conselhos?|informações|uma resposta|detalhes|assistência)|"
    r"oferecer (?:conselhos?|informações|assistência|ajuda)|compartilhar|partilhar|fazer isso|fazê-lo|acessar|aceder|gerar|criar|revelar|"
    r"verificar|consultar|atender|auxiliar|cumprir)"
)
_PT = [
    r"\bnão (?:te |lhe |o |a )?(?:posso|poderei|poderia|podemos|consigo|vou poder|tenho como)(?: infelizmente| realmente)? (?:te |lhe |o |a )?" + _PT_VERBS,
    r"\bnão (?:sou capaz de|estou autorizad[oa] a|estou em condições de) (?:te |lhe )?" + _PT_VERBS,
    r"\bnão me é (?:possível|permitido)",
    r"\b(?:devo|tenho de|tenho que|preciso) (?:infelizmente |respeitosamente )?(?:recusar|declinar)",
    r"\bnão tenho acesso a",
    r"\bcomo (?:uma |um )?(?:ia|inteligência artificial|modelo de linguagem|assistente virtual),? (?:eu )?não (?:posso|tenho|consigo)",
    r"\b(?:isso|isto|essa pergunta|esse pedido) (?:está fora|foge|vai além) d[oa]s? (?:meu|minha|meus|minhas|âmbito|escopo)",
    r"\bsó posso (?:ajudar|responder|auxiliar) (?:com|em|a) (?:perguntas|questões|temas|assuntos)",
]
_PT_NOT_BEFORE = r"(?:\bse|\bmesmo que|\bquando|\bpor que|\bporque|\bnada que)\W+(?:\w+\W+){0,2}$"

_TABLE = {
    "en": (_EN, _EN_NOT_BEFORE),
    "de": (_DE, _DE_NOT_BEFORE),
    "fr": (_FR, _FR_NOT_BEFORE),
    "es": (_ES, _ES_NOT_BEFORE),
    "it": (_IT, _IT_NOT_BEFORE),
    "nl": (_NL, _NL_NOT_BEFORE),
    "pt": (_PT, _PT_NOT_BEFORE),
}
#: The answer goes on with what it can do, in the same sentence: a hedge, not a refusal.
_HEDGE = re.compile(
    r"^[^.!?\n]{0,120}?[,;:\u2013\u2014-]\s*(?:but|however|aber|jedoch|mais|pero|sin embargo|ma|però|maar|mas|porém)\s+"
    r"(?:here|hier|voici|voilà|aquí|ecco|aqui|below|unten|ci-dessous|a continuación|di seguito|hieronder|abaixo)\b"
)


class _Language:
    __slots__ = ("code", "pattern", "not_before")

    def __init__(self, code: str, patterns: list[str], not_before: str) -> None:
        self.code = code
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        self.not_before = re.compile(not_before, re.IGNORECASE)

    def find(self, text: str, start: int = 0, end: int | None = None) -> re.Match[str] | None:
        """The first refusal in ``text[start:end]`` that no conditional or hedge takes back."""
        end = len(text) if end is None else end
        for m in self.pattern.finditer(text, start, end):
            if self.not_before.search(text, max(0, m.start() - 40), m.start()):
                continue  # "if I can't help ...", "nothing I can't help with"
            if _HEDGE.match(text, m.end()):
                continue  # "I can't give legal advice, but here is ..."
            return m
        return None


_COMPILED: dict[str, _Language] = {}


def _language(code: str) -> _Language:
    lang = _COMPILED.get(code)
    if lang is None:
        patterns, not_before = _TABLE[code]
        lang = _COMPILED[code] = _Language(code, patterns, not_before)
    return lang


def find_refusal(text: str, languages: Iterable[str] = LANGUAGES) -> tuple[str, bool] | None:
    """(language, in the opening) of the first refusal in the answer's own words; None when it did not refuse.

    Reads the first ``SCAN_MAX_CHARS`` characters; quotes, code and block quotes do not count.
    """
    own = speech(text[:SCAN_MAX_CHARS].translate(_APOSTROPHES))
    opening = len(lead(own))
    later: str | None = None
    for code in languages:
        lang = _language(code)
        if lang.find(own, 0, opening) is not None:
            return code, True
        if later is None and lang.find(own, opening) is not None:
            later = code
    return (later, False) if later is not None else None


class Refusal(MicroMetric):
    """Did the model decline, deflect, or say it cannot help? Labels ``refused`` / ``answered``.

    ``refused`` (passed False, score 1.0) when the answer's opening (its first two sentences) declines
    in one of ``languages`` (default: en, de, fr, es, it, nl, pt), when the provider returned its own
    refusal (OpenAI's ``refusal``), or when the answer was cut by the content filter
    (``finish_reason=content_filter``). A refusal quoted in the answer, in code or in a block quote
    does not count, nor a conditional ("if I can't help, ...") or a hedge that goes on to answer
    ("I can't give legal advice, but here is ..."). A decline later in a longer answer is
    ``answered`` with ``partial=True``. Details: ``source`` (``text``, ``provider``,
    ``content_filter``), ``language`` (of the pattern that matched), ``partial``. An empty answer is
    ``undetermined`` (see DegenerateOutput); an answer that is only a tool call gets no result.
    Never exports the answer's words.
    """

    process_safe = True
    reads_retrieved_documents = False
    latency_class = "realtime"

    name = "refusal"
    applies_to = INFERENCE_OPERATIONS

    def __init__(self, languages: Iterable[str] = LANGUAGES, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(languages, str):
            languages = (languages,)
        try:
            self.languages = tuple(languages)
        except TypeError:
            raise TypeError(f"Refusal: languages={languages!r} must be a list of language codes from {', '.join(LANGUAGES)}") from None
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if not self.languages:
            raise ValueError(f"Refusal: languages=() is empty; use some of {', '.join(LANGUAGES)}")
        for code in self.languages:
            if code not in LANGUAGES:
                raise ValueError(f"Refusal: languages contains {code!r}, which has no refusal patterns; use some of {', '.join(LANGUAGES)}")

    def prepare(self) -> None:
        for code in self.languages:
            _language(code)

    def applies(self, call: CallView) -> bool:
        # An answer that is only a tool call neither answered nor refused: no result.
        if call.output_text.strip():
            return True
        return not any(isinstance(p, dict) and p.get("type") == "tool_call" for m in call.output_messages[:1] for p in (m.get("parts") or ()))

    def evaluate(self, call: CallView) -> Result:
        parts = [p for m in call.output_messages[:1] for p in (m.get("parts") or ()) if isinstance(p, dict)]
        if any(p.get("type") == "refusal" for p in parts):
            return Result("refused", score=1.0, passed=False, explanation="the provider returned a refusal", details={"source": "provider", "partial": False})
        if V.FINISH_CONTENT_FILTER in call.finish_reasons:
            return Result("refused", score=1.0, passed=False, explanation="the content filter stopped the answer", details={"source": "content_filter", "partial": False})
        text = call.output_text
        if not text.strip():
            return Result("undetermined", explanation="the answer has no text")
        found = find_refusal(text, self.languages)
        if found is None:
            return Result("answered", score=0.0, passed=True, details={"source": "text", "partial": False})
        language, opening = found
        if not opening:
            return Result("answered", score=0.0, passed=True, explanation=f"declines part of the request later in the answer ({language})", details={"source": "text", "language": language, "partial": True})
        return Result("refused", score=1.0, passed=False, explanation=f"the answer opens with a refusal ({language})", details={"source": "text", "language": language, "partial": False})
