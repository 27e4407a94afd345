"""Human-readable numbers for terminal output."""

from __future__ import annotations


def format_count(value: float) -> str:
    """12_345_678 -> '12.35M'."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.2f}{suffix}"
    return f"{value:g}"


def format_flops(value: float) -> str:
    return f"{format_count(value)}FLOPs ({value:.4g})"
