# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The prologue every controller-side action plugin of the collection shares.

An action plugin is an adapter (STYLE.md, habit 11): it validates its arguments against its
ARGUMENT_SPEC, calls a use case (plugin_utils/services) or a decision, and returns the result. What
they all need lives here once: argument validation with the plugin's name in the message, a task
variable read the same way, the ledger opened with its location redacted in any error, the
collection's errors (plugin_utils/errors.py MigrationError) turned into a failed task, and every
result through the one redaction (plugin_utils/redaction.py) - its facts aside, which are the
values later tasks use, not output.
"""

from __future__ import annotations

import contextlib
import functools

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import alert_rules, redaction
from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.errors import MigrationError

# The one variable that names the ledger for every task of the collection (empty: the environment or ansible.cfg).
LEDGER_VAR = 'migration_ledger'


class MigrationAction(ActionBase):
    """Base class: set NAME, ARGUMENT_SPEC (and MUTUALLY_EXCLUSIVE / REQUIRED_ONE_OF) in the subclass."""

    TRANSFERS_FILES = False
    _requires_connection = False
    NAME = 'autonomi.network_migration'
    ARGUMENT_SPEC = {}
    MUTUALLY_EXCLUSIVE = ()
    REQUIRED_ONE_OF = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._VALID_ARGS = frozenset(cls.ARGUMENT_SPEC)
        if 'run' in cls.__dict__:
            cls.run = _redacted_results(cls.__dict__['run'])

    def validated_args(self):
        """The task's arguments checked against ARGUMENT_SPEC (defaults filled), or AnsibleActionFail."""
        validator = ArgumentSpecValidator(self.ARGUMENT_SPEC, mutually_exclusive=list(self.MUTUALLY_EXCLUSIVE) or None,
                                          required_one_of=list(self.REQUIRED_ONE_OF) or None)
        checked = validator.validate(self._task.args)
        if checked.error_messages:
            raise AnsibleActionFail('%s: %s' % (self.NAME, '; '.join(checked.error_messages)))
        return checked.validated_parameters

    def task_var(self, task_vars, name):
        """A variable of the task (the inventory's migration_prometheus_url, ...), templated, or None."""
        value = (task_vars or {}).get(name)
        return self._templar.template(value) if value is not None else None

    def ruleset(self, args, task_vars):
        """The alert rules as this task sees them: its ``rules_file``, ``overrides`` and ``settings`` options, the
        last two defaulting to the inventory's migration_alert_overrides / migration_alert_settings."""
        return alert_rules.load_rules(
            args['rules_file'],
            overrides=args['overrides'] if args['overrides'] is not None
            else self.task_var(task_vars, 'migration_alert_overrides'),
            settings=args['settings'] if args['settings'] is not None
            else self.task_var(task_vars, 'migration_alert_settings'))

    def ledger_location(self, explicit, task_vars):
        """The ledger this task uses: its ``ledger`` option, else the variable ``migration_ledger`` (one
        setting for every task of a play), else None: ANT_MIGRATION_LEDGER, then ansible.cfg (ledger/location.py).

        With ``-e migration_ledger_init=true`` (ledger_lib.may_create) a ledger that does not exist there yet
        is created now, as the migration_tracker callback does when the playbook starts; otherwise the use
        case refuses a location without a ledger (LedgerNotFound).
        """
        location = explicit or self.task_var(task_vars, LEDGER_VAR) or None
        init = (task_vars or {}).get(ledger_lib.INIT_VAR)
        if init is not None and ledger_lib.may_create(init):
            try:
                ledger_lib.open_ledger(ledger_lib.resolve_ledger_location(location), create=True).close()
            except ledger_lib.LedgerError as exc:
                self.fail(str(exc))
        return location

    def fail(self, message):
        """Stop the task: bad arguments or an impossible request, nothing done."""
        raise AnsibleActionFail('%s: %s' % (self.NAME, redaction.redact_text(message)))

    @contextlib.contextmanager
    def failing_on_errors(self, result):
        """Run a use case; a MigrationError becomes ``failed`` with its (redacted) message in ``result``."""
        try:
            yield result
        except MigrationError as exc:
            result.update(failed=True, changed=False, msg='%s: %s' % (self.NAME, redaction.redact_text(exc)))


def _redacted_results(run):
    """``run`` whose result (but its facts) goes through the one redaction before Ansible shows or keeps it."""
    @functools.wraps(run)
    def wrapper(self, *args, **kwargs):
        result = run(self, *args, **kwargs)
        if not isinstance(result, dict):
            return result
        facts = result.pop('ansible_facts', None)
        result = redaction.redact(result)
        if facts is not None:
            result['ansible_facts'] = facts
        return result
    return wrapper
