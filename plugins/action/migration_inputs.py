# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate the operator's inputs before any host is read (see the module stub's docs).

The values are read as the operator wrote them - straight from the task's variables, never
through a template - and checked by plugin_utils/validation.py. Free text (reasons, names)
comes back as plain data: Ansible never templates it afterwards, so a ``{{ ... }}`` in a
reason is stored and shown verbatim and runs nothing.
"""

from __future__ import annotations

from ansible import context
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.splitter import parse_kv
from ansible.utils.vars import load_extra_vars

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import validation
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction

ARGUMENT_SPEC = dict(
    inputs=dict(type='dict', required=True),
    fact=dict(type='str', default='migration_inputs'),
)

INPUT_SPEC = dict(
    kind=dict(type='str', required=True, choices=sorted(validation.KINDS)),
    default=dict(type='raw'),
    required=dict(type='bool', default=False),
    aliases=dict(type='list', elements='str', default=[]),
    choices=dict(type='list', elements='str'),
    minimum=dict(type='int'),
    maximum=dict(type='int'),
    # kind=group: the group must exist; every host of it must be in the group named by ``within``.
    must_exist=dict(type='bool', default=True),
    within=dict(type='str'),
    allow_empty=dict(type='bool', default=False),
)

_TEMPLATE_MARKS = ('{{', '{%')


def whole_text(name, parsed, cli_extra_vars=None):
    """The text of ``-e name=two words`` as the operator typed it.

    Ansible splits key=value extra vars at blanks: ``-e reason="two words"`` reaches it, after the
    shell, as ``reason=two words``, which it reads as reason=two plus a stray ``words``. When the
    option holds only this one variable, its whole remainder is the text; when it mixes several
    key=value pairs the split is ambiguous and refused with the form that works.
    """
    if cli_extra_vars is None:
        cli_extra_vars = context.CLIARGS.get('extra_vars') or ()
    prefix = '%s=' % name
    for entry in cli_extra_vars:
        entry = str(entry)
        if not entry.startswith(prefix):
            continue
        keys = set(parse_kv(entry)) - {'_raw_params'}
        if keys != {name}:
            raise validation.InputError(name, entry, '''one variable per -e, quoted whole: -e '%s="two words"' '''
                                        '''or JSON: -e '{"%s": "two words"}' ''' % (name, name),
                                        'blanks split key=value extra vars')
        text = entry[len(prefix):]
        if len(text) >= 2 and text[0] == text[-1] and text[0] in '"\'':
            text = text[1:-1]
        return text
    return parsed


def _is_template(value):
    return isinstance(value, str) and any(mark in value for mark in _TEMPLATE_MARKS)


class ActionModule(MigrationAction):
    """Read each named variable raw, validate it by kind, return the normalised values as a fact."""

    NAME = 'autonomi.network_migration.migration_inputs'
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validated_args()
        values, specs = {}, {}
        groups = task_vars.get('groups') or {}
        for name, raw_spec in args['inputs'].items():
            checked = ArgumentSpecValidator(INPUT_SPEC).validate(raw_spec or {})
            if checked.error_messages:
                self.fail('input %s: %s' % (name, '; '.join(checked.error_messages)))
            specs[name] = checked.validated_parameters
        # The one trust rule (validation.extra_var_problems): every other extra var of the collection's
        # namespace is one of its inputs, checked by its kind, and never a template.
        problems = validation.extra_var_problems(load_extra_vars(self._loader), declared={
            alias for name, spec in specs.items() for alias in [name] + spec['aliases']
            if spec['kind'] != 'text' or not validation.in_namespace(alias)})
        for name, spec in specs.items():
            given, source = self._raw(task_vars, name, spec['aliases'])
            if spec['kind'] == 'text' and source and '_raw_params' in task_vars:
                try:
                    given = whole_text(source, given)
                except validation.InputError as exc:
                    problems.append(str(exc))
                    continue
            spec['given'] = given is not None
            if given is None:
                if spec['required']:
                    problems.append('%s is required: use %s.' % (name, validation.form_of(spec['kind'], name)))
                    continue
                if spec['default'] is None:
                    values[name] = None
                    continue
                given = spec['default']
            if spec['kind'] != 'text' and _is_template(given) and not self._from_extra_vars(source):
                # A non-text input set in the inventory from another variable. Free text never is, and
                # what the operator typed with -e (or AWX passed) never is: the validator refuses it.
                given = self._templar.template(given)
            try:
                values[name] = self._check(spec, given, source or name, groups)
            except validation.InputError as exc:
                problems.append(str(exc))
        if problems:
            return dict(result, failed=True, problems=problems,
                        msg='Bad input, refused before any host was read: ' + ' '.join(problems))
        return dict(result, changed=False, ansible_facts={args['fact']: values}, inputs=values,
                    msg='inputs accepted: ' + ', '.join('%s=%r' % kv for kv in sorted(values.items())))

    @staticmethod
    def _raw(task_vars, name, aliases):
        """The variable as the operator wrote it (never templated) and the name it was given under."""
        for candidate in [name] + list(aliases):
            if candidate in task_vars and task_vars[candidate] is not None:
                return task_vars[candidate], candidate
        return None, None

    def _from_extra_vars(self, source):
        """Whether the operator gave ``source`` with -e (a file with -e @, AWX's and ansible-runner's way too)."""
        return bool(source) and source in load_extra_vars(self._loader)

    @staticmethod
    def _check(spec, value, name, groups):
        if spec['kind'] == 'group':
            return validation.inventory_group(value, name, groups, given=spec['given'], must_exist=spec['must_exist'],
                                              within=spec['within'], allow_empty=spec['allow_empty'])
        options = {k: spec[k] for k in ('choices', 'minimum', 'maximum') if spec[k] is not None}
        return validation.validate(spec['kind'], value, name, **dict({'minimum': 0}, **options))
