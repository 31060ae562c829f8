# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_gate (see the module stub's docs).

An adapter: it validates the options, builds the rules, the Prometheus client and the ledger
adapter, and runs the gate's state machine (plugins/plugin_utils/gate.py), which decides the
verdict and what the ledger is told.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import (
    GATE,
    INCONCLUSIVE_POLICIES,
    GateConfigError,
    GateRun,
    LedgerAdapter,
    LedgerProblem,
    check_rules_can_fail,
    consecutive_setting,
    gate_result,
    plan_notes,
    record_outcome,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    CONNECTION_ARGSPEC,
    PrometheusClient,
    PrometheusError,
    PrometheusSettings,
)

display = Display()

ARGUMENT_SPEC = dict(
    CONNECTION_ARGSPEC,
    rules=dict(type='list', elements='str'),
    rules_file=dict(type='path'),
    overrides=dict(type='dict'),
    settings=dict(type='dict'),
    hosts=dict(type='list', elements='str'),
    evaluations=dict(type='int', default=1),
    interval=dict(type='str'),
    consecutive_failures=dict(type='raw'),
    min_samples=dict(type='int', default=3),
    min_targets=dict(type='int', default=1),
    inconclusive=dict(type='str', default='pause', choices=list(INCONCLUSIVE_POLICIES)),
    ledger=dict(type='str'),
    record=dict(type='bool', default=True),
    check_ledger=dict(type='bool'),
    stop_on_pause=dict(type='bool', default=True),
    unjudged=dict(type='bool', default=False),
    fleet_hosts=dict(type='list', elements='str'),
    info_var=dict(type='str', default='wave_transport_info'),
    min_soak=dict(type='str', default='0'),
)


# ---------------------------------------------------------------------------- the plugin
def _seconds(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        return alert_rules.parse_duration(value)
    except alert_rules.AlertRulesError as exc:
        raise AnsibleActionFail('%s: %s' % (what, exc)) from None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('%s: %s' % (GATE, '; '.join(validation.error_messages)))
        args = validation.validated_parameters

        def var(name):
            value = task_vars.get(name)
            return self._templar.template(value) if value is not None else None

        try:
            ruleset = alert_rules.load_rules(
                args['rules_file'],
                overrides=args['overrides'] if args['overrides'] is not None else var('migration_alert_overrides'),
                settings=args['settings'] if args['settings'] is not None else var('migration_alert_settings'))
            rules = ruleset.select(args['rules'])
            consecutive = consecutive_setting(args['consecutive_failures'])
            settings = PrometheusSettings.from_options(args, default_url=var('migration_prometheus_url'))
        except (alert_rules.AlertRulesError, GateConfigError, PrometheusError) as exc:
            raise AnsibleActionFail('%s: %s' % (GATE, exc)) from None
        for bad in ('evaluations', 'min_targets'):
            if args[bad] < 1:
                raise AnsibleActionFail('%s: %s must be >= 1, got %d' % (GATE, bad, args[bad]))
        confirm_interval = alert_rules.parse_duration(ruleset.step)
        interval = confirm_interval if args['interval'] is None else _seconds(args['interval'], 'interval')
        if interval < 0:
            raise AnsibleActionFail('%s: interval must be >= 0, got %s' % (GATE, args['interval']))
        try:
            check_rules_can_fail(rules, consecutive, asked_for=bool(args['rules']))
        except GateConfigError as exc:
            raise AnsibleActionFail('%s: %s; nothing was evaluated' % (GATE, exc)) from None
        # A confirmation needs new data: at least one rule evaluation of Prometheus apart.
        confirm_interval = max(interval, confirm_interval)
        notes = plan_notes(rules, consecutive, args['evaluations'], confirm_interval)
        ledger = LedgerAdapter(args['ledger'])
        hosts = list(args['hosts']) if args['hosts'] else None
        if args['unjudged']:
            try:
                found = ledger.unjudged(self._observed(task_vars, args),
                                        min_soak=_seconds(args['min_soak'], 'min_soak'))
            except LedgerProblem as exc:
                return dict(result, failed=True, changed=False, verdict=alert_rules.FAIL,
                            msg='%s: %s; failing closed' % (GATE, exc))
            if not found['hosts']:
                return dict(result, changed=False, failed=False, verdict=alert_rules.PASS, unjudged_hosts=[],
                            msg='no host was switched without a verdict: nothing to judge', notes=notes,
                            ledger={'written': ledger.written})
            hosts = found['hosts']
            result['unjudged_hosts'] = hosts
            result['unjudged_nodes'] = found['nodes']
            if found['wait'] > 0 and not self._task.check_mode:
                display.display('%s: soaking %s for %.0f s more before judging them'
                                % (GATE, ', '.join(hosts), found['wait']))
                time.sleep(found['wait'])
        scope = alert_rules.Scope(hosts=hosts)
        client = PrometheusClient(settings)

        def evaluate():
            return alert_rules.evaluate(client, ruleset, scope, rules, min_samples=args['min_samples'],
                                        min_targets=args['min_targets'])

        check_ledger = args['record'] if args['check_ledger'] is None else args['check_ledger']

        def halted():
            return ledger.refusal(stop_on_pause=args['stop_on_pause']) if check_ledger else None

        try:
            outcome = GateRun(evaluate, evaluations=args['evaluations'], interval=interval,
                              consecutive=consecutive, halted=halted, confirm_interval=confirm_interval).run()
            result.update(gate_result(outcome, scope, ruleset, client, args['inconclusive']))
            if args['record'] and not outcome.halted and not self._task.check_mode:
                record_outcome(ledger, outcome, result, args['inconclusive'])
                if 'halt' in ledger.written:
                    result['msg'] += ('. The migration is halted in the ledger; acknowledge the halt '
                                      '(resume with ack) once the cause is understood')
                elif 'pause' in ledger.written:
                    result['msg'] += '. The migration is paused in the ledger; resume it to go on'
        except LedgerProblem as exc:
            result.update(failed=True, changed=False, verdict=alert_rules.FAIL,
                          msg='%s: %s; failing closed' % (GATE, exc))
        finally:
            client.close()
        result['notes'] = notes
        result['ledger'] = {'location': redaction.redact_location(ledger.location) if ledger.enabled else None,
                            'written': ledger.written}
        if ledger.note:
            result.setdefault('warnings', []).append(ledger.note)
        if result.get('failed'):
            display.vv('%s: %s' % (GATE, result['msg']))
        return result

    @staticmethod
    def _observed(task_vars, args):
        """{host: [node dicts]} from the transport_info results registered on the fleet's hosts."""
        hostvars = task_vars.get('hostvars', {})
        observed = {}
        for host in args['fleet_hosts'] or []:
            info = hostvars[host].get(args['info_var']) if host in hostvars else None
            if info and not info.get('failed') and 'nodes' in info:
                observed[host] = info['nodes']
        return observed
