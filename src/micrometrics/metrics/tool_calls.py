"""Tool-call validity: the model called a tool the request offered, with arguments that parse and
match the tool's JSON schema.

The schema check is a small subset of JSON Schema, the part tool definitions use (``type``,
``required``, ``properties``, ``additionalProperties``, ``enum``, ``const``, ``items``,
``anyOf``/``oneOf``, ``minimum``/``maximum``, ``minLength``/``maxLength``,
``minItems``/``maxItems``); other keywords are not checked. No dependency: jsonschema is not
needed.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from micrometrics.metric import INFERENCE_OPERATIONS, CallView, MicroMetric, Result, yield_point

#: Arguments longer than this (as text) are not parsed: ``too_large``.
MAX_ARGUMENT_CHARS = 200_000
#: Schema depth and errors looked at: a hostile schema or argument cannot make the check unbounded.
MAX_DEPTH = 32
MAX_ERRORS = 20
#: Tool calls of one answer checked (the first ones).
MAX_CALLS = 64

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False  # JSON true is not 1
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    types = _TYPES.get(kind)
    return True if types is None else isinstance(value, types)


def schema_errors(value: Any, schema: Any, path: str = "", depth: int = 0) -> Iterator[str]:
    """``"<path>: <rule>"`` for each way ``value`` breaks ``schema`` (the subset above); paths name
    properties and array indexes (from the schema and the structure), never the values."""
    if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return
    where = path or "arguments"
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []
        if kinds and not any(_is_type(value, k) for k in kinds):
            yield f"{where}: type (expected {'/'.join(kinds)})"
            return
    if "enum" in schema and isinstance(schema["enum"], list) and not any(_same(value, e) for e in schema["enum"]):
        yield f"{where}: enum"
    if "const" in schema and not _same(value, schema["const"]):
        yield f"{where}: const"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if not any(next(schema_errors(value, o, path, depth + 1), None) is None for o in options):
                yield f"{where}: {key}"
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        for key, ok in (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
                        ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b)):
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not ok(bound):
                yield f"{where}: {key}"
    elif isinstance(value, str):
        for key, ok in (("minLength", lambda b: len(value) >= b), ("maxLength", lambda b: len(value) <= b)):
            bound = schema.get(key)
            if isinstance(bound, int) and not ok(bound):
                yield f"{where}: {key}"
    elif isinstance(value, list):
        for key, ok in (("minItems", lambda b: len(value) >= b), ("maxItems", lambda b: len(value) <= b)):
            bound = schema.get(key)
            if isinstance(bound, int) and not ok(bound):
                yield f"{where}: {key}"
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                yield from schema_errors(item, items, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        required = schema.get("required")
        if isinstance(required, list):
            for name in required:
                if isinstance(name, str) and name not in value:
                    yield f"{where}.{name}: required"
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = properties.get(name)
            if sub is not None:
                yield from schema_errors(item, sub, f"{where}.{name}", depth + 1)
            elif extra is False:
                # The unexpected key is the model's text, not the schema's: named by its position only.
                yield f"{where}: additionalProperties"
            elif isinstance(extra, Mapping):
                yield from schema_errors(item, extra, f"{where}.*", depth + 1)


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def check_call(part: Mapping[str, Any], tools: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(problem kind, the first schema error) of one tool call; (None, None) when it is valid."""
    name = part.get("name")
    if tools is not None and name not in tools:
        return "unknown_tool", None
    arguments = part.get("arguments")
    if arguments is None:
        arguments = {}  # a call without arguments: the empty object, as the providers send it
    if isinstance(arguments, str):
        if len(arguments) > MAX_ARGUMENT_CHARS:
            return "too_large", None
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return "invalid_json", None
        except RecursionError:
            return "invalid_json", None
    if not isinstance(arguments, dict):
        return "not_object", None
    if tools is None:
        return None, None
    schema = (tools.get(name) or {}).get("parameters")
    if not isinstance(schema, Mapping):
        return None, None
    try:
        errors = []
        for e in schema_errors(arguments, schema):
            errors.append(e)
            if len(errors) >= MAX_ERRORS:
                break
    except RecursionError:
        return "schema", "arguments: too deeply nested"
    if errors:
        return "schema", errors[0]
    return None, None


class ToolCallValidity(MicroMetric):
    """The answer's tool calls: known tool names, arguments that parse, and match the tool's schema.

    Applies to calls whose answer has tool calls. Each call is checked against the request's tool
    definitions (``gen_ai.tool.definitions``): ``unknown_tool`` (a name the request did not
    offer), ``invalid_json`` (arguments that do not parse), ``not_object`` (JSON, but not an
    object), ``too_large`` (over 200,000 characters), ``schema`` (breaks the tool's parameter schema,
    in the subset of JSON Schema tools use: type, required, properties, additionalProperties, enum,
    const, items, anyOf/oneOf, minimum/maximum, minLength/maxLength, minItems/maxItems). Without
    definitions only parsing is checked (``details.schemas=False``). ``pass`` / ``fail``; details
    ``calls``, ``invalid``, ``problems`` (the kinds, comma-separated), ``first_error`` (e.g.
    ``get_weather: arguments.unit: enum``: tool and schema path, never the argument's value); score:
    the share of valid calls. As a guard it retries with an instruction naming the tool and rule.
    """

    process_safe = True
    reads_retrieved_documents = False
    latency_class = "realtime"

    name = "tool_call_validity"
    applies_to = INFERENCE_OPERATIONS

    def __init__(self, *, require_definitions: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.require_definitions = require_definitions
        self.validate()  # a mistake surfaces here, where it is made, not at instrument()

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.require_definitions, bool):
            raise TypeError(f"ToolCallValidity: require_definitions={self.require_definitions!r} must be True or False")

    @staticmethod
    def _calls(call: CallView) -> list[Mapping[str, Any]]:
        return [p for m in call.output_messages[:1] for p in (m.get("parts") or ()) if isinstance(p, Mapping) and p.get("type") == "tool_call"]

    def applies(self, call: CallView) -> bool:
        return bool(self._calls(call))

    def evaluate(self, call: CallView) -> Result:
        parts = self._calls(call)[:MAX_CALLS]
        definitions = call.tool_definitions
        tools = {d.get("name"): d for d in definitions if isinstance(d, Mapping)} if definitions else None
        if tools is None and self.require_definitions:
            return Result("undetermined", explanation="the request's tool definitions were not recorded", details={"calls": len(parts), "schemas": False})
        problems: list[str] = []
        first_error = None
        invalid = 0
        for part in parts:
            yield_point()
            kind, error = check_call(part, tools)
            if kind is None:
                continue
            invalid += 1
            if kind not in problems:
                problems.append(kind)
            if first_error is None:
                # An unknown name is the model's text: named by its kind only.
                first_error = kind if kind == "unknown_tool" else f"{part.get('name')}: {error or kind}"
        details: dict[str, Any] = {"calls": len(parts), "invalid": invalid, "problems": ",".join(problems), "schemas": tools is not None}
        score = (len(parts) - invalid) / len(parts)
        if not invalid:
            return Result("pass", score=score, details=details)
        details["first_error"] = first_error
        return Result("fail", score=score, explanation=f"{invalid} of {len(parts)} tool calls invalid: {first_error}", details=details)

    def corrective_instruction(self, call: CallView, result: Result) -> str | None:
        error = (result.details or {}).get("first_error")
        offered = ", ".join(str(d.get("name")) for d in call.tool_definitions if isinstance(d, Mapping))
        return (
            f"Your previous tool call was invalid ({error}). Call only the tools offered ({offered}), "
            "with arguments that are one JSON object matching the tool's parameter schema."
        )
