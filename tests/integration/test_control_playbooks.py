"""pause.yml, resume.yml (halt acknowledgement), status.yml and the lock, through real ansible-playbook.

No fleet is needed: these playbooks work on the ledger (and ask Prometheus, which is absent here,
so status shows the gate as unreachable without failing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / 'ledger.sqlite3'


def play(ledger_path, playbook, *extra, operator='alice'):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANT_MIGRATION_LEDGER=str(ledger_path),
               ANT_MIGRATION_OPERATOR=operator, ANSIBLE_NOCOLOR='1')
    args = [str(BIN / 'ansible-playbook'), str(ROOT / 'playbooks' / playbook), '-i', 'localhost,',
            '-e', 'ansible_connection=local', '-e', 'migration_prometheus_url=http://127.0.0.1:9']
    args += [a for e in extra for a in ('-e', e)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def flags(ledger_path):
    ledger = ledger_lib.open_ledger(str(ledger_path))
    try:
        return ledger.get_flags()
    finally:
        ledger.close()


def test_pause_needs_a_reason(ledger_path):
    rc, out = play(ledger_path, 'pause.yml')
    assert rc != 0
    assert 'reason is required' in out and '"reason": "two words"' in out, out[-2000:]
    assert not flags(ledger_path)['paused']


def test_pause_then_resume_records_operator_and_reason(ledger_path):
    rc, out = play(ledger_path, 'pause.yml', '{"reason": "latency on host 3"}', operator='alice')
    assert rc == 0, out
    paused = flags(ledger_path)['paused']
    assert paused['reason'] == 'latency on host 3' and paused['operator'] == 'alice'
    # A wave refuses while paused, before touching anything.
    rc, out = play(ledger_path, 'rollout.yml', 'wave=10')
    assert rc != 0 and 'the migration is paused (latency on host 3; by alice' in out and 'latency on host 3' in out
    rc, out = play(ledger_path, 'resume.yml', operator='bob')
    assert rc == 0, out
    assert 'migration resumed by bob' in out
    assert flags(ledger_path)['paused'] is None


def test_a_halt_needs_acknowledgement(ledger_path):
    ledger = ledger_lib.open_ledger(str(ledger_path))
    ledger.set_halt('gate failed: high_error_rate_iroh 0.31 > 0.05', 'tracker', 'gate')
    ledger.close()
    rc, out = play(ledger_path, 'resume.yml')
    assert rc != 0
    assert flags(ledger_path)['halted'], 'a resume without ack cleared the halt'
    rc, out = play(ledger_path, 'resume.yml', 'ack=true')
    assert rc == 0, out
    assert flags(ledger_path)['halted'] is None


def test_a_second_run_is_refused_while_the_lock_is_held(ledger_path):
    ledger = ledger_lib.open_ledger(str(ledger_path))
    ledger.acquire_lock('carol@ops-box pid %d' % os.getpid(), 'rollout.yml', stale_after=3600)
    ledger.close()
    rc, out = play(ledger_path, 'rollback.yml', 'strategy=fast')
    assert rc != 0
    assert 'carol@ops-box' in out and 'rollout.yml' in out, out[-2000:]


def test_status_reports_without_prometheus(ledger_path):
    rc, out = play(ledger_path, 'status.yml')
    assert rc == 0, out
    assert 'phase Initialization' in out
    assert 'Prometheus unreachable' in out
