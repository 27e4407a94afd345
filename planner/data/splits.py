"""Train / validation / test rows of a real dataset, and the sentence that says how they were made.

Without ``--valid`` and ``--test`` the rows of the one file split by file order (time order for
Criteo): the first rows train, the next ``val_fraction`` validate, the last ``test_fraction`` test,
8:1:1 by default as in the BARS Criteo_x4 benchmark. A separate ``--valid`` or ``--test`` file
replaces its share; what is not given is still cut from the end of the training file.
"""

from __future__ import annotations

from dataclasses import dataclass

from unimixer_plan.data.errors import DataError

SPLITS = ("train", "val", "test")
_NAMES = {"train": "train", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class SplitPlan:
    ranges: dict[str, tuple[str, int, int]]  # split -> (part, start, stop); parts: main, valid, test
    how: str

    def rows(self, split: str) -> int:
        _, start, stop = self.ranges[split]
        return stop - start


def plan_splits(rows: dict[str, int], paths: dict[str, str], val_fraction: float, test_fraction: float) -> SplitPlan:
    """``rows`` and ``paths`` per part: main, and valid / test when given as files."""
    total = rows["main"]
    carved = {
        split: max(1, round(total * fraction))
        for split, part, fraction in (("val", "valid", val_fraction), ("test", "test", test_fraction))
        if part not in rows
    }
    n_train = total - sum(carved.values())
    if n_train < 1:
        cut = " and ".join(f"{_NAMES[s]} ({carved[s]:,})" for s in carved)
        raise DataError(paths["main"], f"{total:,} rows are too few to split off {cut} and keep a training row")
    ranges = {"train": ("main", 0, n_train)}
    start = n_train
    for split in ("val", "test"):
        if split in carved:
            ranges[split] = ("main", start, start + carved[split])
            start += carved[split]
        else:
            part = "valid" if split == "val" else "test"
            ranges[split] = (part, 0, rows[part])
    for split, (_, lo, hi) in ranges.items():
        if hi <= lo:
            raise DataError(paths[ranges[split][0]], f"the {_NAMES[split]} split is empty: it needs at least one row")
    return SplitPlan(ranges=ranges, how=_describe(ranges, rows, paths, val_fraction, test_fraction))


def _describe(
    ranges: dict[str, tuple[str, int, int]],
    rows: dict[str, int],
    paths: dict[str, str],
    val_fraction: float,
    test_fraction: float,
) -> str:
    counts = " / ".join(f"{_NAMES[s]} {ranges[s][2] - ranges[s][1]:,}" for s in SPLITS)
    if "valid" not in rows and "test" not in rows:
        ratio = ":".join(f"{share * 10:g}" for share in (1 - val_fraction - test_fraction, val_fraction, test_fraction))
        return f"{rows['main']:,} rows split by file order {ratio} ({counts})"
    fractions = {"val": val_fraction, "test": test_fraction}
    sources = [
        f"{_NAMES[s]} from {paths[ranges[s][0]]}"
        if ranges[s][0] != "main"
        else f"{_NAMES[s]} the last {fractions[s]:.0%} of the training file by file order"
        for s in ("val", "test")
    ]
    return f"{counts} ({', '.join(sources)})"
