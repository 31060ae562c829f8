"""Fixtures for the production scenarios: a fresh simulated fleet per test."""

from __future__ import annotations

import pytest
from scenario_harness import Fleet


def pytest_collection_modifyitems(items):
    for item in items:
        if 'tests/scenarios/' in str(item.fspath):
            item.add_marker(pytest.mark.scenario)


@pytest.fixture
def fleet(tmp_path):
    """6 hosts x 4 nodes, Prometheus with the collection's rules, an empty ledger."""
    with Fleet(tmp_path, hosts=6, nodes_per_host=4) as f:
        yield f


@pytest.fixture
def fleet_factory(tmp_path):
    fleets = []

    def make(**kwargs):
        f = Fleet(tmp_path / ('fleet%d' % len(fleets)), **kwargs).__enter__()
        fleets.append(f)
        return f

    yield make
    for f in fleets:
        f.__exit__(None, None, None)
