"""A simulated fleet + Prometheus + ledger, driven through real ansible-playbook runs.

The production scenarios and the rollout integration tests use this: the playbooks run exactly
as an operator runs them, against an inventory of the simulated fleet that carries the committed
simulated group_vars (short windows), with a ledger of the test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_fleet_sim.testing import SimStack, wait_for

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')


class PlaybookRun:
    def __init__(self, args, proc, output):
        self.args = args
        self.rc = proc.returncode
        self.output = output

    def __repr__(self):
        return 'PlaybookRun(%s, rc=%s)' % (' '.join(self.args), self.rc)

    def tail(self, lines=60):
        return '\n'.join(self.output.splitlines()[-lines:])


class Fleet:
    """One simulated fleet with its Prometheus (rules installed by the monitoring role) and ledger."""

    def __init__(self, directory, hosts=6, nodes_per_host=4, ready_delay=0.5, **sim_config):
        self.directory = Path(directory)
        self.stack = SimStack(self.directory, hosts=hosts, nodes_per_host=nodes_per_host, ready_delay=ready_delay,
                              **sim_config)
        self.ledger_path = self.directory / 'ledger.sqlite3'
        self.inventory_dir = self.directory / 'inventory'

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        self.stack.start()
        try:
            self._prepare()
        except BaseException:
            self.stack.stop()
            raise
        return self

    def _prepare(self):
        self.inventory_dir.mkdir(parents=True, exist_ok=True)
        (self.inventory_dir / 'hosts.yml').write_text(Path(self.stack.inventory).read_text())
        (self.inventory_dir / 'group_vars').symlink_to(ROOT / 'inventories' / 'sim' / 'group_vars')
        self.stack.wait_targets_up(timeout=90)
        run = self.play('monitoring.yml')
        assert run.rc == 0, run.tail()
        # The gate judges a window of recorded samples (10 s in the simulated inventory): wait until
        # the recording rules have filled one, as an operator waits after installing the rules.
        self.wait_value('count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])', lambda v: v >= 6,
                        timeout=90, what='recording rules evaluated over a full gate window')

    def __exit__(self, *exc):
        self.stack.stop()
        return False

    def reset(self, timeout=120):
        """Make a fleet shared by the tests of a module as good as a fresh one for the next test.

        No faults; Prometheus up (restarted if a test stopped it) with its rules and a full gate
        window of samples recorded; every node libp2p_only, running and ready (hosts that are not
        are switched back the way the collection switches, systemd drop-in and restart); no alert
        pending or firing, so nothing a previous test broke is still inside a rule window; and a
        ledger of the test's own. Cheap when the previous test left the fleet as it found it.
        """
        stack = self.stack
        stack.clear_faults()
        try:
            up = stack.query_value('count(up)') is not None
        except Exception:  # pylint: disable=broad-except
            up = False
        if not up:
            stack.start_prometheus()
            stack.wait_targets_up(timeout=90)
        touched = sorted({n['host'] for n in stack.fleet()['nodes']
                          if n['mode'] != 'libp2p_only' or n['status'] != 'Running'})
        for host in touched:
            stack.set_mode(host, [n['service_name'] for n in stack.antctl_status(host)['nodes']], 'libp2p_only')
        wait_for(lambda: all(n['mode'] == 'libp2p_only' and n['status'] == 'Running' and n['ready']
                             for n in stack.fleet()['nodes']),
                 timeout=timeout, what='every node libp2p_only, running and ready')
        self._resets = getattr(self, '_resets', 0) + 1
        self.ledger_path = self.directory / ('ledger-%d.sqlite3' % self._resets)
        # Real samples (range vectors), not values looked back across a Prometheus restart.
        for series in ('fleet:ant_partition_risk:ratio',
                       'transport:ant_transport_error_rate:ratio{transport="libp2p"}'):
            self.wait_value('count_over_time(%s[10s])' % series, lambda v: v >= 4, timeout=timeout,
                            what='a full gate window of %s recorded' % series)
        wait_for(lambda: not stack.prometheus_alerts(), timeout=timeout,
                 what='no alert pending or firing (the previous test\'s faults out of every rule window)')
        return self

    # -- running playbooks -----------------------------------------------------------------------
    def env(self, **extra):
        env = dict(os.environ)
        env.update({
            'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg'),
            'ANT_MIGRATION_LEDGER': str(self.ledger_path),
            'ANT_MIGRATION_OPERATOR': 'scenario-test',
            'SIM_STATE_DIR': str(self.stack.state_dir),
            'ANSIBLE_FORCE_COLOR': '0',
            'ANSIBLE_NOCOLOR': '1',
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def playbook_args(self, playbook, *extra_vars):
        args = [ANSIBLE_PLAYBOOK, str(ROOT / 'playbooks' / playbook), '-i', str(self.inventory_dir),
                '-e', 'migration_prometheus_url=%s' % self.stack.prometheus_url,
                '-e', 'monitoring_rules_dir=%s' % (self.stack.state_dir / 'prometheus' / 'rules')]
        for item in extra_vars:
            args += ['-e', item]
        return args

    def play(self, playbook, *extra_vars, timeout=900, **env):
        args = self.playbook_args(playbook, *extra_vars)
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=self.env(**env), cwd=ROOT)
        return PlaybookRun(args[1:2] + list(extra_vars), proc, proc.stdout + proc.stderr)

    def start_play(self, playbook, *extra_vars, **env):
        """Start a playbook in the background (its own process group); returns the Popen."""
        args = self.playbook_args(playbook, *extra_vars)
        log = open(self.directory / ('%s.%d.log' % (playbook, time.monotonic_ns())), 'w+')
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env(**env), cwd=ROOT,
                                start_new_session=True)
        proc.log = log
        return proc

    @staticmethod
    def kill(proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    @staticmethod
    def output_of(proc):
        proc.log.flush()
        proc.log.seek(0)
        return proc.log.read()

    # -- looking at the fleet and the ledger -----------------------------------------------------
    def modes(self):
        """{host/service: mode} as the simulated nodes run them (the simulator's truth)."""
        return {'%s/%s' % (n['host'], n['service_name']): n['mode'] for n in self.stack.fleet()['nodes']}

    def antctl_modes(self, host):
        """What the host's antctl reports for the transport mode of each node (ANT_TRANSPORT_MODE)."""
        status = self.stack.antctl_status(host)
        return {n['service_name']: n for n in status['nodes']}

    def uptimes(self):
        return {'%s/%s' % (n['host'], n['service_name']): n['uptime'] for n in self.stack.fleet()['nodes']}

    def ledger(self):
        return ledger_lib.open_ledger(str(self.ledger_path))

    def ledger_states(self):
        with_ledger = self.ledger()
        try:
            return {n['node_id']: n['state'] for n in with_ledger.nodes()}
        finally:
            with_ledger.close()

    def events(self, kinds=None, limit=200):
        with_ledger = self.ledger()
        try:
            return with_ledger.events(kinds=kinds, limit=limit)
        finally:
            with_ledger.close()

    def flags(self):
        with_ledger = self.ledger()
        try:
            return with_ledger.get_flags()
        finally:
            with_ledger.close()

    def wait_ready(self, timeout=60):
        self.stack.wait_ready(timeout=timeout)

    def wait_value(self, promql, predicate, timeout=60, what=None):
        """Poll Prometheus until the first value of ``promql`` satisfies ``predicate``."""
        def check():
            value = self.stack.query_value(promql)
            return value is not None and predicate(value)
        return wait_for(check, timeout=timeout, what=what or promql)

    def wait_until(self, predicate, timeout=60, what='condition'):
        return wait_for(predicate, timeout=timeout, what=what)


def hosts_in(fleet, mode):
    """The hosts with at least one node running ``mode`` (the simulator's truth), sorted."""
    hosts = {}
    for node, m in fleet.modes().items():
        hosts.setdefault(node.split('/')[0], set()).add(m)
    return sorted(h for h, ms in hosts.items() if mode in ms)
