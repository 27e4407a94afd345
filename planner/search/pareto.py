"""Pareto fronts and hypervolume in plain numpy (no Ray, no Optuna).

Directions are "min" or "max" per objective; internally every objective is turned into a
minimisation by negating the "max" columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_minimised(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(directions):
        raise ValueError(f"points of shape {points.shape} do not match {len(directions)} directions")
    unknown = [d for d in directions if d not in ("min", "max")]
    if unknown:
        raise ValueError(f"direction {unknown[0]!r} must be 'min' or 'max'")
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    return points * signs


def non_dominated(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the points no other point dominates (<= everywhere, < somewhere).

    Duplicated points are all kept. Rows with a NaN are never on the front.
    """
    values = _as_minimised(points, directions)
    n = len(values)
    valid = ~np.isnan(values).any(axis=1)
    mask = valid.copy()
    order = np.lexsort(values[:, ::-1].T)  # lexicographic: a dominator always sorts before
    front: list[int] = []
    for i in order:
        if not valid[i]:
            continue
        row = values[i]
        for j in front:
            other = values[j]
            if np.all(other <= row) and np.any(other < row):
                mask[i] = False
                break
        if mask[i]:
            front.append(i)
    return mask if n else np.zeros(0, dtype=bool)


def hypervolume(points: np.ndarray, reference: Sequence[float], directions: Sequence[str]) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact, any dimension).

    Points that do not strictly improve on the reference in every objective add nothing.
    """
    values = _as_minimised(points, directions)
    ref = _as_minimised(np.asarray([reference], dtype=np.float64), directions)[0]
    if len(values) == 0:
        return 0.0
    values = values[~np.isnan(values).any(axis=1)]
    values = values[np.all(values < ref, axis=1)]
    if len(values) == 0:
        return 0.0
    values = values[non_dominated(values, ["min"] * values.shape[1])]
    return float(_hv_recursive(np.unique(values, axis=0), ref))


def _hv_recursive(points: np.ndarray, ref: np.ndarray) -> float:
    """Slice along the last objective (HSO): exact, fine for the front sizes a plan produces."""
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:
        ordered = points[np.argsort(points[:, 0])]
        volume, best_y = 0.0, ref[1]
        for x, y in ordered:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    order = np.argsort(points[:, -1])
    points = points[order]
    volume = 0.0
    for k in range(len(points)):
        upper = points[k + 1, -1] if k + 1 < len(points) else ref[-1]
        depth = upper - points[k, -1]
        if depth > 0:
            slab = points[: k + 1, :-1]
            slab = slab[non_dominated(slab, ["min"] * slab.shape[1])]
            volume += depth * _hv_recursive(slab, ref[:-1])
    return volume


def hypervolume_trace(points: np.ndarray, reference: Sequence[float], directions: Sequence[str]) -> np.ndarray:
    """Hypervolume of the first n points for n = 1..len(points): a search's progress, trial by trial.

    A row with a NaN (a trial that produced no point) adds nothing, so the trace never decreases."""
    points = np.asarray(points, dtype=np.float64)
    trace = np.zeros(len(points))
    volume = 0.0
    for n in range(len(points)):
        if not np.isnan(points[n]).any():
            volume = hypervolume(points[: n + 1], reference, directions)
        trace[n] = volume
    return trace
