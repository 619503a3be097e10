"""How charts and tables write text and numbers: XML escaping (also right for HTML),
numbers in full, and the y axis's ticks and their labels.

```python
nice_ticks(0, 37)           # [0.0, 10.0, 20.0, 30.0, 40.0]
tick_texts([0, 5e4, 1e5])   # ["0", "50k", "100k"]
```
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["data_value", "full_number", "nice_ticks", "tick_texts", "xml_attr", "xml_text"]

# Characters XML 1.0 does not allow at all, even as references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)


def xml_text(value: object) -> str:
    """`value` as XML (and HTML) character data."""
    return _NOT_XML.sub("\ufffd", str(value)).translate(_TEXT_ESCAPES)


def xml_attr(value: object) -> str:
    """`value` as a double-quoted attribute's content; tabs and newlines survive."""
    return _NOT_XML.sub("\ufffd", str(value)).translate(_ATTR_ESCAPES)


def full_number(value: Any) -> str:
    """A value written out in full: thousands separators, up to 12 significant digits."""
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 1e12:
        return f"{number:,.0f}"
    return f"{number:,.12g}"


def data_value(value: Any) -> str:
    """The number as the result has it, for `data-value` (`float()` reads it back)."""
    return repr(value) if isinstance(value, float) else str(int(value))


def nice_ticks(low: float, high: float, *, integers: bool = False) -> list[float]:
    """The y axis from `low` to `high`, 0 included: 4 to 6 ticks spaced by 1, 2, 2.5 or 5
    times a power of ten, the first at or below `low` and the last at or above `high`.

    With `integers` (counts) the step is a whole number, so a range under 3 gets fewer
    ticks rather than fractional ones. A range of nothing (both 0) is `[0, 1]`.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"nice_ticks: the range must be finite, got {low!r} to {high!r}")
    if low == high:
        return [0.0, 1.0]
    # Spans under 1e-300 (denormal floats) get a step of 1e-300 and fewer ticks.
    exponent = max(math.floor(math.log10(high - low) - math.log10(5)), -299)
    for power in range(exponent - 1, exponent + 3):
        for mantissa in (1, 2, 2.5, 5):
            if integers and (power < 0 or (mantissa == 2.5 and power < 1)):
                continue

            def tick(k: int, mantissa: float = mantissa, power: int = power) -> float:
                # k * mantissa is exact in binary; parsing applies the power of ten exactly.
                return float(f"{k * mantissa!r}e{power}")

            step = tick(1)
            below, above = math.ceil(-low / step), math.ceil(high / step)
            # The divisions may round up past a whole number: keep the least tick that covers.
            if below > 0 and tick(-(below - 1)) <= low:
                below -= 1
            if above > 0 and tick(above - 1) >= high:
                above -= 1
            # And past 0 for values too small to divide (denormals).
            below, above = max(below, int(low < 0)), max(above, int(high > 0))
            if below + above <= 5:
                if below + above < 3 and step > 1:
                    # Only whole steps jump from 2 to 5 and can leave 3 ticks: one more.
                    below, above = (below + 1, above) if below > above else (below, above + 1)
                return [tick(k) for k in range(-below, above + 1)]
    raise AssertionError(f"nice_ticks: no step found for {low!r} to {high!r}")  # unreachable


def tick_texts(ticks: Sequence[float]) -> list[str]:
    """Tick labels: separators, a minus sign, and k, M or B from ten thousand on."""
    top = max(abs(ticks[0]), abs(ticks[-1]))
    divisor, suffix = 1.0, ""
    for reach, size, letter in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if top >= reach:
            divisor, suffix = size, letter
            break
    scaled = [tick / divisor for tick in ticks]
    decimals = 0
    while decimals < 12 and any(
        abs(value - round(value, decimals)) > 1e-9 * max(1.0, abs(value)) for value in scaled
    ):
        decimals += 1
    texts = []
    for value in scaled:
        text = f"{value:,.{decimals}f}"
        texts.append("0" if text.strip("-0.,") == "" else text.replace("-", "\u2212") + suffix)
    return texts
