from __future__ import annotations

from unimixer_plan.search.pareto_asha import DominationRungs


def test_cheap_but_worse_trials_survive_and_dominated_ones_stop():
    rungs = DominationRungs(milestones=(100, 300), eta=3)
    assert rungs.decide("a", 100, (0.50, 1e6))  # first at the rung: nothing dominates it
    assert rungs.decide("b", 100, (0.55, 1e4))  # worse logloss, far cheaper: on the front, continues
    assert rungs.decide("c", 100, (0.52, 1e5))  # between them: still non-dominated
    assert not rungs.decide("d", 100, (0.60, 2e6))  # dominated by a, b and c (3 >= ceil(4/3) = 2)
    assert rungs.decide("e", 100, (0.51, 9e5))  # dominated by nobody
    # plain ASHA on logloss alone would have stopped b (the worst logloss among a, b, c)


def test_each_rung_is_judged_once_and_below_the_first_rung_nothing_happens():
    rungs = DominationRungs(milestones=(100, 300), eta=3)
    assert rungs.decide("a", 50, (0.9, 1.0))
    assert rungs.recorded == {}
    assert rungs.decide("a", 120, (0.4, 1.0))
    assert rungs.decide("a", 150, (0.9, 9.0))  # same rung again: not re-judged
    assert len(rungs.recorded[100]) == 1
    assert rungs.decide("b", 310, (0.3, 0.5))  # jumps past both rungs: judged at each
    assert len(rungs.recorded[100]) == 2 and len(rungs.recorded[300]) == 1


def test_nan_objectives_stop_the_trial():
    rungs = DominationRungs(milestones=(10,))
    assert not rungs.decide("a", 10, (float("nan"), 1.0))


def test_rungs_are_positive_sorted_milestones():
    assert DominationRungs(milestones=(300, 0, 100, 100, -5)).milestones == (100, 300)
    assert DominationRungs(milestones=(1, 2)).milestones == (1, 2)


def test_equal_on_one_objective_and_worse_on_the_other_is_dominated():
    rungs = DominationRungs(milestones=(10,), eta=3)
    assert rungs.decide("a", 10, (0.5, 1e5))
    assert rungs.decide("b", 10, (0.4, 1e6))
    # same logloss as a, twice its FLOPs: dominated by a (1 >= ceil(3/3) = 1 dominator)
    assert not rungs.decide("c", 10, (0.5, 2e5))


def test_exactly_ceil_n_over_eta_dominators_stop_a_trial():
    rungs = DominationRungs(milestones=(10,))  # eta 3 by default
    assert rungs.decide("a", 10, (0.3, 1e3))
    assert rungs.decide("b", 10, (0.9, 1e2))
    assert rungs.decide("c", 10, (0.1, 1e6))
    # d: dominated by a alone; 4 trials recorded -> ceil(4/3) = 2 dominators needed: continues
    assert rungs.decide("d", 10, (0.4, 1e4))
    # e: dominated by a and d: 2 = ceil(5/3) -> stopped
    assert not rungs.decide("e", 10, (0.5, 1e5))


def test_a_trial_is_judged_again_at_each_later_rung():
    rungs = DominationRungs(milestones=(100, 300), eta=3)
    assert rungs.decide("a", 120, (0.4, 1.0))
    assert rungs.decide("a", 310, (0.35, 1.0))
    assert rungs.recorded[300] == [(0.35, 1.0)]
