# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate's state machine: evaluations, consecutive failures, confirmations, verdicts, what the
ledger is told. Plain Python, driven by the unit tests with a fake evaluator; the
``migration_gate`` and ``canary_analysis`` action plugins are thin adapters over it.

Verdicts:

* ``pass``: every rule passed (or breaches too briefly to count, see ``notes``);
* ``fail``: a *verdict on the nodes*: a rule failed on as many consecutive evaluations as its
  severity asks; the migration is halted with cause ``verdict`` (the rollback policy applies);
* ``inconclusive``: not enough data to judge a rule (no samples, too few targets up);
* ``unavailable``: Prometheus could not be asked (unreachable, erroring): fail closed.

``inconclusive`` and ``unavailable`` are *no verdict*: the gate cannot say the nodes are bad. When
the policy stops the migration for them it is halted with cause ``no_verdict``: the wave freezes
(nothing is rolled back while nothing watches), see ``containment()``.

Every severity can fail every gate asked to judge it: a rule needs N consecutive failed
evaluations (``consecutive_failures``; warning 2 by default) and a gate asked for fewer
evaluations *confirms* a breaching rule by evaluating again (every ``confirm_interval``) until the
rule trips or clears. A rule asked for explicitly whose severity never fails (``info`` by
default, N = 0) makes the gate refuse to start, naming it.
"""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, guard, identity, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.prometheus import PrometheusError

GATE = 'autonomi.network_migration.migration_gate'
DEFAULT_CONSECUTIVE = {'critical': 1, 'warning': 2, 'info': 0}
INCONCLUSIVE_POLICIES = ('pause', 'fail', 'pass')
INCONCLUSIVE = 'inconclusive'
UNAVAILABLE = 'unavailable'
NO_VERDICT = (INCONCLUSIVE, UNAVAILABLE)

# Why the migration was halted, stored with the halt (ledger flags ``cause``).
CAUSE_VERDICT = 'verdict'        # a verdict on the nodes: the rollback policy applies
CAUSE_NO_VERDICT = 'no_verdict'  # nobody could judge the nodes (monitoring outage, no data): freeze


class GateConfigError(MigrationError, ValueError):
    """The gate was asked something it cannot do; nothing was evaluated."""


class LedgerProblem(MigrationError):
    """The ledger exists but could not be read or written: the gate fails closed."""


# ---------------------------------------------------------------------------- the ledger
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

    def refusal(self, stop_on_pause=True):
        """Why the guard stops this gate now (halted, paused, controller gone), or None."""
        def decide(handle):
            return guard.decide(guard.Snapshot(flags=handle.get_flags()), guard.Actor.from_environment(),
                                ignore_pause=not stop_on_pause, check_lock=False)
        decision = self._call('reading the pause/halt flags', decide)
        if decision is None or decision.allowed:
            return None
        return decision.reason

    def unjudged(self, observed=None, min_soak=0.0, clock=time.time):
        """Hosts with nodes switched without a verdict, and how long they still have to soak.

        ``observed`` ({host: [transport_info nodes]}) first tells the ledger about switches it never
        recorded (a worker that finished a switch after its controller died): they are reconciled
        into the ledger as switched-not-judged. Returns {hosts, nodes, wait}.
        """
        def find(handle):
            if observed:
                drift = handle.reconcile(observed, fix=False)['drift']
                if any(d['kind'] in ('mode_mismatch', 'not_in_ledger')
                       and d.get('observed_mode') not in (None, _modes.LIBP2P_ONLY) for d in drift):
                    handle.reconcile(observed, fix=True, operator=self.operator, run_id=self.run_id)
                    self.written.append('reconcile')
            return handle.unjudged_nodes()
        nodes = self._call('finding the nodes switched without a verdict', find) or []
        newest = max((_epoch(n.get('unjudged_since')) for n in nodes), default=0.0)
        return {'hosts': sorted({n['host'] for n in nodes}),
                'nodes': ['%s/%s' % (n['host'], n['service_name']) for n in nodes],
                'wait': max(0.0, float(min_soak) - (clock() - newest)) if nodes else 0.0}

    def clock(self, offset, warn=False):
        """This run's controller clock offset from Prometheus (the first measured stays with the run); an event when
        it is beyond the warning threshold."""
        def write(handle):
            handle.set_clock_offset(self.run_id, offset)
            if warn:
                handle.record_event('clock_skew', run_id=self.run_id, offset_seconds=offset, source='gate')
        self._call('recording the clock offset', write)

    def record(self, kind, **data):
        self._call('recording a %s event' % kind, lambda h: h.record_event(kind, run_id=self.run_id, **data))
        if self.enabled:
            self.written.append(kind)

    def halt(self, reason, source, cause=CAUSE_VERDICT, **data):
        self._call('writing a halt', lambda h: h.set_halt(reason, self.operator, source, run_id=self.run_id,
                                                          cause=cause, **data))
        if self.enabled:
            self.written.append('halt')

    def pause(self, reason):
        self._call('writing a pause', lambda h: h.set_pause(reason, self.operator, run_id=self.run_id))
        if self.enabled:
            self.written.append('pause')


def _epoch(iso):
    try:
        return datetime.datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


# What a run does with the nodes it switched once it stopped (containment()).
ROLLBACK, FREEZE, NO_CONTAINMENT = 'rollback', 'freeze', 'none'


def containment(halt_flag, policy, pause_flag=None):
    """What a run does with the nodes it switched once it stopped: ``rollback``, ``freeze`` or ``none``.

    Only a verdict on the nodes rolls them back; a halt without one (cause ``no_verdict``: the
    monitoring could not judge) freezes them where they are, whatever the policy. A pause without a
    halt (an operator's "stop where you are") freezes them too. Not stopped: ``none``.
    """
    if not halt_flag:
        return FREEZE if pause_flag else NO_CONTAINMENT
    if (halt_flag.get('cause') or CAUSE_VERDICT) == CAUSE_NO_VERDICT:
        return FREEZE
    return ROLLBACK if policy == ROLLBACK else FREEZE


# ---------------------------------------------------------------------------- the gate
def consecutive_setting(value):
    """{severity: N} from an int (critical and warning; info never fails) or a partial dict."""
    out = dict(DEFAULT_CONSECUTIVE)
    if value is None or value == '':
        return out
    if isinstance(value, dict):
        unknown = set(value) - set(alert_rules.SEVERITIES)
        if unknown:
            raise GateConfigError('consecutive_failures: unknown severity %s; known: %s'
                                  % (', '.join(sorted(unknown)), ', '.join(alert_rules.SEVERITIES)))
        items = value.items()
    else:
        items = (('critical', value), ('warning', value))
    for severity, count in items:
        if isinstance(count, bool):
            raise GateConfigError('consecutive_failures.%s must be an integer, got %r' % (severity, count))
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise GateConfigError('consecutive_failures.%s must be an integer, got %r' % (severity, count)) from None
        if count < 0:
            raise GateConfigError('consecutive_failures.%s must be >= 0 (0: never fails the gate), got %d'
                                  % (severity, count))
        out[severity] = count
    return out


def check_rules_can_fail(rules, consecutive, asked_for):
    """Refuse rules asked for by id whose severity can never fail the gate (count 0)."""
    if not asked_for:
        return
    mute = [r for r in rules if consecutive.get(r.severity, 0) == 0]
    if mute:
        raise GateConfigError(
            'rule(s) %s cannot fail this gate: consecutive_failures.%s is 0 (that severity only reports). '
            'Set consecutive_failures: {%s: N} or do not ask the gate to judge them'
            % (', '.join('%s (%s)' % (r.id, r.severity) for r in mute), mute[0].severity, mute[0].severity))


def plan_notes(rules, consecutive, evaluations, confirm_interval):
    """What the operator should know about the evaluations this gate will run."""
    notes = []
    for severity, count in sorted(consecutive.items()):
        judged = [r.id for r in rules if r.severity == severity]
        if not judged:
            continue
        if count == 0:
            notes.append('%s rules (%s) are reported, never fail the gate (consecutive_failures.%s is 0)'
                         % (severity, ', '.join(judged), severity))
        elif count > evaluations:
            notes.append('%s rules need %d consecutive failed evaluations and %d were asked: a breaching %s rule '
                         'is confirmed by up to %d more evaluation(s), %g s apart'
                         % (severity, count, evaluations, severity, count - 1, confirm_interval))
    return notes


class GateOutcome:
    def __init__(self):
        self.verdict = None
        self.reason = ''
        self.results = []        # RuleResults of the last evaluation
        self.facts = None
        self.streaks = {}
        self.history = []        # [{evaluation, at, verdicts}]
        self.tripped = []        # RuleResults that failed the gate
        self.unavailable = None  # the Prometheus error that stopped the gate
        self.halted = None       # the guard's refusal that stopped the gate
        self.confirmations = 0   # evaluations added to confirm a breaching rule
        self.settles = 0         # evaluations added while a rule's window was still filling

    @property
    def inconclusive_rules(self):
        return [r for r in self.results if r.verdict == alert_rules.NO_DATA]

    @property
    def no_verdict(self):
        return self.verdict in NO_VERDICT


class GateRun:
    """Consecutive-failure bookkeeping across ``evaluations`` spaced by ``interval`` seconds.

    ``evaluate()`` returns (ScopeFacts, [RuleResult]) and raises PrometheusError when
    Prometheus cannot answer; ``halted()`` returns why the guard stops the gate (halted, paused)
    or None. After the asked evaluations, a rule that breaches but has not yet failed as many
    consecutive evaluations as its severity needs is confirmed: evaluated again every
    ``confirm_interval`` seconds until it trips or clears.
    """

    def __init__(self, evaluate, evaluations=1, interval=0.0, consecutive=None, halted=None,
                 sleep=time.sleep, clock=time.time, confirm_interval=None, settle_evaluations=0):
        if evaluations < 1:
            raise GateConfigError('evaluations must be >= 1, got %d' % evaluations)
        if interval < 0:
            raise GateConfigError('interval must be >= 0')
        self.evaluate = evaluate
        self.evaluations = evaluations
        self.interval = interval
        self.confirm_interval = interval if confirm_interval is None else confirm_interval
        self.consecutive = consecutive_setting(consecutive)
        self.halted = halted or (lambda: None)
        self.settle_evaluations = settle_evaluations
        self.sleep = sleep
        self.clock = clock

    def _needed(self, result):
        return self.consecutive.get(result.rule.severity, 0)

    def _pending(self, out):
        """Breaching rules whose streak has not reached their count yet (and that can fail)."""
        return [r for r in out.results if r.verdict == alert_rules.FAIL and self._needed(r) > 0
                and out.streaks.get(r.rule.id, 0) < self._needed(r)]

    def run(self):
        out = GateOutcome()
        longest = max([c for c in self.consecutive.values() if c > 0] or [1])
        number = 0
        while True:
            number += 1
            stopped = self.halted()
            if stopped:
                out.verdict, out.halted = alert_rules.FAIL, stopped
                out.reason = stopped
                return out
            try:
                out.facts, out.results = self.evaluate()
            except PrometheusError as exc:
                out.verdict, out.unavailable = UNAVAILABLE, exc
                out.reason = 'cannot judge, %s' % exc
                return out
            for result in out.results:
                rule_id = result.rule.id
                if result.verdict == alert_rules.FAIL:
                    out.streaks[rule_id] = out.streaks.get(rule_id, 0) + 1
                elif result.verdict in (alert_rules.PASS, alert_rules.SKIPPED):
                    out.streaks[rule_id] = 0
                # no_data keeps the streak: a gap in the data neither confirms nor clears a failure.
            out.history.append({'evaluation': number, 'at': self.clock(), 'confirmation': number > self.evaluations,
                                'verdicts': {r.rule.id: r.verdict for r in out.results}})
            out.tripped = [r for r in out.results if r.verdict == alert_rules.FAIL and self._needed(r) > 0
                           and out.streaks[r.rule.id] >= self._needed(r)]
            if out.tripped:
                out.verdict = alert_rules.FAIL
                out.reason = 'rule(s) tripped: ' + '; '.join(r.describe() for r in out.tripped)
                return out
            if number < self.evaluations:
                if self.interval:
                    self.sleep(self.interval)
                continue
            # Asked evaluations done: confirm breaching rules that could still trip.
            if self._pending(out) and out.confirmations < longest - 1:
                out.confirmations += 1
                if self.confirm_interval:
                    self.sleep(self.confirm_interval)
                continue
            # A rule with some points but too few (its window still filling: nodes just switched, an evaluation
            # late under load) is evaluated again, up to the time its window takes to fill, before it counts as
            # no data.
            if any(r.filling for r in out.results) and out.settles < self.settle_evaluations:
                out.settles += 1
                if self.confirm_interval:
                    self.sleep(self.confirm_interval)
                continue
            break
        if out.inconclusive_rules:
            out.verdict = INCONCLUSIVE
            out.reason = 'not enough data to judge: ' + '; '.join(
                '%s: %s' % (r.rule.id, r.reason) for r in out.inconclusive_rules)
        else:
            out.verdict = alert_rules.PASS
            breaching = [r for r in out.results if r.verdict == alert_rules.FAIL]
            out.reason = 'all rules pass' if not breaching else (
                'passed; breaching but never failing this gate: ' + '; '.join(r.describe() for r in breaching))
        return out


def gate_failed(verdict, policy):
    """Whether the task fails: a fail, an outage (fail closed), or inconclusive unless policy pass."""
    return verdict in (alert_rules.FAIL, UNAVAILABLE) or (verdict == INCONCLUSIVE and policy != 'pass')


def gate_result(outcome, scope, ruleset, client, policy):
    """The task result: verdict, every rule's figures, the message, ``failed``."""
    rules = []
    for result in outcome.results:
        item = result.as_dict()
        item['consecutive_failures'] = outcome.streaks.get(result.rule.id, 0)
        rules.append(item)
    verdict = outcome.verdict
    where = scope.describe()
    if verdict == alert_rules.FAIL:
        msg = 'migration gate FAILED for %s: %s' % (where, outcome.reason)
    elif verdict == UNAVAILABLE:
        msg = 'migration gate could not judge %s: %s (no verdict, failing closed)' % (where, outcome.reason)
    elif verdict == INCONCLUSIVE:
        action = {'pause': 'the rollout stops and asks for a pause; resume once the data is there',
                  'fail': 'no verdict: the rollout stops (inconclusive=fail)',
                  'pass': 'let through (inconclusive=pass)'}[policy]
        msg = 'migration gate INCONCLUSIVE for %s (%s): %s' % (where, action, outcome.reason)
    else:
        msg = 'migration gate passed for %s: %s' % (where, outcome.reason)
    return {
        'changed': False,
        'failed': gate_failed(verdict, policy),
        'verdict': verdict,
        'msg': msg,
        'rules': rules,
        'failed_rules': [r.rule.id for r in outcome.tripped],
        'inconclusive_rules': [r.rule.id for r in outcome.inconclusive_rules] if verdict == INCONCLUSIVE else [],
        'scope': dict({'hosts': scope.hosts or 'fleet'}, **(outcome.facts.as_dict() if outcome.facts else {})),
        'evaluations': outcome.history,
        'confirmations': outcome.confirmations,
        'settles': outcome.settles,
        'prometheus': {'url': client.settings.url if client else None, 'queries': client.queries if client else 0},
        'settings': {'rate_window': ruleset.settings['rate_window'],
                     'evaluation_interval': ruleset.settings['evaluation_interval']},
    }


def record_outcome(ledger, outcome, result, policy, source=GATE):
    """Tell the ledger: the verdict event, and the halt or pause the verdict and policy ask for."""
    summary = [{k: r[k] for k in ('id', 'verdict', 'value', 'threshold', 'window', 'hosts')}
               for r in result['rules']]
    ledger.record('gate_verdict', gate=source, verdict=outcome.verdict, scope=result['scope'].get('hosts'),
                  reason=outcome.reason, rules=summary)
    if outcome.verdict == alert_rules.FAIL:
        ledger.halt('gate failed: %s' % outcome.reason, source=source, cause=CAUSE_VERDICT,
                    failed_rules=result['failed_rules'], scope=result['scope'].get('hosts'))
    elif outcome.verdict == UNAVAILABLE:
        ledger.halt('gate could not judge: %s' % outcome.reason, source=source, cause=CAUSE_NO_VERDICT,
                    scope=result['scope'].get('hosts'))
    elif outcome.verdict == INCONCLUSIVE and policy == 'pause':
        ledger.pause('gate inconclusive: %s' % outcome.reason)
    elif outcome.verdict == INCONCLUSIVE and policy == 'fail':
        ledger.halt('gate inconclusive (inconclusive=fail): %s' % outcome.reason, source=source,
                    cause=CAUSE_NO_VERDICT, inconclusive_rules=result['inconclusive_rules'])


def record_analysis_outcome(ledger, verdict, reason, failed, source, hosts, **event):
    """Tell the ledger about a canary analysis: its event (unless Prometheus could not be asked), and a halt
    with cause no_verdict when it could not judge the canaries (unavailable, or inconclusive and failing), so
    that they are frozen where they are, not rolled back while nothing watches (containment())."""
    if verdict != UNAVAILABLE:
        ledger.record('canary_analysis', source=source, verdict=verdict, canary_hosts=hosts, reason=reason, **event)
    if verdict == UNAVAILABLE or (verdict == INCONCLUSIVE and failed):
        what = 'could not judge' if verdict == UNAVAILABLE else 'inconclusive'
        ledger.halt('canary analysis %s: %s' % (what, reason), source=source, cause=CAUSE_NO_VERDICT, scope=hosts)
