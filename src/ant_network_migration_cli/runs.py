# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the collection's playbooks through ansible-runner (the engine AWX uses), with a
progress bar fed from the runner's events."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import fleet

# Results of this module count a host as done in the progress bar.
PROGRESS_ACTION_SUFFIX = 'transport_mode'
# The current task's name beside the bar is cut to this many characters.
TASK_NAME_WIDTH = 40


class _Unsafe(str):
    """A string value Ansible must never template (written with the ``!unsafe`` tag)."""


class _ExtraVarsDumper(yaml.SafeDumper):
    pass


_ExtraVarsDumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar('!unsafe', str(value)))


def _unsafe(value):
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {key: _unsafe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unsafe(item) for item in value]
    return value


def write_extravars(private_dir, extravars):
    """The run's extra vars as ansible-runner's ``env/extravars`` file, every string tagged
    ``!unsafe``: operator text (a reason, a name) is data, and Ansible never templates it, so a
    ``{{ lookup('pipe', ...) }}`` in a reason runs nothing and is recorded verbatim."""
    path = Path(private_dir) / 'env' / 'extravars'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(_unsafe(dict(extravars or {})), Dumper=_ExtraVarsDumper, default_flow_style=False,
                              allow_unicode=True), encoding='utf-8')
    return path


def forget_environment(private_dir):
    """Remove what ansible-runner wrote of the child's environment: ``artifacts/<id>/command`` holds
    all of it (the ledger location with a DSN's password, any secret the operator's environment
    carries). The rest of a failed run's directory (stdout, job_events) stays for the operator."""
    for command in Path(private_dir).glob('artifacts/*/command'):
        command.unlink(missing_ok=True)


@dataclass
class RunOutcome:
    playbook: str
    status: str                                   # successful | failed | canceled | timeout
    rc: int
    failures: list = field(default_factory=list)  # "host: task: message"
    artifact_dir: str | None = None

    @property
    def ok(self):
        return self.status == 'successful' and self.rc == 0


class _EventSink:
    """Turns runner events into progress-bar updates and a list of failures."""

    def __init__(self, progress, task_id, label, console, echo_hosts):
        self.progress = progress
        self.task_id = task_id
        self.label = label
        self.console = console
        self.echo_hosts = echo_hosts
        self.done_hosts = set()
        self.failures = []

    def __call__(self, event):
        kind = event.get('event', '')
        data = event.get('event_data') or {}
        if kind == 'playbook_on_task_start' and self.progress is not None:
            task = str(data.get('task', '')).split(' : ')[-1]
            if len(task) > TASK_NAME_WIDTH:
                task = task[:TASK_NAME_WIDTH - 1] + '…'
            self.progress.update(self.task_id, description=f'{self.label}: {task}')
        elif kind in ('runner_on_ok', 'runner_on_failed', 'runner_on_unreachable'):
            host = data.get('host', '?')
            if kind == 'runner_on_ok' and str(data.get('task_action', '')).endswith(PROGRESS_ACTION_SUFFIX):
                if host not in self.done_hosts:
                    self.done_hosts.add(host)
                    if self.progress is not None:
                        self.progress.advance(self.task_id)
                    if self.echo_hosts:
                        self.console.print(f'  {self.label}: {host} done')
            elif kind != 'runner_on_ok' and not data.get('ignore_errors'):
                res = data.get('res') or {}
                message = res.get('msg') or res.get('stderr') or res.get('reason') or kind
                self.failures.append(f"{host}: {data.get('task', '?')}: {str(message).strip()}")
        return True


def run_playbook(name, extravars=None, inventory=None, ledger_location=None, console=None,
                 label=None, expected_hosts=None, verbosity=0, extra_groups=None, forks=None):
    """Run ``playbooks/<name>``; return a RunOutcome. Never raises for a failed play.

    ``forks``: Ansible's parallelism for this run (None: ansible.cfg's).
    ``expected_hosts``: how many hosts the progress bar counts (None: a spinner only).
    ``extra_groups``: {group: [hosts]} added to the inventory for this run only (a second
    inventory source in the run's private directory; the operator's inventory is not touched).
    With verbosity >= 2 Ansible's own output is shown instead of the progress bar.
    """
    playbook = fleet.playbook_path(name)
    root = fleet.collection_root()
    env = fleet.ansible_env()
    envvars = {key: env[key] for key in ('ANSIBLE_CONFIG',) if key in env}
    if ledger_location:
        envvars['ANT_MIGRATION_LEDGER'] = str(ledger_location)
    private_dir = tempfile.mkdtemp(prefix='ant-network-migration-')
    label = label or name
    show_ansible = verbosity >= 2
    use_bar = console is not None and console.is_terminal and not show_ansible
    progress = None
    task_id = None
    if use_bar:
        progress = Progress(SpinnerColumn(), TextColumn('{task.description}'), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        task_id = progress.add_task(label, total=expected_hosts)
    sink = _EventSink(progress, task_id, label, console,
                      echo_hosts=console is not None and not use_bar and not show_ansible)

    import ansible_runner  # 0.1 s to import: only the commands that run something load it

    write_extravars(private_dir, extravars)
    # suppress_env_files: ansible-runner would write envvars (the ledger location, a DSN with its
    # password) into env/envvars; the child gets them in its environment only.
    kwargs = dict(private_data_dir=private_dir, project_dir=str(root), playbook=str(playbook),
                  envvars=envvars, suppress_env_files=True, event_handler=sink,
                  quiet=not show_ansible, verbosity=max(0, verbosity - 1) or None)
    if forks:
        kwargs['forks'] = int(forks)
    sources = [str(Path(inventory).resolve())] if inventory else []
    if extra_groups and sources:
        extra = Path(private_dir) / 'cli_groups.yml'
        children = {group: {'hosts': dict.fromkeys(sorted(hosts))} for group, hosts in sorted(extra_groups.items())}
        extra.write_text(yaml.safe_dump({'all': {'children': children}}, default_flow_style=False))
        sources.append(str(extra))
    if sources:
        kwargs['inventory'] = sources if len(sources) > 1 else sources[0]
    fleet.ensure_ansible_on_path()
    try:
        if progress is not None:
            with progress:
                result = ansible_runner.run(**kwargs)
                if expected_hosts is not None and result.status == 'successful':
                    progress.update(task_id, completed=expected_hosts)
        else:
            result = ansible_runner.run(**kwargs)
    except KeyboardInterrupt:
        return RunOutcome(name, 'canceled', 130, ['interrupted by the operator'], private_dir)
    finally:
        forget_environment(private_dir)
    failures = sink.failures or _error_lines(result)
    outcome = RunOutcome(name, result.status, result.rc if result.rc is not None else 1, failures, private_dir)
    if outcome.ok:
        shutil.rmtree(private_dir, ignore_errors=True)
        outcome.artifact_dir = None
    return outcome


_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def _error_lines(result, limit=8):
    """Ansible's own error lines when a run failed without a failed task (a syntax or include
    error, a missing module): the tail of its output from the first [ERROR] on."""
    try:
        with result.stdout as handle:
            text = handle.read()
    except Exception:  # no stdout artifact (AnsibleRunnerException), unreadable file: nothing to quote
        return []
    lines = [_ANSI.sub('', line).rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip()]
    for index, line in enumerate(lines):
        if '[ERROR]' in line or line.startswith('ERROR!'):
            return lines[index:index + limit]
    return lines[-limit:] if result.status != 'successful' else []
