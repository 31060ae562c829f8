# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback rehearsal: the fast rollback run on a simulated copy of this fleet's shape, against the SLA.

What the copy looks like is decided here from what the ledger (or the inventory) knows: the fleet's host
count, nodes per host and migrated mode (``fleet_shape``), the readiness delay measured from the real nodes'
recent switches (``readiness``, the 95th percentile the projection uses too), how many hosts this machine
simulates (``simulated_hosts``). The projection for the real fleet is wave_planning.project_fast_rollback with
the same inputs, and, when the copy is smaller than the fleet, the same model calibrated by the measured run
(``calibrated_projection``). The result is one ledger event ``rehearsal`` (``record``); the preflight's
``rollback_tested`` item reads the newest (``latest``). The CLI (``ant-network-migration rehearse``) starts the
copy and runs playbooks/rollback.yml against it; docs/preflight.md and docs/runbooks/rehearsal-failed.md are
the operator's pages.
"""

from __future__ import annotations

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import wave_planning

EVENT = 'rehearsal'
DEFAULT_SLA_SECONDS = 300.0
# The switch time the wave planner assumes when nothing was measured (wave_planning.plan_wave's default).
DEFAULT_SWITCH_SECONDS = 60.0
# Hosts this 2-core machine simulates and rolls back in a few minutes (docs/benchmarks.md).
DEFAULT_MAX_SIMULATED_HOSTS = 50
# A node is ready with more than 5 connected peers (transport_mode's ready_peers, antctl's close group): in a
# copy of fewer nodes no node could ever be.
MIN_COPY_NODES = 7
# The fast rollback's model calibrated on this machine: one home, wave_planning (the wave's projection uses it too).
MODEL = wave_planning.FAST_ROLLBACK_MODEL
METHOD_MEASURED = 'measured on a simulated copy of the whole fleet'
# Under load (``rehearse --under-load``): the share of client reads the rollback may cost (the readable order keeps
# a member of every close group up: 0.07 % measured at 500 nodes, all at once 16.6 %, docs/benchmarks.md).
DEFAULT_MAX_READ_LOSS = 0.01
LOAD_METHOD = ('the copy scraped by a Prometheus at the fleet size\'s interval and read by clients throughout '
               'the rollback (the simulator\'s client reads over the nodes\' close groups)')
METHOD_SCALED = ('projected: the fast-rollback model (wave_planning.project_fast_rollback) with its per-round '
                 'overhead calibrated by the rollback measured on a simulated copy of %d of the %d hosts')


class RehearsalError(ValueError):
    """The fleet's shape cannot be read (no node known, no host)."""


def fleet_shape(nodes):
    """{hosts, nodes_per_host, nodes, mode} of the fleet from its nodes (dicts with host and mode, or state).

    ``nodes_per_host`` is the largest host's (a host takes as long as its slowest node, and the copy gives every
    host as many); ``mode`` the migrated mode most nodes run (ties: the further one), dual_stack when every node
    is still on libp2p_only (the rollback then rehearsed is the first wave's)."""
    per_host, modes = {}, {}
    for node in nodes:
        if node.get('status') == 'Removed':
            continue
        per_host[node['host']] = per_host.get(node['host'], 0) + 1
        mode = node.get('mode') or _modes.STATE_MODE.get(node.get('state'))
        if mode in _modes.MODES and mode != _modes.LIBP2P_ONLY:
            modes[mode] = modes.get(mode, 0) + 1
    if not per_host:
        raise RehearsalError('no node known: the ledger knows no node and the inventory reported none '
                             '(run playbooks/reconcile.yml, or check the inventory and that transport_info answers)')
    mode = max(modes, key=lambda m: (modes[m], _modes.mode_index(m))) if modes else _modes.DUAL_STACK
    return {'hosts': len(per_host), 'nodes_per_host': max(per_host.values()), 'nodes': sum(per_host.values()),
            'mode': mode}


def readiness(switch_seconds, direction=None):
    """{ready_delay, measured, samples, direction}: the copy's readiness delay, the 95th percentile of the
    measured switch times (as the projection takes them); without a measurement the planner's default."""
    samples = [float(s) for s in (switch_seconds or []) if s is not None]
    if not samples:
        return {'ready_delay': DEFAULT_SWITCH_SECONDS, 'measured': False, 'samples': 0, 'direction': None}
    p95 = wave_planning.project_fast_rollback(1, 1, samples)['switch_p95']
    return {'ready_delay': p95, 'measured': True, 'samples': len(samples), 'direction': direction}


def simulated_hosts(hosts, nodes_per_host, max_hosts):
    """How many hosts the copy has: the fleet's, at most ``max_hosts``; a copy of fewer than MIN_COPY_NODES
    nodes is refused (its nodes could never be ready)."""
    if max_hosts < 1:
        raise RehearsalError('--max-simulated-hosts must be at least 1, got %r' % (max_hosts,))
    copy = min(int(hosts), int(max_hosts))
    if copy * nodes_per_host < MIN_COPY_NODES:
        raise RehearsalError('a copy of %d host(s) x %d node(s) cannot be rehearsed: a node is ready with more than '
                             '%d connected peers (antctl\'s rule), so the copy needs at least %d nodes'
                             % (copy, nodes_per_host, MIN_COPY_NODES - 2, MIN_COPY_NODES))
    return copy


def projection(hosts, nodes_per_host, switch_seconds, forks, rounds=None, **model):
    """wave_planning.project_fast_rollback for this shape with this machine's MODEL (``model`` overrides it) and
    the rollback's ``rounds`` when known (wave_planning.rollback_fork_rounds)."""
    return wave_planning.project_fast_rollback(hosts, nodes_per_host, list(switch_seconds), forks=forks, rounds=rounds,
                                               **dict(MODEL, **model))


def calibrated_overhead(measured_seconds, hosts, nodes_per_host, switch_seconds, forks, rounds=None):
    """The per-round overhead that makes the model give ``measured_seconds`` for the copy's shape (at least 0),
    MODEL's fixed cost kept: what a round costs on this controller beside its slowest switch."""
    base = projection(hosts, nodes_per_host, switch_seconds, forks, rounds=rounds, per_host_overhead=0.0)
    return max(0.0, round((float(measured_seconds) - base['seconds']) / max(1, base['rounds']), 2))


def calibrated_projection(measured_seconds, copy, fleet, nodes_per_host, switch_seconds, forks):
    """The real fleet's projection from the model calibrated by the copy's measured run. ``copy`` and ``fleet``:
    (hosts, rounds) of each (rounds None: hosts / forks)."""
    overhead = calibrated_overhead(measured_seconds, copy[0], nodes_per_host, switch_seconds, forks, rounds=copy[1])
    out = projection(fleet[0], nodes_per_host, switch_seconds, forks, rounds=fleet[1], per_host_overhead=overhead)
    out['per_round_overhead'] = overhead
    return out


def verdict(measured_seconds, sla_seconds, projected_seconds=None, scaled=False):
    """passed, and the sentence that says why not: the measured time (or, for a scaled copy, the projection for
    the whole fleet) against the SLA."""
    judged = projected_seconds if scaled and projected_seconds is not None else measured_seconds
    what = 'the projected fast rollback of the whole fleet' if scaled else 'the rehearsed fast rollback'
    if judged > sla_seconds:
        return False, '%s took %.0f s, over the %.0f s SLA' % (what, judged, sla_seconds)
    return True, '%s took %.0f s, within the %.0f s SLA' % (what, judged, sla_seconds)


def load_verdict(load, max_read_loss=DEFAULT_MAX_READ_LOSS):
    """passed, and the sentence: under load, the rollback cost at most ``max_read_loss`` of the clients' reads
    and Prometheus scraped every node of the copy again after it. ``load``: {reads_total, reads_failed,
    targets, targets_up_after, scrape_interval, client_read_rate}."""
    total, failed = float(load.get('reads_total') or 0), float(load.get('reads_failed') or 0)
    share = failed / total if total else 0.0
    problems = []
    if not total:
        problems.append('no client read was served during the rollback: the load did not run')
    elif share > max_read_loss:
        problems.append('the rollback cost %.2f %% of the clients\' reads (%.0f of %.0f; allowed %.2f %%)'
                        % (100 * share, failed, total, 100 * max_read_loss))
    lost = int(load.get('targets') or 0) - int(load.get('targets_up_after') or 0)
    if lost > 0:
        problems.append('Prometheus did not scrape %d of the copy\'s %d nodes again after the rollback'
                        % (lost, load['targets']))
    if problems:
        return False, 'under load: ' + '; '.join(problems)
    return True, ('under load (scrapes every %gs, %.0f client reads/s): %.2f %% of the reads failed during the '
                  'rollback (allowed %.2f %%), every node scraped again'
                  % (load.get('scrape_interval') or 0, load.get('client_read_rate') or 0, 100 * share,
                     100 * max_read_loss))


def record(ledger, result, run_id=None):
    """The rehearsal's result as ONE ledger event ``rehearsal``; returns its id."""
    return ledger.record_event(EVENT, run_id=run_id, **result)


def latest(ledger, under_load=False):
    """The newest rehearsal (``{at, data}``) or None; with ``under_load`` the newest one run under load."""
    if not under_load:
        events = ledger.events(kinds=EVENT, limit=1)
        return events[0] if events else None
    # Rehearsals are few (one a week by the preflight's default): the newest thousand hold the answer.
    return next((e for e in ledger.events(kinds=EVENT, limit=1000) if (e['data'] or {}).get('load') is not None),
                None)
