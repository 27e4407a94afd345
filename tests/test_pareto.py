from __future__ import annotations

import itertools

import numpy as np
import pytest
from unimixer_plan.search.pareto import hypervolume, hypervolume_trace, non_dominated


def brute_force_front(points: np.ndarray, directions: list[str]) -> np.ndarray:
    signs = np.array([1 if d == "min" else -1 for d in directions])
    values = points * signs
    mask = np.ones(len(points), dtype=bool)
    for i, j in itertools.permutations(range(len(points)), 2):
        if np.all(values[j] <= values[i]) and np.any(values[j] < values[i]):
            mask[i] = False
    return mask


def brute_force_hypervolume(points: np.ndarray, reference: np.ndarray, directions: list[str]) -> float:
    """Union of the boxes [p, ref] on the grid of all coordinates (coordinate compression)."""
    signs = np.array([1 if d == "min" else -1 for d in directions])
    values, ref = points * signs, reference * signs
    values = values[np.all(values < ref, axis=1)]
    if len(values) == 0:
        return 0.0
    axes = [np.unique(np.r_[values[:, k], ref[k]]) for k in range(values.shape[1])]
    volume = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        low = np.array([axes[k][c] for k, c in enumerate(cell)])
        if np.any(np.all(values <= low, axis=1)):
            volume += np.prod([axes[k][c + 1] - axes[k][c] for k, c in enumerate(cell)])
    return float(volume)


@pytest.mark.parametrize("dims", [2, 3, 4])
@pytest.mark.parametrize("seed", range(15))
def test_front_and_hypervolume_match_brute_force(dims, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 14))
    points = rng.integers(0, 6, size=(n, dims)).astype(float)  # small integers: many ties and duplicates
    directions = list(rng.choice(["min", "max"], size=dims))
    np.testing.assert_array_equal(non_dominated(points, directions), brute_force_front(points, directions))
    reference = np.array([6.5 if d == "min" else -0.5 for d in directions])
    assert hypervolume(points, reference, directions) == pytest.approx(
        brute_force_hypervolume(points, reference, directions), abs=1e-9
    )


def test_known_two_objective_case():
    points = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0]])
    assert non_dominated(points, ["min", "min"]).tolist() == [True, True, True, False]
    # boxes to (5, 5): 4*1 + 3*2 + 1*1 = 11
    assert hypervolume(points, [5.0, 5.0], ["min", "min"]) == 11.0


def test_nan_rows_are_never_on_the_front_and_bad_directions_fail():
    points = np.array([[np.nan, 0.0], [1.0, 1.0]])
    assert non_dominated(points, ["min", "min"]).tolist() == [False, True]
    with pytest.raises(ValueError, match="'up'"):
        non_dominated(points, ["min", "up"])


def test_hypervolume_edge_cases():
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0], ["min", "min"]) == 0.0
    assert hypervolume(np.array([[1.0, 1.0]]), [3.0, 4.0], ["min", "min"]) == 6.0  # one point: one box
    assert hypervolume(np.array([[5.0, 5.0], [1.0, 9.0]]), [3.0, 4.0], ["min", "min"]) == 0.0  # none inside
    assert hypervolume(np.array([[2.0], [5.0]]), [10.0], ["min"]) == 8.0  # one objective: a length
    assert hypervolume(np.array([[7.0]]), [1.0], ["max"]) == 6.0


def test_empty_and_misshaped_inputs():
    empty = non_dominated(np.zeros((0, 2)), ["min", "min"])
    assert empty.shape == (0,) and empty.dtype == bool
    with pytest.raises(ValueError, match=r"points of shape \(3,\) do not match 2 directions"):
        non_dominated(np.array([1.0, 2.0, 3.0]), ["min", "min"])
    with pytest.raises(ValueError, match="do not match 3 directions"):
        non_dominated(np.ones((2, 2)), ["min", "min", "max"])


def test_hypervolume_trace_follows_the_points_in_order():
    points = np.array([[2.0, 2.0], [np.nan, np.nan], [1.0, 3.0], [3.0, 3.0], [0.0, 0.0]])
    trace = hypervolume_trace(points, [4.0, 4.0], ["min", "min"])
    # one box; a trial without a point; a new corner adds 1; a dominated point adds nothing; all of it
    assert trace.tolist() == [4.0, 4.0, 5.0, 5.0, 16.0]
    for n in range(1, len(points) + 1):
        assert trace[n - 1] == hypervolume(points[:n][~np.isnan(points[:n]).any(axis=1)], [4.0, 4.0], ["min", "min"])
