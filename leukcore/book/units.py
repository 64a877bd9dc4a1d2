"""How the book prints a number in its claim's unit: one formatter for every table and sentence.

A ``percent`` claim's values are held as fractions (0.976) and printed as percentages (97.60);
the sign that follows them is the caller's (a table puts one ``%`` after a value and its
interval, a sentence one after each number, joined by a no-break space, :data:`NBSP`).
"""
from __future__ import annotations

NBSP = "\u00a0"  # between a number and its unit: the unit never wraps to a line of its own


def format_value(v, unit: str, *, digits: int | None = None, signed: bool = False) -> str:
    """``v`` as its ``unit`` prints, '' when it is missing (None or NaN).

    ``percent``: a fraction as a percentage with ``digits`` decimals (default 2: 0.976 -> ``97.60``);
    ``fraction``: 3 decimals; ``params``: a whole number with thousands separators (``1,234,567``);
    ``count``: a whole number; any other unit (seconds, unitless): 4 significant digits.
    ``signed``: always with its sign (a difference: ``+1.20``).
    """
    if v is None or v != v:
        return ""
    sign = "+" if signed else ""
    if unit == "percent":
        return f"{100 * float(v):{sign}.{2 if digits is None else digits}f}"
    if unit == "fraction":
        return f"{float(v):{sign}.3f}"
    if unit == "params":
        return f"{int(round(float(v))):{sign},}"
    if unit == "count":
        return f"{int(round(float(v))):{sign}d}"
    return f"{float(v):{sign}.4g}"
