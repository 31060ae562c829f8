"""Simulated-fleet fixtures for integration tests (a fleet + a real Prometheus on free ports)."""

from __future__ import annotations

import pytest

from ant_fleet_sim.testing import SimStack


@pytest.fixture(scope='module')
def sim_stack(tmp_path_factory):
    """A 4 x 3 fleet and its Prometheus, shared by the tests of one module; all targets up."""
    with SimStack(tmp_path_factory.mktemp('sim'), hosts=4, nodes_per_host=3, ready_delay=0.5) as stack:
        stack.wait_targets_up()
        yield stack


@pytest.fixture
def sim_stack_factory(tmp_path):
    """Build extra stacks (``factory(hosts=.., nodes_per_host=.., prometheus=..)``); all stopped at teardown."""
    stacks = []

    def factory(**kwargs):
        stack = SimStack(tmp_path / ('sim%d' % len(stacks)), **kwargs).start()
        stacks.append(stack)
        return stack

    yield factory
    for stack in stacks:
        stack.stop()
