# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Migration plans: loading, validation against the published schema, and wave selection.

The selection functions at the bottom are pure (no I/O): given the fleet's hosts and the
ledger's node states they say, deterministically, which hosts the canary and each wave
would touch and in which batches. ``start --dry-run`` prints exactly this.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import jsonschema
import yaml
from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes

DEFAULT_BATCHES = (1, '10%', '25%')

# Ledger states whose node still runs libp2p only: a host is a candidate for a wave only if
# every node it has in the ledger is in one of these (a rolled-back node may be migrated again).
UNTOUCHED_STATES = frozenset(
    state for state, mode in modes.STATE_MODE.items() if mode == modes.LIBP2P_ONLY)

_DURATION_RE = re.compile(r'^([0-9]+)(ms|s|m|h|d|w)$')
_UNIT_SECONDS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class PlanError(ValueError):
    """A plan that cannot be used; ``problems`` lists one ``path: message`` per problem."""

    def __init__(self, source, problems):
        self.source = source
        self.problems = list(problems)
        listing = '\n'.join('  - ' + p for p in self.problems)
        super().__init__(f'{source}: invalid plan:\n{listing}')


def schema():
    """The published plan schema (``plan.schema.json`` next to this file)."""
    text = resources.files(__package__).joinpath('plan.schema.json').read_text(encoding='utf-8')
    return json.loads(text)


def field_path(parts):
    """``['waves', 1, 'percent']`` -> ``waves[1].percent``; the empty path is ``(plan)``."""
    out = ''
    for part in parts:
        if isinstance(part, int):
            out += f'[{part}]'
        else:
            out += ('.' if out else '') + str(part)
    return out or '(plan)'


def _describe(error):
    """One readable ``path: problem`` line for a jsonschema error."""
    path = list(error.absolute_path)
    if error.validator == 'required':
        missing = re.match(r"'(.+)' is a required property", error.message)
        name = missing.group(1) if missing else error.message
        return f'{field_path(path + [name])}: required field is missing'
    if error.validator == 'additionalProperties':
        extra = re.findall(r"'([^']+)'", error.message.split('(')[-1])
        allowed = ', '.join(sorted(error.schema.get('properties', {})))
        return '; '.join(f'{field_path(path + [name])}: unknown field (allowed: {allowed})'
                         for name in extra or ['?'])
    if error.validator == 'oneOf':
        hint = error.schema.get('description', 'no alternative matches')
        return f'{field_path(path)}: {error.instance!r} is not valid: {hint}'
    if error.validator == 'propertyNames':
        return f'{field_path(path)}: {error.instance!r} is not a valid name (lower-case letters, digits, _)'
    if error.validator == 'const':
        return f'{field_path(path)}: must be {error.validator_value!r}, got {error.instance!r}'
    return f'{field_path(path)}: {error.message}'


def parse_duration(value):
    """Seconds (int) from an integer or a Prometheus-style duration string (``5m``)."""
    if isinstance(value, bool):
        raise ValueError(f'not a duration: {value!r}')
    if isinstance(value, int):
        return value
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f'not a duration: {value!r} (use seconds or 30s, 5m, 2h, 7d)')
    return int(math.ceil(int(match.group(1)) * _UNIT_SECONDS[match.group(2)]))


def prometheus_duration(value):
    """A duration as Prometheus writes it (``300`` -> ``300s``; ``5m`` unchanged)."""
    return f'{value}s' if isinstance(value, int) else str(value)


def validate(data, source='plan'):
    """Validate plan data; return it normalised, or raise PlanError naming every problem."""
    validator = jsonschema.Draft202012Validator(schema())
    problems = sorted({_describe(e) for e in validator.iter_errors(data)})
    if problems:
        raise PlanError(source, problems)
    # What the schema cannot say.
    previous = None
    for index, wave in enumerate(data['waves']):
        if previous is not None and wave['percent'] <= previous:
            problems.append(f"waves[{index}].percent: {wave['percent']} must be greater than"
                            f" the previous wave's {previous}")
        previous = wave['percent']
    canary = data.get('canary') or {}
    if canary.get('hosts') and len(canary['hosts']) != canary['count']:
        problems.append(f"canary.hosts: lists {len(canary['hosts'])} hosts but canary.count is {canary['count']}")
    if problems:
        raise PlanError(source, problems)
    return data


def check_rule_ids(data, known_rule_ids, source='plan'):
    """Threshold overrides must name known alert rules."""
    known = set(known_rule_ids)
    listing = ', '.join(sorted(known))
    problems = [f'thresholds.{rule}: unknown alert rule (known: {listing})'
                for rule in sorted(data.get('thresholds') or {}) if rule not in known]
    if problems:
        raise PlanError(source, problems)


def load(path):
    """Read, parse and validate a plan file (YAML or JSON). Raises PlanError."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as exc:
        raise PlanError(str(path), [f'(plan): cannot read the file: {exc.strerror}']) from None
    try:
        # YAML is a superset of JSON: one parser for both.
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        problem = getattr(exc, 'problem', None) or exc
        raise PlanError(str(path), [f'(plan): not valid YAML or JSON{where}: {problem}']) from None
    if not isinstance(data, dict):
        raise PlanError(str(path), [f'(plan): expected a mapping of plan fields, got {type(data).__name__}'])
    validate(data, str(path))
    if data.get('inventory') and not Path(data['inventory']).is_absolute():
        data['inventory'] = str((path.parent / data['inventory']).resolve())
    return data


def alert_overrides(plan):
    """``thresholds`` of a plan as the playbooks' ``migration_alert_overrides``."""
    out = {}
    for rule, override in sorted((plan.get('thresholds') or {}).items()):
        item = {}
        if 'threshold' in override:
            item['threshold'] = override['threshold']
        if 'for' in override:
            item['for'] = prometheus_duration(override['for'])
        out[rule] = item
    return out


# --- deterministic selection (pure) -------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What one stage of a plan would touch."""

    stage: str                      # 'canary' or 'wave'
    percent: int | None             # the wave's target, None for the canary
    target_nodes: int               # nodes that must be past libp2p_only after this stage
    nodes_before: int               # nodes past libp2p_only before it
    nodes_after: int                # ... and after it, as planned
    hosts: tuple = ()               # hosts touched, in order
    batches: tuple = ()             # hosts per serial batch
    skipped: str = ''               # why nothing is touched, if so
    notes: tuple = field(default=())


def serial_batches(hosts, batches=DEFAULT_BATCHES):
    """Split ``hosts`` as Ansible's ``serial`` list would (percentages of the play, floor, min 1;
    the last size repeats)."""
    hosts = list(hosts)
    sizes = list(batches) or [len(hosts) or 1]
    out, index, step = [], 0, 0
    while index < len(hosts):
        size = sizes[min(step, len(sizes) - 1)]
        if isinstance(size, str) and size.endswith('%'):
            size = max(1, int(float(size[:-1]) / 100.0 * len(hosts)))
        size = max(1, int(size))
        out.append(tuple(hosts[index:index + size]))
        index += size
        step += 1
    return tuple(out)


def _weights(hosts, node_states):
    """Nodes per host: the ledger's count where it knows the host, else the mean of the known
    counts (1 when the ledger knows no host: hosts then weigh the same)."""
    known = {h: len(node_states[h]) for h in hosts if node_states.get(h)}
    default = round(sum(known.values()) / len(known)) if known else 1
    return {h: known.get(h, default) for h in hosts}


def _is_untouched(host, node_states):
    return all(state in UNTOUCHED_STATES for state in node_states.get(host, ()))


def candidate_hosts(hosts, node_states, exclude=()):
    """Hosts a stage may touch, in the order it touches them: sorted by name, without excluded
    hosts and without hosts that have a node already past libp2p_only in the ledger."""
    excluded = set(exclude)
    return [h for h in sorted(set(hosts)) if h not in excluded and _is_untouched(h, node_states)]


def select_plan(hosts: Iterable[str], waves: Sequence[Mapping], node_states: Mapping[str, Sequence[str]],
                exclude: Iterable[str] = (), canary_count: int = 0, canary_hosts: Sequence[str] = (),
                canary_done: bool = False, default_batches=DEFAULT_BATCHES):
    """The stages of a plan and the hosts each would touch, in order.

    ``hosts``: every host of the fleet; ``node_states``: host -> ledger states of its nodes
    (hosts the ledger does not know count as untouched); ``exclude``: host names (groups already
    expanded); ``canary_hosts``: explicit canaries (else the first ``canary_count`` candidates);
    ``canary_done``: the ledger records a passed canary (the canary stage is skipped).
    Waves are whole hosts; a wave picks candidates until the fleet reaches its percentage.
    """
    hosts = sorted(set(hosts))
    weights = _weights(hosts, node_states)
    total = sum(weights.values())
    moved = {h: sum(1 for s in node_states.get(h, ()) if s not in UNTOUCHED_STATES) for h in hosts}
    done = sum(moved.values())
    remaining = candidate_hosts(hosts, node_states, exclude)
    stages = []

    if canary_count or canary_hosts:
        if canary_done:
            stages.append(Selection('canary', None, done, done, done,
                                    skipped='the ledger records a passed canary'))
        else:
            chosen = list(canary_hosts) or remaining[:canary_count]
            notes = tuple(f'{h}: already past libp2p_only or excluded; canary.yml decides'
                          for h in chosen if h not in remaining)
            added = sum(weights.get(h, 0) for h in chosen if h in remaining)
            stages.append(Selection('canary', None, done + added, done, done + added,
                                    hosts=tuple(chosen), batches=(tuple(chosen),), notes=notes))
            done += added
            remaining = [h for h in remaining if h not in chosen]

    for wave in waves:
        percent = int(wave['percent'])
        target = int(math.ceil(percent * total / 100.0))
        before = done
        picked = []
        while done < target and remaining:
            host = remaining.pop(0)
            picked.append(host)
            done += weights[host]
        skipped = ''
        notes = ()
        if not picked:
            skipped = (f'the fleet is already at {before} of {total} nodes (target {target})'
                       if before >= target else 'no candidate host left (all migrated or excluded)')
        elif done < target:
            notes = (f'only {done} of the {target} nodes needed are available (excluded or migrated hosts)',)
        stages.append(Selection('wave', percent, target, before, done, hosts=tuple(picked),
                                batches=serial_batches(picked, wave.get('batches') or default_batches),
                                skipped=skipped, notes=notes))
    return stages
