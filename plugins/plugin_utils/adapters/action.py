# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The prologue every controller-side action plugin of the collection shares.

An action plugin is an adapter (STYLE.md, habit 11): it validates its arguments against its
ARGUMENT_SPEC, calls a use case (plugin_utils/services) or a decision, and returns the result. What
they all need lives here once: argument validation with the plugin's name in the message, a task
variable read the same way, the ledger opened with its location redacted in any error, and the
collection's errors (plugin_utils/errors.py MigrationError) turned into a failed task.
"""

from __future__ import annotations

import contextlib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction
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

    def ledger_location(self, explicit, task_vars):
        """The ledger this task uses: its ``ledger`` option, else the variable ``migration_ledger`` (one
        setting for every task of a play), else None: ANT_MIGRATION_LEDGER, then ansible.cfg (ledger/location.py)."""
        return explicit or self.task_var(task_vars, LEDGER_VAR) or None

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
