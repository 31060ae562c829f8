# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helper: write every task result of a run to $RECORD_RESULTS_FILE (JSON lines).

Lives next to the integration playbooks, so Ansible loads it for them only; a no-op when the
variable is not set. The tests read the modules' real results from it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: record_results
type: aggregate
short_description: Write task results to a JSON-lines file for the integration tests
description:
  - Writes one JSON object per task result (host, task, status, result) to E(RECORD_RESULTS_FILE).
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('RECORD_RESULTS_FILE')

    def _record(self, result, status):
        if not self._path:
            return
        data = dict(result._result)
        data.pop('_ansible_verbose_always', None)
        line = {'host': result._host.get_name(), 'task': result._task.get_name(), 'status': status, 'result': data}
        with open(self._path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(line, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')
