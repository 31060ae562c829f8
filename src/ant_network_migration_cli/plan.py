# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Migration plans: loading, validation against the published schema, and wave selection.

The selection functions at the bottom are pure (no I/O): given the fleet's hosts and the
modes its nodes run they say, deterministically, which hosts the canary and each wave
would touch and in which batches. ``start --dry-run`` prints exactly this.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import jsonschema
import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes as modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation, wave_planning

DEFAULT_BATCHES = (1, '10%', '25%')
# A plan is a few hundred bytes. A plan file is not trusted input (docs/cli.md, "Plan files are
# data"): its size and nesting bound what parsing it may cost.
MAX_PLAN_BYTES = 256 * 1024
MAX_PLAN_DEPTH = 16


class PlanError(ValueError):
    """A plan that cannot be used; ``problems`` lists one ``path: message`` per problem (one line
    each; a single problem gives a one-line message)."""

    def __init__(self, source, problems):
        self.source = source
        self.problems = [' '.join(str(p).split()) for p in problems]
        if len(self.problems) == 1:
            super().__init__(f'{source}: invalid plan: {self.problems[0]}')
        else:
            listing = '\n'.join('  - ' + p for p in self.problems)
            super().__init__(f'{source}: invalid plan:\n{listing}')


class _PlanLoader(yaml.SafeLoader):
    """YAML (and JSON, a subset) for plans: plain data only. Anchors and aliases are refused before
    anything is built (a "billion laughs" plan expands nothing), so are duplicate keys (which YAML
    would resolve silently, last one wins) and nesting deeper than MAX_PLAN_DEPTH."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(None, None, f'a YAML alias (*{event.anchor}) is not allowed in a plan: '
                                'write the value out', event.start_mark)
        if getattr(event, 'anchor', None):
            raise ComposerError(None, None, f'a YAML anchor (&{event.anchor}) is not allowed in a plan',
                                event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_PLAN_DEPTH:
                raise ComposerError(None, None, f'nested deeper than {MAX_PLAN_DEPTH} levels', event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        first_line = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = first_line.get(key)
            except TypeError:       # an unhashable key: the constructor below says so
                continue
            if first is not None:
                raise ConstructorError(None, None, f'duplicate key {key!r} (first on line {first})',
                                       key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


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


def parse_duration(value, name='duration'):
    """Seconds (int) from an integer or a Prometheus-style duration string (``5m``): the
    collection's one duration validator (plugin_utils/validation.py)."""
    return validation.duration(value, name)


def prometheus_duration(value):
    """A duration as Prometheus writes it (``300`` -> ``300s``; ``5m`` unchanged)."""
    return f'{value}s' if isinstance(value, int) else str(value)


def validate(data, source='plan'):
    """Validate plan data; return it normalised, or raise PlanError naming every problem."""
    validator = jsonschema.Draft202012Validator(schema())
    problems = sorted({_describe(e) for e in validator.iter_errors(data)})
    if problems:
        raise PlanError(source, problems)
    # What the schema cannot say: JSON Schema's "integer" accepts 25.0; the collection's one
    # validator (the playbooks use it too) wants an integer written as such.
    for index, wave in enumerate(data['waves']):
        try:
            validation.wave_percent(wave['percent'], f'waves[{index}].percent')
        except validation.InputError as exc:
            problems.append(str(exc).replace(' Nothing was touched.', ''))
    if problems:
        raise PlanError(source, problems)
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


def _read(path):
    """The plan's text: a regular file of at most MAX_PLAN_BYTES, UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused as not a regular file.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), 'rb') as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise PlanError(str(path), ['(plan): not a regular file'])
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(str(path), [f'(plan): cannot read the file: {exc.strerror}']) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(str(path), [f'(plan): larger than {MAX_PLAN_BYTES // 1024} KiB; a plan is a short YAML or '
                                    'JSON file'])
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise PlanError(str(path), [f'(plan): not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); '
                                    'a plan is a YAML or JSON file']) from None


def parse(text, source='plan'):
    """Plan data from YAML or JSON text (_PlanLoader's rules). Raises PlanError with one line."""
    try:
        # YAML is a superset of JSON: one parser for both.
        return yaml.load(text, Loader=_PlanLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        problem = getattr(exc, 'problem', None) or exc
        raise PlanError(source, [f'(plan): not valid YAML or JSON{where}: {problem}']) from None


def load(path):
    """Read, parse and validate a plan file (YAML or JSON). Raises PlanError."""
    path = Path(path)
    data = parse(_read(path), str(path))
    if not isinstance(data, dict):
        raise PlanError(str(path), [f'(plan): expected a mapping of plan fields, got {type(data).__name__}'])
    validate(data, str(path))
    if data.get('inventory') and not Path(data['inventory']).is_absolute():
        data['inventory'] = str((path.parent / data['inventory']).resolve())
    return data


# Directories of an inventory directory that hold variables, not inventory sources.
_VARIABLE_DIRS = ('group_vars', 'host_vars')
_PLUGIN_CONFIG = re.compile(rb'^plugin\s*:', re.MULTILINE)


def _inventory_files(path, seen=None):
    """The files Ansible reads as inventory sources for ``path``: the file, or every file of the
    directory and its subdirectories (symbolic links followed, as Ansible does), sorted."""
    seen = set() if seen is None else seen
    if not path.is_dir():
        yield path
        return
    real = os.path.realpath(path)
    if real in seen:
        return
    seen.add(real)
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            if entry.name not in _VARIABLE_DIRS:
                yield from _inventory_files(entry, seen)
        else:
            yield entry


def inventory_runs_code(path):
    """Why reading the inventory at ``path`` would run code on this controller, or None.

    Ansible runs an executable inventory file (its ``script`` inventory plugin) and loads the
    plugin a YAML file names with ``plugin:`` (which may template, query or execute); in a
    directory it reads every file but group_vars/ and host_vars/. A plan is not trusted to make
    the controller run code, not even in a dry run (docs/cli.md)."""
    for candidate in _inventory_files(Path(path)):
        try:
            mode = candidate.stat().st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            continue
        if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            return f'{candidate} is executable (Ansible would run it as a script inventory)'
        try:
            with open(candidate, 'rb') as handle:
                head = handle.read(64 * 1024)
        except OSError:
            continue
        if _PLUGIN_CONFIG.search(head):
            return f'{candidate} configures an inventory plugin (`plugin:`), which runs code when Ansible reads it'
    return None


def alert_overrides(plan, base=None):
    """``thresholds`` of a plan as the playbooks' ``migration_alert_overrides``.

    ``base``: the overrides the inventory already sets (extra vars replace a variable whole, so
    the plan's fields are merged over them per rule instead of dropping them).
    """
    out = {rule: dict(fields) for rule, fields in (base or {}).items() if isinstance(fields, dict)}
    for rule, override in sorted((plan.get('thresholds') or {}).items()):
        item = out.setdefault(rule, {})
        if 'threshold' in override:
            item['threshold'] = override['threshold']
        if 'for' in override:
            item['for'] = prometheus_duration(override['for'])
    return out


# --- deterministic selection (pure) -------------------------------------------------------------
# Which hosts a wave touches is decided by the collection's wave_planning.plan_wave, the same
# function the rollout's migration_wave_plan action calls; here it is only chained over the
# stages of a plan, each stage seeing the fleet as the previous ones leave it.

@dataclass(frozen=True)
class Selection:
    """What one stage of a plan would touch."""

    stage: str                      # 'canary' or 'wave'
    percent: float | None           # the wave's target, None for the canary
    target_nodes: int               # nodes that must be in dual_stack or beyond after this stage
    nodes_before: int               # nodes in dual_stack or beyond before it
    nodes_after: int                # ... and after it, as planned
    hosts: tuple = ()               # hosts touched, in order
    batches: tuple = ()             # hosts per serial batch
    skipped: str = ''               # why nothing is touched, if so
    notes: tuple = field(default=())
    refusals: tuple = field(default=())   # why the rollout would refuse this wave (the planner's words)


def _forward(mode):
    return mode in modes.MODES and mode != modes.LIBP2P_ONLY


def select_plan(nodes: Sequence[Mapping], waves: Sequence[Mapping], exclude: Iterable[str] = (),
                canary_count: int = 0, canary_hosts: Sequence[str] = (), canary_done: bool = False,
                default_batches=DEFAULT_BATCHES, max_close_group_share=None, planning=None):
    """The stages of a plan and the hosts each would touch, in order.

    ``nodes``: every node of the fleet as dicts with ``host``, ``service_name``, ``peer_id``
    and ``mode`` (what it runs now). ``exclude``: host names (groups already expanded).
    ``canary_hosts``: explicit canaries (the plan's, or the inventory's canary group), else
    wave_planning.select_canaries picks ``canary_count`` (as the canary role does).
    ``canary_done``: the ledger records a passed canary, so the canary stage is skipped.
    ``planning``: the refusal settings the rollout uses (max_partition_risk, switch_seconds,
    rollback_sla_seconds, rollback_forks ...), passed to the one planner; a stage's ``refusals``
    are what the rollout would refuse it for.
    Raises PlanError (with the wave named) when a wave cannot be planned at all.
    """
    fleet = [dict(n) for n in nodes]
    exclude = sorted(set(exclude))

    def moved():
        return sum(1 for n in fleet if _forward(n.get('mode')))

    def switch(hosts):
        for node in fleet:
            if node['host'] in hosts and node.get('mode') == modes.LIBP2P_ONLY:
                node['mode'] = modes.DUAL_STACK

    stages = []
    if canary_count or canary_hosts:
        before = moved()
        if canary_done:
            stages.append(Selection('canary', None, before, before, before,
                                    skipped='the ledger records a passed canary'))
        else:
            if canary_hosts:
                hosts = {n['host'] for n in fleet}
                candidates = wave_planning.select_canaries(fleet, max(1, len(hosts)), exclude) if hosts else []
                chosen = sorted(canary_hosts)
                notes = tuple(f'{h}: not a canary candidate (already moved, excluded or unknown)'
                              for h in chosen if h not in candidates)
            else:
                chosen = wave_planning.select_canaries(fleet, canary_count, exclude)
                notes = () if len(chosen) == canary_count else (
                    f'only {len(chosen)} of the {canary_count} canaries asked for have every node on libp2p_only',)
            switch(set(chosen))
            after = moved()
            stages.append(Selection('canary', None, after, before, after, hosts=tuple(chosen),
                                    batches=(tuple(chosen),), notes=notes))

    kwargs = dict(planning or {})
    if max_close_group_share is not None:
        kwargs['max_close_group_share'] = max_close_group_share
    for index, wave in enumerate(waves):
        before = moved()
        try:
            planned = wave_planning.plan_wave(fleet, wave['percent'], stage=modes.DUAL_STACK,
                                              batches=wave.get('batches') or default_batches,
                                              exclude_hosts=exclude, **kwargs)
        except wave_planning.PlanError as exc:
            raise PlanError('plan', [f'waves[{index}]: {exc}']) from None
        hosts = tuple(planned['hosts'])
        switch(set(hosts))
        after = moved()
        refused = tuple(planned.get('refusals') or ())
        skipped = '' if hosts or refused else planned['message']
        notes = (planned['message'],) if hosts and after < planned['target_nodes'] else ()
        stages.append(Selection('wave', wave['percent'], planned['target_nodes'], before, after, hosts=hosts,
                                batches=tuple(tuple(b) for b in planned['batches']), skipped=skipped,
                                notes=notes, refusals=refused))
    return stages
