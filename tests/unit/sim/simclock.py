"""A hand-driven clock for the simulator's model (tests/unit/sim)."""

from __future__ import annotations

from ant_fleet_sim.model import Fleet, SimConfig


class Clock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
        return self.now


def make_fleet(hosts=4, nodes_per_host=5, **config):
    clock = Clock()
    config.setdefault('ready_delay', 2.0)
    config.setdefault('restart_time', 0.5)
    fleet = Fleet(SimConfig(hosts=hosts, nodes_per_host=nodes_per_host, **config), clock=clock)
    return fleet, clock


def step(fleet, clock, seconds, dt=0.5):
    """Advance time in model ticks of ``dt``."""
    end = clock.now + seconds
    while clock.now < end - 1e-9:
        clock.advance(min(dt, end - clock.now))
        fleet.tick()


def switch(fleet, host, service_names, mode):
    """What `antctl upgrade --force --env ANT_TRANSPORT_MODE=mode` does to these nodes."""
    for node in fleet.select(host, service_names):
        fleet.upgrade_node(node, {'ANT_TRANSPORT_MODE': mode}, force=True)


def switch_all(fleet, mode):
    for host in fleet.hosts:
        switch(fleet, host, (), mode)
