"""A fleet reached over SSH, as a real fleet is (issue 10).

One small simulated fleet (3 hosts x 3 nodes) shared by the module: every host behind a real
OpenSSH server on loopback, its own unprivileged account, key authentication, become through sudo,
modules run by /usr/bin/python3 with pipelining. On it: canary, a wave and a fast rollback through
ansible-playbook, then the same three through ansible-runner (the engine of the CLI and AWX), each
checked through the simulator's antctl, the ledger and Prometheus. Wall times are printed
(``-s``): compare with bench/ssh_vs_local.py, which runs the same passes locally.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from scenario_harness import ROOT, Fleet

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_fleet_sim import layout, ssh
from ant_fleet_sim.testing import SimStack, wait_for

LIBP2P = 'libp2p_only'
DUAL = 'dual_stack'
HOSTS, NODES = 3, 3
ANSIBLE = str(Path(sys.executable).parent / 'ansible')


def _requirements():
    try:
        ssh.check_requirements()
    except ssh.SshError as exc:
        if os.environ.get('CI') == 'true':
            pytest.fail('the SSH fleet cannot run under CI: %s' % exc)
        pytest.skip(str(exc))


@pytest.fixture(scope='module')
def ssh_fleet(tmp_path_factory):
    _requirements()
    with Fleet(tmp_path_factory.mktemp('ssh-fleet'), hosts=HOSTS, nodes_per_host=NODES, ssh=True) as fleet:
        yield fleet


def hosts_in_mode(fleet, mode):
    hosts = {}
    for node, m in fleet.modes().items():
        hosts.setdefault(node.split('/')[0], set()).add(m)
    return sorted(h for h, ms in hosts.items() if ms == {mode})


def antctl_running_modes(fleet, host):
    """{service: (status, transport mode)}: the status as the host's antctl reports it, the mode as
    the host's service manager has loaded it (``systemctl show -p Environment``, the drop-in)."""
    out = {}
    for name, node in fleet.antctl_modes(host).items():
        proc = subprocess.run([str(fleet.stack.state.systemctl(host)), 'show', name, '-p', 'Environment', '--value'],
                              capture_output=True, text=True, timeout=120, check=True)
        env = dict(word.partition('=')[::2] for word in proc.stdout.split())
        out[name] = (node['status'], env.get('ANT_TRANSPORT_MODE'))
    return out


def dual_metric(fleet):
    return 'sum(ant_node_transport_mode{mode="%s"}) or vector(0)' % DUAL


def adhoc(fleet, pattern, module, args, *extra):
    """`ansible PATTERN -m MODULE -a ARGS` against the fleet's inventory; (rc, {host: result})."""
    argv = [ANSIBLE, pattern, '-i', str(fleet.inventory_dir), '-m', module, '-a', args]
    for item in extra:
        argv += ['-e', item]
    env = fleet.env(ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_DEPRECATION_WARNINGS='0')
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    results = {}
    for match in re.finditer(r'^(\S+) \| (\w+)(?:!)? => (\{.*?^\})', proc.stdout, re.M | re.S):
        results[match.group(1)] = (match.group(2), yaml.safe_load(match.group(3)))
    return proc, results


class Timings:
    rows = []

    @classmethod
    def record(cls, how, what, seconds):
        cls.rows.append((how, what, seconds))
        print('\n[ssh fleet %dx%d] %-16s %-9s %6.1f s' % (HOSTS, NODES, how, what, seconds))


# ------------------------------------------------------------------------------ the harness itself
def _ssh_leftovers(stack, sshd_pid, sudoers):
    return {'sshd': layout.process_matches(sshd_pid, ssh.SSHD, str(stack.state_dir)),
            'sudoers': sudoers.exists(), 'port': ssh._banner(stack.ssh_info['port'])}


@pytest.mark.parametrize('ending', ['stop', 'simulator killed'])
def test_sshd_and_the_sudoers_drop_in_go_away_with_the_fleet(tmp_path, ending):
    """Nothing outlives the fleet: not on stop(), and not when the simulator dies (as when the
    test run is killed and the simulator follows its owner)."""
    _requirements()
    stack = SimStack(tmp_path, hosts=1, nodes_per_host=2, prometheus=False, ssh=True).start()
    try:
        paths = ssh.SshState(stack.state_dir)
        sudoers = paths.sudoers_file
        sshd_pid = int((paths.dir / 'sshd.pid').read_text())
        assert _ssh_leftovers(stack, sshd_pid, sudoers) == {'sshd': True, 'sudoers': True, 'port': True}
        proc = subprocess.run(stack.ssh_command('sim-host-01', 'id -un; sudo -n id -un'), capture_output=True,
                              text=True, timeout=60)
        assert proc.stdout.split() == ['antsim-sim-host-01', 'root'], proc.stdout + proc.stderr
        if ending == 'stop':
            stack.stop()
        else:
            os.kill(stack.info['pid'], signal.SIGKILL)
            os.waitpid(stack.info['pid'], 0)
        wait_for(lambda: not any(_ssh_leftovers(stack, sshd_pid, sudoers).values()), timeout=30,
                 what='sshd stopped and the sudoers drop-in removed')
    finally:
        stack.stop()
    assert not stack.state_dir.exists()
    assert (tmp_path / 'sim-logs' / 'ssh-sshd.log').exists()


@pytest.mark.parametrize('host', ['Sim-Host-01', 'a' * 30, 'host;rm', ''])
def test_a_host_name_that_is_no_valid_account_name_is_refused(host):
    with pytest.raises(ssh.SshError, match='not a valid user name'):
        ssh.account_name(host)


# ------------------------------------------------------------------------------ the connection
def test_inventory_reaches_every_host_over_ssh_as_a_real_fleet(ssh_fleet):
    inventory = yaml.safe_load((ssh_fleet.inventory_dir / 'hosts.yml').read_text())
    hosts = inventory['all']['children']['fleet']['hosts']
    assert sorted(hosts) == ['sim-host-%02d' % i for i in range(1, HOSTS + 1)]
    for host, hv in hosts.items():
        assert hv['ansible_connection'] == 'ssh'
        assert hv['ansible_user'] == 'antsim-' + host
        assert hv['ansible_python_interpreter'] == '/usr/bin/python3'
        assert hv['ansible_ssh_pipelining'] is True
        assert hv['ansible_become'] is True and hv['migration_become'] is True


def test_modules_run_as_root_through_sudo_with_the_system_python(ssh_fleet):
    facts = 'gather_subset=!all filter=ansible_user_id,ansible_python'
    proc, results = adhoc(ssh_fleet, 'fleet', 'ansible.builtin.setup', facts)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(results) == HOSTS, proc.stdout[-3000:]
    for host, (status, res) in results.items():
        assert status == 'SUCCESS', (host, res)
        assert res['ansible_facts']['ansible_user_id'] == 'root'
        assert res['ansible_facts']['ansible_python']['executable'] == '/usr/bin/python3'
    # Without become the same module runs as the host's own unprivileged account.
    proc, results = adhoc(ssh_fleet, 'fleet', 'ansible.builtin.setup', facts, 'ansible_become=false')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert {h: r['ansible_facts']['ansible_user_id'] for h, (_, r) in results.items()} == {
        h: 'antsim-' + h for h in results}
    # ... and it really came in through our sshd, by key, as that account.
    log = (ssh_fleet.stack.state_dir / 'ssh' / 'sshd.log').read_text()
    for host in ssh_fleet.stack.host_names:
        assert re.search(r'Accepted publickey for antsim-%s from 127\.0\.0\.1' % host, log), host
    # Without the key there is no way in: the server offers public-key authentication only.
    argv = ssh_fleet.stack.ssh_command('sim-host-01', 'true')
    argv[argv.index('-i') + 1] = str(ssh_fleet.directory / 'no-such-key')
    argv[argv.index('LogLevel=ERROR')] = 'LogLevel=INFO'
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 255 and 'Permission denied (publickey).' in proc.stderr, proc.stderr


def test_the_host_directory_belongs_to_root(ssh_fleet):
    """The simulated host's state (registry, units) is root's: the account can read, not write it."""
    host = 'sim-host-01'
    registry = ssh_fleet.stack.state.registry(host)
    command = 'test -r %s && test -x %s && ! test -w %s && echo ok' % (
        registry, ssh_fleet.stack.antctl_path(host), registry.parent)
    proc = subprocess.run(ssh_fleet.stack.ssh_command(host, command), capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == 'ok', proc.stdout + proc.stderr


def test_a_switch_without_become_fails_clearly_and_changes_nothing(ssh_fleet):
    """Privileges are real: as the unprivileged account the toggle cannot write the drop-in."""
    host = 'sim-host-03'
    uptimes = ssh_fleet.uptimes()
    unit_dir = ssh_fleet.stack.state.host_dir(host) / 'systemd' / 'system'
    before = sorted(p.relative_to(unit_dir) for p in unit_dir.rglob('*'))
    args = ('mode=dual_stack antctl_path={{ ant_antctl_path }} unit_dir={{ ant_systemd_unit_dir }} '
            'systemctl_path={{ ant_systemctl_path }} ready_timeout=30')
    proc, results = adhoc(ssh_fleet, host, 'autonomi.network_migration.transport_mode', args,
                          'ansible_become=false', 'migration_become=false')
    assert proc.returncode != 0, proc.stdout[-3000:]
    status, res = results[host]
    assert status == 'FAILED', res
    assert 'become' in res['msg'] and 'root' in res['msg'], res['msg']
    assert {n: m for n, m in ssh_fleet.modes().items() if n.startswith(host)} == {
        '%s/antnode%d' % (host, i): LIBP2P for i in range(1, NODES + 1)}
    after = ssh_fleet.uptimes()
    assert all(after[n] >= uptimes[n] for n in uptimes), 'a node restarted although the switch was refused'
    assert sorted(p.relative_to(unit_dir) for p in unit_dir.rglob('*')) == before


# ------------------------------------------------------------------------------ ansible-playbook
def test_canary_over_ssh(ssh_fleet):
    start = time.monotonic()
    run = ssh_fleet.play('canary.yml')
    Timings.record('ansible-playbook', 'canary', time.monotonic() - start)
    assert run.rc == 0, run.tail()
    assert hosts_in_mode(ssh_fleet, DUAL) == ['sim-host-01']
    assert set(antctl_running_modes(ssh_fleet, 'sim-host-01').values()) == {('Running', DUAL)}
    ledger = ssh_fleet.ledger()
    try:
        assert ledger.canary_verdict()['verdict'] == 'passed'
    finally:
        ledger.close()
    states = ssh_fleet.ledger_states()
    assert {n for n, s in states.items() if s == 'dual_stack_stable'} == {
        'sim-host-01/antnode%d' % i for i in range(1, NODES + 1)}
    ssh_fleet.wait_value(dual_metric(ssh_fleet), lambda v: v == NODES, timeout=30)


def test_wave_over_ssh(ssh_fleet):
    start = time.monotonic()
    run = ssh_fleet.play('rollout.yml', 'wave=60')
    Timings.record('ansible-playbook', 'wave 60%', time.monotonic() - start)
    assert run.rc == 0, run.tail()
    assert hosts_in_mode(ssh_fleet, DUAL) == ['sim-host-01', 'sim-host-02']
    assert hosts_in_mode(ssh_fleet, LIBP2P) == ['sim-host-03']
    assert set(antctl_running_modes(ssh_fleet, 'sim-host-02').values()) == {('Running', DUAL)}
    states = ssh_fleet.ledger_states()
    assert sorted(n for n, s in states.items() if s == 'dual_stack_stable') == sorted(
        '%s/antnode%d' % (h, i) for h in ('sim-host-01', 'sim-host-02') for i in range(1, NODES + 1))
    ssh_fleet.wait_value(dual_metric(ssh_fleet), lambda v: v == 2 * NODES, timeout=30)


def test_fast_rollback_over_ssh(ssh_fleet):
    start = time.monotonic()
    run = ssh_fleet.play('rollback.yml', 'rollback_strategy=fast', 'target=libp2p_only', 'reason=ssh scenario')
    Timings.record('ansible-playbook', 'rollback', time.monotonic() - start)
    assert run.rc == 0, run.tail()
    assert set(ssh_fleet.modes().values()) == {LIBP2P}
    for host in ('sim-host-01', 'sim-host-02'):
        assert set(antctl_running_modes(ssh_fleet, host).values()) == {('Running', LIBP2P)}
    done = ssh_fleet.events(kinds=['rollback'])[0]
    assert done['data']['strategy'] == 'fast' and done['data']['outcome'] == 'succeeded', done
    states = ssh_fleet.ledger_states()
    assert all(states['%s/antnode%d' % (h, i)] == 'rolled_back'
               for h in ('sim-host-01', 'sim-host-02') for i in range(1, NODES + 1)), states
    ssh_fleet.wait_value(dual_metric(ssh_fleet), lambda v: v == 0, timeout=30)


# ------------------------------------------------------------------------------ ansible-runner
def _runner(fleet, tmp_path, ledger_path, playbook, **extravars):
    import ansible_runner

    from ant_network_migration_cli.fleet import ensure_ansible_on_path

    ensure_ansible_on_path()
    private = tmp_path / ('runner-%s-%d' % (playbook.split('.')[0], time.monotonic_ns()))
    private.mkdir()
    extravars.update({'migration_prometheus_url': fleet.stack.prometheus_url,
                      'monitoring_rules_dir': str(fleet.stack.state_dir / 'prometheus' / 'rules')})
    env = fleet.env()
    envvars = {k: env[k] for k in ('ANSIBLE_CONFIG', 'SIM_STATE_DIR', 'ANT_MIGRATION_OPERATOR')}
    envvars['ANT_MIGRATION_LEDGER'] = str(ledger_path)
    start = time.monotonic()
    result = ansible_runner.run(private_data_dir=str(private), project_dir=str(ROOT),
                                playbook=str(ROOT / 'playbooks' / playbook), inventory=str(fleet.inventory_dir),
                                extravars=extravars, envvars=envvars, quiet=True)
    seconds = time.monotonic() - start
    stdout = result.stdout.read()
    # The node tasks went over SSH as the host accounts: the runner's events name the connection.
    node_events = [e['event_data'] for e in result.events if e.get('event') == 'runner_on_ok'
                   and str(e['event_data'].get('task_action', '')).endswith('transport_mode')]
    if result.status == 'successful':
        shutil.rmtree(private, ignore_errors=True)
    return result, stdout[-4000:], seconds, node_events


def test_canary_wave_and_fast_rollback_through_ansible_runner(ssh_fleet, tmp_path):
    """The same three passes as ansible-runner runs them (CLI, AWX), on a fresh ledger."""
    ledger_path = tmp_path / 'runner-ledger.sqlite3'
    assert set(ssh_fleet.modes().values()) == {LIBP2P}

    result, out, seconds, events = _runner(ssh_fleet, tmp_path, ledger_path, 'canary.yml')
    Timings.record('ansible-runner', 'canary', seconds)
    assert (result.status, result.rc) == ('successful', 0), out
    assert {e['host'] for e in events} == {'sim-host-01'}
    assert hosts_in_mode(ssh_fleet, DUAL) == ['sim-host-01']

    result, out, seconds, events = _runner(ssh_fleet, tmp_path, ledger_path, 'rollout.yml', wave=60)
    Timings.record('ansible-runner', 'wave 60%', seconds)
    assert (result.status, result.rc) == ('successful', 0), out
    assert hosts_in_mode(ssh_fleet, DUAL) == ['sim-host-01', 'sim-host-02']
    assert set(antctl_running_modes(ssh_fleet, 'sim-host-02').values()) == {('Running', DUAL)}
    ledger = ledger_lib.open_ledger(str(ledger_path))
    try:
        canary = ledger.canary_verdict()
    finally:
        ledger.close()
    assert (canary['verdict'], canary['hosts']) == ('passed', ['sim-host-01']), canary

    result, out, seconds, events = _runner(ssh_fleet, tmp_path, ledger_path, 'rollback.yml',
                                           rollback_strategy='fast', target=LIBP2P, reason='ssh scenario (runner)')
    Timings.record('ansible-runner', 'rollback', seconds)
    assert (result.status, result.rc) == ('successful', 0), out
    assert set(ssh_fleet.modes().values()) == {LIBP2P}
    ledger = ledger_lib.open_ledger(str(ledger_path))
    try:
        states = {n['node_id']: n['state'] for n in ledger.nodes()}
        canary = ledger.canary_verdict()
    finally:
        ledger.close()
    # A rollback to libp2p_only that moved nodes undoes what the canary judged (docs/operator-guide.md): the
    # verdict is invalidated, naming the canary it replaces, and the next rollout asks for a new canary.
    assert (canary['verdict'], canary['previous'], canary['hosts']) == ('invalidated', 'passed', ['sim-host-01']), \
        canary
    assert 'run playbooks/canary.yml again' in canary['reason'], canary
    assert sorted(n for n, s in states.items() if s == 'rolled_back') == sorted(
        '%s/antnode%d' % (h, i) for h in ('sim-host-01', 'sim-host-02') for i in range(1, NODES + 1))
    ssh_fleet.wait_value(dual_metric(ssh_fleet), lambda v: v == 0, timeout=30)
