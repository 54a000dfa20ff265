"""Anonymous measurement of the portal's use (the models: ``portal.models.measure``).

This module holds what the recording side, the roll-ups and the owners' pages share:
the latency buckets of roll-up histograms and their percentiles, the observatory's
scoring of satisfaction answers, its goals, the statistical-secrecy threshold of open
data, and the comment filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Upper bounds (ms) of the histogram buckets; the last bucket is everything above.
BUCKETS_MS: tuple[int, ...] = (
    10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000, 5000, 10000,
)  # fmt: skip

#: The observatory's goals.
GOAL_SATISFACTION = 8.0  # out of 10
GOAL_CLARITY = 8.0  # out of 10
GOAL_UPTIME = 0.999
GOAL_LOAD_TIME_S = 0.4
#: Satisfaction and clarity scores are hidden under this many answers (the observatory).
MIN_ANSWERS = 100
#: Open data publishes no count below this (statistical secrecy).
MIN_PUBLISHED_COUNT = 11

SATISFACTION_SCORES = {"good": 10.0, "average": 5.0, "bad": 0.0}
#: A 1–5 answer (1 = "Pas clair du tout" … 5 = "Très clair") out of 10.
FIVE_LEVEL_SCORES = {1: 0.0, 2: 2.5, 3: 5.0, 4: 7.5, 5: 10.0}


def bucket_of(ms: int) -> int:
    """The index of the bucket ``ms`` falls in (``len(BUCKETS_MS)`` above the last)."""
    for index, bound in enumerate(BUCKETS_MS):
        if ms <= bound:
            return index
    return len(BUCKETS_MS)


def empty_histogram() -> list[int]:
    return [0] * (len(BUCKETS_MS) + 1)


def add_histograms(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    total = empty_histogram()
    for histogram in histograms:
        for index, count in enumerate(histogram or ()):
            total[index] += count
    return total


def percentile_ms(histogram: Sequence[int], fraction: float = 0.95) -> int | None:
    """The bucket bound under which ``fraction`` of the values fall (an upper estimate,
    to the bucket); None with no value. Above the last bucket, twice its bound."""
    count = sum(histogram)
    if count == 0:
        return None
    rank = fraction * count
    seen = 0
    for index, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return BUCKETS_MS[index] if index < len(BUCKETS_MS) else BUCKETS_MS[-1] * 2
    return BUCKETS_MS[-1] * 2


def satisfaction_score(answers: Iterable[str]) -> float | None:
    """The mean of the answers scored 10 / 5 / 0, out of 10; None with no answer."""
    scores = [SATISFACTION_SCORES[a] for a in answers if a in SATISFACTION_SCORES]
    return sum(scores) / len(scores) if scores else None


def five_level_score(answers: Iterable[int | None]) -> float | None:
    """The mean of 1–5 answers scored 0 / 2.5 / 5 / 7.5 / 10, out of 10."""
    scores = [FIVE_LEVEL_SCORES[a] for a in answers if a in FIVE_LEVEL_SCORES]
    return sum(scores) / len(scores) if scores else None


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
_DIGITS = re.compile(r"\d(?:[\s.-]?\d){5,}")


def filter_comment(text: str) -> str:
    """A comment with e-mail addresses, phone numbers and runs of six digits or more
    (file, card or account numbers) replaced, before it is stored or shown."""
    text = _EMAIL.sub("[adresse retirée]", text)
    text = _PHONE.sub("[numéro retiré]", text)
    return _DIGITS.sub("[numéro retiré]", text)
