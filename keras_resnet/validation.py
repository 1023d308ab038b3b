"""The checks every user-facing number goes through, with one wording for their errors."""

from __future__ import annotations

import math
import numbers


def float_or_nan(value) -> float:
    """``float(value)``, or NaN where it is not a number (a blank CSV cell, ``NA``, None).

    Example:
        >>> float_or_nan("0.5"), float_or_nan("NA")
        (0.5, nan)
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def check_integer(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` if it is an integer (not a bool) of at least ``minimum``.

    Raises a ``ValueError`` that names the argument and the value received.

    Example:
        >>> check_integer(3, "epochs", minimum=1)
        3
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (minimum is not None and value < minimum)
    ):
        bound = "" if minimum is None else f" of at least {minimum}"
        raise ValueError(f"`{name}` must be an integer{bound}. Received: {name}={value!r}")
    return value


def check_number(
    value, name: str, low=None, high=None, *, low_open: bool = False, high_open: bool = False
) -> float:
    """Return ``value`` if it is a finite real number within the bounds (open or closed).

    Example:
        >>> check_number(0.9, "momentum", low=0.0, high=1.0, high_open=True)
        0.9
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        within = f" {' and '.join(bounds)}" if bounds else " (finite)"
        raise ValueError(f"`{name}` must be a number{within}. Received: {name}={value!r}")
    return value
