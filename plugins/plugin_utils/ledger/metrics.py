# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress maths over the ledger and the migration's own metrics (Prometheus text format)."""

from __future__ import annotations

import datetime

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.ledger._metrics_text import (
    render_metrics,
    write_atomically,
)


class MetricsMixin:
    """Progress, velocity, ETA and the metrics export."""

    # -- progress --------------------------------------------------------------------------

    def progress(self, window_hours=1.0):
        """Migration progress (_modes.progress), the stage under way, velocity and ETA.

        Velocity counts the nodes that entered a state in the last ``window_hours`` (minus those that left it)
        over the time since the first of them, not over the whole window: a run that moved 12 nodes in its last
        80 s moves about 540 nodes/h, not 12 (at least MIN_SPAN seconds, so one instant is not infinite). ETA is
        None when nothing moved in the window or nothing is left.
        """
        now = self._now()
        window_hours = float(window_hours)
        since = now - window_hours * 3600.0
        with self._db.transaction(write=False) as tx:
            nodes = tx.query('SELECT state, mode, ready FROM ledger_nodes')
            rows = tx.query('SELECT from_state, to_state, from_mode, to_mode, at FROM ledger_node_history '
                            'WHERE at >= ?', (since,))
        result = _modes.progress([row['state'] for row in nodes])
        # The stage under way: the furthest mode any node runs (dual_stack before any node moved); its own
        # progress and velocity move while the seed's figure (iroh_primary and beyond) still reads 0.
        modes = [row['mode'] or _modes.STATE_MODE[row['state']] for row in nodes]
        stage = max([_modes.mode_index(m) for m in modes if m in _modes.MODES] + [1])
        at_stage = sum(1 for m in modes if m in _modes.MODES and _modes.mode_index(m) >= stage)

        def reached(mode, index):
            return mode in _modes.MODES and _modes.mode_index(mode) >= index

        migrated = set(_modes.MIGRATED_STATES)
        both = set(_modes.BOTH_TRANSPORT_STATES)
        entered = [r for r in rows if r['to_state'] in migrated and r['from_state'] not in migrated]
        left = [r for r in rows if r['from_state'] in migrated and r['to_state'] not in migrated]
        dual_entered = [r for r in rows if r['to_state'] in both and r['from_state'] not in both | migrated]
        stage_entered = [r for r in rows if reached(r['to_mode'], stage) and not reached(r['from_mode'], stage)]
        velocity = self._per_hour(len(entered) - len(left), entered, now)
        remaining = result['total'] - result['migrated']
        eta = None
        if velocity > 0 and remaining > 0:
            eta = datetime.datetime.fromtimestamp(now + remaining / velocity * 3600.0, tz=datetime.UTC)
        result.update({
            'fleet_read': bool(nodes),
            'not_ready': sum(1 for row in nodes if row['ready'] == 0),
            'stage': _modes.MODES[stage],
            'stage_progress_percent': round(100.0 * at_stage / len(nodes), 2) if nodes else 0.0,
            'stage_velocity_nodes_per_hour': self._per_hour(len(stage_entered), stage_entered, now),
            'velocity_nodes_per_hour': velocity,
            'dual_stack_velocity_nodes_per_hour': self._per_hour(len(dual_entered), dual_entered, now),
            'window_hours': window_hours,
            'remaining': remaining,
            'eta': eta,
        })
        return result

    MIN_SPAN = 60.0

    def _per_hour(self, count, moves, now):
        """``count`` nodes per hour over the time since the first of ``moves`` (at least MIN_SPAN s); 0 without."""
        if count <= 0 or not moves:
            return 0.0
        span = max(now - min(r['at'] for r in moves), self.MIN_SPAN)
        return round(count / span * 3600.0, 2)

    # -- metrics export ---------------------------------------------------------------------

    def metrics_text(self, window_hours=1.0):
        """The migration's own metrics in the Prometheus text exposition format (see _ledger_metrics)."""
        return render_metrics(self.progress(window_hours=window_hours), self.get_flags(), self._now())

    def write_textfile(self, path, window_hours=1.0):
        """Write metrics_text() to ``path`` atomically (temp file in the same directory + rename)."""
        return write_atomically(path, self.metrics_text(window_hours=window_hours))
