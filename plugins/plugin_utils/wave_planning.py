# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one planner: which hosts a wave, a promotion or a rollback touches, in which batches,
what a rollback of it would cost, and every reason to refuse it.

Pure functions: the ``migration_wave_plan`` action plugin, the CLI's dry run and the tests
all call these with plain data, so the preview is the plan. ``plan_wave`` returns the
refusals with the plan (``plan['refusals']``): nothing eligible, iroh_only while libp2p_only
nodes exist, the projected partition risk, the rollback-time (SLA) projection.
"""

from __future__ import annotations

import math

from ansible_collections.autonomi.network_migration.plugins.module_utils import _kademlia, _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown


class PlanError(MigrationError, ValueError):
    """The wave cannot be planned as asked; the message says why and what to change."""


def duration_seconds(text):
    """Seconds of a duration (the one grammar, validation.seconds)."""
    return validation.seconds(text, 'duration')


def parse_batches(spec):
    """Validate a serial-style batch list: the one validator (validation.batches) decides."""
    try:
        return validation.batches(spec, 'batches')
    except validation.InputError as exc:
        raise PlanError(str(exc)) from None


def batch_sizes(spec, host_count):
    """Cut ``host_count`` hosts into batches the way Ansible's ``serial`` does.

    Percentages are of the wave's hosts, rounded down with a minimum of one; the last entry
    repeats until every host is in a batch.
    """
    spec = parse_batches(spec)
    sizes = []
    remaining = host_count
    i = 0
    while remaining > 0:
        item = spec[min(i, len(spec) - 1)]
        if isinstance(item, str):
            size = max(1, int(float(item[:-1]) / 100.0 * host_count))
        else:
            size = item
        size = min(size, remaining)
        sizes.append(size)
        remaining -= size
        i += 1
    return sizes


def validate_wave(wave):
    """A wave is a fleet percentage: the one validator (validation.wave_percent) decides."""
    try:
        return validation.wave_percent(wave)
    except validation.InputError as exc:
        raise PlanError(str(exc)) from None


def _close_group_index(nodes, group_size):
    """Map node id -> list of close-group ids it belongs to (group = node + nearest peers)."""
    peer_of = {n['id']: n['peer_id'] for n in nodes if n.get('peer_id')}
    node_of_peer = {v: k for k, v in peer_of.items()}
    for node, peer in peer_of.items():
        try:
            _kademlia.peer_id_bytes(peer)
        except ValueError as exc:
            raise PlanError('node %s reports a peer id the network cannot place in a close group (%s): check the '
                            'node (antctl status --json) before planning' % (node, exc)) from None
    groups = _kademlia.close_groups_of_nodes(list(peer_of.values()), size=group_size)
    membership = {}
    for gid, members in groups.items():
        for peer in members:
            membership.setdefault(node_of_peer[peer], []).append(gid)
    return membership


def plan_wave(nodes, wave, stage=_modes.DUAL_STACK, batches=(1, '10%', '25%'), exclude_hosts=(),
              max_close_group_share=0.4, close_group_size=5, max_partition_risk=0.7, switch_seconds=(),
              default_switch_seconds=60.0, rollback_sla_seconds=300.0, rollback_forks=50):
    """Plan a wave.

    ``nodes``: every node of the fleet as dicts with ``host``, ``service_name``, ``peer_id``
    and ``mode`` (what the node runs now). ``wave`` is the fleet percentage that must be at
    ``stage`` or beyond when the wave ends. Whole hosts are taken, sorted by name, skipping
    excluded hosts and hosts that have no node left below ``stage``.

    Batches are then laid out so that no batch holds more than ``max_close_group_share`` of any
    close group (the nodes of a batch may restart at the same moment): a host that would break
    that is moved to a later batch.

    ``plan['refusals']`` lists every reason the wave must not run (empty: it may); see
    ``refusals()``. ``switch_seconds`` are measured seconds-to-ready for the rollback projection.
    """
    wave = validate_wave(wave)
    if stage not in _modes.MODES[1:]:
        raise PlanError('stage must be one of %s, got %r' % (', '.join(_modes.MODES[1:]), stage))
    if not 0 < max_close_group_share <= 1:
        raise PlanError('max_close_group_share must be in (0, 1], got %r' % (max_close_group_share,))
    stage_index = _modes.MODES.index(stage)
    nodes = [dict(n, id='%s/%s' % (n['host'], n['service_name'])) for n in nodes]
    total = len(nodes)
    if not total:
        raise PlanError('the fleet has no nodes: check the inventory and that transport_info ran on every host')
    unknown = sorted(n['id'] for n in nodes if n.get('mode') not in _modes.MODES)
    at_stage = sum(1 for n in nodes if n.get('mode') in _modes.MODES and _modes.MODES.index(n['mode']) >= stage_index)
    target_nodes = int(math.ceil(wave / 100.0 * total))
    current_percent = round(100.0 * at_stage / total, 2)
    plan = {
        'stage': stage,
        'wave': wave,
        'total_nodes': total,
        'nodes_at_stage': at_stage,
        'current_percent': current_percent,
        'target_nodes': target_nodes,
        'hosts': [],
        'batches': [],
        'batch_sizes': [],
        'nodes_to_switch': 0,
        'max_close_group_members_per_batch': 0,
        'unknown_mode_nodes': unknown,
        'message': '',
        'refusals': [],
    }
    needed = target_nodes - at_stage
    if needed <= 0:
        plan['message'] = ('nothing to do: %.2f %% of the fleet (%d of %d nodes) is already at %s or beyond, '
                           'which meets wave=%s' % (current_percent, at_stage, total, stage, _fmt(wave)))
        return plan
    if unknown:
        plan['refusals'].append('cannot plan while the mode of %d node(s) is unknown (stopped or not serving '
                                'metrics): %s' % (len(unknown), shown(unknown, 20)))

    by_host = _nodes_by_host(nodes)
    candidates = eligible_hosts(nodes, stage, exclude_hosts)
    chosen = []
    count = 0
    for host, n_below in candidates:
        if count >= needed:
            break
        chosen.append(host)
        count += n_below
    if count < needed:
        plan['message'] = ('wave=%s needs %d more node(s) at %s but only %d eligible node(s) remain '
                           '(excluded hosts: %s)%s'
                           % (_fmt(wave), needed, stage, count, shown(sorted(exclude_hosts or ())) or 'none',
                              '; the wave will take every eligible host' if chosen else ''))
    membership = _close_group_index(nodes, close_group_size)
    limit = max(1, int(math.floor(max_close_group_share * close_group_size)))
    layout = _layout_batches(chosen, by_host, membership, batches, limit)
    plan['batches'] = [batch for batch, _worst in layout]
    plan['batch_sizes'] = [len(batch) for batch, _worst in layout]
    plan['hosts'] = [h for b in plan['batches'] for h in b]
    plan['nodes_to_switch'] = count
    plan['max_close_group_members_per_batch'] = max((worst for _batch, worst in layout), default=0)
    plan['close_group_member_limit'] = limit
    if not plan['message']:
        plan['message'] = ('wave=%s: %d host(s), %d node(s) to %s in %d batch(es) %s; '
                           'fleet goes from %.2f %% to %.2f %%'
                           % (_fmt(wave), len(chosen), count, stage, len(layout), plan['batch_sizes'],
                              current_percent, 100.0 * (at_stage + count) / total))
    asked = batch_sizes(batches, len(chosen)) if chosen else []
    if plan['batch_sizes'] != asked:
        plan['batches_asked'] = asked
        plan['message'] += ('; the batches differ from the %s asked (%s) because no batch may restart more than %d '
                            'of the %d nodes of one close group (max_close_group_share %s): hosts whose nodes share '
                            'a close group with a host already in the batch go to a later one'
                            % (asked, ', '.join(str(b) for b in batches), limit, close_group_size,
                               _fmt(max_close_group_share)))
    plan['refusals'] += refusals(nodes, plan, needed, max_partition_risk=max_partition_risk,
                                 switch_seconds=switch_seconds, default_switch_seconds=default_switch_seconds,
                                 rollback_sla_seconds=rollback_sla_seconds, rollback_forks=rollback_forks)
    return plan


def refusals(nodes, plan, needed, max_partition_risk=0.7, switch_seconds=(), default_switch_seconds=60.0,
             rollback_sla_seconds=300.0, rollback_forks=50):
    """Every reason the planned wave must not run, each a sentence that says what to do.

    Fills ``plan['rollback_projection']`` and, for iroh_only, ``plan['projected_partition_risk']``.
    """
    out = []
    stage = plan['stage']
    modes_now = {'%s/%s' % (n['host'], n['service_name']): n.get('mode') for n in nodes}
    if stage == _modes.IROH_ONLY:
        offenders = _modes.partition_violations(_modes.IROH_ONLY, modes_now)
        if offenders:
            out.append('iroh_only is refused while %d node(s) still run libp2p_only (iroh_only and libp2p_only '
                       'nodes cannot reach each other): %s' % (len(offenders), shown(offenders, 20)))
    if needed > 0 and not plan['hosts']:
        previous = _modes.MODES[_modes.MODES.index(stage) - 1]
        behind = {}
        for mode in modes_now.values():
            if mode in _modes.MODES and _modes.MODES.index(mode) < _modes.MODES.index(stage):
                behind[mode] = behind.get(mode, 0) + 1
        out.append('nothing eligible: wave=%s needs %d more node(s) at %s, but no host outside the excluded ones '
                   'has all its nodes below %s at %s (forward moves go one step at a time; below %s now: %s)'
                   % (_fmt(plan['wave']), needed, stage, stage, previous, stage,
                      ', '.join('%d %s' % (c, m) for m, c in sorted(behind.items())) or 'none'))
    if stage == _modes.IROH_ONLY and plan['hosts']:
        risk = projected_partition_risk(nodes, set(plan['hosts']), plan['batches'])
        plan['projected_partition_risk'] = risk
        if risk > max_partition_risk:
            out.append('projected partition risk %.2f of this wave exceeds %.2f' % (risk, max_partition_risk))
    # Rollback time is a promise: after this wave, a fast rollback of every node past
    # libp2p_only must still fit in the SLA.
    wave_hosts = set(plan['hosts'])
    migrated_hosts = {n['host'] for n in nodes if n.get('mode') != _modes.LIBP2P_ONLY} | wave_hosts
    per_host = max((sum(1 for n in nodes if n['host'] == h) for h in migrated_hosts), default=0)
    samples = list(switch_seconds or []) or [default_switch_seconds]
    # The rounds the default (readable) order would run after this wave (its hosts at the stage) and the model the
    # rehearsal calibrated (docs/benchmarks.md "Rollback rehearsal").
    after_wave = [dict(n, mode=stage) if n['host'] in wave_hosts else n for n in nodes]
    rounds = rollback_fork_rounds(after_wave, migrated_hosts, rollback_forks)
    projection = project_fast_rollback(len(migrated_hosts), per_host, samples, forks=rollback_forks, rounds=rounds,
                                       **FAST_ROLLBACK_MODEL)
    projection['sla_seconds'] = rollback_sla_seconds
    projection['measured'] = bool(switch_seconds)
    plan['rollback_projection'] = projection
    if plan['hosts'] and projection['seconds'] > rollback_sla_seconds:
        # More forks help only when the hosts take more than one round of them.
        advice = ('a smaller wave or more rollback forks (%d rounds of %d)' % (projection['rounds'], rollback_forks)
                  if projection['rounds'] > 1 else
                  'a smaller wave or faster nodes: one round of %d forks already covers every host, more forks '
                  'cannot help' % rollback_forks)
        out.append('a fast rollback of the %d host(s) past libp2p_only after this wave would take about '
                   '%.0f s, %.0f s over the %.0f s SLA (rollback switch p95 %.1f s, %d forks); use %s'
                   % (len(migrated_hosts), projection['seconds'], projection['seconds'] - rollback_sla_seconds,
                      rollback_sla_seconds, projection['switch_p95'] or 0.0, rollback_forks, advice))
    return out


def projected_partition_risk(nodes, wave_hosts, batches):
    """Projected partition risk (0..1, the scale of the fleet's partition-risk rule) of an iroh_only wave.

    Two sources: node pairs that could not talk once the wave's nodes run iroh_only (only
    libp2p_only nodes are cut off from them), and the nodes of the largest batch, unreachable
    while they restart. Each is scaled like the rule: twice the unreachable share, capped at 1.
    """
    total = len(nodes)
    if total < 2:
        return 0.0
    modes = [(_modes.IROH_ONLY if n['host'] in wave_hosts else n.get('mode')) for n in nodes]
    libp2p_only = sum(1 for m in modes if m == _modes.LIBP2P_ONLY)
    iroh_only = sum(1 for m in modes if m == _modes.IROH_ONLY)
    split = 2.0 * (2.0 * libp2p_only * iroh_only) / (total * (total - 1))
    per_host = {}
    for n in nodes:
        per_host[n['host']] = per_host.get(n['host'], 0) + 1
    largest_batch = max((sum(per_host.get(h, 0) for h in batch) for batch in batches), default=0)
    restarting = 2.0 * largest_batch / total
    return round(min(1.0, max(split, restarting)), 3)


def _nodes_by_host(nodes):
    by_host = {}
    for n in nodes:
        by_host.setdefault(n['host'], []).append(n)
    return by_host


def eligible_hosts(nodes, stage, exclude_hosts=()):
    """Hosts, by name, that have nodes below ``stage`` and all of them exactly one step below.

    Returns ``[(host, nodes_below_stage), ...]``. Forward moves go one step at a time, so a host
    with a node two steps behind is not eligible.
    """
    stage_index = _modes.MODES.index(stage)
    previous_mode = _modes.MODES[stage_index - 1]
    exclude = set(exclude_hosts or ())
    out = []
    for host, host_nodes in sorted(_nodes_by_host(nodes).items()):
        if host in exclude:
            continue
        below = [n for n in host_nodes
                 if n.get('mode') in _modes.MODES and _modes.MODES.index(n['mode']) < stage_index]
        if below and all(n['mode'] == previous_mode for n in below):
            out.append((host, len(below)))
    return out


def select_canaries(nodes, count, exclude_hosts=(), unjudged_hosts=()):
    """The canary hosts: hosts switched to dual_stack without a verdict first, then the first hosts by
    name whose nodes all run libp2p_only, ``count`` in all (deterministic).

    ``unjudged_hosts``: hosts with nodes switched without a verdict (a canary frozen because it could
    not be judged, or one whose controller died): they are judged again, never left behind for
    fresh hosts, even beyond ``count``. Those no longer in the fleet, excluded, with no node in
    dual_stack or with a node beyond it (a promotion's, judged by promote.yml) are not taken.
    """
    if int(count) < 1:
        raise PlanError('canary_count must be at least 1, got %r' % (count,))
    by_host = _nodes_by_host(nodes)
    exclude = set(exclude_hosts or ())
    allowed = (_modes.LIBP2P_ONLY, _modes.DUAL_STACK)
    again = [h for h in sorted(set(unjudged_hosts or ())) if h in by_host and h not in exclude
             and any(n.get('mode') == _modes.DUAL_STACK for n in by_host[h])
             and all(n.get('mode') in allowed for n in by_host[h])]
    fresh = [h for h, n_below in eligible_hosts(nodes, _modes.DUAL_STACK, exclude_hosts)
             if n_below == len(by_host[h]) and h not in again]
    return again + fresh[:max(0, int(count) - len(again))]


def plan_canary(nodes, count, exclude_hosts=(), unjudged_hosts=(), group=None, group_hosts=()):
    """The canary's hosts and how they were chosen.

    The inventory group ``group`` when it has hosts (``group_hosts``); else hosts an earlier canary switched
    without a verdict (judged again), then the first eligible hosts by name (select_canaries()).
    Raises PlanError when no host can be the canary.
    """
    if group_hosts:
        hosts = sorted(group_hosts)
        return {'stage': _modes.DUAL_STACK, 'hosts': hosts, 'batches': [hosts], 'batch_sizes': [len(hosts)],
                'rejudged_hosts': [], 'source': 'group',
                'message': 'canary: %s (group %s)' % (', '.join(hosts), group)}
    hosts = select_canaries(nodes, count, exclude_hosts, unjudged_hosts=unjudged_hosts)
    if not hosts:
        raise PlanError('no canary host: no fleet host outside the excluded ones has all its nodes on libp2p_only')
    rejudged = [h for h in hosts if h in unjudged_hosts]
    if rejudged == hosts:
        how = 'switched without a verdict by an earlier canary (frozen or interrupted), judged again'
    elif rejudged:
        how = ('%s switched without a verdict and judged again, then the first host(s) by name with every node on '
               'libp2p_only' % ', '.join(rejudged))
    else:
        how = 'first %d host(s) by name with every node on libp2p_only' % count
    return {'stage': _modes.DUAL_STACK, 'hosts': hosts, 'batches': [hosts], 'batch_sizes': [len(hosts)],
            'baseline_hosts': sorted({n['host'] for n in nodes if n['mode'] == _modes.LIBP2P_ONLY} - set(hosts)),
            'nodes_to_switch': sum(1 for n in nodes if n['host'] in hosts), 'rejudged_hosts': rejudged,
            'source': 'automatic', 'message': 'canary: %s (%s)' % (', '.join(hosts), how)}


def plan_rollback(nodes, target, strategy='fast', batches=('25%',), only_hosts=None, first_hosts=()):
    """Hosts with a node beyond ``target``, and how a rollback takes them: ``first_hosts`` (the worst by the
    alerting figure) first, the others by name.

    fast: one batch with every host; gradual: serial-style ``batches`` of those hosts.
    ``only_hosts`` None means the whole fleet; a list (even empty) limits it to those hosts.
    """
    if target not in (_modes.LIBP2P_ONLY, _modes.DUAL_STACK):
        raise PlanError('target must be libp2p_only or dual_stack, got %r' % (target,))
    if strategy not in ('fast', 'gradual'):
        raise PlanError('strategy must be fast or gradual, got %r' % (strategy,))
    target_index = _modes.MODES.index(target)
    only = None if only_hosts is None else set(only_hosts)
    affected = {}
    for n in nodes:
        if only is not None and n['host'] not in only:
            continue
        if n.get('mode') in _modes.MODES and _modes.MODES.index(n['mode']) > target_index:
            affected.setdefault(n['host'], []).append(n['service_name'])
    first = [h for h in first_hosts or () if h in affected]
    hosts = first + sorted(h for h in affected if h not in first)
    sizes = [len(hosts)] if strategy == 'fast' and hosts else batch_sizes(batches, len(hosts)) if hosts else []
    return {
        'target': target,
        'strategy': strategy,
        'hosts': hosts,
        'batch_sizes': sizes,
        'nodes_to_switch': sum(len(v) for v in affected.values()),
        'first_hosts': first,
        'message': ('%s rollback to %s: %d node(s) on %d host(s) in %d batch(es)%s'
                    % (strategy, target, sum(len(v) for v in affected.values()), len(hosts), len(sizes),
                       ', the hosts the alert names first (worst figure first: %s)' % shown(first) if first else '')
                    if hosts else 'nothing to roll back: no node runs beyond %s' % target),
    }


ROLLBACK_ORDERS = validation.ROLLBACK_ORDERS


def plan_fast_rollback(fleet_hosts, target, only_hosts=None, nodes=None, order='readable', close_group_size=5):
    """The fast rollback's plan, made without reading the fleet.

    Each host's switch reads its own nodes, leaves a host already at ``target`` untouched and reports the
    nodes it found beyond it; rollback_outcome() then names the hosts and nodes the rollback really had
    (``from_switch``). ``only_hosts`` None means the whole fleet; a list (even empty) limits it to those.

    ``order`` readable (the default): the hosts in as few rounds as keep every close group with a member that
    is not restarting in the round (readable_rounds); the rounds run one after the other, each waiting only
    for its own nodes' readiness. ``nodes`` are what the ledger knows (host, peer id, mode): a host it knows
    nothing of goes in the first round. all_at_once (an emergency): every host in one round.
    """
    if target not in (_modes.LIBP2P_ONLY, _modes.DUAL_STACK):
        raise PlanError('target must be libp2p_only or dual_stack, got %r' % (target,))
    if order not in ROLLBACK_ORDERS:
        raise PlanError('order must be readable or all_at_once, got %r' % (order,))
    scope = sorted(set(fleet_hosts) if only_hosts is None else set(fleet_hosts) & set(only_hosts))
    plan = {
        'target': target,
        'strategy': 'fast',
        'order': order,
        'hosts': scope,
        'batch_sizes': [len(scope)] if scope else [],
        'nodes_to_switch': None,
        'from_switch': True,
        'whole_fleet': only_hosts is None,
        'switch_group': 'fleet' if only_hosts is None else 'migration_rollback',
        'groups_on_one_host': 0,
    }
    if not scope:
        plan['message'] = 'nothing to roll back: no host in scope'
        return plan
    how = 'every node beyond it on %d host(s)' % len(scope)
    if order == 'readable':
        rounds, alone = readable_rounds(nodes or [], scope, target, close_group_size)
        plan.update(hosts=[h for r in rounds for h in r], batch_sizes=[len(r) for r in rounds],
                    groups_on_one_host=alone)
        if len(rounds) > 1:
            plan['switch_group'] = 'migration_rollback'  # the rounds' order, not the inventory's
        how += (' in %d round(s), readable: every close group keeps a member that is not restarting in each round, '
                'and each round waits only for its own nodes to be ready' % len(rounds))
        if alone:
            how += ('; %d close group(s) live entirely on one host and are unreadable while it restarts'
                    % alone)
    else:
        how += ' in one round, all at once (emergency: whole close groups restart together, client reads fail)'
    plan['message'] = ('fast rollback to %s: %s (each host\'s switch reads and reports its nodes; a host already at '
                       '%s is not touched)' % (target, how, target))
    return plan


def readable_rounds(nodes, hosts, target, close_group_size=5):
    """``hosts`` in as few rounds as possible such that no close group has all its members restarting in one round.

    ``nodes``: what the ledger knows of the network (every node with a peer id counts for the close groups;
    those of ``hosts`` beyond ``target`` restart). First fit, the hosts restarting most nodes first. A group
    whose members beyond ``target`` all live on one host cannot keep a holder (a host restarts its nodes
    together); the second value counts them. Returns ([[host, ...], ...], groups_on_one_host).
    """
    limit = _modes.mode_index(target)
    known = [dict(n, id=n.get('id') or n.get('node_id') or '%s/%s' % (n['host'], n.get('service_name')))
             for n in nodes if n.get('peer_id')]
    membership = _close_group_index(known, close_group_size) if known else {}
    group_size = {}
    for gids in membership.values():
        for gid in gids:
            group_size[gid] = group_size.get(gid, 0) + 1
    in_scope = set(hosts)
    restarting = {h: {} for h in hosts}
    for n in known:
        mode = n.get('mode') or _modes.STATE_MODE.get(n.get('state'))
        if n['host'] in in_scope and mode in _modes.MODES and _modes.mode_index(mode) > limit:
            for gid in membership.get(n['id'], ()):
                restarting[n['host']][gid] = restarting[n['host']].get(gid, 0) + 1
    alone = sum(1 for h in hosts for gid, c in restarting[h].items() if c >= group_size[gid])
    rounds, counts = [], []
    for host in sorted(hosts, key=lambda h: (-sum(restarting[h].values()), h)):
        add = restarting[host]
        fits = [i for i, count in enumerate(counts)
                if all(count.get(g, 0) + c < group_size[g] or (not count.get(g) and c >= group_size[g])
                       for g, c in add.items())]
        if fits:
            index = fits[0]
        else:
            index = len(rounds)
            rounds.append([])
            counts.append({})
        rounds[index].append(host)
        for g, c in add.items():
            counts[index][g] = counts[index].get(g, 0) + c
    return [sorted(r) for r in rounds], alone


ROLLBACK_OUTCOMES = ('succeeded', 'degraded', 'stopped_early', 'incomplete', 'failed')


def rollback_outcome(plan, switch_results, stopped_early=False, unknown_hosts=None):
    """How a rollback ended, from what its switch did on each host of the plan.

    ``switch_results``: {host: the transport_mode result registered on it} (absent or skipped: it never
    ran there). For a fast plan (``from_switch``) the rollback's hosts and nodes are what the switch found
    beyond the target. ``unknown_hosts``: {host: [service names]} the ledger has beyond the target but the
    inventory lacks: nobody could reach them, so the rollback cannot have succeeded.

    Outcome: ``failed`` (a switch failed or a host was unreachable), ``incomplete`` (hosts not attempted,
    or migrated hosts outside the inventory), ``stopped_early`` (a gradual rollback stopped by its gate
    with hosts left), ``degraded`` (every host back in the target mode but some nodes not ready),
    ``succeeded``.
    """
    from_switch = bool(plan.get('from_switch'))
    results = []
    for host in plan['hosts']:
        result = switch_results.get(host)
        ran = isinstance(result, dict) and not result.get('skipped')
        ok = ran and not result.get('failed') and not result.get('unreachable')
        beyond = result.get('beyond_target') if ran else None
        # A fast rollback's hosts are those its switch found beyond the target, failed on, or left a node
        # not ready on (a node whose mode could not be read is restarted in the target mode to be sure).
        affected = (not from_switch or not ok or beyond is None or len(beyond) > 0
                    or bool(result.get('not_ready')))
        results.append({'host': host, 'ran': ran, 'ok': ok, 'affected': affected, 'beyond': list(beyond or []),
                        'not_ready': list(result.get('not_ready') or []) if ran else []})
    mine = [r for r in results if r['affected']]
    hosts = [r['host'] for r in mine]
    nodes = (sum(len(r['beyond']) for r in mine) if from_switch else plan.get('nodes_to_switch'))
    rolled_back = [r['host'] for r in mine if r['ok']]
    failed = [r['host'] for r in mine if r['ran'] and not r['ok']]
    remaining = [r['host'] for r in mine if not r['ran']]
    not_ready = [{'host': r['host'], 'service_name': n.get('service_name'), 'seconds_waited': n.get('seconds_waited'),
                  'mode': n.get('mode')} for r in mine if r['ran'] for n in r['not_ready']]
    unknown = {h: sorted(v) for h, v in sorted((unknown_hosts or {}).items())}
    if failed:
        outcome = 'failed'
    elif unknown:
        outcome = 'incomplete'
    elif not_ready and not remaining:
        outcome = 'degraded'
    elif stopped_early and remaining:
        outcome = 'stopped_early'
    elif remaining:
        outcome = 'incomplete'
    else:
        outcome = 'succeeded'
    return {'outcome': outcome, 'hosts': hosts, 'nodes_to_switch': nodes, 'rolled_back_hosts': rolled_back,
            'not_rolled_back_hosts': [h for h in hosts if h not in rolled_back], 'failed_hosts': failed,
            'remaining_hosts': remaining, 'not_ready_nodes': not_ready, 'unknown_hosts': unknown}


def _fmt(value):
    return ('%d' % value) if float(value).is_integer() else ('%s' % value)


def _layout_batches(hosts, by_host, membership, batches_spec, limit):
    """Order hosts into batches of the serial sizes, moving a host to a later batch when it
    would put more than ``limit`` members of one close group in the same batch."""
    sizes = batch_sizes(batches_spec, len(hosts))
    pending = list(hosts)
    layout = []
    for size in sizes:
        if not pending:
            break
        batch, counts, worst = [], {}, 0
        for host in list(pending):
            if len(batch) >= size:
                break
            add = {}
            for n in by_host[host]:
                for gid in membership.get(n['id'], ()):
                    add[gid] = add.get(gid, 0) + 1
            if batch and any(counts.get(g, 0) + c > limit for g, c in add.items()):
                continue
            for g, c in add.items():
                counts[g] = counts.get(g, 0) + c
            worst = max([worst] + [counts[g] for g in add])
            batch.append(host)
            pending.remove(host)
        layout.append((batch, worst))
    while pending:
        # Hosts that never fitted go one per batch: a single host is always allowed.
        host = pending.pop(0)
        worst = 0
        counts = {}
        for n in by_host[host]:
            for gid in membership.get(n['id'], ()):
                counts[gid] = counts.get(gid, 0) + 1
                worst = max(worst, counts[gid])
        layout.append(([host], worst))
    return layout


# The fast rollback's cost beside the nodes' switches, measured on a 2-core controller (bench/rehearsal.py,
# docs/benchmarks.md "Rollback rehearsal"): the run's fixed cost (ansible-playbook's start, validation, lock, plan,
# conclusion) and each round's overhead beside its slowest switch (module start, drop-ins, restart, readiness poll).
FAST_ROLLBACK_MODEL = {'fixed_seconds': 2.9, 'per_host_overhead': 2.1}


def project_fast_rollback(hosts, nodes_per_host, switch_seconds, forks=50, per_host_overhead=2.0,
                          controller_seconds_per_host=0.4, controller_cores=2, rounds=None, fixed_seconds=0.0):
    """Projected wall time of a fast rollback of ``hosts`` hosts.

    Fast rollback restarts every node of a host at once and runs ``forks`` hosts in parallel, so
    a host takes about its slowest node's switch time plus the module's overhead; the controller
    spends ``controller_seconds_per_host`` of CPU per host on ``controller_cores`` cores.
    ``switch_seconds`` are measured per-node switch times (seconds to ready); the 95th
    percentile is used. ``rounds``: the rounds the rollback runs one after the other when known
    (the readable order's, see rollback_fork_rounds), else ``hosts / forks``; ``fixed_seconds``: the
    run's cost whatever its size (the playbook's start, validation, lock, plan and conclusion), which
    the rehearsal measures (services/rehearsal.py, docs/benchmarks.md).
    """
    if hosts <= 0:
        return {'seconds': 0.0, 'switch_p95': 0.0, 'rounds': 0, 'samples': len(switch_seconds or [])}
    samples = sorted(float(s) for s in (switch_seconds or []) if s is not None)
    p95 = samples[min(len(samples) - 1, int(math.ceil(0.95 * len(samples))) - 1)] if samples else None
    rounds = int(rounds) if rounds else int(math.ceil(hosts / float(max(1, forks))))
    per_round = (p95 if p95 is not None else 0.0) + per_host_overhead
    controller = hosts * controller_seconds_per_host / max(1, controller_cores)
    return {
        'seconds': round(fixed_seconds + rounds * per_round + controller, 1),
        'switch_p95': p95,
        'rounds': rounds,
        'samples': len(samples),
        'nodes_per_host': nodes_per_host,
    }


def rollback_fork_rounds(nodes, hosts, forks, order='readable', target=_modes.LIBP2P_ONLY):
    """How many rounds of at most ``forks`` hosts a fast rollback of ``hosts`` runs one after the other: the
    readable order's rounds (readable_rounds, from the close groups of ``nodes``), each in rounds of ``forks``;
    all_at_once (or no node with a peer id): ``hosts / forks``."""
    forks = max(1, int(forks))
    hosts = sorted(hosts)
    if order == 'readable' and any(n.get('peer_id') for n in nodes):
        layout = readable_rounds(nodes, hosts, target)[0]
        if layout:
            return sum(int(math.ceil(len(r) / float(forks))) for r in layout)
    return int(math.ceil(len(hosts) / float(forks))) if hosts else 0
