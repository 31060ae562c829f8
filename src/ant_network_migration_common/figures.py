# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's figures from Prometheus: the per-transport recording rules of the monitoring role
(plugins/plugin_utils/alert_rules names them), read in one query. ``health`` and ``metrics`` print them;
the dashboard serves them. The numbers only: whether the fleet is healthy is the gate's judgement
(plugins/plugin_utils/services/health.py), never judged here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules

TRANSPORTS = ('libp2p', 'iroh')
TRANSPORT_LEVEL = 'transport'
FLEET_LEVEL = 'fleet'


@dataclass
class Figures:
    """``transports[transport][figure] -> value`` (None: no data) and fleet-wide figures."""

    transports: dict = field(default_factory=dict)
    fleet: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)

    def as_dict(self):
        return {'transports': self.transports, 'fleet': self.fleet, 'units': self.units}


def _clean(value):
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def query_figures(client):
    """Every dashboard figure in one query over the recorded series."""
    by_name = {}
    for figure in alert_rules.TRANSPORT_FIGURES:
        by_name[alert_rules.recorded_name(figure, TRANSPORT_LEVEL)] = (TRANSPORT_LEVEL, figure)
    by_name[alert_rules.recorded_name('partition_risk', FLEET_LEVEL)] = (FLEET_LEVEL, 'partition_risk')
    # Recorded names hold only [a-z_:], so they need no regex escaping.
    samples = client.query('{__name__=~"' + '|'.join(sorted(by_name)) + '"}')
    out = Figures(transports={t: dict.fromkeys(alert_rules.TRANSPORT_FIGURES) for t in TRANSPORTS},
                  fleet={'partition_risk': None},
                  units={figure: unit for figure, (_, unit) in alert_rules.FIGURES.items()})
    for sample in samples:
        level, figure = by_name.get(sample['metric'].get('__name__'), (None, None))
        if level == TRANSPORT_LEVEL:
            transport = sample['metric'].get('transport')
            if transport in out.transports:
                out.transports[transport][figure] = _clean(sample['value'])
        elif level == FLEET_LEVEL:
            out.fleet[figure] = _clean(sample['value'])
    return out


def prometheus_text(figures):
    """Figures in the Prometheus text exposition format (for scraping or a textfile)."""
    lines = []
    for figure in sorted(next(iter(figures.transports.values()), {})):
        name = f'autonomi_migration_transport_{figure}'
        lines.append(f'# HELP {name} {figure.replace("_", " ")} per transport ({figures.units.get(figure, "")}).')
        lines.append(f'# TYPE {name} gauge')
        for transport in sorted(figures.transports):
            value = figures.transports[transport].get(figure)
            if value is not None:
                lines.append(f'{name}{{transport="{transport}"}} {value!r}')
    for figure, value in sorted(figures.fleet.items()):
        name = f'autonomi_migration_fleet_{figure}'
        lines.append(f'# HELP {name} fleet-wide {figure.replace("_", " ")} (0 healthy .. 1 partitioned).')
        lines.append(f'# TYPE {name} gauge')
        if value is not None:
            lines.append(f'{name} {value!r}')
    return '\n'.join(lines) + '\n'
