# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's own metrics (autonomi_migration_*) in the Prometheus text format, written atomically.

Rendered from Ledger.progress() and Ledger.get_flags(), so a textfile, an HTTP exporter or the
dashboard show the same figures (docs/ledger.md lists them).
"""

from __future__ import annotations

import os
import tempfile

PREFIX = 'autonomi_migration_'


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render_metrics(progress, flags, now):
    """Prometheus text for one progress() result and the flags, at Unix time ``now``."""
    lines = []

    def gauge(name, help_text, samples):
        lines.append(f'# HELP {PREFIX}{name} {help_text}')
        lines.append(f'# TYPE {PREFIX}{name} gauge')
        for labels, value in samples:
            label_text = '{' + ','.join(f'{k}="{v}"' for k, v in labels) + '}' if labels else ''
            lines.append(f'{PREFIX}{name}{label_text} {_number(value)}')

    gauge('nodes_total', 'Nodes known to the migration ledger.', [((), progress['total'])])
    gauge('nodes_migrated', 'Nodes in iroh_primary or iroh_only.', [((), progress['migrated'])])
    gauge('nodes_dual_stack', 'Nodes running both transports (dual_stack_testing, dual_stack_stable, iroh_primary).',
          [((), progress['dual_stack'])])
    gauge('nodes_rollback', 'Nodes rolled back to libp2p_only.', [((), progress['rolled_back'])])
    gauge('nodes', 'Nodes per migration state.',
          [((('state', state),), count) for state, count in sorted(progress['by_state'].items())])
    gauge('progress_percent', 'Migration progress: migrated nodes over all nodes, in percent.',
          [((), progress['progress_percent'])])
    gauge('dual_stack_coverage_percent', 'Nodes running both transports, in percent of the fleet.',
          [((), progress['dual_stack_coverage_percent'])])
    gauge('phase_info', 'The migration phase derived from progress.', [((('phase', progress['phase']),), 1)])
    gauge('velocity_nodes_per_hour', 'Nodes migrated per hour over the recent window.',
          [((), progress['velocity_nodes_per_hour'])])
    gauge('estimated_completion_timestamp_seconds',
          'Estimated completion time (Unix seconds); absent when it cannot be estimated.',
          [((), progress['eta'].timestamp())] if progress['eta'] else [])
    gauge('halted', '1 while the migration is halted.', [((), 1 if flags.get('halted') else 0)])
    gauge('paused', '1 while the migration is paused.', [((), 1 if flags.get('paused') else 0)])
    gauge('ledger_export_timestamp_seconds', 'When this file was written (Unix seconds).', [((), float(now))])
    return '\n'.join(lines) + '\n'


def write_atomically(path, text):
    """Write ``text`` to ``path`` via a temporary file in the same directory, fsync and rename."""
    path = os.path.abspath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
