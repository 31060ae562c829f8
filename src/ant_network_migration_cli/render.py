# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rich rendering of ledger and Prometheus figures. Pure functions of the data they are given."""

from __future__ import annotations

import datetime as dt
import json

from rich.markup import escape
from rich.table import Table

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import guard, redaction


def fmt_time(value):
    """ISO-8601 (UTC, seconds) for an epoch, a datetime or an ISO string; '-' for None."""
    if value is None or value == '':
        return '-'
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    return str(value)


def fmt_number(value, unit='', digits=2):
    if value is None:
        return '-'
    if isinstance(value, float):
        text = f'{value:.{digits}f}'
    else:
        text = str(value)
    return f'{text}{unit}'


def to_json(data):
    """JSON text for command output: sorted keys, timestamps and other objects as strings, every
    value through the collection's redaction (passwords in DSNs and URLs, secret-looking keys)."""
    def default(obj):
        if isinstance(obj, dt.datetime):
            return fmt_time(obj)
        if isinstance(obj, (set, tuple)):
            return list(obj)
        return str(obj)

    return json.dumps(redaction.redact(data), indent=2, sort_keys=True, default=default)


def flag_text(name, flag):
    if not flag:
        return f'[green]not {name}[/green]'
    who = flag.get('operator') or flag.get('source') or '?'
    return (f"[bold red]{name.upper()}[/bold red]: {escape(str(flag.get('reason', '')))} "
            f"(by {escape(str(who))}, {fmt_time(flag.get('at'))})")


def summary_table(progress, flags, canary, plan=None, short=False, status=None):
    table = Table(title='Migration' if short else 'Migration status', show_header=False, title_justify='left')
    table.add_column('what', style='bold')
    table.add_column('value')
    table.add_row('progress', f"{fmt_number(progress.get('progress_percent'), ' %')}  "
                              f"({progress.get('migrated', 0)} / {progress.get('total', 0)} nodes in iroh_primary"
                              ' or iroh_only)')
    table.add_row('phase', str(progress.get('phase', '-')))
    table.add_row('dual-stack coverage', fmt_number(progress.get('dual_stack_coverage_percent'), ' %'))
    table.add_row('dual-stack nodes', str(progress.get('dual_stack', 0)))
    table.add_row('rolled back', str(progress.get('rolled_back', 0)))
    table.add_row('velocity', fmt_number(progress.get('velocity_nodes_per_hour'), ' nodes/h'))
    table.add_row('ETA', fmt_time(progress.get('eta')))
    if short:
        return table
    if plan:
        table.add_row('plan', plan_text(plan))
    table.add_row('canary', canary_text(canary))
    table.add_row('paused', flag_text('paused', flags.get('paused')))
    table.add_row('halted', flag_text('halted', flags.get('halted')))
    if status is not None:
        ledger_rows(table, status)
    return table


def ledger_rows(table, status):
    """What the ledger records beyond progress and flags (services/control.py status()): the fleet read or not,
    nodes not ready, unrecorded switches, the run lock and its heartbeat, the failure budget, the last run."""
    progress = status['progress']
    if not progress.get('fleet_read', True):
        table.add_row('fleet', '[yellow]not read yet: no playbook has looked at its nodes '
                               '(playbooks/reconcile.yml reads every host)[/yellow]')
    not_ready = progress.get('not_ready') or 0
    table.add_row('not ready', f'[bold red]{not_ready} node(s)[/bold red]' if not_ready else '0')
    intents = status.get('intents') or []
    table.add_row('unrecorded switches', f'[bold red]{escape(guard.describe_intents(intents))}[/bold red]: '
                  'reconcile (playbooks/reconcile.yml -e fix=true), then resume --ack' if intents else 'none')
    table.add_row('run lock', lock_text(status.get('lock'), status.get('lock_live')))
    budget = escape(status.get('budget_text') or '')
    table.add_row('failure budget', f'[bold red]{budget}: EXHAUSTED[/bold red]' if status.get('budget_exhausted')
                  else budget)
    table.add_row('last run', run_text(status.get('run')))


def lock_text(lock, live):
    if not lock:
        return 'free'
    text = escape(f"held by {lock.get('holder')} (playbook {lock.get('playbook')}, run {lock.get('run_id')}, since "
                  f"{fmt_time(lock.get('started_at'))}, last heartbeat {fmt_time(lock.get('heartbeat_at'))})")
    return text + ('' if live else ' [yellow]- its holder is gone: the next run takes it over[/yellow]')


def run_text(run):
    if not run:
        return 'none yet'
    text = escape(f"{run.get('stage') or run.get('kind')} (run {run.get('id')}, {run.get('playbook')}, by "
                  f"{run.get('operator')}, started {fmt_time(run.get('started_at'))})")
    if run.get('running'):
        return text + ': [bold]running[/bold]'
    style = 'bold red' if run.get('failed') else 'green'
    return text + f": [{style}]{escape(str(run.get('outcome')))}[/{style}] at {fmt_time(run.get('ended_at'))}"


def plan_text(plan):
    text = escape(f"{plan.get('plan')} (started {fmt_time(plan.get('started_at'))} by {plan.get('operator')})")
    if plan.get('deadline'):
        text += f"; complete by {fmt_time(plan['deadline'])}"
        if plan.get('on_track') is True:
            text += ': [green]ETA on track[/green]'
        elif plan.get('on_track') is False:
            text += f": [red]ETA {plan['late_seconds'] / 3600:.1f} h late[/red]"
    return text


def canary_text(canary):
    if not canary:
        return 'not run'
    if isinstance(canary, dict):
        verdict = canary.get('verdict') or '?'
        when = canary.get('at')
        reason = canary.get('reason') or ''
        return f"{verdict}{' (' + fmt_time(when) + ')' if when else ''}{': ' + reason if reason else ''}"
    return str(canary)


def states_table(by_state):
    table = Table(title='Nodes per state', title_justify='left')
    table.add_column('state')
    table.add_column('nodes', justify='right')
    for state in modes.STATES:
        table.add_row(state, str((by_state or {}).get(state, 0)))
    return table


def events_table(events, title='Recent events'):
    table = Table(title=title, title_justify='left')
    table.add_column('time')
    table.add_column('kind')
    table.add_column('detail', overflow='fold')
    for event in events:
        table.add_row(fmt_time(event.get('at') or event.get('time')), str(event.get('kind', '')),
                      event_detail(event))
    return table


def event_detail(event):
    parts = []
    for key in ('reason', 'message', 'rule', 'verdict', 'value', 'threshold', 'operator', 'host', 'node'):
        if event.get(key) not in (None, ''):
            parts.append(f'{key}={event[key]}')
    details = event.get('details') or event.get('data')
    if isinstance(details, dict):
        parts.extend(f'{k}={v}' for k, v in sorted(details.items()) if not isinstance(v, (dict, list)))
        for rule in details.get('rules') or []:     # a gate verdict: each rule, value against threshold
            if isinstance(rule, dict) and rule.get('id'):
                value = rule.get('value')
                shown = f'{value:.4g}' if isinstance(value, (int, float)) else 'no data'
                parts.append(f"({rule['id']} {shown}/{rule.get('threshold')} {rule.get('verdict')})")
    elif details:
        parts.append(str(details))
    return escape(' '.join(parts))


def nodes_table(nodes):
    table = Table(title='Nodes', title_justify='left')
    for column in ('host', 'node', 'state', 'since'):
        table.add_column(column)
    for node in nodes:
        table.add_row(str(node.get('host', '')), str(node.get('node') or node.get('service_name') or ''),
                      str(node.get('state', '')), fmt_time(node.get('updated_at') or node.get('since')))
    return table


def selection_heading(stage, index):
    if stage.stage == 'canary':
        title = '[bold]Canary[/bold]'
    else:
        title = f'[bold]Wave {index}[/bold]: bring the fleet to {stage.percent} %'
    return (f'{title} — nodes in dual_stack or beyond: {stage.nodes_before} -> {stage.nodes_after} '
            f'(target {stage.target_nodes})')


def selection_table(stage):
    """One stage of a dry run: hosts per batch, in order."""
    table = Table()
    table.add_column('batch', justify='right')
    table.add_column('hosts, in order', overflow='fold')
    if stage.skipped:
        table.add_row('-', f'[yellow]nothing to do: {escape(stage.skipped)}[/yellow]')
    for number, batch in enumerate(stage.batches, 1):
        table.add_row(str(number), ', '.join(batch))
    for note in stage.notes:
        table.add_row('', f'[yellow]note: {escape(note)}[/yellow]')
    for refusal in getattr(stage, 'refusals', ()):
        table.add_row('', f'[red]refused: {escape(refusal)}[/red]')
    return table


FIGURE_COLUMNS = (
    ('health_score', 'health', '{:.2f}'),
    ('request_rate', 'req/s', '{:.1f}'),
    ('error_rate', 'errors', 'pct'),
    ('latency_p50', 'p50', 'ms'),
    ('latency_p95', 'p95', 'ms'),
    ('latency_p99', 'p99', 'ms'),
    ('active_connections', 'connections', '{:.0f}'),
)


def fmt_figure(value, style):
    if value is None:
        return '[dim]no data[/dim]'
    if style == 'pct':
        return f'{100 * value:.2f} %'
    if style == 'ms':
        return f'{1000 * value:.0f} ms'
    return style.format(value)


def transport_table(figures, transports):
    risk = figures.fleet.get('partition_risk')
    table = Table(title=f"Transports (fleet partition risk: {fmt_figure(risk, '{:.2f}')})", title_justify='left')
    table.add_column('transport')
    for _, header, _ in FIGURE_COLUMNS:
        table.add_column(header, justify='right')
    for transport in transports:
        values = figures.transports.get(transport, {})
        table.add_row(transport, *(fmt_figure(values.get(figure), style) for figure, _, style in FIGURE_COLUMNS))
    return table


def verdicts_table(rules):
    """The gate's rules (services/health.py fleet_health: each rule's value over its window, pass / fail /
    no_data / skipped, and why)."""
    table = Table(title='Alert rules (the gate now)', title_justify='left')
    for column in ('rule', 'severity', 'value', 'threshold', 'verdict', 'why'):
        table.add_column(column, overflow='fold')
    colour = {'pass': 'green', 'fail': 'bold red', 'no_data': 'yellow', 'skipped': 'dim'}
    for rule in rules:
        value = '-' if rule['value'] is None else f"{rule['value']:.4g}"
        style = colour.get(rule['verdict'], 'yellow')
        table.add_row(rule['id'], rule['severity'], value,
                      f"{rule['comparison']} {rule['threshold']:g} over {rule['window']}",
                      f"[{style}]{rule['verdict']}[/{style}]", escape(rule.get('reason') or ''))
    return table


def node_health_table(nodes):
    table = Table(title=(f"Node health (ledger): {nodes['healthy']} healthy, {nodes['unhealthy']} unhealthy, "
                         f"{nodes['unknown']} not checked yet"), title_justify='left', min_width=80)
    for column in ('node', 'state', 'checked', 'detail'):
        table.add_column(column, overflow='fold')
    for node in nodes['unhealthy_nodes'][:50]:
        detail = node.get('detail') or {}
        text = detail.get('msg') or detail.get('reason') or ', '.join(
            f'{k}={v}' for k, v in sorted(detail.items()) if not isinstance(v, (dict, list)))
        table.add_row(node['node_id'], node['state'], fmt_time(node.get('at')), escape(text))
    return table
