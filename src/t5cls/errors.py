"""The exceptions t5cls raises for mistakes a user can make.

:class:`InputError` is the one to catch: a bad argument, option, file or request body. The CLI
prints it as one line and exits 2, and the server answers it with a 4xx; any other exception is
a bug in t5cls (or below it) and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A value the user gave is wrong; the message names the value and the fix."""


class InputTypeError(InputError, TypeError):
    """An :class:`InputError` for a value of the wrong type, so ``except TypeError`` keeps working."""


__all__ = ["InputError", "InputTypeError"]
