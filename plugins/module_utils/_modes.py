# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transport modes, migration states and the rules that protect the network.

This is the single definition of the mode model. Modules, action plugins, the
callback, the CLI and the simulator all import it.
"""

from __future__ import annotations

# Node transport modes, in forward order.
LIBP2P_ONLY = 'libp2p_only'
DUAL_STACK = 'dual_stack'
IROH_PRIMARY = 'iroh_primary'
IROH_ONLY = 'iroh_only'
MODES = (LIBP2P_ONLY, DUAL_STACK, IROH_PRIMARY, IROH_ONLY)

# Which transports a node in each mode runs.
TRANSPORTS = ('libp2p', 'iroh')
MODE_TRANSPORTS = {
    LIBP2P_ONLY: ('libp2p',),
    DUAL_STACK: ('libp2p', 'iroh'),
    IROH_PRIMARY: ('libp2p', 'iroh'),
    IROH_ONLY: ('iroh',),
}
# A transport a node in a mode keeps only as a fallback: it carries a small share of the node's requests
# (iroh_primary prefers iroh and keeps libp2p for peers without iroh).
FALLBACK_TRANSPORTS = {
    IROH_PRIMARY: ('libp2p',),
}

# Ledger migration states.
STATE_LIBP2P_ONLY = 'libp2p_only'
STATE_DUAL_STACK_TESTING = 'dual_stack_testing'
STATE_DUAL_STACK_STABLE = 'dual_stack_stable'
STATE_IROH_PRIMARY = 'iroh_primary'
STATE_IROH_ONLY = 'iroh_only'
STATE_ROLLED_BACK = 'rolled_back'
STATES = (STATE_LIBP2P_ONLY, STATE_DUAL_STACK_TESTING, STATE_DUAL_STACK_STABLE,
          STATE_IROH_PRIMARY, STATE_IROH_ONLY, STATE_ROLLED_BACK)

# The transport mode a node in each ledger state runs.
STATE_MODE = {
    STATE_LIBP2P_ONLY: LIBP2P_ONLY,
    STATE_DUAL_STACK_TESTING: DUAL_STACK,
    STATE_DUAL_STACK_STABLE: DUAL_STACK,
    STATE_IROH_PRIMARY: IROH_PRIMARY,
    STATE_IROH_ONLY: IROH_ONLY,
    STATE_ROLLED_BACK: LIBP2P_ONLY,
}

MIGRATED_STATES = (STATE_IROH_PRIMARY, STATE_IROH_ONLY)
DUAL_STACK_STATES = (STATE_DUAL_STACK_TESTING, STATE_DUAL_STACK_STABLE)
# Nodes that run both transports (dual-stack coverage counts these): dual_stack and iroh_primary.
BOTH_TRANSPORT_STATES = DUAL_STACK_STATES + (STATE_IROH_PRIMARY,)

PHASES = (
    (5.0, 'Initialization'),
    (25.0, 'EarlyAdopters'),
    (75.0, 'MajorityMigration'),
    (95.0, 'Finalization'),
)
PHASE_COMPLETED = 'Completed'


class TransitionError(ValueError):
    """A requested mode change is not allowed."""


def mode_index(mode):
    if mode not in MODES:
        raise TransitionError('unknown transport mode %r; expected one of %s' % (mode, ', '.join(MODES)))
    return MODES.index(mode)


def transition_kind(current, target):
    """Return 'none', 'forward' or 'backward' for a mode change.

    Raises TransitionError for unknown modes and for forward moves that skip a step.
    """
    cur, tgt = mode_index(current), mode_index(target)
    if cur == tgt:
        return 'none'
    if tgt < cur:
        return 'backward'
    if tgt - cur > 1:
        raise TransitionError(
            'cannot go from %s to %s: forward moves go one step at a time (%s)'
            % (current, target, ' -> '.join(MODES[cur:tgt + 1])))
    return 'forward'


def previous_mode(mode):
    """The mode before ``mode`` in the forward order: where a stage's nodes go back to (None for libp2p_only)."""
    index = mode_index(mode)
    return MODES[index - 1] if index else None


def check_transition(current, target, allow_rollback=False, node=None):
    """Validate one node's mode change; return its kind ('none', 'forward', 'backward')."""
    who = 'node %s: ' % node if node else ''
    try:
        kind = transition_kind(current, target)
    except TransitionError as exc:
        raise TransitionError(who + str(exc)) from None
    if kind == 'backward' and not allow_rollback:
        raise TransitionError(
            '%scannot go back from %s to %s without allow_rollback=true' % (who, current, target))
    return kind


def partition_violations(target, fleet_modes):
    """Nodes that forbid moving to ``target``.

    ``fleet_modes`` maps a node id to its current mode for the whole fleet. No node may run
    iroh_only while any node still runs libp2p_only (they cannot reach each other).
    Returns the sorted node ids that run libp2p_only when target is iroh_only, else [].
    """
    if target != IROH_ONLY:
        return []
    return sorted(node for node, mode in fleet_modes.items() if mode == LIBP2P_ONLY)


def phase_for(progress_percent, all_iroh_only=False):
    """The seed's phase of a progress percentage; Completed only once every node runs iroh_only (a fleet at
    100 % iroh_primary is still in Finalization: finalize.yml has not run)."""
    for limit, name in PHASES:
        if progress_percent < limit:
            return name
    return PHASE_COMPLETED if all_iroh_only else PHASES[-1][1]


def progress(states):
    """Migration progress from an iterable of ledger states (one per node)."""
    states = list(states)
    total = len(states)
    counts = {state: 0 for state in STATES}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    migrated = sum(counts[s] for s in MIGRATED_STATES)
    both = sum(counts[s] for s in BOTH_TRANSPORT_STATES)
    pct = (100.0 * migrated / total) if total else 0.0
    return {
        'total': total,
        'migrated': migrated,
        # Nodes running both transports, and their share: the two figures always agree.
        'dual_stack': both,
        'rolled_back': counts[STATE_ROLLED_BACK],
        'progress_percent': round(pct, 2),
        'dual_stack_coverage_percent': round((100.0 * both / total) if total else 0.0, 2),
        'phase': phase_for(pct, all_iroh_only=bool(total) and counts[STATE_IROH_ONLY] == total),
        'by_state': counts,
    }
