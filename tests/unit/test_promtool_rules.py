# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render the default rules and run the promtool unit tests of tests/promtool/ on them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules

PROMTOOL = shutil.which('promtool')
TESTS_DIR = Path(__file__).resolve().parents[1] / 'promtool'
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason='promtool is not installed (Debian: prometheus)')


def render(directory, overrides=None):
    ruleset = alert_rules.load_rules(overrides=overrides)
    for name, groups in (('migration-recording.yml', alert_rules.recording_rule_groups(ruleset)),
                         ('migration-alerts.yml', alert_rules.alerting_rule_groups(ruleset))):
        (directory / name).write_text(yaml.safe_dump(groups, sort_keys=False), encoding='utf-8')
    for test in TESTS_DIR.glob('*_test.yml'):
        shutil.copy(test, directory / test.name)
    return sorted(p.name for p in directory.glob('*_test.yml'))


def promtool(directory, *args):
    return subprocess.run([PROMTOOL, *args], cwd=directory, capture_output=True, text=True, timeout=120, check=False)


def test_rendered_rules_pass_promtool_check(tmp_path):
    render(tmp_path)
    proc = promtool(tmp_path, 'check', 'rules', 'migration-recording.yml', 'migration-alerts.yml')
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_rules_pass_their_unit_tests(tmp_path):
    tests = render(tmp_path)
    assert tests, 'no promtool tests in %s' % TESTS_DIR
    proc = promtool(tmp_path, 'test', 'rules', *tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('rule_id, threshold', [('high_error_rate_iroh', 0.07), ('iroh_latency_spike', 0.8),
                                                ('network_partition_risk', 0.6)])
def test_unit_tests_catch_a_changed_threshold(tmp_path, rule_id, threshold):
    # The tests pin the defaults: moving a threshold must make them fail.
    tests = render(tmp_path, overrides={rule_id: {'threshold': threshold}})
    proc = promtool(tmp_path, 'test', 'rules', *tests)
    assert proc.returncode != 0
    assert 'FAILED' in proc.stdout + proc.stderr
