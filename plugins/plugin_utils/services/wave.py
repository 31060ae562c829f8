# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Use cases of a wave's end: what was done with its nodes after a halt (containment), how the run ends."""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import gate

HALTED, PAUSED, COMPLETED, FROZEN = 'halted', 'paused', 'completed', 'frozen'


def record_containment(ledger, policy, hosts, run_id=None, operator=None):
    """Record what a halt did to the wave's nodes: rolled back (``fast``) or left where they are (``freeze``),
    as gate.containment() decides for the halt and ``policy``.

    Nothing is recorded when the migration is not halted (a pause freezes without an event of its own).
    """
    flags = ledger.get_flags()
    halted = flags.get(HALTED)
    if not halted:
        return {'changed': False, 'recorded': False}
    containment = gate.containment(halted, policy, pause_flag=flags.get(PAUSED))
    ledger.record_event('rollback', run_id=run_id, operator=operator, reason=halted.get('reason') or '',
                        trigger='halt', strategy='fast' if containment == gate.ROLLBACK else 'freeze',
                        policy=policy, cause=halted.get('cause'), hosts=list(hosts or []))
    return {'changed': False, 'recorded': True}


def not_contained(result):
    """Whether the containment switch registered on a host failed or could not reach it."""
    return (isinstance(result, dict) and not result.get('skipped')
            and bool(result.get('failed') or result.get('unreachable')))


def conclusion(flags, policy, uncontained=()):
    """How a wave run ends, from the flags at its end and the hosts whose rollback failed: {failed, outcome, msg}
    with the next step."""
    flags = flags or {}
    halted, paused = flags.get(HALTED), flags.get(PAUSED)
    if uncontained:
        return {'failed': True, 'outcome': HALTED, 'not_contained': list(uncontained), 'msg': (
            'The wave was HALTED: %s. Policy %s could NOT be applied on %s (unreachable, or its switch failed): '
            'their nodes may still run the wave\'s mode. Reach them, then run playbooks/rollback.yml; acknowledge '
            'the halt with playbooks/resume.yml -e ack=true.' % ((halted or {}).get('reason'), policy,
                                                                 ', '.join(uncontained)))}
    if halted and (halted.get('cause') or gate.CAUSE_VERDICT) == gate.CAUSE_NO_VERDICT:
        return {'failed': True, 'outcome': FROZEN, 'msg': (
            'The wave was HALTED without a verdict: %s. Nothing was rolled back: the nodes stay as they are (frozen) '
            'because nobody could judge them. Restore monitoring, then acknowledge with playbooks/resume.yml '
            '-e ack=true and re-run: the re-run judges the nodes switched without a verdict before it goes on.'
            % halted.get('reason'))}
    if halted:
        return {'failed': True, 'outcome': HALTED, 'msg': (
            'The wave was HALTED: %s. Policy %s was applied to the wave\'s nodes. Investigate, then acknowledge '
            'with playbooks/resume.yml -e ack=true.' % (halted.get('reason'), policy))}
    if paused:
        return {'failed': True, 'outcome': PAUSED, 'msg': (
            'The wave stopped before its next batch because the migration was PAUSED by %s: %s. Nodes already '
            'switched stay where they are. Resume with playbooks/resume.yml, then re-run.'
            % (paused.get('operator'), paused.get('reason')))}
    return {'failed': False, 'outcome': COMPLETED, 'msg': 'the wave completed'}
