"""Declared predictor options: each option's type and range, checked before any work, like the
CLI's own options (``-P size=-5`` is refused in one line, not evaluated into a NaN table)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from iis_pipe.errors import OptionError


@dataclass(frozen=True)
class Option:
    """One option: ``kind`` (int, float or str), an inclusive range ``[low, high]`` (``None``:
    open), ``low_open`` to exclude ``low`` itself, or ``choices``."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        name = {int: "an integer", float: "a number", str: "a string"}[self.kind]
        lo = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = None if self.high is None else f"<= {self.high:g}"
        return " ".join([name, *[" and ".join(b for b in (lo, hi) if b)]]).strip()

    def check(self, owner: str, name: str, value: Any) -> Any:
        """``value`` converted to ``kind`` (an integral float for an int; an int for a float),
        or ``OptionError`` saying what the option takes."""
        ok = value
        if self.kind is int:
            if isinstance(value, float) and value.is_integer():
                ok = int(value)
            elif isinstance(value, bool) or not isinstance(value, int):
                ok = None
        elif self.kind is float:
            ok = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else None
        elif not isinstance(value, str):
            ok = None
        if ok is None or ok != ok or (self.choices and ok not in self.choices) or (
                self.low is not None and (ok < self.low or (self.low_open and ok == self.low))) \
                or (self.high is not None and ok > self.high):
            raise OptionError(owner, name, value, f"must be {self.describe()}")
        return ok


def check_options(owner: str, schema: Mapping[str, Option], options: Mapping[str, Any]
                  ) -> dict[str, Any]:
    """``options`` checked against ``schema``: unknown names and bad values raise
    ``OptionError`` (a ValueError) naming the option and what it takes."""
    unknown = sorted(set(options) - set(schema))
    if unknown:
        raise OptionError(owner, unknown[0], options[unknown[0]],
                          f"no such option {unknown}; its options: {sorted(schema)}")
    return {k: schema[k].check(owner, k, v) for k, v in options.items()}
