"""How the dashboard splits a resident's services between its card requests."""

from __future__ import annotations

import pytest

from portal.main.routes import MAX_CARD_REQUESTS, card_groups


@pytest.mark.parametrize("count", range(0, 13))
def test_groups_keep_the_order_stay_within_the_requests_and_even_out(count: int) -> None:
    services = [f"service-{n}" for n in range(count)]
    groups = card_groups(services)  # type: ignore[arg-type]
    assert [s for group in groups for s in group] == services
    assert len(groups) == min(count, MAX_CARD_REQUESTS)
    assert all(groups), groups
    if groups:
        sizes = [len(group) for group in groups]
        assert max(sizes) - min(sizes) <= 1, sizes
        assert sizes == sorted(sizes, reverse=True), sizes


def test_up_to_the_limit_each_service_has_its_own_request() -> None:
    services = [f"service-{n}" for n in range(MAX_CARD_REQUESTS)]
    assert card_groups(services) == [[s] for s in services]  # type: ignore[arg-type]
