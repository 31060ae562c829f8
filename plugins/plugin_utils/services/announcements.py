# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The communication plan: announcements of the migration's events, through Alertmanager's receivers.

The ledger's event log already says what happened (run_started, run_ended with its outcome, halt, pause,
resume, rollback, gate_verdict, canary_verdict). ``announcement()`` turns one such event into what an
operator's channel reads: the announcement's kind, what happened and what comes next, every text through
the one redaction. ``Announcer`` sends each event once, as one Alertmanager alert ``MigrationAnnouncement``
(severity info, its own ``event_id`` label so it is its own notification); the monitoring role routes that
alert to the ``announce`` receiver (plugin_utils/alert_rules/rendering.py). Sending is opt-in (the
migration_tracker callback's ``announce`` option) and never fails or slows a run: a short timeout, and after
the first failure one warning, one ``announcement_failed`` event, and nothing more is tried in that run.
"""

from __future__ import annotations

import os

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, redaction, run_kinds
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.alertmanager import (
    Alertmanager,
    AlertmanagerUnavailable,
)

ALERTNAME = alert_rules.ANNOUNCEMENT_ALERT   # routed to the announce receiver (alert_rules/rendering.py)
SEVERITY = 'info'
# The ledger's events that are announced; every other kind (observations, locks, ...) is not news for a channel.
EVENT_KINDS = ('run_started', 'run_ended', 'halt', 'pause', 'resume', 'rollback', 'gate_verdict', 'canary_verdict')
# The run kinds whose start and end are announced: those that change nodes (a status or a pause run is no news;
# the pause itself is).
ANNOUNCED_RUNS = run_kinds.MIGRATION_KINDS
WAVE_RUNS = (run_kinds.ROLLOUT, run_kinds.PROMOTE, run_kinds.FINALIZE)
# Seconds an announcement stays active in Alertmanager: long enough for any group_wait, short enough that it
# is gone from its UI soon after (the receiver's resolved notification is off by default).
ACTIVE_FOR = 300.0
DEFAULT_TIMEOUT = 3.0
FAILED_EVENT = 'announcement_failed'

RESUME_HINT = "acknowledge it with 'ant-network-migration resume --ack' (playbooks/resume.yml -e ack=true)"


def _run_label(context):
    run_id, kind, wave = context.get('run_id'), context.get('kind'), context.get('wave')
    if kind in WAVE_RUNS and wave not in (None, '', 'canary'):
        name = f'{kind} wave to {wave} %'
    else:
        name = f'{kind} run' if kind and kind != run_kinds.OTHER else 'run'
    return f'{name} (run {run_id})' if run_id is not None else name


def _hosts(value):
    if isinstance(value, list):
        return f"{len(value)} host(s): {', '.join(str(v) for v in value[:10])}" + (' ...' if len(value) > 10 else '')
    return str(value or 'the fleet')


def _run_started(data, context):
    kind = data.get('kind') or context.get('kind')
    what = (f"{_run_label(dict(context, kind=kind))} started by {data.get('operator') or 'unknown'} "
            f"({os.path.basename(str(data.get('playbook') or '?'))})")
    if kind == run_kinds.CANARY:
        return 'canary_started', what, ('the canary hosts switch to dual_stack, soak and are judged by the gate; '
                                        'the canary verdict is announced next')
    if kind in WAVE_RUNS:
        return 'wave_started', what, ('batches switch one after another, each judged by the gate after its soak; '
                                      "'wave passed' or a halt is announced next")
    if kind in run_kinds.ROLLBACK_KINDS:
        return 'rollback_started', what, 'nodes go back to libp2p_only; the rollback\'s outcome is announced next'
    return 'run_started', what, 'its end and outcome are announced next'


def _run_ended(data, context):
    outcome = data.get('outcome') or 'unknown'
    kind = context.get('kind')
    label = _run_label(context)
    if outcome == 'ok' and kind in WAVE_RUNS:
        return 'wave_passed', f'{label} passed: every batch was judged healthy', (
            "nothing moves until an operator starts the next wave (or the promotion): check "
            "'ant-network-migration status' first")
    if outcome == 'ok':
        nxt = {run_kinds.CANARY: 'the canary verdict decides whether the first wave may start '
                                 '(playbooks/rollout.yml)',
               run_kinds.ROLLBACK: 'the nodes run libp2p_only again; find the cause before the migration '
                                   'goes on'}.get(kind, 'nothing more happens in this run')
        return 'completion', f'{label} completed', nxt
    if outcome == 'halted':
        return 'run_halted', f'{label} ended HALTED', (
            f'nothing moves until the halt is acknowledged: once its cause is understood, {RESUME_HINT}')
    return 'run_ended', f'{label} ended with outcome {outcome}', (
        "read the run's output and 'ant-network-migration status'; the ledger keeps what changed")


def _halt(data, context):
    return 'halt', (f"migration HALTED by {data.get('source') or '?'} in {_run_label(context)}: "
                    f"{data.get('reason') or 'no reason given'}"), (
        'no batch or wave starts; the rollback policy rolls the batch back or freezes it (announced as a rollback); '
        f'once the cause is understood, {RESUME_HINT}')


def _pause(data, context):
    return 'pause', f"migration paused by {data.get('operator') or '?'}: {data.get('reason') or 'no reason given'}", (
        "a running wave stops before its next batch and no wave starts until 'ant-network-migration resume' "
        '(playbooks/resume.yml)')


def _resume(data, context):
    cleared = ', '.join(data.get('cleared') or []) or 'nothing'
    return 'resume', (f"migration resumed by {data.get('operator') or '?'} (cleared: {cleared})"
                      + (f": {data['reason']}" if data.get('reason') else '')), (
        'waves may run again; the next one starts when an operator runs it')


def _rollback(data, context):
    strategy, outcome, reason = data.get('strategy') or '?', data.get('outcome'), data.get('reason')
    why = f': {reason}' if reason else ''
    if outcome is None:
        # What a halt did to the wave's batch (services/wave.py): rolled back at once, or frozen where it is.
        hosts = _hosts(data.get('hosts'))
        if strategy == 'freeze':
            return 'rollback', f'halt contained by freezing the batch ({hosts} left where they are){why}', (
                f'the frozen nodes keep running; an operator decides: {RESUME_HINT}, or roll back '
                '(playbooks/rollback.yml)')
        return 'rollback', f'halt contained by rolling the batch back ({strategy}: {hosts}){why}', (
            f'the migration stays halted: once the cause is understood, {RESUME_HINT}')
    what = (f"rollback ({strategy}, trigger {data.get('trigger') or '?'}) {outcome}: "
            f"{len(data.get('rolled_back_hosts') or [])} host(s) rolled back"
            + (f" in {data['seconds']} s" if data.get('seconds') is not None else ''))
    if data.get('failed_hosts'):
        what += f"; FAILED on {_hosts(data['failed_hosts'])}"
    if outcome == 'succeeded':
        nxt = 'the nodes run libp2p_only again; the migration goes on only after a new canary passes'
    else:
        nxt = ("some nodes are not back: see docs/runbooks/node-not-ready-after-switch.md and "
               "check 'ant-network-migration status'")
    return 'rollback', what + why, nxt


def _gate_verdict(data, context):
    verdict = data.get('verdict') or '?'
    where = _hosts(data.get('scope'))
    if verdict == 'pass' and context.get('kind') == run_kinds.CANARY:
        return 'gate_passed', f'gate passed in {_run_label(context)} for {where}', (
            'the canary soaks on or is concluded; its verdict is announced next')
    if verdict == 'pass':
        return 'batch_passed', f'gate passed in {_run_label(context)} for {where}', (
            'the next batch switches, or the wave ends and is announced as passed')
    what = f'gate {verdict} in {_run_label(context)} for {where}'
    what += f": {data['reason']}" if data.get('reason') else ''
    return f'gate_{verdict}', what, 'the migration halts or pauses as the gate policy says (announced next)'


def _canary_verdict(data, context):
    verdict = data.get('verdict') or '?'
    what = f"canary verdict {verdict} on {_hosts(data.get('hosts'))}" + (
        f": {data['reason']}" if data.get('reason') else '')
    nxt = {'passed': 'the first wave may start when an operator runs it (preflight, then playbooks/rollout.yml)',
           'failed': 'no wave may start; the canary is rolled back per its policy; find the cause, then run the '
                     'canary again',
           'frozen': 'no wave may start; the canary nodes are left where they are for an operator to decide',
           'invalidated': 'no wave may start until a new canary passes'}.get(
        verdict, 'no wave may start until a canary passes')
    return 'canary_verdict', what, nxt


_MESSAGES = {'run_started': _run_started, 'run_ended': _run_ended, 'halt': _halt, 'pause': _pause,
             'resume': _resume, 'rollback': _rollback, 'gate_verdict': _gate_verdict,
             'canary_verdict': _canary_verdict}


def announcement(event, context, secrets=()):
    """The announcement of one ledger event ({id, kind, at, run_id, data}) or None when it is not news.

    ``context``: {run_id, kind, wave} of the run announcing it. Returns {kind, summary, next, event_id, run_id, at},
    every text redacted (plugin_utils/redaction.py, plus ``secrets``: known values such as the ledger's password).
    """
    data = event.get('data') or {}
    kind = event.get('kind')
    if kind not in _MESSAGES:
        return None
    if kind in ('run_started', 'run_ended') and (data.get('kind') or context.get('kind')) not in ANNOUNCED_RUNS:
        return None
    if kind == 'halt' and data.get('already_halted'):
        return None   # a later cause of a halt already announced: the ledger keeps it, the channel has the news
    context = dict(context, run_id=event.get('run_id') if event.get('run_id') is not None else context.get('run_id'))
    which, summary, nxt = _MESSAGES[kind](data, context)
    return {'kind': which, 'summary': redaction.redact_text(summary, secrets),
            'next': redaction.redact_text(nxt, secrets), 'event_id': event.get('id'), 'run_id': event.get('run_id'),
            'at': event.get('at')}


def alert(item):
    """The Alertmanager alert (labels, annotations) of an announcement."""
    labels = {'alertname': ALERTNAME, 'severity': SEVERITY, 'announcement': item['kind'],
              'run_id': str(item['run_id'] if item['run_id'] is not None else ''), 'event_id': str(item['event_id'])}
    annotations = {'summary': item['summary'], 'next': item['next'],
                   'description': f"{item['summary']}. Next: {item['next']}", 'at': str(item.get('at') or '')}
    return labels, annotations


class Announcer:
    """Sends a run's not yet announced ledger events, each once; never raises.

    ``client``: an object with ``post_alert(labels, annotations, ends_in)`` (default: Alertmanager at ``url``).
    ``warn(msg)`` reports the first failure; ``record(error, kinds)`` records it (the tracker writes the event).
    """

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, warn=None, record=None, secrets=(), client=None):
        self.url = url
        self.client = client or Alertmanager(url, timeout=timeout)
        self._warn = warn or (lambda msg: None)
        self._record = record or (lambda error, kinds: None)
        self.secrets = list(secrets)
        self.sent = []        # the announcements sent, in order
        self.seen = set()     # event ids handled (sent, not news, or given up)
        self.failed = None    # the first failure's redacted message; nothing is tried after it

    def announce(self, events, context):
        """Announce ``events`` (ledger events, any order) not handled yet, oldest first."""
        pending = sorted((e for e in events if e.get('id') not in self.seen), key=lambda e: e['id'])
        for event in pending:
            self.seen.add(event['id'])
            if self.failed is not None:
                continue
            item = announcement(event, context, self.secrets)
            if item is None:
                continue
            labels, annotations = alert(item)
            try:
                self.client.post_alert(labels, annotations, ends_in=ACTIVE_FOR)
            except (AlertmanagerUnavailable, OSError, ValueError) as exc:
                self.failed = redaction.redact_text(exc, self.secrets)
                self._warn(f'migration_tracker: announcement not sent ({item["kind"]}): {self.failed}; no further '
                           'announcement is sent by this playbook, the run goes on')
                self._record(self.failed, [item['kind']])
                continue
            self.sent.append(item)
