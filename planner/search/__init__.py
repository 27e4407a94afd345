"""Search: the Ray Tune + Optuna driver, multi-objective successive halving, Pareto sets."""
