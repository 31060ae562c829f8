# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_preflight (see the module stub's docs).

An adapter over plugins/plugin_utils/services/preflight.py: op=run observes and judges every checklist item
and records the result; op=gate decides whether a production wave may start. Nothing is decided here.
"""

from __future__ import annotations

import os

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters import hostvars
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.ledger import opened_ledger
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    CONNECTION_ARGSPEC,
    PrometheusClient,
    PrometheusSettings,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import control, preflight

# The waiver of the preflight gate when the task gives none (documented in docs/preflight.md).
WAIVER_ENV = 'ANT_MIGRATION_PREFLIGHT_WAIVER'
TRACKER = 'autonomi.network_migration.migration_tracker'


def announce_settings():
    """The callback's announcement settings as this controller resolves them (ansible.cfg, environment): the
    communication item judges what the waves would do, not a play variable."""
    from ansible import constants as C
    from ansible.plugins.callback import CallbackBase
    from ansible.plugins.loader import callback_loader

    enabled = TRACKER in (C.CALLBACKS_ENABLED or [])
    plugin = callback_loader.get(TRACKER)
    if plugin is None:
        return {'tracker_enabled': False, 'announce': False, 'alertmanager_url': None}
    # The base class's options only: the tracker's own set_options would open a second tracker.
    CallbackBase.set_options(plugin)
    return {'tracker_enabled': enabled, 'announce': validation.boolean(plugin.get_option('announce'), 'announce'),
            'alertmanager_url': plugin.get_option('alertmanager_url') or None}


class ActionModule(MigrationAction):
    NAME = 'autonomi.network_migration.migration_preflight'
    ARGUMENT_SPEC = dict(
        CONNECTION_ARGSPEC,
        op=dict(type='str', required=True, choices=['run', 'gate']),
        ledger=dict(type='str'),
        operator=dict(type='str', default=''),
        rules_file=dict(type='path'),
        overrides=dict(type='dict'),
        settings=dict(type='dict'),
        runbook_base_url=dict(type='str', default=''),
        alertmanager_url=dict(type='str', default=''),
        fleet_hosts=dict(type='list', elements='str', default=[]),
        info_var=dict(type='str', default=hostvars.DEFAULT_INFO_VAR),
        canary_group=dict(type='str', default='canary'),
        canary_group_hosts=dict(type='list', elements='str', default=[]),
        canary_count=dict(type='int', default=1),
        exclude_hosts=dict(type='list', elements='str', default=[]),
        scrape_max_age=dict(type='str', default='2m'),
        delivery_timeout=dict(type='str', default='2m'),
        baseline_window=dict(type='str', default='1d'),
        far_factor=dict(type='float', default=20.0),
        backup_dir=dict(type='path'),
        waivers=dict(type='dict', default={}),
        max_age=dict(type='str', default='24h'),
        rehearsal_max_age=dict(type='str', default='7d'),
        load_test_max_age=dict(type='str', default='30d'),
        waiver=dict(type='str'),
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        task_vars = task_vars or {}
        operator, run_id = control.actor_defaults(args['operator'] or None, task_vars)
        location = self.ledger_location(args['ledger'], task_vars)
        if self._task.check_mode and args['op'] == 'run':
            return dict(result, changed=False, skipped=True, msg='check mode: the preflight checks and records nothing')
        with self.failing_on_errors(result), opened_ledger(location) as ledger:
            if args['op'] == 'gate':
                waiver = args['waiver'] if args['waiver'] is not None else os.environ.get(WAIVER_ENV, '')
                result.update(preflight.gate(ledger, args['max_age'], waiver, operator, run_id=run_id,
                                             record=not self._task.check_mode))
            else:
                result.update(self._run(ledger, args, task_vars, operator, run_id, location))
        return result

    def _run(self, ledger, args, task_vars, operator, run_id, location):
        try:
            ruleset = self.ruleset(args, task_vars)
            settings = PrometheusSettings.from_options(args, default_url=self.task_var(task_vars,
                                                                                       'migration_prometheus_url'))
            request = dict(
                args, ruleset=ruleset, ledger_location=ledger_lib.resolve_ledger_location(location),
                scrape_max_age=validation.seconds(args['scrape_max_age'], 'preflight_scrape_max_age'),
                delivery_timeout=validation.seconds(args['delivery_timeout'], 'preflight_delivery_timeout'),
                baseline_window='%ds' % validation.duration(args['baseline_window'], 'preflight_baseline_window'),
                far_factor=validation.number(args['far_factor'], 'preflight_threshold_far_factor', above=1),
                rehearsal_max_age=validation.seconds(args['rehearsal_max_age'], 'preflight_rehearsal_max_age'),
                load_test_max_age=validation.seconds(args['load_test_max_age'], 'preflight_load_test_max_age'),
                announce_settings=announce_settings())
            preflight.parse_waivers(args['waivers'], operator)
        except MigrationError as exc:
            self.fail('%s; nothing was checked' % exc)
        observed, missing = hostvars.reported_nodes(task_vars.get('hostvars', {}), args['fleet_hosts'],
                                                    args['info_var'])
        nodes = hostvars.fleet_nodes(task_vars.get('hostvars', {}), args['fleet_hosts'], args['info_var'])[0]
        client = PrometheusClient(settings)
        try:
            return preflight.run(ledger, request, client, (observed, nodes, missing), operator, run_id=run_id)
        finally:
            client.close()
