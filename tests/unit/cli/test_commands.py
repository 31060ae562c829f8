"""The CLI through click's CliRunner: help, exit codes, status from a seeded ledger, dry runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_mod
from ant_fleet_sim.model import make_peer_id  # real peer ids: close groups need keys that decode
from ant_network_migration_cli import errors
from ant_network_migration_cli.main import cli

COMMANDS = ('status', 'start', 'pause', 'resume', 'rollback', 'health', 'metrics', 'unlock')


@pytest.mark.parametrize('command', COMMANDS)
def test_every_command_has_help_with_examples_and_exit_codes(command):
    result = CliRunner().invoke(cli, [command, '--help'])
    assert result.exit_code == 0
    assert 'Examples:' in result.output
    assert '3  refused: the migration is paused, halted or locked' in result.output


def test_top_level_help_documents_completion_and_exit_codes():
    result = CliRunner().invoke(cli, ['--help'])
    assert result.exit_code == 0
    assert '_ANT_NETWORK_MIGRATION_COMPLETE=bash_source' in result.output
    assert 'Exit codes:' in result.output


def test_usage_errors_exit_2(invoke):
    assert invoke('rollback', '--strategy', 'sideways').exit_code == errors.EXIT_BAD_INPUT
    assert invoke('pause').exit_code == errors.EXIT_BAD_INPUT                 # --reason missing
    assert invoke('pause', '--reason', '  ').exit_code == errors.EXIT_BAD_INPUT


def test_status_json_from_seeded_ledger(invoke, ledger_path):
    result = invoke('status', '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data['ledger'] == str(ledger_path)
    assert data['progress']['total'] == 18
    assert data['progress']['by_state']['dual_stack_stable'] == 3
    assert data['progress']['dual_stack_coverage_percent'] == pytest.approx(16.67)
    assert data['progress']['phase'] == 'Initialization'
    assert data['flags'] == {'paused': None, 'halted': None}
    assert data['canary']['verdict'] == 'passed'
    assert data['gate_verdicts'][0]['data']['rule'] == 'high_error_rate_iroh'
    assert 'nodes' not in data


def test_status_detailed_json_lists_nodes_and_events(invoke):
    data = json.loads(invoke('status', '--detailed', '--json').output)
    assert len(data['nodes']) == 18
    assert {e['kind'] for e in data['events']} >= {'gate_verdict', 'canary_verdict'}


def test_status_table_shows_pause_reason(invoke, ledger_path):
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_pause('looking at [iroh] latency', 'alice')      # brackets are not rich markup
    result = invoke('status', '--detailed')
    assert result.exit_code == 0
    assert 'PAUSED' in result.output and 'looking at [iroh] latency' in result.output and 'alice' in result.output
    assert 'sim-host-06' in result.output        # --detailed: the node list


def test_status_without_ledger_is_bad_input_and_creates_nothing(cli_runner, tmp_path):
    missing = tmp_path / 'nope.sqlite3'
    result = cli_runner.invoke(cli, ['--ledger', str(missing), 'status'])
    assert result.exit_code == errors.EXIT_BAD_INPUT
    assert 'no ledger at' in result.output
    assert not missing.exists()


def write_plan(tmp_path, text):
    path = tmp_path / 'plan.yml'
    path.write_text(text)
    return path


def test_start_with_invalid_plan_names_each_error(invoke, tmp_path):
    plan = write_plan(tmp_path, 'canary: {count: 0}\nwaves:\n  - percent: 150\n  - {percent: 20, batches: [0]}\n'
                                'rollback_policy: explode\nsurprise: 1\n')
    result = invoke('start', '--plan', plan, '--dry-run')
    assert result.exit_code == errors.EXIT_BAD_INPUT
    for expected in ('canary.count: 0 is less than the minimum of 1',
                     'waves[0].percent: 150 is greater than the maximum of 100',
                     'waves[1].batches[0]: 0 is not valid',
                     "rollback_policy: 'explode' is not one of",
                     'surprise: unknown field'):
        assert expected in result.output


def test_start_plan_checked_against_inventory(invoke, tmp_path, inventory_path):
    plan = write_plan(tmp_path, 'exclude: [nosuchgroup]\ncanary: {count: 1, hosts: [ghost]}\nwaves: [{percent: 50}]\n')
    result = invoke('-i', inventory_path, 'start', '--plan', plan, '--dry-run')
    assert result.exit_code == errors.EXIT_BAD_INPUT
    assert "exclude: 'nosuchgroup' is neither a host nor a group of the inventory" in result.output
    assert "canary.hosts: 'ghost' is not a host of the inventory" in result.output


def test_start_unknown_threshold_rule(invoke, tmp_path, inventory_path):
    plan = write_plan(tmp_path, 'thresholds: {no_such_rule: {threshold: 1}}\nwaves: [{percent: 50}]\n')
    result = invoke('-i', inventory_path, 'start', '--plan', plan, '--dry-run')
    assert result.exit_code == errors.EXIT_BAD_INPUT
    assert 'thresholds.no_such_rule: unknown alert rule' in result.output


DRY_PLAN = """\
canary: {count: 1, duration: 30s}
exclude: [holdouts]
batches: [1, "50%"]
waves:
  - percent: 50
  - percent: 100
"""


def ledger_snapshot(path):
    with ledger_mod.open_ledger(str(path)) as handle:
        return handle.nodes(), handle.events(limit=1000), handle.get_flags(), handle.lock()


def test_dry_run_prints_hosts_per_wave_in_order_and_changes_nothing(invoke, tmp_path, inventory_path, ledger_path):
    before = ledger_snapshot(ledger_path)
    result = invoke('-i', inventory_path, 'start', '--plan', write_plan(tmp_path, DRY_PLAN), '--dry-run')
    assert result.exit_code == 0, result.output
    out = result.output
    assert 'Canary' in out and 'nothing to do: the ledger records a passed canary' in out
    # 18 nodes; sim-host-01 is already dual-stack; 50 % = 9 nodes -> 2 more hosts, by name.
    wave1 = out[out.index('Wave 1'):out.index('Wave 2')]
    assert 'sim-host-02' in wave1 and 'sim-host-03' in wave1 and 'sim-host-04' not in wave1
    wave2 = out[out.index('Wave 2'):]
    assert 'sim-host-04' in wave2 and 'sim-host-05' in wave2
    assert 'sim-host-06' not in out.replace('excluded hosts: sim-host-06', '')   # excluded via group holdouts
    assert 'plan is valid' in out
    assert ledger_snapshot(ledger_path) == before


def test_dry_run_of_a_fresh_migration_asks_the_hosts(cli_runner, tmp_path, inventory_path, monkeypatch):
    from ant_network_migration_cli import fleet

    seen = {}

    def discover(source, hosts):
        seen['hosts'] = hosts
        return [{'host': h, 'service_name': 'antnode1', 'peer_id': make_peer_id(1, h, 1), 'mode': 'libp2p_only'}
                for h in hosts], {}

    monkeypatch.setattr(fleet, 'discover_nodes', discover)
    missing = tmp_path / 'fresh.sqlite3'
    plan = write_plan(tmp_path, 'canary: {count: 2}\nwaves: [{percent: 50}]\n')
    args = ['--ledger', str(missing), '-i', str(inventory_path), 'start', '--plan', str(plan), '--dry-run']
    # Without a ledger the dry run is refused (a typo must not look like a fresh migration) and creates none.
    assert cli_runner.invoke(cli, args).exit_code == errors.EXIT_BAD_INPUT
    assert not missing.exists()
    assert cli_runner.invoke(cli, ['--ledger', str(missing), 'init']).exit_code == 0
    before = ledger_snapshot(missing)
    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen['hosts'] == [f'sim-host-{i:02d}' for i in range(1, 7)]
    assert 'sim-host-01, sim-host-02' in result.output            # the canaries, first by name
    assert ledger_snapshot(missing) == before


def test_dry_run_fails_when_hosts_do_not_report(cli_runner, tmp_path, inventory_path, monkeypatch):
    from ant_network_migration_cli import fleet

    monkeypatch.setattr(fleet, 'discover_nodes', lambda source, hosts: ([], {h: 'unreachable' for h in hosts}))
    plan = write_plan(tmp_path, 'waves: [{percent: 50}]\n')
    assert cli_runner.invoke(cli, ['--ledger', str(tmp_path / 'x.sqlite3'), 'init']).exit_code == 0
    result = cli_runner.invoke(cli, ['--ledger', str(tmp_path / 'x.sqlite3'), '-i', str(inventory_path), 'start',
                                     '--plan', str(plan), '--dry-run'])
    assert result.exit_code == errors.EXIT_FAILED
    assert 'did not report their nodes' in result.output


@pytest.mark.parametrize('flag', ['pause', 'halt', 'lock'])
def test_start_refused_when_paused_halted_or_locked(invoke, tmp_path, inventory_path, ledger_path, flag, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        if flag == 'pause':
            handle.set_pause('change freeze', 'bob')
        elif flag == 'halt':
            handle.set_halt('gate: high_error_rate_iroh 0.3 > 0.05', 'migration_tracker', 'gate')
        else:
            handle.acquire_lock('carol@elsewhere', 'rollout.yml')
    plan = write_plan(tmp_path, 'waves: [{percent: 50}]\n')
    dry = invoke('-i', inventory_path, 'start', '--plan', plan, '--dry-run')
    real = invoke('-i', inventory_path, 'start', '--plan', plan)
    assert dry.exit_code == real.exit_code == errors.EXIT_REFUSED
    expected = {'pause': 'paused', 'halt': 'halted', 'lock': 'held by carol@elsewhere'}[flag]
    assert expected in dry.output and expected in real.output
    assert 'Wave 1' in dry.output                                   # the dry run still shows its plan


def test_resume_refuses_a_halt_without_ack(invoke, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_halt('partition risk 0.9 > 0.7', 'migration_tracker', 'gate')
    result = invoke('resume')
    assert result.exit_code == errors.EXIT_REFUSED
    assert 'partition risk 0.9 > 0.7' in result.output and '--ack' in result.output


def test_resume_and_pause_short_circuit(invoke, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    assert 'nothing to resume' in invoke('resume').output
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_pause('first', 'alice')
    result = invoke('pause', '--reason', 'second')
    assert result.exit_code == 0 and 'already paused' in result.output


def test_pause_runs_the_playbook_with_reason_and_operator(invoke, monkeypatch, ledger_path):
    from ant_network_migration_cli import runs

    calls = []

    def fake_run(name, **kwargs):
        calls.append((name, kwargs))
        return runs.RunOutcome(name, 'successful', 0)

    monkeypatch.setattr(runs, 'run_playbook', fake_run)
    result = invoke('pause', '--reason', 'investigating', '--operator', 'dave')
    assert result.exit_code == 0, result.output
    (name, kwargs), = calls
    assert name == 'pause.yml'
    assert kwargs['extravars'] == {'reason': 'investigating', 'operator': 'dave'}
    assert kwargs['ledger_location'] == str(ledger_path)


def test_failed_run_exits_1_with_the_halt_reason(invoke, tmp_path, inventory_path, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    def fake_run(name, **kwargs):
        with ledger_mod.open_ledger(str(ledger_path)) as handle:
            handle.set_halt('high_error_rate_iroh: 0.31 > 0.05 on sim-host-02', 'migration_gate', 'gate')
        return runs.RunOutcome(name, 'failed', 2, ['sim-host-02: gate: rule tripped'])

    monkeypatch.setattr(runs, 'run_playbook', fake_run)
    plan = write_plan(tmp_path, 'waves: [{percent: 50}, {percent: 100}]\n')
    result = invoke('-i', inventory_path, 'start', '--plan', plan)
    assert result.exit_code == errors.EXIT_FAILED
    assert 'wave 50 % failed' in result.output
    assert 'migration halted: high_error_rate_iroh: 0.31 > 0.05 on sim-host-02' in result.output
    assert 'wave 100' not in result.output                         # stopped at the first failure


def test_start_runs_canary_then_waves_with_plan_vars(invoke, tmp_path, inventory_path, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_canary_verdict('failed')
    calls = []

    def fake_run(name, **kw):
        calls.append((name, kw['extravars'], kw['extra_groups']))
        return runs.RunOutcome(name, 'successful', 0)

    monkeypatch.setattr(runs, 'run_playbook', fake_run)
    plan = write_plan(tmp_path, 'canary: {count: 1, duration: 2m, hosts: [sim-host-02]}\nsoak: 10s\n'
                                'rollback_policy: freeze\nexclude: [holdouts]\n'
                                'thresholds: {high_error_rate_iroh: {threshold: 0.1, for: 1m}}\n'
                                'waves: [{percent: 50, batches: [1, "25%"]}]\ntarget_duration: 7d\n')
    result = invoke('-i', inventory_path, 'start', '--plan', plan)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ['canary.yml', 'rollout.yml']
    # Merged over the inventory's own overrides, which an extra var would otherwise replace whole.
    overrides = {'high_error_rate_iroh': {'threshold': 0.1, 'for': '1m', 'cooldown': '1m'},
                 'network_partition_risk': {'for': '10s'}}
    assert calls[0][1] == {'canary_count': 1, 'canary_duration': 120, 'canary_group': 'migration_plan_canary',
                           'migration_alert_overrides': overrides}
    assert calls[1][1] == {'wave': 50, 'wave_batches': [1, '25%'], 'wave_soak_seconds': 10,
                           'wave_rollback_policy': 'freeze', 'migration_alert_overrides': overrides}
    # The plan's excludes and canaries reach the roles as inventory groups of the run.
    assert calls[1][2] == {'migration_exclude': ['sim-host-06'], 'migration_plan_canary': ['sim-host-02']}
    # The plan is recorded; status shows it with its deadline.
    status = json.loads(invoke('status', '--json').output)
    assert status['plan']['plan'] == str(plan) and status['plan']['waves'] == [50]
    assert status['plan']['deadline'] and status['plan']['target_duration'] == '7d'


def test_rollback_asks_and_honours_no(invoke, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    result = invoke('rollback', input='n\n')
    assert 'Roll back 3 nodes on 1 hosts to libp2p_only (fast strategy)?' in result.output
    assert result.exit_code == 1 and 'Aborted' in result.output


def test_rollback_refused_while_locked(invoke, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.acquire_lock('erin@ctl', 'rollout.yml')
    result = invoke('rollback', '--yes')
    assert result.exit_code == errors.EXIT_REFUSED
    assert 'held by erin@ctl' in result.output


def test_rollback_yes_runs_playbook(invoke, monkeypatch):
    from ant_network_migration_cli import runs

    calls = []
    monkeypatch.setattr(runs, 'run_playbook',
                        lambda name, **kw: calls.append((name, kw)) or runs.RunOutcome(name, 'successful', 0))
    result = invoke('rollback', '--strategy', 'gradual', '--target', 'libp2p_only', '--yes', '--operator', 'ops')
    assert result.exit_code == 0, result.output
    (name, kw), = calls
    assert name == 'rollback.yml' and kw['expected_hosts'] == 1
    assert kw['extravars'] == {'rollback_strategy': 'gradual', 'target': 'libp2p_only',
                               'reason': 'operator requested rollback', 'operator': 'ops'}


def test_unlock_releases_and_logs(invoke, ledger_path):
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.acquire_lock('frank@dead-controller', 'rollout.yml')
    result = invoke('unlock', '--reason', 'controller died', '--yes', '--operator', 'ops')
    assert result.exit_code == 0, result.output
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        assert handle.lock() is None
        assert handle.events(kinds='lock_override')[0]['data']['reason'] == 'controller died'


def test_plan_without_canary_needs_a_passed_canary(invoke, tmp_path, inventory_path, ledger_path, monkeypatch):
    from ant_network_migration_cli import runs

    monkeypatch.setattr(runs, 'run_playbook', lambda *a, **k: pytest.fail('no playbook may run'))
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.set_canary_verdict('failed', reason='iroh error rate 0.3 on sim-host-01')
    plan = write_plan(tmp_path, 'waves: [{percent: 50}]\n')
    for args in (('--dry-run',), ()):
        result = invoke('-i', inventory_path, 'start', '--plan', plan, *args)
        assert result.exit_code == errors.EXIT_BAD_INPUT
        assert 'no canary stage and the ledger records no passed canary' in result.output


def test_shell_completion_and_version():
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).parent / 'ant-network-migration')
    source = subprocess.run([exe], env=dict(os.environ, _ANT_NETWORK_MIGRATION_COMPLETE='bash_source'),
                            capture_output=True, text=True, check=True)
    assert '_ant_network_migration_completion' in source.stdout
    words = subprocess.run([exe], env=dict(os.environ, _ANT_NETWORK_MIGRATION_COMPLETE='bash_complete',
                                           COMP_WORDS='ant-network-migration rollback --strategy ', COMP_CWORD='3'),
                           capture_output=True, text=True, check=True)
    assert 'plain,fast' in words.stdout and 'plain,gradual' in words.stdout
    version = subprocess.run([exe, '--version'], capture_output=True, text=True, check=True)
    assert version.stdout.startswith('ant-network-migration, version ')


def test_status_lists_each_gate_evaluation_once_with_its_rules(invoke, ledger_path):
    with ledger_mod.open_ledger(str(ledger_path)) as handle:
        handle.record_event('gate_verdict', verdict='fail', scope=['sim-host-02'],
                            rules=[{'id': 'high_error_rate_iroh', 'value': 0.31, 'threshold': 0.05, 'verdict': 'fail'}])
        handle.record_event('gate_verdict', verdict='fail', host='sim-host-02', task='Judge the batch')
    data = json.loads(invoke('status', '--json').output)
    assert [e['data'].get('scope') for e in data['gate_verdicts']] == [['sim-host-02']]
    table = invoke('status').output
    assert '(high_error_rate_iroh 0.31/0.05 fail)' in table
