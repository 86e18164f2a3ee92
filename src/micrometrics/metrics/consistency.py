"""Answer consistency: the same request asked again, at its temperature and at another, and the answers compared.

A model that gives a different answer each time it is asked the same question (another number,
another policy) is guessing; one that gives the same answer may still be wrong, but consistently.
The metric cannot re-issue the application's request by itself: ``ask(messages, temperature, model)``
is the application's function calling the model through an instrumented client, as an LLM judge's
is. Its calls are spans of their own (children of the judged call's span), their cost is charged to
this metric, and no metric evaluates them (the runtime evaluates no call made while a metric
evaluates). Asynchronous, sampled, budgeted in calls per minute and per day and in USD per day.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result
from micrometrics.metrics.call_budget import Budget, check_deadline, spent_here
from micrometrics.metrics.groundedness import raw_numbers, readings
from micrometrics.metrics.similarity import char_ngrams, cosine
from micrometrics_semconv import attributes as A

#: ``ask(messages, temperature, model) -> answer text``: ``messages`` as ``[{"role": ..., "content": ...}]``,
#: ``temperature`` None for the provider's default, ``model`` the judged call's request model (None if unknown).
Ask = Callable[[Sequence[Mapping[str, str]], "float | None", "str | None"], str]
#: ``similarity(a, b) -> float`` in 0..1 (values outside are clamped).
Similarity = Callable[[str, str], float]

#: Characters of each answer compared (the first ones).
TEXT_MAX_CHARS = 20_000
#: Message parts a re-ask can carry as text; a request with others (tool calls, images) is not re-asked.
_TEXT_PARTS = frozenset({"text"})
_REQUEST = "request_temperature"
_OTHER = "other_temperature"


def lexical_similarity(a: str, b: str) -> float:
    """The built-in similarity: cosine of the character-trigram vectors SemanticSimilarity uses. Lexical: a
    paraphrase scores low (about 0.2), the same wording high (about 0.9); plug in an embedding for meaning."""
    va, vb = char_ngrams([a, b])
    return cosine(va, vb)


def _numbers(text: str) -> tuple[list[set[str]], set[str]]:
    """Each number's readings, and all of them together."""
    each = [readings(x) for x in raw_numbers(text)]
    return each, set().union(*each) if each else set()


def _differ(a: tuple[list[set[str]], set[str]], b: tuple[list[set[str]], set[str]]) -> bool:
    return any(not (r & b[1]) for r in a[0]) or any(not (r & a[1]) for r in b[0])


def numbers_differ(a: str, b: str) -> bool:
    """Whether one answer has a number the other does not ("14 days" and "30 days"; "1.299" and "1299" agree)."""
    return _differ(_numbers(a), _numbers(b))


def request_messages(call: CallView) -> list[dict[str, str]] | None:
    """The call's request as ``[{"role", "content"}]`` text messages; None when a part is not text (a tool call, an image)."""
    out: list[dict[str, str]] = []
    system = call.system_instructions
    if system:
        out.append({"role": "system", "content": system})
    for message in call.input_messages:
        parts = message.get("parts") or ()
        if any(not isinstance(p, Mapping) or p.get("type") not in _TEXT_PARTS for p in parts):
            return None
        role = message.get("role")
        if not isinstance(role, str) or not role:
            return None
        out.append({"role": role, "content": "".join(p.get("content") or "" for p in parts if isinstance(p.get("content"), str))})
    return out if any(m["role"] == "user" for m in out) else None


class AnswerConsistency(MicroMetric):
    """The request re-asked ``n`` times at its own temperature and ``n_other`` times at ``other_temperature``;
    ``consistent`` when the answers' mean pairwise agreement (the original answer included) is at least
    ``min_agreement``, else ``inconsistent``.

    ``ask(messages, temperature, model) -> text`` calls your model (through an instrumented client: its
    calls are traced as children of the judged call, charged to this metric, ``micrometrics.<name>.cost``,
    and evaluated by no metric). Agreement of two answers: ``similarity(a, b)`` (default: lexical, the
    character trigrams of SemanticSimilarity), and 0 when ``numbers_must_match`` and one answer has a
    number the other has not. Async only (a guard is refused), sampled (``sample_rate``, default 0.05),
    capped (``max_calls_per_minute``, ``max_calls_per_day``, ``max_usd_per_day``: over it the call is
    ``undetermined``, ``budget_exhausted=True``, and the model is not asked). Applies to calls with a
    text answer whose request is text only (a tool call or an image cannot be re-asked as text).
    Details ``n`` (answers compared), ``calls``, ``agreement``, ``min_pairwise``, ``agreement_with_original``,
    ``agreement_at_request_temperature``, ``agreement_at_other_temperature``, ``least_agreeing`` (which
    temperature's answer is in the least agreeing pair), ``temperature``, ``other_temperature``,
    ``numbers_differ`` (pairs), ``empty_answers``, ``similarity``, ``budget_exhausted``; score: the agreement.
    """

    process_safe = False  # ask is the application's function and client
    reads_retrieved_documents = False
    latency_class = "async"
    sample_rate = 0.05

    applies_to = INFERENCE_OPERATIONS

    def __init__(
        self,
        ask: Ask,
        *,
        name: str = "answer_consistency",
        n: int = 2,
        other_temperature: float | None = 1.0,
        n_other: int = 1,
        min_agreement: float = 0.5,
        similarity: Similarity | None = None,
        numbers_must_match: bool = True,
        max_calls_per_minute: int | None = 60,
        max_calls_per_day: int | None = 10_000,
        max_usd_per_day: float | None = None,
        deadline_s: float = 60.0,
        **options: Any,
    ) -> None:
        super().__init__(name=name, **options)
        self.deadline_s = deadline_s  # its model calls take seconds: the runtime's evaluation_deadline_s (2 s) is for CPU metrics
        self.ask = ask
        self.n = n
        self.other_temperature = other_temperature
        self.n_other = n_other if other_temperature is not None else 0
        self.min_agreement = min_agreement
        self.similarity = similarity
        self.numbers_must_match = numbers_must_match
        self.budget = Budget(max_calls_per_minute, max_calls_per_day, max_usd_per_day, owner="consistency")
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        owner = "AnswerConsistency"
        if not callable(self.ask):
            raise TypeError(f"{owner}: ask={self.ask!r} must be a function (messages, temperature, model) -> answer text")
        if self.similarity is not None and not callable(self.similarity):
            raise TypeError(f"{owner}: similarity={self.similarity!r} must be a function (a, b) -> 0..1, or None for the lexical one")
        for option, v, low in (("n", self.n, 0), ("n_other", self.n_other, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 10:
                raise ValueError(f"{owner}: {option}={v!r} must be an int from 0 to 10")
        if self.n + self.n_other < 1:
            raise ValueError(f"{owner}: n={self.n} and n_other={self.n_other} ask nothing; at least one re-ask is needed")
        t = self.other_temperature
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2):
            raise ValueError(f"{owner}: other_temperature={t!r} must be a number from 0 to 2, or None for re-asks at the request's temperature only")
        v = self.min_agreement
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{owner}: min_agreement={v!r} must be a number between 0 and 1")
        if not isinstance(self.numbers_must_match, bool):
            raise TypeError(f"{owner}: numbers_must_match={self.numbers_must_match!r} must be True or False")
        self.budget.validate(owner)
        check_deadline("AnswerConsistency", self.deadline_s)

    def applies(self, call: CallView) -> bool:
        return bool(call.output_text.strip()) and request_messages(call) is not None

    def _ask(self, messages: list[dict[str, str]], temperature: float | None, model: str | None) -> str:
        answer = self.ask(messages, temperature, model)  # made while this metric evaluates: traced, charged to it, never evaluated
        if not isinstance(answer, str):
            raise TypeError(f"ask(messages, temperature, model) must return the answer text, returned {type(answer).__name__}")
        return answer

    def evaluate(self, call: CallView) -> Result:
        messages = request_messages(call)
        if messages is None:
            return Result("undetermined", explanation="the request has parts that are not text: it cannot be re-asked")
        temperature = call.params.get(A.GEN_AI_REQUEST_TEMPERATURE)
        temperature = float(temperature) if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) else None
        plan = [(_REQUEST, temperature)] * self.n + [(_OTHER, self.other_temperature)] * self.n_other
        details: dict[str, Any] = {"similarity": self._similarity_name()}
        if temperature is not None:
            details["temperature"] = temperature
        if self.n_other:
            details["other_temperature"] = float(self.other_temperature)  # type: ignore[arg-type]
        refused = self.budget.take(len(plan))
        if refused is not None:
            return Result("undetermined", explanation=refused, details={**details, "budget_exhausted": True, "calls": 0})
        details["calls"] = len(plan)
        answers: list[tuple[str, str]] = [("original", call.output_text[:TEXT_MAX_CHARS])]
        try:
            for kind, t in plan:
                answers.append((kind, self._ask(messages, t, call.request_model)[:TEXT_MAX_CHARS]))
        finally:
            self.budget.spend(spent_here())  # the USD cap sees what the re-asks cost, a failed evaluation's too
        return self._score(answers, details)

    def _similarity_name(self) -> str:
        if self.similarity is None:
            return "lexical"
        return str(getattr(self.similarity, "__name__", type(self.similarity).__name__))[:64]

    def _score(self, answers: list[tuple[str, str]], details: dict[str, Any]) -> Result:
        kept = [(kind, text) for kind, text in answers if text.strip()]
        details["empty_answers"] = len(answers) - len(kept)
        details["n"] = len(kept)
        if len(kept) < 2:
            return Result("undetermined", explanation="fewer than two non-empty answers to compare", details=details)
        if self.similarity is None:  # the lexical one: each answer's vector once, not once per pair
            vectors = char_ngrams([text for _, text in kept])
            similarity = lambda i, j: cosine(vectors[i], vectors[j])  # noqa: E731
        else:
            similarity = lambda i, j: self.similarity(kept[i][1], kept[j][1])  # type: ignore[misc]  # noqa: E731
        numbers = [_numbers(text) for _, text in kept] if self.numbers_must_match else []
        pairs: list[tuple[str, str, float]] = []
        differ = 0
        for i, j in itertools.combinations(range(len(kept)), 2):
            ka, kb = kept[i][0], kept[j][0]
            if numbers and _differ(numbers[i], numbers[j]):
                differ += 1
                value = 0.0
            else:
                value = float(similarity(i, j))
                value = 0.0 if value != value else max(0.0, min(1.0, value))  # NaN counts as no agreement
            pairs.append((ka, kb, value))

        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 4) if values else None

        agreement = mean([v for _, _, v in pairs]) or 0.0
        low = min(pairs, key=lambda p: p[2])
        details.update(agreement=agreement, min_pairwise=round(low[2], 4), numbers_differ=differ)
        details["least_agreeing"] = _OTHER if _OTHER in low[:2] else _REQUEST
        for key, value in (
            ("agreement_with_original", mean([v for ka, _, v in pairs if ka == "original"])),
            ("agreement_at_request_temperature", mean([v for ka, kb, v in pairs if _OTHER not in (ka, kb)])),
            ("agreement_at_other_temperature", mean([v for ka, kb, v in pairs if ka == "original" and kb == _OTHER])),
        ):
            if value is not None:
                details[key] = value
        if agreement >= self.min_agreement:
            return Result("consistent", score=agreement, passed=True, details=details)
        why = f"agreement {agreement:.2f} < min_agreement={self.min_agreement:g}"
        if differ:
            why += f"; {differ} of {len(pairs)} pairs differ in their numbers"
        return Result("inconsistent", score=agreement, passed=False, explanation=why, details=details)
