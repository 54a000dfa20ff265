"""Names the school canteen's templates use."""

from __future__ import annotations

from datetime import date


def shift_month(month: date, months: int) -> date:
    """The first day of the month ``months`` away from ``month``'s."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
