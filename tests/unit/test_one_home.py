# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One home for each use case (docs/architecture.md): these fail when a second implementation appears.

The front-ends (action plugins, roles and playbooks, the CLI, the dashboard, the EDA source) adapt the
use cases of plugins/plugin_utils/services/ and the decisions under them; they keep no policy of their own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules

ROOT = Path(__file__).resolve().parents[2]
ROLE_AND_PLAYBOOK_FILES = sorted([*(ROOT / 'roles').glob('*/tasks/*.yml'), *(ROOT / 'roles').glob('*/defaults/*.yml'),
                                  *(ROOT / 'playbooks').glob('*.yml')])
FRONT_ENDS = ('plugins/action', 'plugins/callback', 'extensions/eda', 'src/ant_network_migration_cli',
              'src/ant_network_migration_dashboard', 'src/ant_network_migration_common')
FRONT_END_CODE = sorted(p for base in FRONT_ENDS for p in (ROOT / base).rglob('*.py'))

# What a run, a rollback, a canary or a containment ended as: values only a use case decides.
OUTCOME_WORDS = {'failed', 'frozen', 'succeeded', 'degraded', 'incomplete', 'stopped_early', 'passed', 'rollback',
                 'freeze', 'halted', 'paused', 'completed', 'fast'}
TERNARY = re.compile(r"'([a-z_]+)'\s+if\s+.+?\s+else\s+'([a-z_]+)'", re.S)


def jinja_expressions(text):
    return re.findall(r'\{\{(.*?)\}\}', text, re.S)


@pytest.mark.parametrize('path', ROLE_AND_PLAYBOOK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_jinja_in_roles_or_playbooks_decides_an_outcome(path):
    """An outcome, a verdict, a containment comes back from an action (a use case), never from a ternary."""
    for expression in jinja_expressions(path.read_text()):
        for branch in TERNARY.findall(expression):
            decided = set(branch) & OUTCOME_WORDS
            assert not decided, f'{path.relative_to(ROOT)} decides {decided} in Jinja: {{{{{expression.strip()}}}}}'


def _mappings(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


@pytest.mark.parametrize('path', ROLE_AND_PLAYBOOK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_role_or_playbook_keeps_a_map_of_modes(path):
    """The mode before a stage is _modes.previous_mode(); a hand-written {mode: mode} map is a second home."""
    for mapping in _mappings(yaml.safe_load(path.read_text())):
        pairs = [(k, v) for k, v in mapping.items() if k in _modes.MODES and v in _modes.MODES]
        assert not pairs, f'{path.relative_to(ROOT)} maps modes to modes: {pairs}'


def test_no_front_end_lists_the_rules_that_roll_back():
    """Which alerts roll back is the rules' severity (services/alerts.py): no rule id is written elsewhere."""
    ids = [rule.id for rule in alert_rules.load_rules().rules]
    for path in ROLE_AND_PLAYBOOK_FILES + FRONT_END_CODE + sorted((ROOT / 'roles').glob('*/meta/*.yml')):
        text = path.read_text()
        named = [rule_id for rule_id in ids if rule_id in text]
        assert not named, f'{path.relative_to(ROOT)} names rule ids {named}: derive them from the rules'


def test_no_front_end_judges_a_severity_itself():
    pattern = re.compile(r"""[!=]=\s*['"](critical|warning)['"]|['"](critical|warning)['"]\s*[!=]=""")
    for path in FRONT_END_CODE + sorted((ROOT / 'plugins' / 'plugin_utils').rglob('*.py')):
        if path.parts[-2] == 'alert_rules' or path.name in ('alerts.py', 'grafana_dashboard.py'):
            continue  # the rules themselves; the one rollback severity; Grafana's colours per severity
        assert not pattern.search(path.read_text()), f'{path.relative_to(ROOT)} compares a severity itself'


def test_no_front_end_infers_a_run_kind_from_a_playbook_name():
    """The run kind is recorded with the run (plugin_utils/run_kinds.py); a file name says nothing."""
    pattern = re.compile(r"""basename\(.*\)\s*==|re\.compile\(r?['"].*(rollback|canary|rollout)"""
                         # a table of playbook-name fragments and the stage they stand for
                         r"""|\(\s*['"](canary|rollout|rollback|wave)['"],\s*['"](canary|wave|rollback)['"]\s*\)""")
    for path in FRONT_END_CODE + sorted((ROOT / 'plugins' / 'plugin_utils').rglob('*.py')):
        assert not pattern.search(path.read_text()), f'{path.relative_to(ROOT)} infers a run kind from a file name'


@pytest.mark.parametrize('path', sorted((ROOT / 'plugins' / 'action').glob('*.py')), ids=lambda p: p.name)
def test_action_plugins_are_adapters(path):
    """An action plugin validates, calls a use case and returns its result: about 60-150 lines."""
    lines = len(path.read_text().splitlines())
    assert lines <= 150, f'{path.name} has {lines} lines: move its policy into plugins/plugin_utils/services'


@pytest.mark.parametrize('name', ['transport_mode', 'node_health'])
def test_host_modules_are_documentation_and_a_thin_main(name):
    tree = ast.parse((ROOT / 'plugins' / 'modules' / f'{name}.py').read_text())
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    # The argument spec mirrors DOCUMENTATION (STYLE.md habit 2); everything else is the engine's.
    assert [f.name for f in functions] == ['argument_spec', 'main'], f'{name}.py keeps more than its spec and main()'
    main = functions[1]
    assert main.end_lineno - main.lineno <= 40, f'{name}.main() is {main.end_lineno - main.lineno} lines'
