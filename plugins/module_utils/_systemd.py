# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transport-mode switch of a host: one systemd drop-in per node service, systemctl.

A node's mode lives in ``<unit_dir>/<service>.service.d/ant-transport-mode.conf``::

    [Service]
    Environment=ANT_TRANSPORT_MODE=dual_stack

antctl rewrites ``<service>.service`` itself on every upgrade (with the registry-wide
environment) but never touches the drop-in directory, and a drop-in's ``Environment=``
overrides the unit's for that one variable: the mode survives routine upgrades and the other
variables of the service (``ANT_LOG`` ...) stay as they are. It takes effect at the next start
after ``systemctl daemon-reload``. See docs/node-interface.md. Standard library only.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile

from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import SystemdError
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import (
    DEFAULT_SYSTEMCTL,
    DEFAULT_UNIT_DIR,
    DROPIN_NAME,
    TRANSPORT_MODE_ENV,
)

DEFAULT_SYSTEMCTL_TIMEOUT = 120
_HEADER = '# Managed by autonomi.network_migration (transport_mode); antctl upgrades leave this file alone.\n'
# The node a drop-in was written for: a drop-in outlives its node (antctl remove / reset delete only the
# unit file), and a node added later under the same service name must not inherit it unnoticed.
_OWNER = '# Node: {service} peer_id={peer_id}\n'
_OWNER_RE = re.compile(r'^# Node: (?P<service>\S+) peer_id=(?P<peer_id>\S+)$', re.MULTILINE)
UNKNOWN_PEER = 'unknown'


def dropin_text(mode, service=None, peer_id=None):
    """The drop-in that sets ``mode``, naming the node it was written for when ``service`` is given
    (``peer_id`` None: a node that never ran and has no peer id yet)."""
    owner = _OWNER.format(service=service, peer_id=peer_id or UNKNOWN_PEER) if service else ''
    return f'{_HEADER}{owner}[Service]\nEnvironment={TRANSPORT_MODE_ENV}={mode}\n'


def dropin_owner(text):
    """(service, peer id or None) a drop-in says it was written for; None when it says nothing (a drop-in
    written before drop-ins named their node)."""
    match = _OWNER_RE.search(text or '')
    if not match:
        return None
    peer_id = match.group('peer_id')
    return match.group('service'), None if peer_id == UNKNOWN_PEER else peer_id


def parse_environment(text):
    """The variables the ``Environment=`` lines of a unit file or drop-in set, in order (later wins).

    Handles systemd's quoting (``Environment="A=1" 'B=2 3'``) and the empty assignment
    ``Environment=`` that clears the list. Lines outside ``[Service]`` are ignored.
    """
    env, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1]
            continue
        key, sep, value = line.partition('=')
        if not sep or section != 'Service' or key.strip() != 'Environment':
            continue
        value = value.strip()
        if not value:
            env.clear()
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = value.split()
        for word in words:
            name, eq, val = word.partition('=')
            if eq and name:
                env[name] = val
    return env


_UNIT_FAILURE = re.compile(r'^(?:Failed to \w[\w-]* (?P<a>[^\s:]+?)(?:\.service)?:|'
                           r'Job for (?P<b>[^\s]+?)(?:\.service)? failed)')


def failed_units(stderr, services):
    """{service: systemctl's line about it} for the units of ``services`` a systemctl error names."""
    wanted, out = set(services), {}
    for line in (stderr or '').splitlines():
        match = _UNIT_FAILURE.match(line.strip())
        name = match and (match.group('a') or match.group('b'))
        if name in wanted and name not in out:
            out[name] = line.strip()
    return out


class Systemd:
    """The host's service manager as the switch needs it: drop-ins and a few systemctl verbs."""

    def __init__(self, unit_dir=DEFAULT_UNIT_DIR, systemctl=DEFAULT_SYSTEMCTL, timeout=DEFAULT_SYSTEMCTL_TIMEOUT,
                 env=None):
        self.unit_dir = unit_dir
        self.systemctl = systemctl
        self.timeout = timeout
        self.env = dict(env or {})

    # -- drop-ins ------------------------------------------------------------------------

    def dropin_path(self, service):
        if not service or '/' in service or service.startswith('.'):
            raise SystemdError(f'refusing the service name {service!r}: not a plain unit name')
        return os.path.join(self.unit_dir, f'{service}.service.d', DROPIN_NAME)

    def has_unit(self, service):
        """Whether ``<unit_dir>/<service>.service`` exists (antctl installs the node services there)."""
        return os.path.isfile(os.path.join(self.unit_dir, f'{service}.service'))

    def read_dropin(self, service):
        """The drop-in's text, or None when there is none. Readable without root (mode 0644)."""
        path = self.dropin_path(service)
        try:
            with open(path, encoding='utf-8') as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SystemdError(f'cannot read {path}: {exc.strerror or exc}') from None

    def dropin_services(self):
        """Service names that have the collection's drop-in under ``unit_dir`` (whether or not a unit or a
        node still goes with it), sorted."""
        try:
            names = os.listdir(self.unit_dir)
        except OSError:
            return []
        suffix = '.service.d'
        return sorted(name[:-len(suffix)] for name in names if name.endswith(suffix) and name[:-len(suffix)]
                      and os.path.isfile(os.path.join(self.unit_dir, name, DROPIN_NAME)))

    def remove_dropin(self, service):
        """Remove the drop-in, and its ``.service.d`` directory when nothing else is left in it."""
        self.write_dropin(service, None)
        directory = os.path.dirname(self.dropin_path(service))
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty (another drop-in of the service) or already gone

    def configured_mode(self, service):
        """The mode the drop-in sets (what the service runs at its next start), or None."""
        text = self.read_dropin(service)
        return None if text is None else parse_environment(text).get(TRANSPORT_MODE_ENV)

    def write_dropin(self, service, text):
        """Write (or with ``text=None`` remove) the drop-in atomically; the unit file is not touched."""
        path = self.dropin_path(service)
        if not os.path.isdir(self.unit_dir):
            raise SystemdError(f'the systemd unit directory {self.unit_dir} does not exist; set unit_dir to '
                               'the directory that holds the node services (antctl installs them there)')
        try:
            if text is None:
                if os.path.exists(path):
                    os.unlink(path)
                return
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix='.ant-transport-mode.', dir=os.path.dirname(path))
            try:
                with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                    handle.write(text)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            hint = ' (run the task with become: writing units needs root)' if exc.errno in (1, 13) else ''
            raise SystemdError(f'cannot write {path}: {exc.strerror or exc}{hint}') from None

    # -- systemctl -----------------------------------------------------------------------

    def run(self, *args, timeout=None):
        cmd = [self.systemctl] + [str(a) for a in args]
        env = dict(os.environ)
        env.update(self.env)
        limit = timeout or self.timeout
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, text=True, start_new_session=True)
        except OSError as exc:
            raise SystemdError(f'cannot run {self.systemctl}: {exc.strerror or exc}; set systemctl_path',
                               cmd=cmd) from None
        try:
            stdout, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            stdout, stderr = proc.communicate()
            raise SystemdError(f"{' '.join(cmd)} did not finish within {limit} s", cmd=cmd, stdout=stdout,
                               stderr=stderr) from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (stderr or stdout or '').splitlines() if ln.strip()]
            hint = ''
            if any('Access denied' in ln or 'Interactive authentication required' in ln for ln in lines):
                hint = ' (run the task with become: systemctl needs root for this)'
            raise SystemdError(f"{' '.join(cmd)} failed with exit code {proc.returncode}: "
                               f"{lines[0] if lines else 'no output'}{hint}",
                               cmd=cmd, rc=proc.returncode, stdout=stdout, stderr=stderr)
        return stdout

    def daemon_reload(self):
        return self.run('daemon-reload')

    def restart(self, service):
        return self.run('restart', f'{service}.service')

    def restart_many(self, services):
        """One ``systemctl restart a.service b.service ...``: {service: error} of those that failed.

        systemctl goes on with the other units when one cannot be restarted: it prints
        ``Failed to restart X.service: ...`` (unit not found, masked ...) or, once the jobs ran,
        ``Job for X.service failed ...`` per failing unit, and exits non-zero. A failure that names
        no unit (systemctl itself, a timeout) is put on every unit of the call.
        """
        services = list(services)
        if not services:
            return {}
        try:
            self.run('restart', *[f'{s}.service' for s in services])
        except SystemdError as exc:
            named = failed_units(exc.stderr or '', services)
            return named or {s: str(exc) for s in services}
        return {}

    def start(self, service):
        return self.run('start', f'{service}.service')

    def show(self, service, *properties):
        """``systemctl show -p P ...``: {property: value}."""
        args = ['show', f'{service}.service']
        for prop in properties:
            args += ['-p', prop]
        out = {}
        for line in self.run(*args).splitlines():
            key, sep, value = line.partition('=')
            if sep:
                out[key] = value
        return out
