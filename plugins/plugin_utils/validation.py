# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One validator per kind of operator input: the single place that says what is accepted.

Used by the ``migration_inputs`` and ``migration_wave_plan`` action plugins and the CLI; the
roles' argument specs and the CLI's plan schema mirror these (tests/unit/test_validation.py
checks that they agree). Every validator takes the raw value as the operator wrote it (an
extra var arrives as a string from ``-e key=value``, as JSON types from ``-e '{...}'`` or
AWX) and the operator's variable name, and either returns the normalised value or raises
InputError whose message names that variable and the accepted form.

Nothing here converts loosely: ``1e2``, ``' 25'`` and ``25.0`` are not a wave percentage even
though Python's or Jinja's ``int`` would turn them into one.
"""

from __future__ import annotations

import difflib
import functools
import glob
import math
import os
import re

import yaml

from ansible_collections.autonomi.network_migration.plugins.module_utils import _modes
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.wording import shown

# Accepted forms, as the messages (and docs) state them.
WAVE_FORM = 'an integer from 1 to 100 written as such, e.g. wave=25'
DURATION_FORM = 'seconds as an integer (e.g. 300) or a duration such as 30s, 5m, 2h, 7d'
BOOLEAN_FORM = 'true or false (also yes/no, on/off, 1/0, as AWX passes them)'
NAME_FORM = 'letters, digits and _ . : - only'
COUNT_FORM = 'a whole number written as such, e.g. 2'
BATCHES_FORM = 'a list of batch sizes, each a whole number of hosts or a percentage of the wave, e.g. [1, "10%", "25%"]'
FRACTION_FORM = 'a number above 0 and at most 1, e.g. 0.4'
TEXT_FORM = 'a text, e.g. -e \'{"NAME": "two words"}\' or -e \'NAME="two words"\''

STRATEGIES = ('fast', 'gradual')
# The fast rollback's orders (wave_planning.plan_fast_rollback): readable rounds, or every host at once.
ROLLBACK_ORDERS = ('readable', 'all_at_once')
ROLLBACK_TARGETS = (_modes.LIBP2P_ONLY, _modes.DUAL_STACK)
WAVE_STAGES = tuple(_modes.MODES[1:])
ROLLBACK_POLICIES = ('rollback', 'freeze')

# The plan schema's and argument specs' patterns are these (checked by tests).
NAME_PATTERN = r'^[A-Za-z0-9_.:-]+$'
DURATION_PATTERN = r'^([0-9]+(ms|s|m|h|d|w|y))+$'
_NAME = re.compile(NAME_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_DIGITS = re.compile(r'^[0-9]+$')
_UNIT_SECONDS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0')


class InputError(MigrationError, ValueError):
    """An operator input that is not accepted. ``name`` is the operator's variable."""

    def __init__(self, name, value, accepted, why=None):
        self.name = name
        self.value = value
        self.accepted = accepted
        detail = f' ({why})' if why else ''
        super().__init__(f'{name}={value!r} is not accepted{detail}: use {accepted}. Nothing was touched.')


def integer(value, name, minimum=None, maximum=None, accepted=COUNT_FORM):
    """A whole number written as one: an int (not a bool) or a string of digits, nothing else."""
    if isinstance(value, bool) or value is None:
        raise InputError(name, value, accepted)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.match(value):
        number = int(value)
    else:
        raise InputError(name, value, accepted)
    if minimum is not None and number < minimum:
        raise InputError(name, value, accepted, f'less than {minimum}')
    if maximum is not None and number > maximum:
        raise InputError(name, value, accepted, f'more than {maximum}')
    return number


def wave_percent(value, name='wave'):
    """The fleet percentage of a wave: 1..100, an integer written as such."""
    return integer(value, name, minimum=1, maximum=100, accepted=WAVE_FORM)


def duration(value, name):
    """Whole seconds (int, rounded up) from an integer or a duration string (``5m``, ``1h30m``): seconds()'s
    grammar, without fractions typed as numbers."""
    if isinstance(value, float) or (isinstance(value, str) and '.' in value):
        raise InputError(name, value, DURATION_FORM)
    total = seconds(value, name)
    return int(total) if total == int(total) else int(total) + 1


_DURATION_PARTS = re.compile(r'([0-9]+)(ms|s|m|h|d|w|y)')
_DECIMAL = re.compile(r'^[0-9]+(\.[0-9]+)?$')
_PART_SECONDS = dict(_UNIT_SECONDS, y=31536000)


def seconds(value, name):
    """Seconds (float) from a number >= 0 or a Prometheus duration (``90s``, ``5m``, ``1h30m``, ``500ms``).

    The one grammar of durations: operator inputs (duration(), the gate's interval and soak), and the alert
    rules' ``for`` and windows (alert_rules.parse_duration) read it.
    """
    if isinstance(value, bool) or value is None:
        raise InputError(name, value, DURATION_FORM)
    if isinstance(value, (int, float)):
        if value < 0 or math.isnan(value):
            raise InputError(name, value, DURATION_FORM, 'negative' if value < 0 else 'not a number')
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL.match(text):
            return float(text)
        if _DURATION.match(text):
            return float(sum(int(n) * _PART_SECONDS[u] for n, u in _DURATION_PARTS.findall(text)))
    raise InputError(name, value, DURATION_FORM)


def number(value, name, minimum=None, maximum=None, above=None, below=None):
    """A number (not a bool) within the given bounds: ``minimum``/``maximum`` inclusive, ``above``/``below`` not."""
    accepted = 'a number' + ''.join(' %s %s' % (word, bound) for word, bound in (
        ('>=', minimum), ('<=', maximum), ('>', above), ('<', below)) if bound is not None)
    if isinstance(value, bool) or value is None:
        raise InputError(name, value, accepted)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(name, value, accepted) from None
    if ((minimum is not None and out < minimum) or (maximum is not None and out > maximum)
            or (above is not None and out <= above) or (below is not None and out >= below)):
        raise InputError(name, value, accepted, 'out of range')
    return out


_UNSAFE_NAME_CHARS = re.compile(r'[^A-Za-z0-9_.:-]')


def safe_name(text, default='unknown', limit=120):
    """``text`` reduced to the name alphabet (NAME_FORM, at most ``limit`` characters), for identifiers taken
    from outside (an alert's name) that go into extra vars, logs and the ledger."""
    cleaned = _UNSAFE_NAME_CHARS.sub('_', str(text or ''))[:limit]
    return cleaned or default


def boolean(value, name):
    """A boolean: true/false, or the strings AWX and ``-e key=value`` pass (yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InputError(name, value, BOOLEAN_FORM)


def choice(value, name, choices):
    """One of ``choices``, exactly (no case folding, no surrounding blanks)."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(name, value, 'one of ' + ', '.join(choices))
    return value


def mode(value, name='stage', choices=WAVE_STAGES):
    """A transport mode among ``choices`` (by default the stages a wave can move to)."""
    return choice(value, name, choices)


def strategy(value, name='strategy'):
    return choice(value, name, STRATEGIES)


def name_of(value, name, kind='name'):
    """An inventory group or host name as the operator gave it."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(name, value, f'a {kind} of the inventory ({NAME_FORM})')
    return value


def group_name(value, name, groups=None, allow_empty=False):
    """An inventory group name; with ``groups`` (the inventory's groups), one that exists."""
    if allow_empty and value in ('', None):
        return ''
    value = name_of(value, name, 'group')
    if groups is not None and value not in groups:
        known = shown(sorted(g for g in groups if g not in ('all', 'ungrouped')), 20)
        raise InputError(name, value, f'the name of an inventory group (known: {known})',
                         'no such group in the inventory')
    return value


def inventory_group(value, name, groups, given=True, must_exist=True, within=None, allow_empty=False):
    """A group of the inventory ``groups`` ({name: [hosts]}) named by the operator (``given``) or by default.

    A group the operator names must exist and have hosts (no silent fallback), all of them in ``within``
    when given; a default group may be absent, which the roles read as "choose automatically" ('').
    """
    if not given and value not in groups:
        return ''
    group = group_name(value, name, groups if must_exist else None, allow_empty=allow_empty)
    if group and given and not groups.get(group):
        raise InputError(name, value, 'the name of an inventory group with hosts', f'the group {group} has no hosts')
    if group and within:
        outside = sorted(set(groups.get(group) or []) - set(groups.get(within) or []))
        if outside:
            raise InputError(name, value, f'a group whose hosts all belong to {within}',
                             f"host(s) {', '.join(outside)} of {group} are not in {within}")
    return group


def host_names(values, name, allowed=None, allowed_label='fleet'):
    """A list of host names; with ``allowed``, each must be one of them."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InputError(name, values, f'a list of host names ({NAME_FORM})')
    out = [name_of(v, name, 'host') for v in values]
    if allowed is not None:
        outside = sorted(set(out) - set(allowed))
        if outside:
            raise InputError(name, values, f'hosts of the group {allowed_label}',
                             f"{', '.join(outside)} not in {allowed_label}")
    return out


def text(value, name, required=False):
    """Free text (a reason, an operator name): data, stored and shown verbatim.

    Returns a plain ``str`` (no template trust carried along); refuses only what is not text.
    """
    if value is None or value == '':
        if required:
            raise InputError(name, value, TEXT_FORM.replace('NAME', name))
        return ''
    if isinstance(value, (dict, list, bool)):
        raise InputError(name, value, 'a text')
    plain = str.__str__(value) if isinstance(value, str) else str(value)
    if required and not plain.strip():
        raise InputError(name, value, 'a non-empty text')
    return plain


def batches(value, name='wave_batches'):
    """A serial-style batch list: whole numbers of hosts (>= 1) or percentages 'N%' (0 < N <= 100)."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(name, value, BATCHES_FORM, 'empty' if isinstance(value, (list, tuple)) else None)
    out = []
    for item in value:
        if isinstance(item, str) and item.strip().endswith('%'):
            try:
                pct = float(item.strip()[:-1])
            except ValueError:
                raise InputError(name, value, BATCHES_FORM, 'batch %r is not a percentage' % (item,)) from None
            if not 0 < pct <= 100:
                raise InputError(name, value, BATCHES_FORM, 'batch %s is not in (0%%, 100%%]' % item.strip())
            out.append(item.strip())
            continue
        try:
            out.append(integer(item.strip() if isinstance(item, str) else item, name, minimum=1))
        except InputError:
            raise InputError(name, value, BATCHES_FORM, 'batch %r is not a whole number of hosts >= 1' % (item,)) \
                from None
    return out


def fraction(value, name):
    """A share: a number above 0 and at most 1."""
    if isinstance(value, bool) or value is None:
        raise InputError(name, value, FRACTION_FORM)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(name, value, FRACTION_FORM) from None
    if not 0 < number <= 1:
        raise InputError(name, value, FRACTION_FORM, 'out of range')
    return number


KINDS = {
    'wave_percent': lambda v, n, o: wave_percent(v, n),
    'duration': lambda v, n, o: duration(v, n),
    'boolean': lambda v, n, o: boolean(v, n),
    'count': lambda v, n, o: integer(v, n, minimum=o.get('minimum', 0), maximum=o.get('maximum')),
    'choice': lambda v, n, o: choice(v, n, o['choices']),
    'mode': lambda v, n, o: mode(v, n, o.get('choices') or WAVE_STAGES),
    'strategy': lambda v, n, o: strategy(v, n),
    'group': lambda v, n, o: group_name(v, n, o.get('groups'), o.get('allow_empty', False)),
    'hosts': lambda v, n, o: host_names(v, n, o.get('allowed'), o.get('allowed_label', 'fleet')),
    'text': lambda v, n, o: text(v, n, o.get('required', False)),
    'batches': lambda v, n, o: batches(v, n),
    'fraction': lambda v, n, o: fraction(v, n),
}


def form_of(kind, name):
    """The accepted form of an input of ``kind``, as the messages state it."""
    forms = {'wave_percent': WAVE_FORM, 'duration': DURATION_FORM, 'boolean': BOOLEAN_FORM, 'text': TEXT_FORM}
    return forms.get(kind, 'a %s' % kind).replace('NAME', name)


def validate(kind, value, name, **options):
    """Dispatch to the validator of ``kind`` (one of KINDS)."""
    if kind not in KINDS:
        raise ValueError(f'unknown input kind {kind!r}; known: {", ".join(sorted(KINDS))}')
    return KINDS[kind](value, name, options)


# -- the one trust rule for variables (docs/security.md) ----------------------------------------------
#
# Every playbook's first task (migration_inputs) applies it to the extra vars (-e, -e @file, AWX's and
# ansible-runner's extra vars) before anything else is templated: a variable in the collection's
# namespace must be one of its inputs - a role's option (roles/*/meta/argument_specs.yml, ranges
# included), a collection-wide setting (SETTINGS) or an input the playbook declares - and its value is
# data: it is checked by its kind and refused when it holds a template. Anything else in the namespace
# (facts, registered results and task variables the collection sets itself, such as migration_inputs)
# cannot be set from outside.

# An Ansible host pattern (groups, hosts, :, !, &, *, ranges), nothing that Jinja reads.
HOST_PATTERN = r'^[A-Za-z0-9_.:,!&*\[\]~-]+$'
# The collection's variable namespace.
PREFIXES = ('migration_', 'wave_', 'canary_', 'rollback_', 'control_', 'monitoring_', 'dashboard_',
            'conformance_', 'preflight_', 'ant_')
TEMPLATE_MARKS = ('{{', '{%', '{#')
# Inputs read by every playbook, beside the roles' options: the inventory's settings, which an operator
# may also give with -e (argument-spec form, as in the roles' meta/argument_specs.yml).
SETTINGS = {
    'migration_prometheus_url': {'type': 'str'},
    'migration_alert_overrides': {'type': 'dict'},
    'migration_alert_settings': {'type': 'dict'},
    'migration_become': {'type': 'bool'},
    'migration_ledger': {'type': 'str'},
    'migration_ledger_init': {'type': 'bool'},
    'migration_lock': {'type': 'bool'},
    'migration_monitoring_hosts': {'type': 'str', 'pattern': HOST_PATTERN},
    'migration_rollback_strategy': {'type': 'str', 'choices': list(STRATEGIES)},
    'migration_rollback_order': {'type': 'str', 'choices': list(ROLLBACK_ORDERS)},
    'conformance_hosts': {'type': 'str', 'pattern': HOST_PATTERN},
    'conformance_fail_on_optional': {'type': 'bool'},
    'ant_antctl_path': {'type': 'path'},
    'ant_systemd_unit_dir': {'type': 'path'},
    'ant_systemctl_path': {'type': 'path'},
}
# The range an argument spec states in its option's description: "Range 1 to 100.", "Range at least 0.",
# "Range above 0, at most 1." (ansible-lint allows no key of our own in an argument spec).
RANGE_PATTERN = (r'Range (?:(?P<low>-?[0-9.]+) to (?P<high>-?[0-9.]+)'
                 r'|(?P<bound>at least|above) (?P<from>-?[0-9.]+)(?:, at most (?P<to>-?[0-9.]+))?)\.')
_RANGE = re.compile(RANGE_PATTERN)
_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles')


def in_namespace(name):
    """Whether a variable name belongs to the collection."""
    return isinstance(name, str) and name.startswith(PREFIXES)


def holds_template(value):
    """Whether ``value`` (a string, or any string inside lists and mappings, keys included) holds Jinja."""
    if isinstance(value, str):
        return any(mark in value for mark in TEMPLATE_MARKS)
    if isinstance(value, dict):
        return any(holds_template(k) or holds_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_template(v) for v in value)
    return False


def spec_range(spec):
    """(minimum, maximum, minimum_excluded) stated by an argument spec option's description, or None."""
    description = spec.get('description') or ''
    if isinstance(description, list):
        description = ' '.join(description)
    found = _RANGE.search(description)
    if not found:
        return None
    if found.group('low') is not None:
        return float(found.group('low')), float(found.group('high')), False
    high = found.group('to')
    return float(found.group('from')), (float(high) if high is not None else None), found.group('bound') == 'above'


@functools.lru_cache(maxsize=4)
def role_options(roles_dir=_ROLES_DIR):
    """Every option of every role of the collection, {name: spec}, from the roles' argument specs."""
    options = {}
    for path in sorted(glob.glob(os.path.join(roles_dir, '*', 'meta', 'argument_specs.yml'))):
        with open(path, encoding='utf-8') as handle:
            specs = (yaml.safe_load(handle) or {}).get('argument_specs') or {}
        for entry in specs.values():
            for name, spec in ((entry or {}).get('options') or {}).items():
                options.setdefault(name, spec or {})
    return options


def known_inputs(roles_dir=_ROLES_DIR):
    """The collection's inputs by name: the roles' options and the collection-wide SETTINGS."""
    return dict(role_options(roles_dir), **SETTINGS)


def _range_text(low, high, above):
    words = []
    if low is not None:
        words.append('%s %g' % ('above' if above else 'at least', low))
    if high is not None:
        words.append('at most %g' % high)
    return ' and '.join(words)


def _check_typed(value, name, spec):
    """``value`` checked against an argument spec option: its type, choices, pattern and stated range."""
    kind, bounds = spec.get('type', 'str'), spec_range(spec)
    low, high, above = bounds or (None, None, False)
    within = (', ' + _range_text(low, high, above)) if bounds else ''
    if kind == 'bool':
        return boolean(value, name)
    if kind == 'int':
        return integer(value, name, minimum=None if low is None else int(low) + (1 if above else 0),
                       maximum=None if high is None else int(high), accepted='a whole number written as such' + within)
    if kind == 'float':
        try:
            return number(value, name, minimum=None if above else low, above=low if above else None, maximum=high)
        except InputError as exc:
            raise InputError(name, value, 'a number' + within, 'out of range' if 'range' in str(exc) else None) \
                from None
    if kind in ('str', 'path'):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(name, value, 'a text')
        if spec.get('choices') is not None:
            return choice(str(value), name, tuple(str(c) for c in spec['choices']))
        if spec.get('pattern') and str(value) and not re.match(spec['pattern'], str(value)):
            raise InputError(name, value, 'a text matching %s' % spec['pattern'])
        return value
    expected = {'list': (list, tuple, str), 'dict': (dict, str)}.get(kind)
    if expected and not isinstance(value, expected):
        raise InputError(name, value, 'a %s' % kind)
    return value


def extra_var_problems(extra_vars, declared=(), roles_dir=_ROLES_DIR):
    """What is wrong with the extra vars in the collection's namespace, one message each (empty: all good).

    ``declared``: the inputs (names and aliases) the calling migration_inputs task checks itself by kind.
    """
    inputs, problems = known_inputs(roles_dir), []
    for name in sorted(extra_vars or {}, key=str):
        if name in declared or not in_namespace(name):
            continue
        value = extra_vars[name]
        if name not in inputs:
            close = difflib.get_close_matches(name, list(inputs), n=1, cutoff=0.8)
            problems.append(str(InputError(
                name, value, 'an input of autonomi.network_migration (docs/operator-guide.md, the roles\' argument '
                'specs)' + (', such as %s' % close[0] if close else ''),
                'not an input: the collection sets it itself, or it is misspelt')))
        elif holds_template(value):
            problems.append(str(InputError(
                name, value, 'a value without {{ }} or {% %}: a value given with -e (or by AWX) is data and is never '
                'templated; set a templated value in the inventory', 'a template')))
        elif value is not None:
            try:
                _check_typed(value, name, inputs[name])
            except InputError as exc:
                problems.append(str(exc))
    return problems
