"""The transport toggle on node units of a REAL systemd, and the dashboard role's unit started there.

A real systemd (252, Debian's) boots as PID 1 of a container of its own (ant_fleet_sim.realsystemd:
a minimal Debian root made with mmdebstrap, booted with systemd-nspawn; its own /tmp, /run, /var and
no service but its own). antctl (ant_fleet_sim.unitctl) installs seven node services there; each node is
a real process (ant_fleet_sim.unitnode) serving OpenMetrics. The playbooks run as an operator runs them,
the node modules on that host through the container's python3 (nsenter, pipelining): canary, a wave
(promote to iroh_primary) and a fast rollback, each checked on systemd itself - the drop-in it loaded
(DropInPaths), the environment it starts the process with, NeedDaemonReload, a restarted process
(MainPID), readiness (the node's metrics). Then the dashboard role installs and starts its hardened unit.

Needs root, systemd-nspawn (systemd-container), mmdebstrap and, the first time, Debian's mirror (the
root is cached under ~/.cache/ant-network-migration/realsystemd). .ci/run installs the packages; under
CI a missing requirement fails the test, elsewhere it is skipped with the reason (pytest -rs shows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from ant_fleet_sim import layout
from ant_fleet_sim import prometheus as prom
from ant_fleet_sim.realsystemd import RealSystemdHost, missing_requirements
from ant_fleet_sim.testing import wait_for

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / 'ansible-playbook')
HOST = 'real-host-01'
NODES = 7          # a node is ready with more than 5 peers
SERVICES = ['antnode%d' % i for i in range(1, NODES + 1)]
MARKER = Path('/tmp') / ('ant-realsystemd-marker-%d' % os.getpid())


def _requirements():
    reason = missing_requirements()
    if reason:
        if os.environ.get('CI') == 'true':
            pytest.fail('the real-systemd test cannot run under CI: %s' % reason)
        pytest.skip('no real systemd here: %s' % reason)


class RealFleet:
    """The container, a Prometheus scraping its nodes, an inventory and a ledger of the test's own."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.host = RealSystemdHost(self.directory / 'host', ROOT, name='ant-real-%d' % os.getpid())
        self.state = layout.StateDir(self.directory / 'state')
        self.ledger_path = self.directory / 'ledger.sqlite3'
        self.inventory_dir = self.directory / 'inventory'
        self.prometheus_url = None

    def start(self):
        self.host.start()
        self.host.run('antctl', 'add', '--count', str(NODES), '--enable-metrics-server',
                      '--rewards-address', '0x' + 'ab' * 20, '--node-args', '--ready-delay 1')
        self.host.run('systemctl', 'start', *SERVICES)
        wait_for(lambda: all(n['peers'] > 5 for n in self.nodes().values()), timeout=60, what='every node ready')
        targets = [{'targets': ['127.0.0.1:%d' % n['metrics_port']],
                    'labels': {'host': HOST, 'service_name': n['service_name'], 'peer_id': n['peer_id']}}
                   for n in self.status()]
        self.state.file_sd.parent.mkdir(parents=True, exist_ok=True)
        self.state.file_sd.write_text(json.dumps(targets))
        self.prometheus_url = prom.start(self.state, layout.free_port(), api_url=None, scrape_interval='2s')
        self._inventory()
        run = self.play('monitoring.yml')
        assert run.returncode == 0, run.stdout[-3000:]
        wait_for(lambda: (self.query('count_over_time(avg(instance:ant_partition_risk:ratio)[12s:2s])') or 0) >= 6,
                 timeout=90, what='recording rules evaluated over a full gate window')
        return self

    def stop(self):
        prom.stop(self.state)
        self.host.stop()

    def _inventory(self):
        self.inventory_dir.mkdir(parents=True, exist_ok=True)
        remote_tmp = self.host.shared / 'ansible-tmp'
        host_vars = {
            'ansible_connection': 'local',
            'ansible_python_interpreter': str(self.host.python_wrapper()),
            'ansible_pipelining': True,
            'ansible_remote_tmp': str(remote_tmp),
            'ant_antctl_path': '/usr/local/bin/antctl',
            'migration_become': False,
        }
        doc = {'all': {'children': {'fleet': {'hosts': {HOST: host_vars}}}}}
        (self.inventory_dir / 'hosts.yml').write_text(yaml.safe_dump(doc))
        (self.inventory_dir / 'group_vars').symlink_to(ROOT / 'inventories' / 'sim' / 'group_vars')

    # -- driving and looking -------------------------------------------------------------------
    def play(self, playbook, *extra, path=None):
        args = [ANSIBLE_PLAYBOOK, str(path or ROOT / 'playbooks' / playbook), '-i', str(self.inventory_dir),
                '-e', 'migration_prometheus_url=%s' % self.prometheus_url,
                '-e', 'monitoring_rules_dir=%s' % (self.state.prometheus_dir / 'rules')]
        for item in extra:
            args += ['-e', item]
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(self.ledger_path),
                   ANT_MIGRATION_OPERATOR='real-systemd-test', ANSIBLE_NOCOLOR='1', SIM_STATE_DIR=str(self.state.root))
        return subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT, check=False)

    def query(self, promql):
        url = '%s/api/v1/query?%s' % (self.prometheus_url, urllib.parse.urlencode({'query': promql}))
        with urllib.request.urlopen(url, timeout=10) as resp:
            result = json.load(resp)['data']['result']
        return float(result[0]['value'][1]) if result else None

    def status(self):
        return json.loads(self.host.run('antctl', 'status', '--json').stdout)['nodes']

    def show(self, service, *props):
        out = self.host.run('systemctl', 'show', '%s.service' % service, *[a for p in props for a in ('-p', p)])
        return dict(line.split('=', 1) for line in out.stdout.splitlines() if '=' in line)

    def nodes(self):
        """{service: mode, peers, MainPID, the ANT_TRANSPORT_MODE systemd starts it with, its drop-ins}."""
        out = {}
        for node in self.status():
            name = node['service_name']
            shown = self.show(name, 'MainPID', 'Environment', 'DropInPaths', 'NeedDaemonReload', 'ActiveState')
            env = dict(w.partition('=')[::2] for w in shown.get('Environment', '').split())
            mode, peers = None, 0
            try:
                with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % node['metrics_port'], timeout=5) as r:
                    text = r.read().decode()
                mode = next(line.split('"')[1] for line in text.splitlines()
                            if line.startswith('ant_node_transport_mode{') and line.endswith(' 1'))
                peers = int(next(line.split()[1] for line in text.splitlines()
                                 if line.startswith('ant_networking_connected_peers ')))
            except (OSError, StopIteration):
                pass
            out[name] = {'mode': mode, 'peers': peers, 'pid': shown.get('MainPID'),
                         'env': env.get('ANT_TRANSPORT_MODE'), 'dropins': shown.get('DropInPaths', ''),
                         'reload': shown.get('NeedDaemonReload'),
                         'active': shown.get('ActiveState')}
        return out


@pytest.fixture(scope='module')
def real(tmp_path_factory):
    _requirements()
    MARKER.write_text('the machine\'s /tmp\n')
    fleet = RealFleet(tmp_path_factory.mktemp('real-systemd'))
    try:
        yield fleet.start()
    finally:
        fleet.stop()


def assert_switched(real, mode, before):
    nodes = real.nodes()
    dropin = '/etc/systemd/system/%s.service.d/ant-transport-mode.conf'
    for name, node in nodes.items():
        assert node['mode'] == mode and node['peers'] > 5, (name, node)          # running it, and ready
        assert node['env'] == mode, (name, node)                                 # what systemd starts it with
        assert node['dropins'] == dropin % name and node['reload'] == 'no', (name, node)
        assert node['active'] == 'active' and node['pid'] != before[name]['pid'], (name, node)   # restarted
    return nodes


def test_canary_wave_and_fast_rollback_on_a_real_systemd(real):
    before = real.nodes()
    assert {n['mode'] for n in before.values()} == {'libp2p_only'} and not any(n['dropins'] for n in before.values())

    run = real.play('canary.yml')
    assert run.returncode == 0, run.stdout[-4000:]
    canary = assert_switched(real, 'dual_stack', before)
    text = real.host.run('cat', '/etc/systemd/system/antnode1.service.d/ant-transport-mode.conf').stdout
    assert 'Environment=ANT_TRANSPORT_MODE=dual_stack' in text and '# Node: antnode1 peer_id=12D3KooW' in text

    run = real.play('promote.yml', 'stage=iroh_primary', 'wave=100')
    assert run.returncode == 0, run.stdout[-4000:]
    wave = assert_switched(real, 'iroh_primary', canary)

    run = real.play('rollback.yml', 'rollback_strategy=fast', 'target=libp2p_only', 'reason=real systemd test')
    assert run.returncode == 0, run.stdout[-4000:]
    assert_switched(real, 'libp2p_only', wave)

    # The host meets the node interface, the mode seen taken from ANT_TRANSPORT_MODE on its systemd.
    run = real.play('conformance.yml')
    assert run.returncode == 0, run.stdout[-4000:]
    assert 'PRESENT    transport mode from ANT_TRANSPORT_MODE' in run.stdout
    assert 'OpenMetrics on 7 node(s)' in run.stdout


def test_systemd_loads_a_drop_in_only_at_daemon_reload(real):
    """What the toggle relies on, seen on systemd itself: a written drop-in is pending until daemon-reload."""
    dropin = '/etc/systemd/system/antnode7.service.d/ant-transport-mode.conf'
    original = real.host.run('cat', dropin).stdout
    real.host.run('sh', '-c', 'printf "[Service]\\nEnvironment=ANT_TRANSPORT_MODE=dual_stack\\n" > %s' % dropin)
    assert real.show('antnode7', 'NeedDaemonReload')['NeedDaemonReload'] == 'yes'
    real.host.run('sh', '-c', 'cat > %s' % dropin, input=original)
    real.host.run('systemctl', 'daemon-reload')
    assert real.show('antnode7', 'NeedDaemonReload')['NeedDaemonReload'] == 'no'


def test_the_dashboard_role_starts_its_unit_on_a_real_systemd(real):
    port = layout.free_port()
    # The unit may write only the ledger's directory (ReadWritePaths): systemd needs it to exist.
    real.host.run('mkdir', '-p', '/var/lib/ant-migration')
    run = real.play('', 'dashboard_listen=127.0.0.1:%d' % port, path=Path(__file__).parent / 'dashboard.yml')
    journal = real.host.run('journalctl', '--no-pager', '-n', '40', '-u', 'ant-migration-dashboard', check=False)
    assert run.returncode == 0, run.stdout[-3000:] + '\n--- the unit\'s journal:\n' + journal.stdout[-3000:]
    shown = real.show('ant-migration-dashboard', 'ActiveState', 'User', 'ProtectSystem', 'NoNewPrivileges',
                      'PrivateTmp', 'ProtectHome')
    assert shown == {'ActiveState': 'active', 'User': 'ant-dashboard', 'ProtectSystem': 'strict',
                     'NoNewPrivileges': 'yes', 'PrivateTmp': 'yes', 'ProtectHome': 'read-only'}
    with urllib.request.urlopen('http://127.0.0.1:%d/health/live' % port, timeout=10) as resp:
        assert resp.status == 200


def test_the_machine_is_left_alone(real):
    """The container's systemd runs only its own and the test's units, and has its own /tmp."""
    running = real.host.run('systemctl', 'list-units', '--type=service', '--state=running', '--no-legend',
                            '--plain').stdout.split('\n')
    names = sorted(line.split()[0] for line in running if line.strip())
    assert [n for n in names if not n.startswith(('antnode', 'systemd-', 'ant-migration-dashboard'))] == [], names
    real.host.run('sh', '-c', 'echo inside > /tmp/ant-realsystemd-inside')
    assert not Path('/tmp/ant-realsystemd-inside').exists()
    assert MARKER.read_text() == 'the machine\'s /tmp\n'


def test_nothing_of_the_container_outlives_it(tmp_path):
    _requirements()
    host = RealSystemdHost(tmp_path / 'host', ROOT, name='ant-real-stop-%d' % os.getpid()).start()
    leader = host.leader
    host.run('systemd-run', '--unit=ant-sleeper', 'sleep', '600')
    host.stop()
    assert host.proc.returncode is not None and not Path('/proc/%d' % leader).exists()
    root = str(host.root)
    left = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.readlink('/proc/%s/root' % pid) == root:
                left.append(pid)
        except OSError:
            continue
    assert left == []


def test_the_node_processes_import_under_a_python_without_ansible():
    """The container's python3 has no Ansible: antctl (unitctl) and every node unit's process (unitnode) import
    the collection's module_utils from the PYTHONPATH the container gives them. Here: the virtualenv's
    interpreter without its site-packages (-S), so without Ansible, as in the container (needs no root)."""
    env = {'PATH': os.environ.get('PATH', ''), 'PYTHONPATH': '%s:%s' % (ROOT / 'src', ROOT / 'collections')}
    code = ('import importlib.util, sys\n'
            'assert importlib.util.find_spec("ansible") is None, "Ansible is importable: the check proves nothing"\n'
            'import ant_fleet_sim.unitctl, ant_fleet_sim.unitnode\n'
            'print(ant_fleet_sim.unitnode.peer_id_from_ed25519(bytes(32)))\n')
    proc = subprocess.run([sys.executable, '-S', '-c', code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('12D3KooW')
