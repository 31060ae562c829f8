# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Production readiness: the checklist as an executable preflight, and the gate on production waves.

Each item is judged by a pure function from what was observed (``judge_*``: a unit test reaches every
branch); ``run()`` observes the real stack (Prometheus' rules and targets, Alertmanager, the runbook
links, the fleet's hosts, a ledger backup restored into a scratch database, the fleet's baseline),
applies the operator's waivers and records the result in the ledger as one ``preflight`` event. ``gate()``
decides whether a production wave (rollout.yml, promote.yml) may start: a preflight that passed within
the allowed age, or a waiver with a recorded reason (event ``preflight_waived``). docs/preflight.md is
the operator's page for every item and message.
"""

from __future__ import annotations

import datetime
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import (
    alert_rules,
    redaction,
    validation,
    wave_planning,
)
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alertmanager as am
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alert_rules import promql, rendering
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger import backup as ledger_backup
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.services import announcements, rehearsal

MONITORING, RECIPIENTS, RUNBOOKS, CANARY, BACKUP, THRESHOLDS, ROLLBACK_TESTED, LOAD_TESTED, COMMUNICATION = (
    'monitoring', 'alert_recipients', 'runbooks', 'canary', 'backup', 'thresholds', 'rollback_tested', 'load_tested',
    'communication')
ITEMS = (MONITORING, RECIPIENTS, RUNBOOKS, CANARY, BACKUP, THRESHOLDS, ROLLBACK_TESTED, LOAD_TESTED, COMMUNICATION)
PASS, FAIL, WAIVED = 'pass', 'fail', 'waived'
EVENT, WAIVER_EVENT = 'preflight', 'preflight_waived'
# The receiver each severity pages (the monitoring role's routing, rendering.RECEIVER_BY_SEVERITY).
RECIPIENT_SEVERITIES = ('critical', 'warning')
TEST_ALERT = 'MigrationPreflightTest'
SILENCE_TEST_FOR = 3600.0    # a resolved test alert's silence: longer than any group_interval (and its retries)
# A rehearsal stands for a fleet at most this much larger in hosts (and with no more nodes per host) than the copy's
# shape: a fleet that grew since is rehearsed again.
SHAPE_GROWTH = 0.10
# The baseline's noise ceiling: a threshold at or under the 99th percentile of normal would flap.
NOISE_QUANTILE = 0.99
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUNBOOK_DIR = os.path.join(COLLECTION_ROOT, 'docs', 'runbooks')
_OPENER = urllib.request.build_opener()


class PreflightError(MigrationError):
    """A preflight input is wrong (a waiver for an unknown item, an empty reason)."""


def item(name, problems, evidence, passed, warnings=()):
    """One checklist item's result: pass when nothing is wrong, else fail with every problem named."""
    problems = list(problems)
    message = ('%s: %s' % (name, '; '.join(problems))) if problems else '%s: %s' % (name, passed)
    return {'item': name, 'result': FAIL if problems else PASS, 'message': message, 'problems': problems,
            'warnings': list(warnings), 'evidence': evidence}


# ---------------------------------------------------------------------------------------------- decisions
def expected_rules(ruleset, runbook_base_url=None):
    """{group: {rule name: (severity, threshold, for)}} as the monitoring role renders them."""
    groups = rendering.recording_rule_groups(ruleset)['groups'] + \
        rendering.alerting_rule_groups(ruleset, runbook_base_url)['groups']
    return {g['name']: {r.get('alert') or r.get('record'): _rule_content(r.get('labels'), r.get('annotations'),
                                                                         r.get('for'))
                        for r in g['rules']} for g in groups}


def loaded_rules(groups):
    """The same shape from Prometheus' rules API (``duration`` in seconds)."""
    return {g['name']: {r['name']: _rule_content(r.get('labels'), r.get('annotations'),
                                                 r.get('duration') if r.get('type') == 'alerting' else None)
                        for r in g.get('rules', [])} for g in groups}


def _rule_content(labels, annotations, for_):
    if for_ is None:
        return None
    seconds = alert_rules.parse_duration(for_) if isinstance(for_, str) else float(for_)
    return ((labels or {}).get('severity'), (annotations or {}).get('threshold'), seconds)


def judge_monitoring(expected, loaded, nodes, missing_hosts, targets, max_scrape_age, alertmanager):
    """The collection's rules loaded (same alerts, severities, thresholds, durations), every fleet node an
    up and fresh target, Alertmanager reachable and routing to the collection's receivers."""
    problems = []
    for group, rules in sorted(expected.items()):
        if group not in loaded:
            problems.append('rule group %s is not loaded in Prometheus (playbooks/monitoring.yml installs it)' % group)
            continue
        for name, content in sorted(rules.items()):
            if name not in loaded[group]:
                problems.append('rule %s is missing from group %s in Prometheus' % (name, group))
            elif content != loaded[group][name]:
                problems.append('rule %s differs from the rendered one (Prometheus: severity %s, threshold %s, '
                                'for %gs; rendered: severity %s, threshold %s, for %gs): run playbooks/monitoring.yml'
                                % ((name,) + tuple(loaded[group][name]) + tuple(content)))
    seen = {(t['host'], t['service_name']): t for t in targets}
    for host in sorted(missing_hosts):
        problems.append('host %s did not answer: its nodes could not be matched to scrape targets' % host)
    for node in nodes:
        key = (node['host'], node['service_name'])
        target = seen.get(key)
        if target is None:
            problems.append('node %s/%s is not a scrape target of Prometheus' % key)
        elif not target['up']:
            problems.append('node %s/%s is a scrape target but down (up == 0)' % key)
        elif target['age'] > max_scrape_age:
            problems.append('node %s/%s was last scraped %.0f s ago (allowed %.0f s)'
                            % (key + (target['age'], max_scrape_age)))
    if not alertmanager.get('url'):
        problems.append('no Alertmanager configured: set monitoring_alertmanager_url')
    elif alertmanager.get('error'):
        problems.append(alertmanager['error'])
    else:
        routed = alertmanager.get('routes', [])
        for receiver in sorted(set(rendering.RECEIVER_BY_SEVERITY.values()) - set(routed)):
            problems.append('Alertmanager does not route to receiver %s: it does not run the collection\'s routing '
                            '(playbooks/monitoring.yml writes it)' % receiver)
    evidence = {'rule_groups': sorted(loaded), 'rules': sum(len(r) for r in expected.values()),
                'nodes': len(nodes), 'targets_up': sum(1 for t in targets if t['up']),
                'alertmanager': {k: alertmanager.get(k) for k in ('url', 'version', 'routes')}}
    return item(MONITORING, problems, evidence, '%d rules loaded, %d nodes scraped and fresh, Alertmanager %s routes '
                'to %s' % (evidence['rules'], len(nodes), alertmanager.get('version'),
                           ', '.join(alertmanager.get('routes') or ())))


def judge_recipients(receivers, deliveries):
    """A receiver with an integration for critical pages and one for warnings, and a synthetic alert of
    each severity accepted by every integration of its receiver. ``receivers``: {name: [integration
    types]}; ``deliveries``: {severity: {integration: 'delivered' | 'failed (N attempts)' | 'no attempt'}}."""
    problems, evidence = [], {}
    for severity in RECIPIENT_SEVERITIES:
        receiver = rendering.RECEIVER_BY_SEVERITY[severity]
        integrations = receivers.get(receiver)
        evidence[severity] = {'receiver': receiver, 'integrations': integrations or [],
                              'delivery': deliveries.get(severity, {})}
        if integrations is None:
            problems.append('no receiver %s for %s alerts in Alertmanager' % (receiver, severity))
        elif not integrations:
            problems.append('receiver %s (%s alerts) has no integration: nobody would be told' % (receiver, severity))
        for integration, outcome in sorted(deliveries.get(severity, {}).items()):
            if outcome != 'delivered':
                problems.append('receiver %s (%s) did not accept the test notification through %s: %s'
                                % (receiver, severity, integration, outcome))
    oncall = evidence.get('critical', {}).get('integrations') or []
    return item(RECIPIENTS, problems, evidence, 'on-call for critical alerts: receiver page (%s); warnings: receiver '
                'notify (%s); a test notification reached each' % (', '.join(oncall),
                                                                   ', '.join(evidence['warning']['integrations'])))


def judge_runbooks(links):
    """Every alert's runbook_url resolves. ``links``: {alert: (url, None or what is wrong, how it was checked)}."""
    problems = ['alert %s: runbook %s %s' % (alert, link[0], link[1]) for alert, link in sorted(links.items())
                if link[1]]
    if not links:
        problems.append('no alert with a runbook_url is loaded in Prometheus')
    evidence = {alert: {'url': url, 'checked': how, 'ok': not wrong} for alert, (url, wrong, how) in links.items()}
    return item(RUNBOOKS, problems, evidence, 'the %d alerts\' runbooks resolve' % len(links))


def judge_canary(plan, plan_error, observed, missing_hosts, exclude_hosts, fleet_hosts, verdict):
    """The canary hosts (the group, or the automatic choice) are fleet hosts that answered, whose nodes all
    run, and that are not excluded. A canary that already passed is identified by its verdict."""
    if verdict and verdict.get('verdict') == 'passed':
        return item(CANARY, [], {'verdict': 'passed', 'at': verdict.get('at'), 'hosts': verdict.get('hosts')},
                    'the canary passed at %s' % verdict.get('at'))
    if plan_error:
        return item(CANARY, [plan_error], {}, '')
    problems = []
    for host in plan['hosts']:
        if host not in fleet_hosts:
            problems.append('canary host %s is not in the fleet group' % host)
        elif host in exclude_hosts:
            problems.append('canary host %s is excluded (group migration_exclude)' % host)
        elif host in missing_hosts:
            problems.append('canary host %s is unreachable (transport_info did not answer)' % host)
        else:
            down = [n['service_name'] for n in observed.get(host, []) if n.get('status') not in ('Running', 'Removed')]
            if not observed.get(host):
                problems.append('canary host %s has no node' % host)
            elif down:
                problems.append('canary host %s is not healthy: %s not running' % (host, ', '.join(down)))
    return item(CANARY, problems, {'hosts': plan['hosts'], 'source': plan.get('source')}, plan.get('message', ''))


def judge_backup(result):
    """The backup restored into a scratch database holds what the ledger held when it was taken."""
    if result.get('error'):
        return item(BACKUP, [result['error']], {'backup': result.get('backup')}, '')
    live, restored = result['live'], result['restored']
    problems = ['%s: %d row(s) in the ledger, %d in the restored copy' % (t, n, restored['counts'].get(t, -1))
                for t, n in sorted(live['counts'].items()) if restored['counts'].get(t) != n]
    if live['latest_event'] != restored['latest_event']:
        problems.append('latest event: %s in the ledger, %s in the restored copy'
                        % (live['latest_event'], restored['latest_event']))
    evidence = {'backup': result['backup'], 'backend': result['backend'], 'counts': live['counts'],
                'latest_event': live['latest_event']}
    return item(BACKUP, ['the restored backup differs from the ledger: ' + '; '.join(problems)] if problems else [],
                evidence, 'backup %s restored into a scratch database: %d tables, %d rows and the latest event '
                'match' % (result['backup'], len(live['counts']), sum(live['counts'].values())))


def _shown(rule, value):
    return '%.4g %%' % (value * 100) if rule.unit == 'ratio' else '%.4g%s' % (value, ' s' if rule.unit == 'seconds'
                                                                              else '')


def judge_thresholds(rules, baselines, far_factor, window):
    """Each threshold against the fleet's observed baseline over ``window``: inside the noise (the
    threshold is breached by the baseline's 99th percentile: the alert would flap and the gate halt waves on
    normal behaviour) fails; far beyond it (more than ``far_factor`` times the p99) warns (it would never fire)."""
    problems, warnings, evidence = [], [], {}
    for rule in rules:
        base = baselines.get(rule.id)
        if base is None:
            evidence[rule.id] = {'threshold': rule.threshold, 'baseline': None}
            warnings.append('%s: no baseline over %s (no data for %s yet)' % (rule.id, window, rule.transport))
            continue
        p99 = base['p99']
        evidence[rule.id] = {'threshold': rule.threshold, 'p50': base['p50'], 'p99': p99}
        higher_is_worse = rule.comparison in ('>', '>=')
        if rule.breaches(p99):
            problems.append('%s: threshold %s %s is inside the observed noise (p99 %s, median %s over %s): it would '
                            'flap; raise it above the noise' % (rule.id, rule.comparison, _shown(rule, rule.threshold),
                                                                _shown(rule, p99), _shown(rule, base['p50']), window))
        elif p99 > 0 and (rule.threshold >= far_factor * p99 if higher_is_worse
                          else rule.threshold * far_factor <= p99):
            warnings.append('%s: threshold %s %s is more than %g times the observed p99 (%s over %s): it may never '
                            'fire' % (rule.id, rule.comparison, _shown(rule, rule.threshold), far_factor,
                                      _shown(rule, p99), window))
    return item(THRESHOLDS, problems, evidence, 'every threshold is outside the observed noise over %s%s'
                % (window, ' (%d warning(s))' % len(warnings) if warnings else ''), warnings)


def _shape_problem(data, shape, again):
    """Why a rehearsal of ``data['shape']`` does not stand for a fleet of ``shape`` (None when it does): the fleet
    has grown past SHAPE_GROWTH in hosts, or has more nodes per host, since."""
    rehearsed = data.get('shape') or {}
    if not shape or not rehearsed.get('hosts'):
        return None
    if shape['hosts'] > rehearsed['hosts'] * (1 + SHAPE_GROWTH) or \
            shape['nodes_per_host'] > rehearsed.get('nodes_per_host', 0):
        return ('the last rehearsal was of a fleet of %d hosts x %d nodes; this fleet has %d x %d now: %s'
                % (rehearsed['hosts'], rehearsed.get('nodes_per_host', 0), shape['hosts'], shape['nodes_per_host'],
                   again))
    return None


def judge_rollback_tested(last, now, max_age, max_age_text, shape=None):
    """The newest ``rehearsal`` event (``{at, data}`` or None) passed, is at most ``max_age`` seconds old and was of
    a fleet this one has not outgrown (``shape``: {hosts, nodes_per_host} of the fleet now, or None)."""
    if not last:
        return item(ROLLBACK_TESTED, ['no rehearsal recorded: run ant-network-migration rehearse'], {}, '')
    data, age = last['data'] or {}, _age(last['at'], now)
    evidence = {'at': last['at'], 'age_seconds': round(age), 'passed': bool(data.get('passed'))}
    evidence.update({k: data.get(k) for k in ('measured_seconds', 'projected_seconds', 'sla_seconds', 'shape',
                                              'simulated_hosts', 'method', 'operator') if k in data})
    problems = []
    if not data.get('passed'):
        seconds = data.get('projected_seconds') if data.get('simulated_hosts') and data.get('shape') and \
            data['simulated_hosts'] < data['shape'].get('hosts', 0) else data.get('measured_seconds')
        if seconds is not None and data.get('sla_seconds') is not None and seconds > data['sla_seconds']:
            problems.append('the last rehearsal took %.0f s, over the %.0f s SLA (%s): see '
                            'docs/runbooks/rehearsal-failed.md' % (seconds, data['sla_seconds'], last['at']))
        else:
            problems.append('the last rehearsal failed (%s): %s; see docs/runbooks/rehearsal-failed.md'
                            % (last['at'], data.get('message') or 'no result recorded'))
    if age > max_age:
        problems.append('the last rehearsal is %s old (allowed: %s): run ant-network-migration rehearse'
                        % (_duration(age), max_age_text))
    grown = _shape_problem(data, shape, 'run ant-network-migration rehearse')
    if grown:
        problems.append(grown)
    return item(ROLLBACK_TESTED, problems, evidence, 'the fast rollback rehearsed %s ago: %s'
                % (_duration(age), data.get('message', '')))


def judge_load_tested(last, now, max_age, max_age_text, shape=None):
    """The newest rehearsal run under load (``{at, data}`` or None) kept the SLA and the load's limits (the
    clients' reads, every node scraped again: rehearsal.load_verdict), is at most ``max_age`` seconds old and was
    of a fleet this one has not outgrown (``shape``, as for rollback_tested)."""
    again = 'run ant-network-migration rehearse --under-load'
    if not last:
        return item(LOAD_TESTED, ['no rehearsal under load recorded: %s' % again], {}, '')
    data, age = last['data'] or {}, _age(last['at'], now)
    load = data.get('load') or {}
    evidence = {'at': last['at'], 'age_seconds': round(age), 'passed': bool(data.get('passed') and load.get('passed'))}
    evidence.update({k: data.get(k) for k in ('measured_seconds', 'projected_seconds', 'sla_seconds', 'shape',
                                              'simulated_hosts', 'operator') if k in data})
    evidence['load'] = {k: load.get(k) for k in ('scrape_interval', 'client_read_rate', 'reads_total', 'reads_failed',
                                                 'targets', 'targets_up_after', 'max_read_loss', 'load_average')}
    problems = []
    if not data.get('passed'):
        problems.append('the last rehearsal under load (%s) failed: %s; see docs/runbooks/rehearsal-failed.md'
                        % (last['at'], data.get('message') or 'no result recorded'))
    if data.get('passed') and not load.get('passed'):
        problems.append('the last rehearsal under load (%s) failed %s; see docs/runbooks/rehearsal-failed.md'
                        % (last['at'], load.get('message') or 'under load: no result recorded'))
    if age > max_age:
        problems.append('the last rehearsal under load is %s old (allowed: %s): %s' % (_duration(age), max_age_text,
                                                                                       again))
    grown = _shape_problem(data, shape, again)
    if grown:
        problems.append(grown)
    return item(LOAD_TESTED, problems, evidence, 'the fast rollback rehearsed under load %s ago: %s; %s'
                % (_duration(age), data.get('message', ''), load.get('message', '')))


def judge_communication(settings, manager, receivers, delivery):
    """Announcements are on (the migration_tracker callback enabled, ``announce`` and its ``alertmanager_url``
    set: controller settings), that Alertmanager routes them to the ``announce`` receiver, which has an
    integration, and a test announcement was accepted by each integration. ``settings``: {tracker_enabled,
    announce, alertmanager_url (shown redacted)}; ``manager``: observe_alertmanager's first value; ``receivers``:
    {name: [integration types]}; ``delivery``: {integration: outcome} (empty: not sent)."""
    problems, receiver = [], rendering.ANNOUNCE_RECEIVER
    if not settings.get('tracker_enabled'):
        problems.append('the migration_tracker callback is not enabled (callbacks_enabled in ansible.cfg): no '
                        'migration event would be announced')
    if not settings.get('announce'):
        problems.append('announcements are off: set announce = true under [autonomi_network_migration] in '
                        'ansible.cfg (or ANT_MIGRATION_ANNOUNCE=true) on the controller that runs the waves')
    if not settings.get('alertmanager_url'):
        problems.append('announcements have no Alertmanager: set alertmanager_url under [autonomi_network_migration] '
                        'in ansible.cfg (or ANT_MIGRATION_ALERTMANAGER_URL)')
    elif manager.get('error'):
        problems.append('the announcements\' %s' % manager['error'])
    else:
        integrations = receivers.get(receiver)
        if receiver not in (manager.get('routes') or []):
            problems.append("Alertmanager does not route %s to receiver %s: it does not run the collection's routing "
                            '(playbooks/monitoring.yml writes it)' % (announcements.ALERTNAME, receiver))
        if integrations is None:
            problems.append('no receiver %s in Alertmanager (playbooks/monitoring.yml writes it)' % receiver)
        elif not integrations:
            problems.append('receiver %s has no integration: announcements would reach nobody (set '
                            'monitoring_alertmanager_receivers.announce and run playbooks/monitoring.yml)' % receiver)
        for integration, outcome in sorted(delivery.items()):
            if outcome != 'delivered':
                problems.append('receiver %s did not accept the test announcement through %s: %s'
                                % (receiver, integration, outcome))
    url = settings.get('alertmanager_url')
    evidence = {'announce': bool(settings.get('announce')), 'tracker_enabled': bool(settings.get('tracker_enabled')),
                'alertmanager_url': redaction.redact_text(url) if url else None, 'receiver': receiver,
                'integrations': receivers.get(receiver) or [], 'delivery': delivery}
    return item(COMMUNICATION, problems, evidence, 'migration events are announced through receiver %s (%s); a test '
                'announcement reached it' % (receiver, ', '.join(evidence['integrations'])))


def parse_waivers(waivers, operator):
    """{item: {reason, operator}} from ``{item: reason}`` or ``{item: {reason, operator}}``; refuses unknown
    items and empty reasons (a waiver is a recorded decision, not a switch)."""
    out = {}
    for name, given in (waivers or {}).items():
        if name not in ITEMS:
            raise PreflightError('waiver for unknown item %r; items: %s' % (name, ', '.join(ITEMS)))
        reason, who = (given.get('reason'), given.get('operator') or operator) if isinstance(given, dict) \
            else (given, operator)
        try:
            reason = validation.text(reason, 'preflight_waivers.%s' % name, required=True)
        except validation.InputError as exc:
            raise PreflightError(str(exc)) from None
        if not str(reason).strip():
            raise PreflightError('preflight_waivers.%s needs a reason (who decided, and why the item may be '
                                 'skipped)' % name)
        out[name] = {'reason': reason, 'operator': validation.safe_name(who)}
    return out


def apply_waivers(items, waivers):
    """A failed item that has a waiver becomes ``waived`` (its problems and the waiver kept)."""
    out = []
    for entry in items:
        waiver = waivers.get(entry['item'])
        if waiver:
            entry = dict(entry, waiver=waiver)
            if entry['result'] == FAIL:
                entry.update(result=WAIVED, message='%s: waived by %s (%s); found: %s' % (
                    entry['item'], waiver['operator'], waiver['reason'], '; '.join(entry['problems'])))
        out.append(entry)
    return out


def summarise(items):
    failed = [i['item'] for i in items if i['result'] == FAIL]
    waived = [i['item'] for i in items if i['result'] == WAIVED]
    result = 'failed' if failed else 'passed'
    msg = 'preflight %s: %d item(s) passed%s%s' % (
        result, sum(1 for i in items if i['result'] == PASS),
        ', waived: %s' % ', '.join(waived) if waived else '', '; failed: %s' % ', '.join(failed) if failed else '')
    return {'result': result, 'failed_items': failed, 'waived_items': waived, 'msg': msg}


def _age(at, now):
    return now - datetime.datetime.fromisoformat(at).timestamp()


def gate_decision(latest, now, max_age, max_age_text, waiver=None):
    """May a production wave start: ``latest`` is the newest preflight event ({at, data}) or None."""
    if latest:
        data, age = latest['data'], _age(latest['at'], now)
        if data.get('result') == 'passed' and age <= max_age:
            return {'allowed': True, 'waived': False, 'msg': 'preflight passed %s ago (at %s; allowed age %s)'
                    % (_duration(age), latest['at'], max_age_text)}
        why = ('the last preflight (at %s, %s ago) failed: %s' % (
            latest['at'], _duration(age), '; '.join(i['message'] for i in data.get('items', []) if i['result'] == FAIL))
            if data.get('result') != 'passed' else
            'the last preflight passed at %s, %s ago: older than the allowed %s'
            % (latest['at'], _duration(age), max_age_text))
    else:
        why = 'no preflight was recorded in this ledger'
    if waiver:
        return {'allowed': True, 'waived': True, 'msg': 'preflight waived by %s: %s (%s)'
                % (waiver['operator'], waiver['reason'], why)}
    return {'allowed': False, 'waived': False, 'failed_items': (latest or {}).get('data', {}).get('failed_items', []),
            'msg': '%s. A production wave needs a preflight that passed within %s: run playbooks/preflight.yml '
                   '(ant-network-migration preflight), or waive it with a recorded reason: '
                   '-e \'{"preflight_waiver": "why"}\'' % (why, max_age_text)}


def _duration(seconds):
    """``2h 5m``, ``3m 20s``, ``45s``: an age as an operator reads it."""
    rest = max(0, int(seconds))
    parts = []
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60), ('s', 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append('%d%s' % (count, unit))
    return ' '.join(parts[:2]) or '0s'


# ---------------------------------------------------------------------------------------------- observations
def observe_targets(client, job):
    """[{host, service_name, up, age}] of the node job's targets (age: seconds since the last scrape)."""
    up = client.query('up{job=%s}' % promql.quote(job))
    ages = {(s['metric'].get('host'), s['metric'].get('service_name')): s['value']
            for s in client.query('time() - timestamp(up{job=%s})' % promql.quote(job))}
    return [{'host': s['metric'].get('host'), 'service_name': s['metric'].get('service_name'), 'up': s['value'] == 1,
             'age': ages.get((s['metric'].get('host'), s['metric'].get('service_name')), float('inf'))} for s in up]


def observe_alertmanager(url):
    if not url:
        return {'url': None}, {}
    try:
        status = am.Alertmanager(url).status()
    except (am.AlertmanagerUnavailable, ValueError) as exc:
        return {'url': url, 'error': 'Alertmanager: %s' % exc}, {}
    return ({'url': url, 'version': status['version'], 'routes': am.route_receivers(status['config'])},
            am.receivers_of(status['config']))


def _watch_delivery(client, types, timeout, before, sleep, clock, patient=()):
    """{integration type: 'delivered' | 'failed (...)' | 'no attempt within N s'} of the notification requests
    Alertmanager made of ``types`` since ``before`` (its counters then), polled until each succeeded, failed twice
    (a refusal is judged after Alertmanager's first retry failed too) or ``timeout``. A type in ``patient`` failed
    in an earlier window: Alertmanager may still be retrying that receiver, so its failures here say nothing of
    this one and only a success or the timeout ends the watch."""
    deadline, outcome, failures = clock() + timeout, {}, {}
    while True:
        now = client.notification_requests()
        for kind in types:
            sent = now.get(kind, (0, 0))[0] - before.get(kind, (0, 0))[0]
            bad = now.get(kind, (0, 0))[1] - before.get(kind, (0, 0))[1]
            outcome[kind] = ('delivered' if sent > bad else
                             'failed (%d request(s) refused or unanswered)' % bad if bad else
                             'no attempt within %.0f s' % timeout)
            failures[kind] = bad
        if all(v == 'delivered' or (failures[k] >= 2 and k not in patient) for k, v in outcome.items()) \
                or clock() >= deadline:
            return outcome
        sleep(1.0)


def _retire(client, labels, identity, annotations):
    """Resolve a test alert without a resolved notification: silenced first by its own labels (``identity``, the
    keys unique to this alert) for SILENCE_TEST_FOR seconds. Alertmanager before 0.27 counts requests per
    integration type: the resolved notification of one test (sent a group_interval later) would otherwise be
    counted as a delivery in the next test's window, or the next preflight's, and hide a receiver that is down.
    A refused silence only costs that notification."""
    try:
        client.silence({k: labels[k] for k in identity}, SILENCE_TEST_FOR,
                       'the migration preflight\'s test %s %s, resolved: no resolved notification'
                       % (labels['alertname'], labels[identity[-1]]), created_by='ant-network-migration preflight')
    except am.AlertmanagerUnavailable:
        pass
    client.post_alert(labels, annotations, ends_in=0)


def deliver_test_alerts(url, receivers, timeout, sleep=time.sleep, clock=time.monotonic, failed_types=None):
    """Send a synthetic alert per severity, one at a time, and watch Alertmanager's notification requests of
    the receiver's integration types: accepted by the receiver, failed, or no attempt before ``timeout``.

    Alertmanager before 0.27 counts requests per integration type, not per receiver: the alerts go one at a
    time (warning first), are resolved only at the end, and a receiver passes when a request of its type
    succeeded in its window (another receiver's retries of the same type do not hide it). A real notification
    of the same type in that window could be taken for the test's: docs/preflight.md says so. ``failed_types``
    (a set) collects the types whose requests failed, for the next watch to be patient with them."""
    client, out, sent_alerts = am.Alertmanager(url), {}, []
    failed_types = set() if failed_types is None else failed_types
    try:
        for severity in reversed(RECIPIENT_SEVERITIES):
            types = receivers.get(rendering.RECEIVER_BY_SEVERITY[severity]) or []
            if not types:
                continue
            before = client.notification_requests()
            # A transport of its own: the routing's "a critical silences the warnings of its transport" must not
            # silence the warning test by the critical one (or a real critical alert).
            labels = {'alertname': TEST_ALERT, 'severity': severity, 'transport': 'preflight-' + severity,
                      'scope': 'preflight', 'preflight': uuid.uuid4().hex[:12]}
            client.post_alert(labels, {'summary': 'Synthetic test notification from the migration preflight: no '
                                                  'action needed', 'runbook_url': 'docs/preflight.md'})
            sent_alerts.append(labels)
            out[severity] = _watch_delivery(client, types, timeout, before, sleep, clock, patient=set(failed_types))
            failed_types.update(k for k, v in out[severity].items() if v.startswith('failed'))
    finally:
        for labels in sent_alerts:
            _retire(client, labels, ('alertname', 'preflight'), {'summary': 'resolved'})
    return out


def deliver_test_announcement(url, types, timeout, sleep=time.sleep, clock=time.monotonic, patient=()):
    """One test announcement, the alert the callback sends (announcements.alert), watched like the test alerts:
    {integration type: outcome} of the announce receiver's ``types`` (``patient``: as _watch_delivery)."""
    if not types:
        return {}
    client = am.Alertmanager(url)
    before = client.notification_requests()
    labels, annotations = announcements.alert({
        'kind': 'preflight_test', 'run_id': 'preflight', 'event_id': 'preflight-' + uuid.uuid4().hex[:12],
        'summary': 'Test announcement from the migration preflight: the migration\'s events will be announced here',
        'next': 'nothing to do', 'at': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')})
    client.post_alert(labels, annotations)
    try:
        return _watch_delivery(client, types, timeout, before, sleep, clock, patient=patient)
    finally:
        _retire(client, labels, ('alertname', 'event_id'), annotations)


def check_link(url, timeout=10.0):
    """(None, how) when ``url`` resolves, else (what is wrong, how): a file, the collection's own copy of its
    runbooks (offline: RUNBOOK_BASE_URL), or HTTP 200."""
    base = rendering.RUNBOOK_BASE_URL.rstrip('/') + '/'
    if url.startswith(base):
        path = os.path.join(RUNBOOK_DIR, urllib.parse.unquote(url[len(base):]))
        return (None if os.path.isfile(path) else 'is missing from the collection (%s)' % path), 'collection file'
    if url.startswith('file://') or url.startswith('/'):
        path = urllib.parse.unquote(urllib.parse.urlparse(url).path) if url.startswith('file://') else url
        return (None if os.path.isfile(path) else 'is not a file (%s)' % path), 'file'
    try:
        with _OPENER.open(urllib.request.Request(url, method='GET'), timeout=timeout) as resp:
            return (None if resp.status == 200 else 'answered HTTP %d' % resp.status), 'HTTP'
    except urllib.error.HTTPError as exc:
        return 'answered HTTP %d' % exc.code, 'HTTP'
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 'is unreachable (%s)' % redaction.redact_text(getattr(exc, 'reason', exc)), 'HTTP'


def observe_baselines(client, ruleset, window):
    """{rule id: {p50, p99} or None} of each enabled rule's fleet-wide figure over ``window``."""
    out = {}
    for rule in ruleset.select():
        expr = '(%s)[%s:%s]' % (promql.rule_promql(rule, ruleset), window, ruleset.step)
        p50 = client.query('quantile_over_time(0.5, %s)' % expr)
        p99 = client.query('quantile_over_time(%s, %s)' % (NOISE_QUANTILE, expr))
        out[rule.id] = {'p50': p50[0]['value'], 'p99': p99[0]['value']} if p50 and p99 else None
    return out


# ---------------------------------------------------------------------------------------------- use cases
def run(ledger, request, client, nodes_view, operator, run_id=None, corrupt_backup=None):
    """Every item observed and judged, waivers applied, the result recorded as one ``preflight`` event.

    ``request``: PreflightRequest-like mapping (see the action plugin). ``nodes_view``: (observed {host:
    [nodes]}, fleet nodes, hosts that did not answer). Returns the Ansible-shaped result."""
    waivers = parse_waivers(request['waivers'], operator)
    ruleset = request['ruleset']
    observed, nodes, missing = nodes_view
    items = []

    def guarded(name, judge):
        try:
            return judge()
        except MigrationError as exc:
            return item(name, ['could not be checked: %s' % redaction.redact_text(exc)], {}, '')

    def monitoring():
        loaded = loaded_rules(client.rules())
        targets = observe_targets(client, ruleset.job)
        manager = observe_alertmanager(request['alertmanager_url'])[0]
        return judge_monitoring(expected_rules(ruleset, request['runbook_base_url']), loaded, nodes, missing, targets,
                                request['scrape_max_age'], manager)

    failed_types = set()    # integration types a test delivery failed on: their retries may still go on

    def recipients():
        manager, receivers = observe_alertmanager(request['alertmanager_url'])
        if not manager.get('url') or manager.get('error'):
            return item(RECIPIENTS, [manager.get('error') or 'no Alertmanager configured: set '
                                     'monitoring_alertmanager_url'], {}, '')
        deliveries = deliver_test_alerts(manager['url'], receivers, request['delivery_timeout'],
                                         failed_types=failed_types)
        return judge_recipients(receivers, deliveries)

    def runbooks():
        links = {}
        for group in client.rules():
            for rule in group.get('rules', []):
                url = (rule.get('annotations') or {}).get('runbook_url')
                if rule.get('type') == 'alerting' and url:
                    wrong, how = check_link(url)
                    links[rule['name']] = (url, wrong, how)
        return judge_runbooks(links)

    def canary():
        plan, error = None, None
        try:
            plan = wave_planning.plan_canary(nodes, request['canary_count'], exclude_hosts=request['exclude_hosts'],
                                             group=request['canary_group'], group_hosts=request['canary_group_hosts'])
        except wave_planning.PlanError as exc:
            error = str(exc)
        return judge_canary(plan, error, observed, missing, request['exclude_hosts'], request['fleet_hosts'],
                            ledger.canary_verdict())

    def backup():
        return judge_backup(ledger_backup.take_and_restore(request['ledger_location'], request['backup_dir'],
                                                           corrupt=corrupt_backup))

    def thresholds():
        return judge_thresholds(ruleset.select(), observe_baselines(client, ruleset, request['baseline_window']),
                                request['far_factor'], request['baseline_window'])

    def fleet_shape():
        try:
            return rehearsal.fleet_shape(nodes)
        except rehearsal.RehearsalError:
            return None     # no node read: nothing to compare (monitoring and canary say why)

    def rollback_tested():
        return judge_rollback_tested(rehearsal.latest(ledger), time.time(), request['rehearsal_max_age'],
                                     _duration(request['rehearsal_max_age']), shape=fleet_shape())

    def load_tested():
        return judge_load_tested(rehearsal.latest(ledger, under_load=True), time.time(), request['load_test_max_age'],
                                 _duration(request['load_test_max_age']), shape=fleet_shape())

    def communication():
        settings = request['announce_settings']
        url = settings.get('alertmanager_url')
        manager, receivers = observe_alertmanager(url) if url else ({'url': None}, {})
        delivery = {}
        if settings.get('announce') and url and not manager.get('error'):
            delivery = deliver_test_announcement(url, receivers.get(rendering.ANNOUNCE_RECEIVER) or [],
                                                 request['delivery_timeout'], patient=failed_types)
        return judge_communication(settings, manager, receivers, delivery)

    checks = {MONITORING: monitoring, RECIPIENTS: recipients, RUNBOOKS: runbooks, CANARY: canary, BACKUP: backup,
              THRESHOLDS: thresholds, ROLLBACK_TESTED: rollback_tested, LOAD_TESTED: load_tested,
              COMMUNICATION: communication}
    for name in ITEMS:
        items.append(guarded(name, checks[name]))
    items = apply_waivers(items, waivers)
    summary = summarise(items)
    data = dict(summary, items=items, operator=operator)
    data.pop('msg')
    ledger.record_event(EVENT, run_id=run_id, **data)
    details = '\n'.join('  [%s] %s' % (i['result'], i['message']) for i in items)
    warnings = [w for i in items for w in i['warnings']]
    return dict(summary, changed=True, failed=summary['result'] != 'passed', items=items, warnings_found=warnings,
                msg='%s\n%s' % (summary['msg'], details))


def latest(ledger):
    """The newest recorded preflight (``{at, data}``) or None."""
    events = ledger.events(kinds=EVENT, limit=1)
    return events[0] if events else None


def gate(ledger, max_age, waiver_reason, operator, run_id=None, now=None, record=True):
    """May this production wave start; a waiver used is recorded (``preflight_waived``) with its reason
    (not with ``record=False``: check mode)."""
    seconds = validation.seconds(max_age, 'preflight_max_age')
    waiver = None
    if waiver_reason not in (None, ''):
        waiver = {'reason': validation.text(waiver_reason, 'preflight_waiver', required=True),
                  'operator': validation.safe_name(operator)}
    decision = gate_decision(latest(ledger), time.time() if now is None else now, seconds, _duration(seconds), waiver)
    if decision['waived'] and record:
        ledger.record_event(WAIVER_EVENT, run_id=run_id, reason=waiver['reason'], operator=waiver['operator'],
                            why=decision['msg'])
    # A recorded waiver is the run's audit record, like a gate verdict: nothing of the fleet changed (a re-run of
    # the same wave stays idempotent), so not ``changed``; ``recorded`` says it was written.
    return dict(decision, changed=False, recorded=bool(decision['waived'] and record), failed=not decision['allowed'],
                refused=None if decision['allowed'] else 'preflight')


def status(ledger, now=None):
    """The newest preflight or waiver for status and the dashboard: {kind, result, at, age_seconds, ...}."""
    events = ledger.events(kinds=[EVENT, WAIVER_EVENT], limit=1)
    if not events:
        return None
    event, now = events[0], time.time() if now is None else now
    data = event['data'] or {}
    out = {'at': event['at'], 'age_seconds': round(_age(event['at'], now)), 'run_id': event['run_id']}
    if event['kind'] == WAIVER_EVENT:
        return dict(out, result='waived', reason=data.get('reason'), operator=data.get('operator'))
    return dict(out, result=data.get('result'), failed_items=data.get('failed_items', []),
                waived_items=data.get('waived_items', []), operator=data.get('operator'))


def describe(state):
    """One line for status: ``preflight: passed 2h 5m ago (waived: thresholds)`` / ``waived by alice ...``."""
    if not state:
        return 'preflight: none recorded (a production wave needs one: playbooks/preflight.yml)'
    age = _duration(state['age_seconds'])
    if state['result'] == 'waived':
        return 'preflight: waived by %s %s ago: %s' % (state.get('operator'), age, state.get('reason'))
    return 'preflight: %s %s ago%s%s' % (
        state['result'], age, ' (failed: %s)' % ', '.join(state['failed_items']) if state.get('failed_items') else '',
        ' (waived: %s)' % ', '.join(state['waived_items']) if state.get('waived_items') else '')
