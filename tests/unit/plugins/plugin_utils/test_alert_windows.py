# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The windows the collection ships can be judged: every enabled rule's ``for`` window holds at least the gate's
minimum number of samples at the rule evaluation step (a 30 s window at 15 s holds 2: the gate could never
judge, and every wave of a large simulated fleet was refused as inconclusive)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import gating

ROOT = Path(__file__).resolve().parents[4]


def windows(name):
    if name == 'defaults':
        return {}, {}
    if name == 'sim':
        doc = yaml.safe_load((ROOT / 'inventories' / 'sim' / 'group_vars' / 'all' / 'alerts.yml').read_text())
    else:
        doc = yaml.safe_load((ROOT / 'inventories' / 'sim-large-fleet.yml').read_text())
    return doc.get('migration_alert_overrides') or {}, doc.get('migration_alert_settings') or {}


@pytest.mark.parametrize('name', ['defaults', 'sim', 'large'])
def test_every_shipped_for_window_holds_the_gates_minimum_samples(name):
    overrides, settings = windows(name)
    ruleset = alert_rules.load_rules(overrides=overrides, settings=settings)
    step = alert_rules.parse_duration(ruleset.step)
    minimum = gating.GateRequest.__dataclass_fields__['min_samples'].default
    for rule in ruleset.select():
        samples = int(alert_rules.parse_duration(rule.for_) // step)
        assert samples >= minimum, '%s (%s): for %s at a %s step holds %d sample(s), the gate needs %d' % (
            name, rule.id, rule.for_, ruleset.step, samples, minimum)
