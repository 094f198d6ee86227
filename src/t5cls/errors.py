"""The exceptions t5cls raises for mistakes a user can make, and the argument checks that raise them.

:class:`InputError` is the one to catch: a bad argument, option, file or request body. The CLI
prints it (and ``FileNotFoundError`` / ``FileExistsError``) as one line and exits 2, and the
server answers it with a 4xx; any other exception is a bug in t5cls (or below it) and keeps its
traceback (exit status 1, HTTP 500).

The ``check_*`` functions are the one way the jobs (Classifier, LabelScorer, ZeroShotClassifier,
evaluate, export, convert, serve) check their plain arguments, so that ``max_length=0`` or
``batch_tokens=-1`` get the same clear message everywhere. A data module: it imports nothing of
t5cls and not torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any


class InputError(ValueError):
    """A value the user gave is wrong; the message names the value and the fix."""


class InputTypeError(InputError, TypeError):
    """An :class:`InputError` for a value of the wrong type, so ``except TypeError`` keeps working."""


# Exceptions that mean "the user gave something wrong": the CLI exits 2 on them, the server answers 4xx.
USER_ERRORS = (InputError, FileNotFoundError, FileExistsError)


def check_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None, none_ok: bool = False, hint: str = "") -> Any:
    """``value`` when it is an integer in ``[minimum, maximum]`` (or ``None`` when ``none_ok``).

    Raises:
        InputTypeError: not an integer (``True`` and ``2.0`` are refused too).
        InputError: out of range; the message names ``name``, the value and the range.

    Example:
        >>> check_int("batch_tokens", 4096)
        4096
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputTypeError(f"{name}={value!r} must be an integer{' or None' if none_ok else ''}{_hint(hint)}.")
    if value < minimum or (maximum is not None and value > maximum):
        span = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(f"{name}={value!r} must be {span}{' (or None)' if none_ok else ''}{_hint(hint)}.")
    return int(value)


def check_number(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None, none_ok: bool = False, hint: str = ""
) -> Any:
    """``value`` as a float when it is a finite number in ``[minimum, maximum]`` (or ``None`` when ``none_ok``).

    Raises:
        InputTypeError: not a number.
        InputError: NaN, infinite, or out of range.

    Example:
        >>> check_number("threshold", 0.5, minimum=0.0, maximum=1.0)
        0.5
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputTypeError(f"{name}={value!r} must be a number{' or None' if none_ok else ''}{_hint(hint)}.")
    value = float(value)
    low = -float("inf") if minimum is None else minimum
    high = float("inf") if maximum is None else maximum
    if not (low <= value <= high) or value in (float("inf"), -float("inf")):
        if minimum is not None and maximum is not None:
            span = f"between {minimum:g} and {maximum:g}"
        elif minimum is not None:
            span = f"at least {minimum:g}"
        elif maximum is not None:
            span = f"at most {maximum:g}"
        else:
            span = "a finite number"
        raise InputError(f"{name}={value!r} must be {span}{' (or None)' if none_ok else ''}{_hint(hint)}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], *, hint: str = "") -> Any:
    """``value`` when it is one of ``choices``.

    Raises:
        InputError: naming the value and listing the choices.
    """
    choices = tuple(choices)
    try:
        known = value in choices
    except TypeError:  # an unhashable value against a set-like choice list
        known = False
    if not known:
        listed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name}={value!r} is not supported; use one of {listed}{_hint(hint)}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` when it is ``True`` or ``False`` (not ``"false"``, which Python reads as true).

    Raises:
        InputTypeError: anything else.
    """
    if not isinstance(value, bool):
        raise InputTypeError(f"{name}={value!r} must be True or False.")
    return value


def check_max_length(max_length: Any) -> int | None:
    """``max_length`` when it is None or a usable token count (at least 2: some text and ``</s>``).

    Raises:
        InputError: 0, a negative number, 1, or not an integer.
    """
    return check_int("max_length", max_length, minimum=2, none_ok=True, hint="tokens per input, None for the tokenizer's maximum")


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


__all__ = [
    "InputError",
    "InputTypeError",
    "USER_ERRORS",
    "check_bool",
    "check_choice",
    "check_int",
    "check_max_length",
    "check_number",
]
