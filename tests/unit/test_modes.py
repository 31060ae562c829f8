"""The mode model: every allowed and forbidden transition, progress and phases."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as m

FORWARD_ONE_STEP = {
    (m.LIBP2P_ONLY, m.DUAL_STACK),
    (m.DUAL_STACK, m.IROH_PRIMARY),
    (m.IROH_PRIMARY, m.IROH_ONLY),
}


@pytest.mark.parametrize("current,target", list(itertools.product(m.MODES, m.MODES)))
def test_every_transition(current, target):
    ci, ti = m.MODES.index(current), m.MODES.index(target)
    if current == target:
        assert m.check_transition(current, target) == "none"
    elif (current, target) in FORWARD_ONE_STEP:
        assert m.check_transition(current, target) == "forward"
    elif ti > ci:
        with pytest.raises(m.TransitionError, match="one step at a time"):
            m.check_transition(current, target, allow_rollback=True, node="h1/antnode1")
    else:
        with pytest.raises(m.TransitionError, match="allow_rollback"):
            m.check_transition(current, target, node="h1/antnode1")
        assert m.check_transition(current, target, allow_rollback=True) == "backward"


def test_error_names_node_and_modes():
    with pytest.raises(m.TransitionError) as err:
        m.check_transition(m.LIBP2P_ONLY, m.IROH_ONLY, node="host-1/antnode3")
    assert "host-1/antnode3" in str(err.value)
    assert "libp2p_only" in str(err.value) and "iroh_only" in str(err.value)


def test_unknown_mode_is_refused():
    with pytest.raises(m.TransitionError, match="unknown transport mode 'quic'"):
        m.check_transition("quic", m.DUAL_STACK)


def test_iroh_only_forbidden_while_libp2p_only_remains():
    fleet = {"a": m.DUAL_STACK, "b": m.LIBP2P_ONLY, "c": m.IROH_PRIMARY}
    assert m.partition_violations(m.IROH_ONLY, fleet) == ["b"]
    assert m.partition_violations(m.IROH_PRIMARY, fleet) == []
    fleet["b"] = m.DUAL_STACK
    assert m.partition_violations(m.IROH_ONLY, fleet) == []


@pytest.mark.parametrize(
    "pct,phase",
    [(0, "Initialization"), (4.99, "Initialization"), (5, "EarlyAdopters"), (24.9, "EarlyAdopters"),
     (25, "MajorityMigration"), (74.9, "MajorityMigration"), (75, "Finalization"), (94.9, "Finalization"),
     (95, "Finalization"), (100, "Finalization")],
)
def test_phase_boundaries(pct, phase):
    assert m.phase_for(pct) == phase


def test_completed_only_once_every_node_runs_iroh_only():
    assert m.progress([m.STATE_IROH_PRIMARY] * 4)["phase"] == "Finalization"   # finalize.yml has not run
    assert m.progress([m.STATE_IROH_ONLY] * 3 + [m.STATE_IROH_PRIMARY])["phase"] == "Finalization"
    assert m.progress([m.STATE_IROH_ONLY] * 4)["phase"] == "Completed"
    # At iroh_only no node runs both transports: coverage and count agree (0).
    done = m.progress([m.STATE_IROH_ONLY] * 4)
    assert done["dual_stack"] == 0 and done["dual_stack_coverage_percent"] == 0.0


def test_progress_counts_migrated_and_coverage():
    states = ([m.STATE_LIBP2P_ONLY] * 4 + [m.STATE_DUAL_STACK_STABLE] * 3 + [m.STATE_IROH_PRIMARY] * 2
              + [m.STATE_IROH_ONLY] + [m.STATE_ROLLED_BACK] * 0)
    p = m.progress(states)
    assert p["total"] == 10
    assert p["migrated"] == 3
    assert p["progress_percent"] == 30.0
    assert p["dual_stack"] == 5                      # both transports: 3 dual_stack_stable + 2 iroh_primary
    assert p["dual_stack_coverage_percent"] == 50.0
    assert p["phase"] == "MajorityMigration"


def test_progress_of_empty_fleet():
    assert m.progress([])["progress_percent"] == 0.0
