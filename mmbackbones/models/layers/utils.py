"""Small numeric helpers shared by the families."""

from __future__ import annotations


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9
) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value``
    and never down by more than ``1 - round_limit`` (10% by default).

    This is the TF-slim MobileNet rule used by MobileNetV3, EfficientNet and ReXNet-lite.

    Example:
        >>> make_divisible(37.5), make_divisible(4, 8), make_divisible(89.6)
        (40, 8, 88)
    """
    if divisor <= 1:
        return int(value)
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value
