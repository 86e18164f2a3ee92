"""An LLM judge: a rubric metric that asks a model, asynchronously, sampled and on a budget.

The judge is the application's own function calling a model through an instrumented client:
its calls are spans of their own, children of the judged call's span, their cost is charged to
this metric (``cost_attribution``), and no metric evaluates them (the runtime evaluates no call made
while a metric evaluates). The known biases are mitigated where they can be:
the answer's length is reported beside the score (length bias), a pairwise comparison with a
reference is asked both ways round (position bias), and the scale's points carry labels.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result
from micrometrics.metrics.call_budget import Budget, check_deadline, spent_here

#: Characters of the question, the answer and the reference put in the judge's prompt.
PROMPT_MAX_CHARS = 8_000
DEFAULT_SCALE = {1: "wrong or unhelpful", 2: "mostly unhelpful", 3: "partly helpful", 4: "helpful", 5: "fully correct and helpful"}

Judge = Callable[[Sequence[Mapping[str, str]]], str]

_RATING = re.compile(r"(?i)\b(?:score|rating|note|bewertung|punkte?)\s*[:=]?\s*(\d{1,2})\b")
_CHOICE = re.compile(r"(?i)\b(?:winner|better|choice|answer)\s*[:=]?\s*\(?([AB])\)?\b")


class LlmJudge(MicroMetric):
    """A rubric judged by a model: ``pass`` at ``pass_at`` or above on ``scale``, else ``fail``.

    ``judge(messages) -> text`` calls your judge model (through an instrumented client: its calls
    are traced, and their cost is charged to this metric and shown as
    ``micrometrics.<name>.cost`` on the judged call). Its reply must contain ``Score: N``. Async
    only (``latency_class="async"``: a guard is refused), sampled (``sample_rate``, default 0.1)
    and capped (``max_calls_per_minute``, ``max_calls_per_day``, ``max_usd_per_day``: over it the call is
    ``undetermined``, ``details.budget_exhausted=True``, and the judge is not called; the USD cap
    counts the priced judge calls and stops the evaluation after the one that reached it). ``pairwise=True`` compares the
    answer with ``context(reference=...)`` instead, asked both ways round (A/B then B/A): a
    judge that prefers a position either way is ``undetermined``, the answer preferred both
    times ``pass``, the reference preferred both times ``fail``. Details ``rating``,
    ``rating_label`` (the scale's words for it), ``answer_words`` (length bias: compare scores at
    similar lengths), ``judge_calls``, ``budget_exhausted``; score: the rating scaled to 0..1.
    """

    process_safe = False  # the judge is the application's function and client
    reads_retrieved_documents = False
    latency_class = "async"
    sample_rate = 0.1

    applies_to = INFERENCE_OPERATIONS
    context_keys = ("reference",)

    def __init__(
        self,
        judge: Judge,
        rubric: str,
        *,
        name: str = "llm_judge",
        scale: Mapping[int, str] = DEFAULT_SCALE,
        pass_at: int = 4,
        pairwise: bool = False,
        max_calls_per_minute: int | None = 60,
        max_calls_per_day: int | None = 10_000,
        max_usd_per_day: float | None = None,
        deadline_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(name=name, **options)
        self.deadline_s = deadline_s  # its model calls take seconds: the runtime's evaluation_deadline_s (2 s) is for CPU metrics
        self.judge = judge
        self.rubric = rubric
        self.scale = dict(scale) if isinstance(scale, Mapping) else scale
        self.pass_at = pass_at
        self.pairwise = pairwise
        self.budget = Budget(max_calls_per_minute, max_calls_per_day, max_usd_per_day)
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if not callable(self.judge):
            raise TypeError(f"LlmJudge: judge={self.judge!r} must be a function (messages) -> reply text")
        if not isinstance(self.rubric, str) or not self.rubric.strip():
            raise ValueError(f"LlmJudge: rubric={self.rubric!r} must be a non-empty description of what a good answer is")
        if not isinstance(self.scale, dict) or len(self.scale) < 2 or not all(
            isinstance(k, int) and not isinstance(k, bool) and isinstance(v, str) and v for k, v in self.scale.items()
        ):
            raise ValueError(f"LlmJudge: scale={self.scale!r} must map two or more int points to their labels, e.g. {DEFAULT_SCALE}")
        if self.pass_at not in self.scale:
            raise ValueError(f"LlmJudge: pass_at={self.pass_at!r} is not a point of the scale; use one of {sorted(self.scale)}")
        self.budget.validate("LlmJudge")
        check_deadline("LlmJudge", self.deadline_s)

    def applies(self, call: CallView) -> bool:
        return bool(call.output_text.strip()) and (not self.pairwise or isinstance(call.context.get("reference"), str))

    # ---- prompts ------------------------------------------------------------------------

    def _question(self, call: CallView) -> str:
        users = call.user_texts()
        return (users[-1] if users else "")[:PROMPT_MAX_CHARS]

    def _rating_prompt(self, call: CallView) -> list[dict[str, str]]:
        points = "\n".join(f"{k} = {v}" for k, v in sorted(self.scale.items()))
        system = (
            f"You grade an assistant's answer. Rubric: {self.rubric}\nScale:\n{points}\n"
            "Judge the content, not the length. Reply with one line 'Score: N' and nothing else."
        )
        user = f"Question:\n{self._question(call)}\n\nAnswer:\n{call.output_text[:PROMPT_MAX_CHARS]}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _pair_prompt(self, call: CallView, first: str, second: str) -> list[dict[str, str]]:
        system = (
            f"You compare two answers to the same question. Rubric: {self.rubric}\n"
            "Judge the content, not the length or the order. Reply with one line 'Winner: A' or 'Winner: B'."
        )
        user = f"Question:\n{self._question(call)}\n\nAnswer A:\n{first[:PROMPT_MAX_CHARS]}\n\nAnswer B:\n{second[:PROMPT_MAX_CHARS]}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _ask(self, messages: list[dict[str, str]]) -> str:
        reply = self.judge(messages)  # made while this metric evaluates: traced, charged to it, never evaluated
        if not isinstance(reply, str):
            raise TypeError(f"judge(messages) must return the reply text, returned {type(reply).__name__}")
        return reply

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate(self, call: CallView) -> Result:
        answer = call.output_text
        details: dict[str, Any] = {"answer_words": len(answer.split())}
        calls = 2 if self.pairwise else 1
        refused = self.budget.take(calls)
        if refused is not None:
            return Result("undetermined", explanation=refused, details={**details, "budget_exhausted": True, "judge_calls": 0})
        details["judge_calls"] = calls
        try:
            return self._pairwise(call, details) if self.pairwise else self._rate(call, details)
        finally:
            self.budget.spend(spent_here())  # the USD cap sees what the judge's calls cost, failed evaluations too

    def _rate(self, call: CallView, details: dict[str, Any]) -> Result:
        reply = self._ask(self._rating_prompt(call))
        m = _RATING.search(reply)
        rating = int(m.group(1)) if m else None
        if rating not in self.scale:
            return Result("undetermined", explanation="the judge's reply has no 'Score: N' on the scale", details=details)
        low, high = min(self.scale), max(self.scale)
        details.update(rating=rating, rating_label=self.scale[rating])
        score = (rating - low) / (high - low)
        if rating >= self.pass_at:
            return Result("pass", score=score, details=details)
        return Result("fail", score=score, explanation=f"rated {rating} ({self.scale[rating]}), below pass_at={self.pass_at}", details=details)

    def _pairwise(self, call: CallView, details: dict[str, Any]) -> Result:
        answer, reference = call.output_text, call.context["reference"]
        first = _CHOICE.search(self._ask(self._pair_prompt(call, answer, reference)))  # the answer as A
        second = _CHOICE.search(self._ask(self._pair_prompt(call, reference, answer)))  # the answer as B
        if first is None or second is None:
            return Result("undetermined", explanation="the judge's reply has no 'Winner: A' or 'Winner: B'", details=details)
        answer_won = (first.group(1).upper() == "A", second.group(1).upper() == "B")
        details["preferred"] = "answer" if all(answer_won) else "reference" if not any(answer_won) else "position"
        if all(answer_won):
            return Result("pass", score=1.0, details=details)
        if not any(answer_won):
            return Result("fail", score=0.0, explanation="the judge preferred the reference both ways round", details=details)
        return Result("undetermined", explanation="the judge preferred the same position both ways round (position bias)", details=details)
