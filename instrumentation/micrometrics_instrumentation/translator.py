"""The base of every translator: ``calls.Translator`` with the defaults a call that neither streams nor retries needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from micrometrics.records import CallRecord

if TYPE_CHECKING:
    from micrometrics.streams import Accumulator


class Translator:
    """Turns one library method's request and response into a call record; translation only.

    Subclasses implement ``request`` and ``response``; one whose method can stream overrides
    ``accumulator``, one whose request can carry a guard's instruction overrides ``with_instruction``.
    """

    #: What an instrumented call of the same family nested in this one does (``micrometrics.nesting``):
    #: ``"suppress"`` (no span of its own; the default) or ``"child"`` (its own span, under this one).
    nested: str | None = None

    def request(self, instance: Any, args: tuple, kwargs: dict) -> CallRecord:  # pragma: no cover - abstract
        raise NotImplementedError

    def response(self, record: Any, response: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def accumulator(self, record: Any, stream: Any) -> Accumulator | None:
        """What folds the stream's chunks into the record; None: not a stream we watch."""
        return None

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]:
        """The arguments of a guard's retry: the request with the guard's instruction, if it has one."""
        if not instruction:
            return args, kwargs
        return args, self.with_instruction(kwargs, instruction)

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        """The request telling the model ``instruction``, the library's way; unchanged: the call cannot take one."""
        return kwargs
