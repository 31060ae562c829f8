# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A simulated fleet started by a process that dies without stopping it (a benchmark or test SIGKILLed) stops
by itself: the simulator, its Prometheus and its Alertmanager (the last was left behind before)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from alerting_stack import require

pytestmark = pytest.mark.integration

testing = pytest.importorskip('ant_fleet_sim.testing')
prom = pytest.importorskip('ant_fleet_sim.prometheus')
layout = pytest.importorskip('ant_fleet_sim.layout')

OWNER = textwrap.dedent('''
    import sys, time
    from ant_fleet_sim.testing import SimStack
    stack = SimStack(sys.argv[1], hosts=2, nodes_per_host=4, ready_delay=0.2, alertmanager=True, tick=0.5)
    stack.start()
    print(stack.state_dir, flush=True)
    time.sleep(3600)
''')


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose here
    with open('/proc/%d/stat' % pid) as handle:
        return handle.read().split(')')[-1].split()[0] != 'Z'


def test_a_fleet_whose_owner_was_killed_stops_with_its_prometheus_and_alertmanager(tmp_path):
    require('prometheus-alertmanager')
    owner = subprocess.Popen([sys.executable, '-c', OWNER, str(tmp_path / 'fleet')], stdout=subprocess.PIPE,
                             text=True)
    try:
        state_dir = owner.stdout.readline().strip()
        assert state_dir, 'the owner did not start its fleet'
        state = layout.StateDir(state_dir)
        pids = {'simulator': state.running_pid(), 'prometheus': prom.running_pid(state),
                'alertmanager': prom.alertmanager_running_pid(state)}
        assert all(pids.values()), pids
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        testing.wait_for(lambda: not any(alive(p) for p in pids.values() if p), timeout=90, interval=0.5,
                         what='the fleet, its Prometheus and its Alertmanager stopped after their owner died')
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in (prom.running_pid(layout.StateDir(state_dir)) if state_dir else None,
                    prom.alertmanager_running_pid(layout.StateDir(state_dir)) if state_dir else None):
            if pid:
                os.kill(pid, signal.SIGTERM)
