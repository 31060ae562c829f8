# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ask a fleet host, before the first module runs there, whether the modules can run (see the module stub).

One command over the host's connection, under the task's become: the interpreter the modules would use
prints its version. A become that wants a password nobody gave, a Python older than the modules support
or no Python at all fail this task with a message that names the host, what is wrong and the fix
(plugin_utils/host_requirements.py) instead of Ansible's "Missing sudo password" or "Module result
deserialization failed".
"""

from __future__ import annotations

import shlex

from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.executor.interpreter_discovery import discover_interpreter

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import host_requirements as req
from ansible_collections.autonomi.network_migration.plugins.plugin_utils.adapters.action import MigrationAction


class ActionModule(MigrationAction):
    """Run the interpreter's version check on the host; fail with the fix when the host cannot run the modules."""

    NAME = 'autonomi.network_migration.host_check'
    ARGUMENT_SPEC = {}
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        self.validated_args()
        host = task_vars.get('inventory_hostname', 'this host')
        interpreter = self._interpreter(task_vars)
        become = bool(self._play_context.become)
        try:
            command = '%s -c %s' % (shlex.quote(interpreter), shlex.quote(req.VERSION_CODE))
            run = self._low_level_execute_command(command, sudoable=True)
        except AnsibleConnectionFailure:
            raise   # unreachable: Ansible's own report is the right one
        except AnsibleError as exc:
            if not become:
                raise
            return dict(result, failed=True, changed=False, msg=req.become_problem(
                host, exc, self._play_context.become_method, self._play_context.remote_user,
                self._play_context.become_user))
        version = req.parse_version(run.get('stdout')) if run.get('rc') == 0 else None
        if version is None:
            # Not a Python that runs the check: what does it say it is?
            asked = self._low_level_execute_command('%s --version' % shlex.quote(interpreter), sudoable=False)
            if asked.get('rc') == 0:
                version = req.parse_version('%s %s' % (asked.get('stdout'), asked.get('stderr')))
        problem = req.python_problem(host, interpreter, version, run.get('stderr') or run.get('stdout'))
        if problem:
            return dict(result, failed=True, changed=False, msg=problem, interpreter=interpreter,
                        python_version='.'.join(map(str, version)) if version else None)
        return dict(result, changed=False, interpreter=interpreter, python_version='.'.join(map(str, version)),
                    become=become, msg='%s: Python %s at %s%s' % (
                        host, '.'.join(map(str, version)), interpreter, ', become works' if become else ''))

    def _interpreter(self, task_vars):
        """The interpreter the modules will use: the host's ansible_python_interpreter, else Ansible's discovery."""
        configured = task_vars.get('ansible_python_interpreter')
        if configured:
            configured = self._templar.template(configured)
        discovered = (task_vars.get('ansible_facts') or {}).get('discovered_interpreter_python')
        if configured and not str(configured).startswith('auto'):
            return str(configured)
        if discovered:
            return str(discovered)
        mode = configured or C.config.get_config_value('INTERPRETER_PYTHON', variables=task_vars)
        return discover_interpreter(action=self, interpreter_name='python', discovery_mode=str(mode),
                                    task_vars=task_vars)
