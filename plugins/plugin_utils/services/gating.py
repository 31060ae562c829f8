# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use case of the gate: judge a scope against the alert rules, tell the ledger, say what it means.

The state machine (consecutive failures, confirmations, verdicts, what the ledger is told) is
plugins/plugin_utils/gate.py; the rule evaluation is alert_rules.evaluate(). This module puts them
together for one gate task: the migration_gate action plugin builds the request from its options and
returns the result as it is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, redaction, validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules.promql import host_matcher, quote
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.gate import (
    GATE,
    UNAVAILABLE,
    GateOutcome,
    GateRun,
    LedgerProblem,
    check_rules_can_fail,
    consecutive_setting,
    gate_result,
    plan_notes,
    record_outcome,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import PrometheusError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import alerts

# Beyond this many seconds between the controller's clock and Prometheus', the gate warns; beyond the rules' rate
# window it refuses (no verdict): what it judges would not be the window it thinks.
CLOCK_WARN_SECONDS = 5.0


@dataclass
class GateRequest:
    """What one gate task asks, checked: the rules, the scope and how to judge."""
    ruleset: object
    rules: list
    hosts: list | None = None
    evaluations: int = 1
    interval: float = 0.0
    confirm_interval: float = 0.0
    consecutive: dict = field(default_factory=dict)
    min_samples: int = 3
    min_targets: int = 1
    inconclusive: str = 'pause'
    record: bool = True
    check_ledger: bool = True
    stop_on_pause: bool = True
    notes: list = field(default_factory=list)
    settle_evaluations: int = 0

    @classmethod
    def from_options(cls, ruleset, options):
        """Check the task's options (the one validator for counts and durations); GateConfigError / InputError."""
        if options.get('rollback_rules'):
            rules = alerts.rollback_rules(ruleset)
        else:
            rules = ruleset.select(options.get('rules'))
        consecutive = consecutive_setting(options.get('consecutive_failures'))
        evaluations = validation.integer(options.get('evaluations', 1), 'evaluations', minimum=1)
        min_targets = validation.integer(options.get('min_targets', 1), 'min_targets', minimum=1)
        min_samples = validation.integer(options.get('min_samples', 3), 'min_samples', minimum=1)
        step = alert_rules.parse_duration(ruleset.step)
        interval = step if options.get('interval') is None else validation.seconds(options['interval'], 'interval')
        check_rules_can_fail(rules, consecutive, asked_for=bool(options.get('rules')))
        # A confirmation needs new data: at least one rule evaluation of Prometheus apart.
        confirm_interval = max(interval, step)
        # A window that is still filling is evaluated again for at most the time the longest one takes to fill.
        longest_window = max([rule.for_seconds for rule in rules] or [0.0]) + step
        settle_evaluations = int(math.ceil(longest_window / confirm_interval)) if confirm_interval else 0
        record = bool(options.get('record', True))
        check_ledger = record if options.get('check_ledger') is None else bool(options['check_ledger'])
        return cls(ruleset=ruleset, rules=rules, hosts=list(options['hosts']) if options.get('hosts') else None,
                   evaluations=evaluations, interval=interval, confirm_interval=confirm_interval,
                   consecutive=consecutive, min_samples=min_samples, min_targets=min_targets,
                   inconclusive=options.get('inconclusive', 'pause'), record=record, check_ledger=check_ledger,
                   stop_on_pause=bool(options.get('stop_on_pause', True)),
                   notes=plan_notes(rules, consecutive, evaluations, confirm_interval),
                   settle_evaluations=settle_evaluations)


def clock_offset(client, clock=time.time):
    """This controller's clock minus Prometheus' (seconds), from Prometheus' ``time()`` halfway through the query
    (None when it gives no answer)."""
    before = clock()
    samples = client.query('time()')
    after = clock()
    return round((before + after) / 2.0 - samples[0]['value'], 3) if samples else None


def clock_problem(offset, ruleset):
    """(refuse, message) for a clock offset: None when within CLOCK_WARN_SECONDS."""
    if offset is None or abs(offset) <= CLOCK_WARN_SECONDS:
        return None
    window = alert_rules.parse_duration(ruleset.settings['rate_window'])
    side = 'ahead of' if offset > 0 else 'behind'
    text = ('the controller clock is %.1f s %s Prometheus\' clock' % (abs(offset), side))
    if abs(offset) > window:
        return True, ('%s, more than the rules\' %s window: what a gate judges would not be the window it '
                      'believes. Fix the controller\'s time (NTP), then re-run'
                      % (text, ruleset.settings['rate_window']))
    return False, ('%s: the gate judges on Prometheus\' clock; the ledger\'s times are the ledger\'s clock '
                   '(docs/ledger.md)' % text)


def can_judge(client, ruleset, hosts, clock=time.time):
    """Whether a gate can judge ``hosts`` now, before they are touched: Prometheus answers and has fresh samples
    of every one of them. Returns a gate-shaped result: verdict ``pass`` or ``unavailable`` (failed), msg."""
    matchers = ['job=%s' % quote(ruleset.job), host_matcher(hosts)]
    up = 'up{%s}' % ','.join(matchers)
    limit = max(3 * alert_rules.parse_duration(ruleset.step), 10.0)
    try:
        samples = client.query('label_replace(max by (host) (time() - timestamp(%s)), "stat", "age", "", "") or '
                               'label_replace(min by (host) (%s), "stat", "up", "", "")' % (up, up))
    except PrometheusError as exc:
        return {'failed': True, 'changed': False, 'verdict': UNAVAILABLE,
                'msg': 'the gate cannot judge %s: %s; nothing was touched' % (', '.join(hosts), exc)}
    seen = {}
    for sample in samples:
        seen.setdefault(sample['metric'].get('host'), {})[sample['metric'].get('stat')] = sample['value']
    problems = []
    for host in hosts:
        figures = seen.get(host)
        if not figures:
            problems.append('%s: no scrape target in Prometheus' % host)
        elif figures.get('up', 0) < 1:
            problems.append('%s: a scrape target is down' % host)
        elif figures.get('age', 0) > limit:
            problems.append('%s: newest sample %.0f s old (more than %.0f s)' % (host, figures['age'], limit))
    if problems:
        return {'failed': True, 'changed': False, 'verdict': UNAVAILABLE, 'problems': problems,
                'msg': 'the gate cannot judge this batch, so it is not touched: %s' % '; '.join(problems)}
    return {'failed': False, 'changed': False, 'verdict': alert_rules.PASS,
            'msg': 'Prometheus has fresh samples of %s: the gate can judge them' % ', '.join(hosts)}


def judge(request, client, ledger, check_mode=False):
    """Run the gate for ``request`` against ``client`` (Prometheus); record the verdict and the halt or pause
    it asks for in ``ledger`` (gate.LedgerAdapter) unless ``record`` is off or in check mode. Returns the
    task result: verdict, every rule's figures, the message with the next step, ``failed``."""
    scope = alert_rules.Scope(hosts=request.hosts)

    def evaluate():
        return alert_rules.evaluate(client, request.ruleset, scope, request.rules, min_samples=request.min_samples,
                                    min_targets=request.min_targets)

    def halted():
        return ledger.refusal(stop_on_pause=request.stop_on_pause) if request.check_ledger else None

    warnings = []
    try:
        stopped = halted()
        if stopped:
            # The guard refuses before Prometheus is asked anything (not even its clock).
            outcome = GateOutcome()
            outcome.verdict, outcome.halted, outcome.reason = alert_rules.FAIL, stopped, stopped
            result = gate_result(outcome, scope, request.ruleset, client, request.inconclusive)
            result['clock_offset'] = None
            return _finish(result, request, ledger, warnings)
        try:
            offset = clock_offset(client)
        except PrometheusError:
            offset = None    # the evaluations below meet the same outage and fail closed
        problem = clock_problem(offset, request.ruleset)
        if offset is not None and ledger.enabled and not check_mode:
            ledger.clock(offset, warn=bool(problem))
        if problem and problem[0]:
            outcome = GateOutcome()
            outcome.verdict, outcome.reason = UNAVAILABLE, problem[1]
        else:
            if problem:
                warnings.append(problem[1])
            outcome = GateRun(evaluate, evaluations=request.evaluations, interval=request.interval,
                              consecutive=request.consecutive, halted=halted,
                              confirm_interval=request.confirm_interval,
                              settle_evaluations=request.settle_evaluations).run()
        result = gate_result(outcome, scope, request.ruleset, client, request.inconclusive)
        result['clock_offset'] = offset
        if request.record and not outcome.halted and not check_mode:
            record_outcome(ledger, outcome, result, request.inconclusive)
            if 'halt' in ledger.written:
                result['msg'] += ('. The migration is halted in the ledger; acknowledge the halt '
                                  '(resume with ack) once the cause is understood')
            elif 'pause' in ledger.written:
                result['msg'] += '. The migration is paused in the ledger; resume it to go on'
    except LedgerProblem as exc:
        result = {'failed': True, 'changed': False, 'verdict': alert_rules.FAIL,
                  'msg': '%s: %s; failing closed' % (GATE, exc)}
    return _finish(result, request, ledger, warnings)


def _finish(result, request, ledger, warnings):
    result['notes'] = request.notes
    result['ledger'] = {'location': redaction.redact_location(ledger.location) if ledger.enabled else None,
                        'written': ledger.written}
    if ledger.note:
        warnings.append(ledger.note)
    if warnings:
        result.setdefault('warnings', []).extend(warnings)
    return result
