"""Small statistics helpers for the runner (medians and a log-log growth fit)."""

import math
import statistics


def median(values):
    """Median of the numbers in ``values`` (``None`` when there are none)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def growth_exponent(points):
    """Slope of the least-squares line through ``(log n, log t)``.

    ``points`` is ``[(n, t), ...]`` with at least two distinct ``n``; 1.0 means
    time grows linearly with ``n``, 2.0 quadratically.
    """
    pairs = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t and t > 0]
    if len({x for x, _ in pairs}) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    sxx = sum((x - mean_x) ** 2 for x, _ in pairs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in pairs)
    return sxy / sxx


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator
