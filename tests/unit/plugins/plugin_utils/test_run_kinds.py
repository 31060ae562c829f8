# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run's kind: declared by the playbook, recorded with the run, read from the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.runtime.tracker import wave_label

ROOT = Path(__file__).resolve().parents[4]


def _first_declared(path, inherited=None):
    """The kind a playbook's plays carry as ansible-core flattens them (import vars win over the play's)."""
    for entry in yaml.safe_load(path.read_text()):
        if 'ansible.builtin.import_playbook' in entry:
            merged = dict(inherited or {}, **(entry.get('vars') or {}))
            found = _first_declared(path.parent / entry['ansible.builtin.import_playbook'], merged)
            if found:
                return found
            continue
        play_vars = dict(entry.get('vars') or {}, **(inherited or {}))
        return run_kinds.declared_kind([play_vars])
    return None


@pytest.mark.parametrize('playbook', sorted(p.name for p in (ROOT / 'playbooks').glob('*.yml')))
def test_every_playbook_declares_its_kind(playbook):
    kind = _first_declared(ROOT / 'playbooks' / playbook)
    assert kind not in (None, run_kinds.OTHER), f'{playbook} declares no {run_kinds.RUN_KIND_VAR} in its first play'
    # The kind names what the playbook does, whatever the file is called: the mapping is the playbooks' own.
    expected = {'rollout.yml': 'rollout', 'finalize.yml': 'finalize', 'rollback_guard.yml': 'rollback_guard'}
    assert kind == expected.get(playbook, playbook[:-4])


def test_an_unknown_kind_is_refused_none_is_other():
    with pytest.raises(ValueError, match='not a run kind'):
        run_kinds.declared_kind([{run_kinds.RUN_KIND_VAR: 'rolback'}])
    assert run_kinds.declared_kind([{}, {'x': 1}]) == run_kinds.OTHER
    assert run_kinds.declared_kind([{}, {run_kinds.RUN_KIND_VAR: 'canary'}]) == 'canary'


def test_migration_kinds_are_the_ones_that_change_nodes():
    assert set(run_kinds.MIGRATION_KINDS) == {'canary', 'rollout', 'promote', 'finalize', 'rollback',
                                              'rollback_guard'}
    assert not run_kinds.is_migration('conformance') and not run_kinds.is_migration(run_kinds.OTHER)
    assert run_kinds.stage('promote') == 'wave' and run_kinds.stage('rollback_guard') == 'rollback'


def test_the_canary_label_comes_from_the_kind_not_the_file_name():
    assert wave_label('canary', {}) == 'canary'
    assert wave_label('rollout', {'wave': '25'}) == '25'
    assert wave_label('other', {}) is None


def test_the_ledger_records_and_filters_runs_by_kind(tmp_path):
    with ledger_lib.open_ledger(str(tmp_path / 'l.sqlite3')) as book:
        first = book.start_run('/somewhere/fleet-recovery.yml', 'eda', kind='rollback')
        book.start_run('/somewhere/rollback.yml', 'alice')          # declares nothing: other
        book.start_run('/p/status.yml', 'bob', kind='status')
        assert [r['id'] for r in book.runs(kinds=run_kinds.ROLLBACK_KINDS)] == [first]
        assert [r['kind'] for r in book.runs()] == ['status', 'other', 'rollback']
        started = book.events(kinds=['run_started'])[-1]
        assert started['data']['kind'] == 'rollback'
        with pytest.raises(ValueError):
            book.start_run('x.yml', 'eve', kind='nonsense')
