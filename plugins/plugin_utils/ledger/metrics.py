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
        """Migration progress (_modes.progress) plus velocity over the last ``window_hours`` and ETA.

        Velocity counts nodes that entered iroh_primary / iroh_only from a non-migrated state in the
        window, minus nodes that left those states, per hour. ETA is None when nothing moved in the
        window or nothing is left.
        """
        now = self._now()
        window_hours = float(window_hours)
        since = now - window_hours * 3600.0
        migrated = list(_modes.MIGRATED_STATES)
        dual = list(_modes.DUAL_STACK_STATES)
        with self._db.transaction(write=False) as tx:
            nodes = tx.query('SELECT state, mode, ready FROM ledger_nodes')
            rows = tx.query('SELECT from_state, to_state, from_mode, to_mode FROM ledger_node_history WHERE at >= ?',
                            (since,))
        states = [row['state'] for row in nodes]
        result = _modes.progress(states)
        # The stage under way: the furthest mode any node runs (dual_stack before any node moved); its own
        # progress and velocity move while the seed's figure (iroh_primary and beyond) still reads 0.
        modes = [row['mode'] or _modes.STATE_MODE[row['state']] for row in nodes]
        stage = max([_modes.mode_index(m) for m in modes if m in _modes.MODES] + [1])
        at_stage = sum(1 for m in modes if m in _modes.MODES and _modes.mode_index(m) >= stage)
        stage_entered = sum(1 for r in rows if r['to_mode'] in _modes.MODES and _modes.mode_index(r['to_mode']) >= stage
                            and not (r['from_mode'] in _modes.MODES and _modes.mode_index(r['from_mode']) >= stage))
        entered = sum(1 for r in rows if r['to_state'] in migrated and r['from_state'] not in migrated)
        left = sum(1 for r in rows if r['from_state'] in migrated and r['to_state'] not in migrated)
        dual_entered = sum(1 for r in rows if r['to_state'] in dual and r['from_state'] not in dual + migrated)
        velocity = max(entered - left, 0) / window_hours if window_hours > 0 else 0.0
        remaining = result['total'] - result['migrated']
        eta = None
        if velocity > 0 and remaining > 0:
            eta = datetime.datetime.fromtimestamp(now + remaining / velocity * 3600.0, tz=datetime.UTC)
        result.update({
            'not_ready': sum(1 for row in nodes if row['ready'] == 0),
            'stage': _modes.MODES[stage],
            'stage_progress_percent': round(100.0 * at_stage / len(nodes), 2) if nodes else 0.0,
            'stage_velocity_nodes_per_hour': round(stage_entered / window_hours, 2) if window_hours > 0 else 0.0,
            'velocity_nodes_per_hour': round(velocity, 2),
            'dual_stack_velocity_nodes_per_hour': round(dual_entered / window_hours, 2) if window_hours > 0 else 0.0,
            'window_hours': window_hours,
            'remaining': remaining,
            'eta': eta,
        })
        return result
    # -- metrics export ---------------------------------------------------------------------

    def metrics_text(self, window_hours=1.0):
        """The migration's own metrics in the Prometheus text exposition format (see _ledger_metrics)."""
        return render_metrics(self.progress(window_hours=window_hours), self.get_flags(), self._now())

    def write_textfile(self, path, window_hours=1.0):
        """Write metrics_text() to ``path`` atomically (temp file in the same directory + rename)."""
        return write_atomically(path, self.metrics_text(window_hours=window_hours))
