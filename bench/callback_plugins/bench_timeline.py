# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks only: append when each play and task starts to the file in ANT_BENCH_TIMELINE.

bench/scale.py and bench/chain.py enable it (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=...,bench_timeline) to say where a run's wall time went. Lines:
``<unix time> play|task|end <name>``.
"""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: bench_timeline
type: aggregate
short_description: when each play and task started (benchmarks)
description: Appends one line per play and task start to the file named by ANT_BENCH_TIMELINE.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_timeline'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.path = os.environ.get('ANT_BENCH_TIMELINE')

    def _mark(self, kind, name):
        if self.path:
            with open(self.path, 'a') as fh:
                fh.write('%.3f %s %s\n' % (time.time(), kind, name))

    def v2_playbook_on_start(self, playbook):
        self._mark('start', os.path.basename(playbook._file_name))

    def v2_playbook_on_play_start(self, play):
        self._mark('play', play.get_name().strip())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark('task', task.get_name().strip())

    def v2_playbook_on_stats(self, stats):
        self._mark('end', 'stats')
