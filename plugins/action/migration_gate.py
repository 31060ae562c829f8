# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of autonomi.network_migration.migration_gate (see the module stub's docs).

The gate evaluates the migration's alert rules against Prometheus for a scope (the fleet
or some hosts), one or more times, and fails the task -- and halts the migration in the
ledger -- when a rule trips. The state machine is ``GateRun`` (plain Python, driven by the
unit tests with a fake evaluator); ``ActionModule`` only resolves options and the ledger.
"""

from __future__ import annotations

import os
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, identity, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import (
    CONNECTION_ARGSPEC,
    PrometheusClient,
    PrometheusError,
    PrometheusSettings,
)

display = Display()

GATE = 'autonomi.network_migration.migration_gate'
DEFAULT_CONSECUTIVE = {'critical': 1, 'warning': 2, 'info': 0}
INCONCLUSIVE_POLICIES = ('pause', 'fail', 'pass')

ARGUMENT_SPEC = dict(
    CONNECTION_ARGSPEC,
    rules=dict(type='list', elements='str'),
    rules_file=dict(type='path'),
    overrides=dict(type='dict'),
    settings=dict(type='dict'),
    hosts=dict(type='list', elements='str'),
    evaluations=dict(type='int', default=1),
    interval=dict(type='str', default='30s'),
    consecutive_failures=dict(type='raw'),
    min_samples=dict(type='int', default=3),
    min_targets=dict(type='int', default=1),
    inconclusive=dict(type='str', default='pause', choices=list(INCONCLUSIVE_POLICIES)),
    ledger=dict(type='str'),
    record=dict(type='bool', default=True),
    check_ledger=dict(type='bool'),
    stop_on_pause=dict(type='bool', default=True),
)


# ---------------------------------------------------------------------------- the ledger
class LedgerProblem(Exception):
    """The ledger exists but could not be read or written: the gate fails closed."""


class LedgerAdapter:
    """The gate's (and canary analysis's) few ledger calls, imported lazily.

    Without the ledger code (ImportError) every call is a no-op and ``note`` says so;
    any other ledger error raises LedgerProblem, because a halt that cannot be read or
    written must stop the rollout, not be ignored.
    """

    def __init__(self, location=None, enabled=True):
        self.location = location
        self.enabled = enabled
        self.note = None
        self.written = []
        self._lib = None

    def _ledger(self):
        if not self.enabled:
            return None
        if self._lib is None:
            try:
                from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as lib
            except ImportError as exc:
                self.enabled = False
                self.note = 'no migration ledger available (%s): verdict not recorded, halt not checked' % exc
                return None
            self._lib = lib
        try:
            self.location = self._lib.resolve_ledger_location(self.location)
            return self._lib.open_ledger(self.location)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # fail closed on any ledger error
            raise LedgerProblem('cannot open the migration ledger at %s (%s: %s)'
                                % (redaction.redact_location(self.location), type(exc).__name__,
                                   redaction.redact_text(exc))) from None

    def _call(self, what, func):
        handle = self._ledger()
        if handle is None:
            return None
        try:
            return func(handle)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise LedgerProblem('migration ledger: %s failed (%s: %s)' % (what, type(exc).__name__, exc)) from None
        finally:
            handle.close()

    @property
    def run_id(self):
        value = os.environ.get('ANT_MIGRATION_RUN_ID', '')
        return int(value) if value.isdigit() else None

    @property
    def operator(self):
        return identity.operator()   # the run's operator (the callback exports it), never the module's name

    def flags(self):
        return self._call('reading the pause/halt flags', lambda h: h.get_flags()) or {}

    def record(self, kind, **data):
        self._call('recording a %s event' % kind, lambda h: h.record_event(kind, run_id=self.run_id, **data))
        if self.enabled:
            self.written.append(kind)

    def halt(self, reason, source, **data):
        self._call('writing a halt', lambda h: h.set_halt(reason, self.operator, source, run_id=self.run_id, **data))
        if self.enabled:
            self.written.append('halt')

    def pause(self, reason):
        self._call('writing a pause', lambda h: h.set_pause(reason, self.operator, run_id=self.run_id))
        if self.enabled:
            self.written.append('pause')


def describe_flag(word, flag):
    text = 'the migration is %s: %s (by %s at %s' % (word, flag.get('reason') or 'no reason given',
                                                     flag.get('operator') or 'unknown', flag.get('at') or '?')
    if flag.get('source'):
        text += ', source %s' % flag['source']
    return text + ')'


# ---------------------------------------------------------------------------- the gate
def consecutive_setting(value):
    """{severity: N} from an int (critical and warning; info never fails) or a partial dict."""
    out = dict(DEFAULT_CONSECUTIVE)
    if value is None or value == '':
        return out
    if isinstance(value, dict):
        unknown = set(value) - set(alert_rules.SEVERITIES)
        if unknown:
            raise ValueError('consecutive_failures: unknown severity %s; known: %s'
                             % (', '.join(sorted(unknown)), ', '.join(alert_rules.SEVERITIES)))
        items = value.items()
    else:
        items = (('critical', value), ('warning', value))
    for severity, count in items:
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise ValueError('consecutive_failures.%s must be an integer, got %r' % (severity, count)) from None
        if count < 0:
            raise ValueError('consecutive_failures.%s must be >= 0 (0: never fails the gate), got %d'
                             % (severity, count))
        out[severity] = count
    return out


class GateOutcome:
    def __init__(self):
        self.verdict = None
        self.reason = ''
        self.results = []        # RuleResults of the last evaluation
        self.facts = None
        self.streaks = {}
        self.history = []        # [{evaluation, at, verdicts}]
        self.tripped = []        # RuleResults that failed the gate
        self.unavailable = None  # the Prometheus error that failed the gate
        self.halted = None       # the ledger's halt flag that failed the gate

    @property
    def inconclusive_rules(self):
        return [r for r in self.results if r.verdict == alert_rules.NO_DATA]


class GateRun:
    """Consecutive-failure bookkeeping across ``evaluations`` spaced by ``interval`` seconds.

    ``evaluate()`` returns (ScopeFacts, [RuleResult]) and raises PrometheusError when
    Prometheus cannot answer; ``halted()`` returns why the ledger stops the migration
    (halted or paused) or None.
    Verdicts: ``fail`` as soon as a rule has failed on N consecutive evaluations (N per
    severity, 0 = never), on a Prometheus error (fail closed) or a ledger halt;
    ``inconclusive`` when the last evaluation lacked data for a rule; else ``pass``.
    """

    def __init__(self, evaluate, evaluations=1, interval=0.0, consecutive=None, halted=None,
                 sleep=time.sleep, clock=time.time):
        if evaluations < 1:
            raise ValueError('evaluations must be >= 1, got %d' % evaluations)
        if interval < 0:
            raise ValueError('interval must be >= 0')
        self.evaluate = evaluate
        self.evaluations = evaluations
        self.interval = interval
        self.consecutive = consecutive_setting(consecutive)
        self.halted = halted or (lambda: None)
        self.sleep = sleep
        self.clock = clock

    def run(self):
        out = GateOutcome()
        for number in range(1, self.evaluations + 1):
            stopped = self.halted()
            if stopped:
                out.verdict, out.halted = alert_rules.FAIL, stopped
                out.reason = stopped
                return out
            try:
                out.facts, out.results = self.evaluate()
            except PrometheusError as exc:
                out.verdict, out.unavailable = alert_rules.FAIL, exc
                out.reason = 'fail closed: %s' % exc
                return out
            for result in out.results:
                rule_id = result.rule.id
                if result.verdict == alert_rules.FAIL:
                    out.streaks[rule_id] = out.streaks.get(rule_id, 0) + 1
                elif result.verdict in (alert_rules.PASS, alert_rules.SKIPPED):
                    out.streaks[rule_id] = 0
                # no_data keeps the streak: a gap in the data neither confirms nor clears a failure.
            out.history.append({'evaluation': number, 'at': self.clock(),
                                'verdicts': {r.rule.id: r.verdict for r in out.results}})
            out.tripped = [r for r in out.results if r.verdict == alert_rules.FAIL
                           and self.consecutive[r.rule.severity] > 0
                           and out.streaks[r.rule.id] >= self.consecutive[r.rule.severity]]
            if out.tripped:
                out.verdict = alert_rules.FAIL
                out.reason = 'rule(s) tripped: ' + '; '.join(r.describe() for r in out.tripped)
                return out
            if number < self.evaluations and self.interval:
                self.sleep(self.interval)
        if out.inconclusive_rules:
            out.verdict = 'inconclusive'
            out.reason = 'not enough data to judge: ' + '; '.join(
                '%s: %s' % (r.rule.id, r.reason) for r in out.inconclusive_rules)
        else:
            out.verdict = alert_rules.PASS
            breaching = [r for r in out.results if r.verdict == alert_rules.FAIL]
            out.reason = 'all rules pass' if not breaching else (
                'passed; breaching but not (yet) failing the gate: ' + '; '.join(r.describe() for r in breaching))
        return out


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


def gate_result(outcome, scope, ruleset, client, policy):
    """The task result: verdict, every rule's figures, the message, ``failed``."""
    rules = []
    for result in outcome.results:
        item = result.as_dict()
        item['consecutive_failures'] = outcome.streaks.get(result.rule.id, 0)
        rules.append(item)
    verdict = outcome.verdict
    failed = verdict == alert_rules.FAIL or (verdict == 'inconclusive' and policy != 'pass')
    where = scope.describe()
    if verdict == alert_rules.FAIL:
        msg = 'migration gate FAILED for %s: %s' % (where, outcome.reason)
    elif verdict == 'inconclusive':
        action = {'pause': 'the rollout stops and asks for a pause; resume once the data is there',
                  'fail': 'treated as a failure (inconclusive=fail)',
                  'pass': 'let through (inconclusive=pass)'}[policy]
        msg = 'migration gate INCONCLUSIVE for %s (%s): %s' % (where, action, outcome.reason)
    else:
        msg = 'migration gate passed for %s: %s' % (where, outcome.reason)
    return {
        'changed': False,
        'failed': failed,
        'verdict': verdict,
        'msg': msg,
        'rules': rules,
        'failed_rules': [r.rule.id for r in outcome.tripped],
        'inconclusive_rules': [r.rule.id for r in outcome.inconclusive_rules] if verdict == 'inconclusive' else [],
        'scope': dict({'hosts': scope.hosts or 'fleet'}, **(outcome.facts.as_dict() if outcome.facts else {})),
        'evaluations': outcome.history,
        'prometheus': {'url': client.settings.url if client else None, 'queries': client.queries if client else 0},
        'settings': {'rate_window': ruleset.settings['rate_window'],
                     'evaluation_interval': ruleset.settings['evaluation_interval']},
    }


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
        except (alert_rules.AlertRulesError, ValueError, PrometheusError) as exc:
            raise AnsibleActionFail('%s: %s' % (GATE, exc)) from None
        for bad in ('evaluations', 'min_targets'):
            if args[bad] < 1:
                raise AnsibleActionFail('%s: %s must be >= 1, got %d' % (GATE, bad, args[bad]))
        interval = _seconds(args['interval'], 'interval')
        if interval < 0:
            raise AnsibleActionFail('%s: interval must be >= 0, got %s' % (GATE, args['interval']))
        scope = alert_rules.Scope(hosts=list(args['hosts']) if args['hosts'] else None)
        notes = ['%s rules need %d consecutive failed evaluations and %d run: they cannot fail this gate'
                 % (severity, count, args['evaluations']) for severity, count in consecutive.items()
                 if count > args['evaluations'] and any(r.severity == severity for r in rules)]
        if notes and args['consecutive_failures'] is not None:
            for note in notes:
                display.warning('%s: %s' % (GATE, note))

        ledger = LedgerAdapter(args['ledger'])
        client = PrometheusClient(settings)

        def evaluate():
            return alert_rules.evaluate(client, ruleset, scope, rules, min_samples=args['min_samples'],
                                        min_targets=args['min_targets'])

        check_ledger = args['record'] if args['check_ledger'] is None else args['check_ledger']

        def halted():
            if not check_ledger:
                return None
            flags = ledger.flags()
            if flags.get('halted'):
                return describe_flag('halted', flags['halted'])
            if flags.get('paused') and args['stop_on_pause']:
                return describe_flag('paused', flags['paused'])
            return None

        try:
            outcome = GateRun(evaluate, evaluations=args['evaluations'], interval=interval,
                              consecutive=consecutive, halted=halted).run()
            result.update(gate_result(outcome, scope, ruleset, client, args['inconclusive']))
            if args['record'] and not outcome.halted and not self._task.check_mode:
                self._record(ledger, outcome, result, args['inconclusive'])
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
    def _record(ledger, outcome, result, policy):
        summary = [{k: r[k] for k in ('id', 'verdict', 'value', 'threshold', 'window', 'hosts')}
                   for r in result['rules']]
        ledger.record('gate_verdict', gate=GATE, verdict=outcome.verdict, scope=result['scope'].get('hosts'),
                      reason=outcome.reason, rules=summary)
        if outcome.verdict == alert_rules.FAIL:
            ledger.halt('gate failed: %s' % outcome.reason, source=GATE, failed_rules=result['failed_rules'],
                        scope=result['scope'].get('hosts'))
        elif outcome.verdict == 'inconclusive' and policy == 'pause':
            ledger.pause('gate inconclusive: %s' % outcome.reason)
        elif outcome.verdict == 'inconclusive' and policy == 'fail':
            ledger.halt('gate inconclusive (inconclusive=fail): %s' % outcome.reason, source=GATE,
                        inconclusive_rules=result['inconclusive_rules'])
