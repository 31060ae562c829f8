"""Fault validation: bad input is refused with a clear message and changes nothing."""

from __future__ import annotations

import pytest
from simclock import make_fleet

from ant_fleet_sim.faults import FaultError


@pytest.mark.parametrize('request_, message', [
    ({'kind': 'meteor'}, 'unknown fault kind'),
    ({'kind': 'transport', 'transport': 'quic', 'error_rate': 0.1}, 'unknown transport'),
    ({'kind': 'transport', 'transport': 'iroh'}, 'error_rate and/or latency_ms'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': -0.1}, 'between 0 and 1'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': 1.5}, 'between 0 and 1'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': 'lots'}, 'must be a number'),
    ({'kind': 'transport', 'transport': 'iroh', 'latency_ms': -5}, 'non-negative'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': 0.1, 'mode': 'warp'}, 'unknown mode'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': 0.1, 'hosts': ['nope']}, 'unknown host'),
    ({'kind': 'transport', 'transport': 'iroh', 'error_rate': 0.1, 'colour': 'red'}, 'unexpected parameter'),
    ({'kind': 'unresponsive'}, 'needs nodes'),
    ({'kind': 'unresponsive', 'nodes': ['sim-host-01/antnode99']}, 'unknown node'),
    ({'kind': 'crash_on_switch', 'mode': 'sideways'}, 'unknown target mode'),
    ({'kind': 'crash_on_switch', 'behaviour': 'explode'}, 'unknown behaviour'),
    ({'kind': 'partition', 'groups': [['sim-host-01']]}, 'at least two'),
    ({'kind': 'partition', 'groups': [['sim-host-01'], ['sim-host-01']]}, 'is in partition groups'),
    ({'kind': 'partition', 'groups': [['sim-host-01'], []]}, 'is empty'),
    ({'kind': 'partition', 'groups': [['sim-host-01'], ['ghost']]}, 'unknown host'),
])
def test_bad_fault_refused_and_fleet_unchanged(request_, message):
    fleet, _ = make_fleet(hosts=2, nodes_per_host=2)
    version = fleet.version
    with pytest.raises(FaultError, match=message):
        fleet.add_fault(request_)
    assert fleet.faults == {}
    assert fleet.version == version


def test_fault_ids_list_and_remove():
    fleet, _ = make_fleet(hosts=2, nodes_per_host=2)
    a = fleet.add_fault({'kind': 'transport', 'transport': 'libp2p', 'error_rate': 0.2})
    b = fleet.add_fault({'kind': 'unresponsive', 'hosts': 'sim-host-02'})
    assert a['id'] != b['id']
    assert b['hosts'] == ['sim-host-02']
    fleet.remove_fault(a['id'])
    assert list(fleet.faults) == [b['id']]
    with pytest.raises(FaultError, match='no fault with id'):
        fleet.remove_fault('f999')
    assert len(fleet.clear_faults()) == 1
    assert fleet.faults == {}


def test_antctl_bad_mode_refused():
    from ant_fleet_sim.model import AntctlError
    fleet, _ = make_fleet(hosts=1, nodes_per_host=2)
    with pytest.raises(AntctlError, match='invalid value'):
        fleet.parse_env([('ANT_TRANSPORT_MODE', 'warp')])
    with pytest.raises(AntctlError, match="No service named 'antnode9'"):
        fleet.select('sim-host-01', ['antnode9'])
