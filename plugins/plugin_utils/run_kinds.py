# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What kind of run a playbook is: declared by the playbook, recorded in the ledger when the run starts.

Every playbook of the collection declares its kind in its first play, ``vars: {migration_run_kind: <kind>}``
(an imported playbook passes it on: rollout.yml imports promote.yml with ``migration_run_kind: rollout``).
The migration_tracker callback records it with the run (``ledger_runs.kind``); every reader (the EDA
source's "did the rollback I started end", the dashboard's stage, the tracker's wave label) asks the
ledger, never a playbook's file name: a renamed or copied playbook keeps its kind.

A *migration* run may change what nodes run (canary, waves, promotion, finalisation, rollbacks); the
others only read or control (status, health, conformance, reconcile, pause, resume, monitoring).
"""

from __future__ import annotations

RUN_KIND_VAR = 'migration_run_kind'

CANARY = 'canary'
ROLLOUT = 'rollout'
PROMOTE = 'promote'
FINALIZE = 'finalize'
ROLLBACK = 'rollback'
ROLLBACK_GUARD = 'rollback_guard'
PAUSE = 'pause'
RESUME = 'resume'
STATUS = 'status'
HEALTH = 'health'
RECONCILE = 'reconcile'
CONFORMANCE = 'conformance'
MONITORING = 'monitoring'
PREFLIGHT = 'preflight'
BUDGET_RESET = 'budget_reset'
# A playbook that declares no kind (an operator's own playbook with the callback enabled).
OTHER = 'other'

# kind -> (changes nodes, the stage it shows as: what the operator reads in status and the dashboard)
KINDS = {
    CANARY: (True, 'canary'),
    ROLLOUT: (True, 'wave'),
    PROMOTE: (True, 'wave'),
    FINALIZE: (True, 'wave'),
    ROLLBACK: (True, 'rollback'),
    ROLLBACK_GUARD: (True, 'rollback'),
    PAUSE: (False, 'pause'),
    RESUME: (False, 'resume'),
    STATUS: (False, 'status'),
    HEALTH: (False, 'health'),
    RECONCILE: (False, 'reconcile'),
    CONFORMANCE: (False, 'conformance'),
    MONITORING: (False, 'monitoring'),
    PREFLIGHT: (False, 'preflight'),
    BUDGET_RESET: (False, 'budget reset'),
    OTHER: (False, None),
}
MIGRATION_KINDS = tuple(kind for kind, (changes, _reads) in KINDS.items() if changes)
ROLLBACK_KINDS = (ROLLBACK, ROLLBACK_GUARD)
# Runs that neither read nor change the migration's state: without a ledger they run, unrecorded.
# Every other kind is refused when its ledger does not exist (a mistyped location must not become a
# new, empty ledger that says "paused" or "ok").
LEDGER_OPTIONAL_KINDS = (MONITORING, CONFORMANCE, OTHER)


def normalise(kind):
    """The declared kind, or OTHER for none; an unknown kind is refused (a typo must not pass silently)."""
    if kind in (None, ''):
        return OTHER
    kind = str(kind)
    if kind not in KINDS:
        raise ValueError('%s=%r is not a run kind; known: %s' % (RUN_KIND_VAR, kind, ', '.join(sorted(KINDS))))
    return kind


def is_migration(kind):
    """Whether a run of this kind may change what nodes run (and so counts as a migration run)."""
    return kind in MIGRATION_KINDS


def needs_ledger(kind):
    """Whether a run of this kind is refused when its ledger does not exist."""
    return kind not in LEDGER_OPTIONAL_KINDS


def stage(kind):
    """What the operator reads for a run of this kind (status, dashboard), or None."""
    return KINDS.get(kind, KINDS[OTHER])[1]


def declared_kind(plays):
    """The kind declared by a playbook's plays (the first play that declares one), else OTHER.

    ``plays``: objects with a ``vars`` mapping (Ansible Play objects) or mappings of play vars.
    """
    for play in plays or ():
        play_vars = play if isinstance(play, dict) else (getattr(play, 'vars', None) or {})
        if play_vars.get(RUN_KIND_VAR) not in (None, ''):
            return normalise(play_vars[RUN_KIND_VAR])
    return OTHER


# How a run ended, best first (a sliced run's outcome is the worst of its slices'). ``killed``: its
# controller died and the run was closed when its lock was recovered.
RUN_OUTCOMES = ('ok', 'stopped_early', 'paused', 'degraded', 'incomplete', 'frozen', 'failed', 'halted', 'killed',
                'refused_locked')
# What a stage's conclusion (migration_conclude) means for its run's outcome; the rest keep their word.
_CONCLUSION_OUTCOMES = {'passed': 'ok', 'completed': 'ok', 'succeeded': 'ok'}


def run_outcome(conclusion):
    """The run outcome a canary, wave or rollback conclusion stands for."""
    outcome = _CONCLUSION_OUTCOMES.get(conclusion, conclusion)
    return outcome if outcome in RUN_OUTCOMES else 'failed'


def worst(outcomes):
    """The worst of several run outcomes (unknown words rank worst)."""
    return max(outcomes, key=lambda o: RUN_OUTCOMES.index(o) if o in RUN_OUTCOMES else len(RUN_OUTCOMES))
