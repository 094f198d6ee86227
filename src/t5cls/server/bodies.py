"""Request and response parts shared by every API family the server speaks.

Texts, label lists and the error body are validated here once, with the same rules for every route,
and each type carries the JSON schema that says exactly what it accepts, so that ``/openapi.json``
is a contract a client (or schemathesis) can hold the server to. Limits that depend on the server's
settings (``max_inputs``, ``max_chars``, ``max_documents``) appear in these schemas as
``x-t5cls-limit`` markers that :func:`t5cls.server.contract.apply_limits` turns into numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "an array", dict: "an object"}

# Marker keys replaced by apply_limits: {"x-t5cls-limit": {"maxLength": "max_chars"}} -> {"maxLength": 10000}.
LIMIT_KEY = "x-t5cls-limit"
# A comma-separated label string: its own marker, because its count and lengths are a pattern.
LABEL_STRING_KEY = "x-t5cls-label-string"

# Non-blank: Python's str.isspace() is what the validators use, and Python's re (schemathesis's
# generator, and pydantic's python-re engine below) means the same by \s.
TEXT_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"\S", LIMIT_KEY: {"maxLength": "max_chars"}}


# Names pydantic puts in an error's location for the union member it tried; error messages drop them.
UNION_BRANCHES = frozenset({"str", "int", "float", "bool", "list", "string", "object", "zero-shot", "text-classification", "single", "batch"})


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for error messages ("an array", "null")."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _text(value: Any, index: int | None, expected: str) -> str:
    if not isinstance(value, str):
        if index is None:
            raise PydanticCustomError("text_type", "must be a string, got {got}.", {"got": json_type(value)})
        raise PydanticCustomError(
            "input_type", "item {index} is {got}; each item must be {expected}.", {"index": index, "got": json_type(value), "expected": expected}
        )
    if not value.strip():
        if index is None:
            raise PydanticCustomError("text_empty", "is an empty string; send text.")
        raise PydanticCustomError("input_empty", "item {index} is an empty string; send text to classify.", {"index": index})
    return value


def input_list(value: Any, *, allow_pairs: bool) -> list[Any]:
    """``inputs`` as a non-empty list of non-blank strings, or of ``(text, text_pair)`` tuples (not mixed)."""
    expected = "a string or a [text, text_pair] pair of strings" if allow_pairs else "a string"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PydanticCustomError("inputs_type", "must be a string or an array of strings, got {got}.", {"got": json_type(value)})
    if not value:
        raise PydanticCustomError("inputs_empty", "the list is empty; send at least one text.")
    items: list[Any] = []
    for index, item in enumerate(value):
        if allow_pairs and isinstance(item, list) and len(item) == 2 and all(isinstance(p, str) for p in item):
            for part in item:
                if not part.strip():
                    raise PydanticCustomError("input_empty", "item {index} has an empty string; both texts of a pair need text.", {"index": index})
            items.append((item[0], item[1]))
            continue
        items.append(_text(item, index, expected))
    if allow_pairs and len({isinstance(item, tuple) for item in items}) > 1:
        raise PydanticCustomError("inputs_mixed", "mixes single texts and [text, text_pair] pairs; send one kind per request.")
    return items


def label_list(value: Any, *, min_items: int = 1, allow_string: bool = True) -> list[str]:
    """Labels: an array of distinct non-blank strings, or one comma-separated string.

    A label typed twice in a comma-separated string counts once (it is a convenience for people
    typing labels); an array with a repeated label is refused, as its caller chose each entry.
    """
    if isinstance(value, str) and allow_string:
        value = list(dict.fromkeys(part.strip() for part in value.split(",")))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        expected = "an array of strings (or one comma-separated string)" if allow_string else "an array of strings"
        raise PydanticCustomError("labels_type", "must be {expected}.", {"expected": expected})
    if not value or any(not v.strip() for v in value):
        raise PydanticCustomError("labels_empty", "must hold at least one label and no empty ones.")
    if len(value) < min_items:
        raise PydanticCustomError("labels_few", "has {n} label(s); send at least {m} labels.", {"n": len(value), "m": min_items})
    if len(set(value)) != len(value):
        raise PydanticCustomError("labels_repeated", "has a repeated label; list each label once.")
    return value


def array_schema(items: dict[str, Any], *, limit: str = "max_inputs", min_items: int = 1, unique: bool = False) -> dict[str, Any]:
    """The JSON schema of an array of ``items``, at most the server's ``limit`` (a setting name) long."""
    schema: dict[str, Any] = {"type": "array", "items": items, "minItems": min_items, LIMIT_KEY: {"maxItems": limit}}
    if unique:
        schema["uniqueItems"] = True
    return schema


PAIR_SCHEMA: dict[str, Any] = {"type": "array", "items": TEXT_SCHEMA, "minItems": 2, "maxItems": 2}


LABELS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        array_schema(TEXT_SCHEMA, unique=True),
        {"type": "string", LABEL_STRING_KEY: {"min_items": 1}, "description": "comma-separated labels; a repeated one counts once"},
    ]
}


def _integral(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 to a JSON Schema validator, and so here.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Count = Annotated[int, BeforeValidator(_integral), Field(ge=1), WithJsonSchema({"type": "integer", "minimum": 1})]
"""A positive integer (``top_k``, ``top_n``); ``3.0`` counts as ``3``, as in JSON Schema."""

def _probability(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0.0 <= value <= 1.0:
        raise PydanticCustomError("probability", "{value} must be a probability between 0 and 1.", {"value": value})
    return value


Probability = Annotated[float, BeforeValidator(_probability), WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})]
"""A number in [0, 1] (``min_score``, ``threshold``)."""

Stride = Annotated[
    int, BeforeValidator(_integral), Field(ge=0), WithJsonSchema({"type": "integer", "minimum": 0, LIMIT_KEY: {"maximum": "max_stride"}})
]
"""Tokens of overlap between windows: at least 0 and under the model's max_length (``max_stride``)."""

Text = Annotated[str, BeforeValidator(lambda v: _text(v, None, "a string")), WithJsonSchema(TEXT_SCHEMA)]
"""One non-blank string (a query, a document)."""

Texts = Annotated[
    str | list[str | tuple[str, str]],
    BeforeValidator(lambda v: input_list(v, allow_pairs=True)),
    WithJsonSchema({"anyOf": [TEXT_SCHEMA, array_schema(TEXT_SCHEMA), array_schema(PAIR_SCHEMA)]}),
]
"""A text, an array of texts, or an array of ``[text, text_pair]`` pairs."""

SingleTexts = Annotated[
    str | list[str], BeforeValidator(lambda v: input_list(v, allow_pairs=False)), WithJsonSchema({"anyOf": [TEXT_SCHEMA, array_schema(TEXT_SCHEMA)]})
]
"""A text or an array of texts."""


def _checked(value: Any, *, allow_pairs: bool) -> Any:
    """``value`` as sent, once :func:`input_list` accepts it (pairs become tuples)."""
    items = input_list(value, allow_pairs=allow_pairs)
    return value if isinstance(value, str) else items


TextOrTexts = Annotated[
    str | list[str],
    BeforeValidator(lambda v: _checked(v, allow_pairs=False)),
    WithJsonSchema({"anyOf": [TEXT_SCHEMA, array_schema(TEXT_SCHEMA)]}),
]
"""A text or an array of texts, kept in the shape sent: formats that answer a string and an array
differently (Hugging Face zero-shot, TEI) need to know which came."""


def as_list(inputs: str | list[Any]) -> list[Any]:
    """``[inputs]`` for one text, else ``inputs`` itself."""
    return [inputs] if isinstance(inputs, str) else list(inputs)


Labels = Annotated[str | list[str], BeforeValidator(label_list), WithJsonSchema(LABELS_SCHEMA)]
"""Candidate labels: an array of distinct strings, or one comma-separated string."""

ScoreLabels = Annotated[
    list[str], BeforeValidator(lambda v: label_list(v, min_items=2, allow_string=False)), WithJsonSchema(array_schema(TEXT_SCHEMA, min_items=2, unique=True))
]
"""At least two distinct labels, as an array (label scoring normalises over them; a comma-separated
string could repeat a label, which would leave fewer than its schema promised)."""

Documents = Annotated[list[Text], Field(min_length=1), WithJsonSchema(array_schema(TEXT_SCHEMA, limit="max_documents"))]
"""Documents to rank against one query."""


# Templates over HTTP: one slot and no other braces, so that the schema can say exactly which it takes.
HYPOTHESIS_TEMPLATE_PATTERN = r"^[^{}]*\{\}[^{}]*$"
SCORE_TEMPLATE_PATTERN = r"^[^{}]*\{[A-Za-z_][A-Za-z0-9_]*\}[^{}]*$"


def _template_error(kind: str, message: str, value: str, **context: str) -> PydanticCustomError:
    # Braces go in through the context: the message itself is a template over {names}.
    return PydanticCustomError(kind, message, {"value": repr(value), **context})


def _hypothesis_template(value: str) -> str:
    slot, example = "'{}'", "'This example is {}.'"
    if "{}" not in value:
        message = "{value} has no {slot} for the label; put {slot} where the label goes, e.g. {example}."
        raise _template_error("template_slot", message, value, slot=slot, example=example)
    if not re.fullmatch(HYPOTHESIS_TEMPLATE_PATTERN, value):
        raise _template_error("template_braces", "{value} has braces besides one {slot}; over HTTP a template has no other braces.", value, slot=slot)
    return value


def _score_template(value: str) -> str:
    if not re.fullmatch(SCORE_TEMPLATE_PATTERN, value):
        message = "{value} needs one field for the text, such as {field}, and no other braces (e.g. {example})."
        raise _template_error("template_slot", message, value, field="{text}", example="'sst2 sentence: {text}'")
    return value


HypothesisTemplate = Annotated[str, AfterValidator(_hypothesis_template), WithJsonSchema({"type": "string", "pattern": HYPOTHESIS_TEMPLATE_PATTERN})]
"""A zero-shot hypothesis with one ``{}`` for the label."""

ScoreTemplate = Annotated[str, AfterValidator(_score_template), WithJsonSchema({"type": "string", "pattern": SCORE_TEMPLATE_PATTERN})]
"""A label-scoring prompt with one named field for the text."""


class StrictBody(BaseModel):
    """Base of every request body: unknown fields are refused, and nothing is coerced."""

    # strict: a number is not silently read as a string, nor "2" as top_k=2. python-re: patterns
    # mean what they mean in the published schema's generators (Python's re).
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


class ErrorBody(BaseModel):
    """Every error the server answers: one message that names the field or limit and the fix."""

    detail: str = Field(description="What was wrong and how to fix it.", examples=["inputs: the list is empty; send at least one text."])


class LabelScore(BaseModel):
    label: str
    score: float


def ranked(row: np.ndarray, labels: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
    """``[{"label", "score"}, ...]`` best first (ties keep the model's label order), at most ``top_k``."""
    order = np.argsort(-np.asarray(row), kind="stable")[: top_k or len(labels)]
    return [{"label": labels[j], "score": float(row[j])} for j in order]


__all__ = [
    "Count", "Probability", "Stride", "Text", "Texts", "SingleTexts", "TextOrTexts", "Labels", "ScoreLabels", "Documents",
    "HypothesisTemplate", "ScoreTemplate",
    "StrictBody", "ErrorBody", "LabelScore", "ranked", "as_list", "array_schema", "input_list", "label_list", "json_type",
    "TEXT_SCHEMA", "PAIR_SCHEMA", "LIMIT_KEY", "LABEL_STRING_KEY", "UNION_BRANCHES", "HYPOTHESIS_TEMPLATE_PATTERN", "SCORE_TEMPLATE_PATTERN",
]
