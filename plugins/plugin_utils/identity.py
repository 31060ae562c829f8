# -*- coding: utf-8 -*-
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who is acting, for which run: the one derivation of the operator, run id, lock holder and AWX job.

Used by the migration_tracker callback, the action plugins (ledger, gate, canary analysis) and
the CLI, so that one run records one operator everywhere.

The operator is, in this order: the AWX user who launched the job (extra vars ``awx_user_name``
or ``tower_user_name``); the explicit ``operator`` extra var / CLI ``--operator``; the
``ANT_MIGRATION_OPERATOR`` environment variable (which the callback sets for the run's
workers); the OS user. Never a module's name.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import socket

ENV_OPERATOR = 'ANT_MIGRATION_OPERATOR'
# Set by the callback in the controller process before any worker forks, so action plugins know
# which run they belong to and which lock holder is "us".
ENV_RUN_ID = 'ANT_MIGRATION_RUN_ID'
ENV_LOCK_HOLDER = 'ANT_MIGRATION_LOCK_HOLDER'
ENV_CONTROLLER_PID = 'ANT_MIGRATION_CONTROLLER_PID'
# What ledger_nodes.wave records for the nodes this run switches ('canary' or the wave's percent).
ENV_WAVE = 'ANT_MIGRATION_WAVE'

AWX_USER_VARS = ('awx_user_name', 'tower_user_name')
AWX_JOB_VARS = ('awx_job_id', 'tower_job_id')
OPERATOR_VAR = 'operator'


def os_user():
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except  # no passwd entry in a container
        return os.environ.get('USER') or 'unknown'


def _plain(value):
    return str.__str__(value) if isinstance(value, str) else str(value)


def awx_user(extra_vars=None):
    extra_vars = extra_vars or {}
    for key in AWX_USER_VARS:
        if extra_vars.get(key) not in (None, ''):
            return _plain(extra_vars[key])
    return None


def awx_job_id(extra_vars=None):
    extra_vars = extra_vars or {}
    for key in AWX_JOB_VARS:
        if extra_vars.get(key) not in (None, ''):
            return _plain(extra_vars[key])
    return None


# A sliced AWX job (job_slice_count > 1) is a workflow job whose slice jobs share the workflow job
# and the job template; AWX passes no slice number (awx/main/models/unified_jobs.py awx_meta_vars).
AWX_SLICE_VARS = (('awx_workflow_job_id', 'awx_job_template_id'), ('tower_workflow_job_id', 'tower_job_template_id'))
SLICE_HOLDER_PREFIX = 'awx sliced job '


def awx_slice_key(extra_vars=None):
    """``workflow W template T`` for a job AWX runs inside a workflow (a slice), else None.

    The slices of one sliced job share it: they are one run with one lock holder (ledger/slices.py).
    Two parallel nodes of a hand-made workflow that run the same template share it too.
    """
    extra_vars = extra_vars or {}
    for workflow_var, template_var in AWX_SLICE_VARS:
        workflow, template = extra_vars.get(workflow_var), extra_vars.get(template_var)
        if workflow not in (None, '') and template not in (None, ''):
            return f'workflow {_plain(workflow)} template {_plain(template)}'
    return None


def slice_holder(key):
    """The lock holder string the slices of one sliced job share."""
    return SLICE_HOLDER_PREFIX + key


def operator(extra_vars=None, explicit=None, environ=None):
    """The operator of this run (see the module's docstring for the order)."""
    environ = os.environ if environ is None else environ
    extra_vars = extra_vars or {}
    for candidate in (awx_user(extra_vars), explicit, extra_vars.get(OPERATOR_VAR), environ.get(ENV_OPERATOR)):
        if candidate not in (None, '') and _plain(candidate).strip():
            return _plain(candidate)
    return os_user()


def run_id(environ=None):
    """The ledger run id of this controller's run (set by the callback), or None."""
    environ = os.environ if environ is None else environ
    value = str(environ.get(ENV_RUN_ID) or '')
    return int(value) if value.isdigit() else None


def controller_pid(environ=None):
    """The pid of the ansible-playbook (or CLI) process this code runs for.

    Action plugins run in worker processes forked per task; the lock must name the controller,
    not the short-lived worker, or it would look dead as soon as the task ends.
    """
    environ = os.environ if environ is None else environ
    env = environ.get(ENV_CONTROLLER_PID)
    if env and str(env).isdigit():
        return int(env)
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


def default_holder(operator_name=None, environ=None):
    """``operator@hostname pid N`` — the lock holder string of this controller process."""
    return f'{operator_name or operator(environ=environ)}@{socket.gethostname()} pid {controller_pid(environ)}'


def lock_holder(operator_name=None, environ=None):
    """The lock holder of this run: the one the callback exported, else this process's."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_LOCK_HOLDER) or default_holder(operator_name, environ)
