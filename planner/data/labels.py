"""Labels as CTR files write them -> float32 0/1.

- numeric (the default): 0/1 or -1/1 (libSVM's convention; ``+1`` reads as 1). One load uses one
  convention: a 0 and a -1 in the same file, or in the training and a validation file, is an
  error naming where each was seen, since a mislabelled split would be scored silently wrong;
- ``positive`` given (``--positive-label click``): that text is 1, and every other label must be
  one single other value, so that a typo'd label ("clik") is an error, not a negative.

One decoder serves every file of a load, so the checks span the splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from unimixer_plan.data.errors import DataError

ALLOWED = "labels are 0/1 or -1/1, or name the positive value with --positive-label"


@dataclass
class _Seen:
    text: str
    where: str  # "FILE line N" or "FILE row N"


@dataclass
class LabelDecoder:
    positive: str | None = None
    _convention: tuple[str, _Seen] | None = None  # ("0/1" | "-1/1", where its evidence was)
    _others: dict[str, _Seen] = field(default_factory=dict)  # positive mode: the non-positive values

    def decode(
        self, values: np.ndarray, path: str | Path, first_line: int | None, first_row: int = 0, column: str = "label"
    ) -> np.ndarray:
        """``values`` (text or numbers, NaN/"" = missing) of rows first_row.. (on lines first_line..)."""
        unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        out = np.zeros(len(unique), dtype=np.float32)
        for k in np.argsort(first, kind="stable"):  # in file order: the first problem and evidence win
            value, offset = unique[k], int(first[k])
            line = None if first_line is None else first_line + offset
            where = f"{path} line {line}" if line is not None else f"{path} row {first_row + offset + 1:,}"
            problem = self._problem(value, out, k, where)
            if problem is not None:
                prefix = "" if line is not None else f"row {first_row + offset + 1:,}: "
                raise DataError(path, prefix + problem, line=line, column=column)
        return out[inverse.reshape(-1)]

    def _problem(self, value: object, out: np.ndarray, k: int, where: str) -> str | None:
        text = _text(value)
        if text == "":
            return f"the label is missing; {ALLOWED}"
        if self.positive is not None:
            if text == self.positive or _same_number(value, self.positive):
                out[k] = 1.0
                return None
            other = next(iter(self._others.values()), None)
            if other is not None and other.text != text:
                return (
                    f"label {text!r} is a third value: with --positive-label {self.positive!r} every label is "
                    f"{self.positive!r} or one other value, and {other.where} has {other.text!r}"
                )
            self._others.setdefault(text, _Seen(text, where))
            return None
        number = _number(value)
        if number not in (0.0, 1.0, -1.0):
            return f"label {text!r} is not allowed: {ALLOWED}"
        out[k] = 1.0 if number == 1.0 else 0.0
        if number == 1.0:
            return None
        convention = "0/1" if number == 0.0 else "-1/1"
        if self._convention is None:
            self._convention = (convention, _Seen(text, where))
        elif self._convention[0] != convention:
            seen = self._convention[1]
            return (
                f"label {text!r} mixes label conventions: {seen.where} has label {seen.text!r} "
                f"({self._convention[0]}); the files of one dataset use 0/1 or -1/1 throughout"
            )
        return None


def _text(value: object) -> str:
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return f"{value:g}"
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    return str(value).strip()


def _number(value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return float(value)


def _same_number(value: object, positive: str) -> bool:
    """A numeric label column (Parquet) matches a numeric --positive-label by value."""
    if isinstance(value, str):
        return False
    try:
        return float(value) == float(positive)
    except ValueError:
        return False
