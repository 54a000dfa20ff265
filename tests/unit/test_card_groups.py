"""How the dashboard splits a resident's services between its card requests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.dashboard.cards import MAX_CARD_REQUESTS, card_groups


@dataclass(frozen=True)
class Instance:
    base_url: str


@dataclass(frozen=True)
class Svc:
    """What card_groups reads of a service: its instance's back-end."""

    name: str
    instance: Instance


def services(*backends: str) -> list[Svc]:
    return [Svc(f"s{n}", Instance(f"https://{b}/api")) for n, b in enumerate(backends)]


def names(groups: list[list[Svc]]) -> list[list[str]]:
    return [[svc.name for svc in group] for group in groups]


def check_groups(given: list[Svc], groups: list[list[Svc]]) -> None:
    """Every service in exactly one group, at most MAX_CARD_REQUESTS groups, each group
    and the groups in the dashboard's order."""
    order = {svc.name: i for i, svc in enumerate(given)}
    flat = [svc.name for group in groups for svc in group]
    assert sorted(flat) == sorted(svc.name for svc in given)
    assert len(groups) <= MAX_CARD_REQUESTS
    assert all(groups)
    for group in groups:
        assert [order[s.name] for s in group] == sorted(order[s.name] for s in group)
    firsts = [order[group[0].name] for group in groups]
    assert firsts == sorted(firsts)


@pytest.mark.parametrize("count", range(0, MAX_CARD_REQUESTS + 1))
def test_up_to_the_limit_each_service_has_its_own_request(count: int) -> None:
    # Even when they share a back-end: one request each costs nothing extra.
    given = services(*(["same"] * count))
    assert names(card_groups(given)) == [[svc.name] for svc in given]  # type: ignore[arg-type]


def test_services_on_one_back_end_share_a_request() -> None:
    given = services("koha", "merignac", "canteen", "housing", "merignac", "merignac", "merignac")
    groups = card_groups(given)  # type: ignore[arg-type]
    check_groups(given, groups)  # type: ignore[arg-type]
    assert names(groups) == [["s0"], ["s1", "s4", "s5", "s6"], ["s2"], ["s3"]]


@pytest.mark.parametrize("count", range(MAX_CARD_REQUESTS + 1, 20))
def test_more_back_ends_than_requests_are_merged_smallest_first(count: int) -> None:
    given = services(*(f"backend-{n}" for n in range(count)))
    groups = card_groups(given)  # type: ignore[arg-type]
    check_groups(given, groups)  # type: ignore[arg-type]
    assert len(groups) == MAX_CARD_REQUESTS
    sizes = [len(group) for group in groups]
    assert max(sizes) - min(sizes) <= 1, sizes


def test_a_big_back_end_stays_whole_and_the_small_ones_pair_up() -> None:
    given = services("big", "a", "big", "b", "big", "c", "big", "d", "e", "f")
    groups = card_groups(given)  # type: ignore[arg-type]
    check_groups(given, groups)  # type: ignore[arg-type]
    assert ["s0", "s2", "s4", "s6"] in names(groups)
