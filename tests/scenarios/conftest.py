"""Fixtures for the production scenarios: one simulated fleet per module, reset for each test."""

from __future__ import annotations

import pytest
from scenario_harness import Fleet


def pytest_collection_modifyitems(items):
    for item in items:
        if 'tests/scenarios/' in str(item.fspath):
            item.add_marker(pytest.mark.scenario)


@pytest.fixture(scope='module')
def shared_fleet(tmp_path_factory):
    """6 hosts x 4 nodes and Prometheus with the collection's rules, started once per module."""
    with Fleet(tmp_path_factory.mktemp('fleet'), hosts=6, nodes_per_host=4) as f:
        yield f


@pytest.fixture
def fleet(shared_fleet):
    """The module's fleet as good as fresh (``Fleet.reset``): no faults, Prometheus up with a full
    gate window, every node libp2p_only and ready, no alert pending or firing, an empty ledger.
    Starting a fleet costs ~30 s; a reset after a test that left the fleet as it found it, none."""
    return shared_fleet.reset()


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
