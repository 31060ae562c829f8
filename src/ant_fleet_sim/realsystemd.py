"""A host with a real systemd: booted in a container of its own, for tests/realsystemd.

systemd 252 boots as PID 1 here, but booted against the machine's root it would run
systemd-tmpfiles on the machine's ``/tmp`` and start the machine's installed services. So it gets a
root of its own: a minimal Debian made with ``mmdebstrap`` (systemd, python3, python3-cryptography; no
other service), booted with ``systemd-nspawn`` (Debian's ``systemd-container``), which gives it its
own PID, mount, IPC and UTS namespaces and its own tmpfs ``/tmp`` and ``/run``; ``/var`` and ``/etc`` are
the root's. It shares the machine's network, so the controller (Ansible, Prometheus) reaches the
nodes' metrics on ``127.0.0.1`` as on a real host; every port is a free one.

Inside: ``/usr/local/bin/antctl`` is ``ant_fleet_sim.unitctl`` (antctl's add / status against this
systemd), node services are units whose process is ``ant_fleet_sim.unitnode``. The repository is
bind-mounted read-only at its own path (the node processes, the dashboard's virtualenv), and one
directory of the test read-write at its own path (Ansible's remote temporary files).

Ansible reaches the host with the local connection and an interpreter that enters the container's
namespaces (``nsenter``) and runs its ``/usr/bin/python3``: with pipelining, the module comes in on
stdin and runs on the host's systemd, files, antctl and Python, as over SSH.

``missing_requirements()`` says what this machine lacks (not root, no systemd-nspawn, mmdebstrap, or
no network to build the root the first time); the root is built once per package list and cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sysconfig
import time
from pathlib import Path

PACKAGES = ('systemd', 'python3', 'python3-cryptography', 'passwd')
SUITE = 'bookworm'
MIRROR = 'http://deb.debian.org/debian'
CACHE = Path(os.environ.get('ANT_REALSYSTEMD_CACHE', Path.home() / '.cache' / 'ant-network-migration' / 'realsystemd'))
# Units the minimal root would start that a node host does not need (no terminal is attached).
MASKED = ('console-getty.service', 'getty@.service', 'systemd-networkd.service', 'systemd-resolved.service',
          'systemd-timesyncd.service')


class RealSystemdError(RuntimeError):
    pass


def missing_requirements():
    """Why a real systemd cannot be had on this machine, or None."""
    if os.geteuid() != 0:
        return 'needs root (systemd-nspawn and mmdebstrap)'
    for tool, package in (('systemd-nspawn', 'systemd-container'), ('mmdebstrap', 'mmdebstrap'),
                          ('nsenter', 'util-linux')):
        if shutil.which(tool) is None:
            return '%s is not installed (Debian package %s)' % (tool, package)
    return None


def root_tarball(log=None):
    """The cached minimal root (a tarball made by mmdebstrap), built when missing."""
    key = hashlib.sha256(json.dumps([SUITE, MIRROR, PACKAGES]).encode()).hexdigest()[:16]
    tarball = CACHE / ('root-%s-%s.tar' % (SUITE, key))
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix('.partial.tar')
    cmd = ['mmdebstrap', '--variant=minbase', '--include=%s' % ','.join(PACKAGES),
           '--aptopt=APT::Install-Recommends "false"',
           '--dpkgopt=path-exclude=/usr/share/doc/*', '--dpkgopt=path-exclude=/usr/share/man/*',
           '--dpkgopt=path-exclude=/usr/share/locale/*', SUITE, str(partial), MIRROR]
    proc = subprocess.run(cmd, stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RealSystemdError('mmdebstrap could not build the root (%s): %s'
                               % (' '.join(cmd), (proc.stdout or '')[-2000:]))
    os.replace(partial, tarball)
    return tarball


class RealSystemdHost:
    """One container with a real systemd as PID 1. ``start()`` builds (or reuses) the root and boots it;
    ``stop()`` powers it off and leaves nothing running."""

    def __init__(self, directory, repo, name=None):
        self.directory = Path(directory).absolute()
        self.repo = Path(repo).absolute()
        self.root = self.directory / 'root'
        self.shared = self.directory / 'shared'      # bind-mounted read-write at the same path
        self.name = name or 'ant-real-%d' % os.getpid()
        self.proc = None
        self.leader = None
        self.log_path = self.directory / 'nspawn.log'

    # -- the root ------------------------------------------------------------------------------
    def _prepare_root(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shared.mkdir(exist_ok=True)
        with open(self.directory / 'mmdebstrap.log', 'w') as log:
            tarball = root_tarball(log)
        self.root.mkdir()
        subprocess.run(['tar', '--extract', '--numeric-owner', '--file', str(tarball), '--directory', str(self.root)],
                       check=True, capture_output=True, timeout=600)
        etc = self.root / 'etc'
        (etc / 'hostname').write_text('%s\n' % self.name)
        (etc / 'machine-id').write_text('')
        for unit in MASKED:
            link = etc / 'systemd' / 'system' / unit
            link.unlink(missing_ok=True)
            link.symlink_to('/dev/null')
        python_path = '%s:%s' % (self.repo / 'src', self.repo / 'collections')
        antctl = self.root / 'usr' / 'local' / 'bin' / 'antctl'
        antctl.write_text('#!/bin/sh\nPYTHONPATH=%s exec /usr/bin/python3 -m ant_fleet_sim.unitctl "$@"\n'
                          % python_path)
        antctl.chmod(0o755)
        # The collection's tools (the dashboard) from the controller's virtualenv, run by the host's python3:
        # the virtualenv's own interpreter may live where the container cannot see it (pyenv under /root).
        tools = self.root / 'usr' / 'local' / 'bin' / 'ant-network-migration'
        tools.write_text("#!/bin/sh\nexec /usr/bin/python3 -c 'import site, sys; site.addsitedir(sys.argv.pop(1)); "
                         "sys.argv[0] = \"ant-network-migration\"; from ant_network_migration_cli.main import main; "
                         "sys.exit(main())' %s \"$@\"\n" % sysconfig.get_path('purelib'))
        tools.chmod(0o755)

    # -- booting -------------------------------------------------------------------------------
    def start(self, timeout=120):
        self._prepare_root()
        log = open(self.log_path, 'w')
        cmd = ['systemd-nspawn', '--quiet', '--directory=%s' % self.root, '--machine=%s' % self.name, '--boot',
               '--register=no', '--keep-unit', '--console=pipe', '--bind-ro=%s' % self.repo,
               '--bind=%s' % self.shared, 'systemd.unit=multi-user.target']
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RealSystemdError('systemd-nspawn exited with %s: %s'
                                       % (self.proc.returncode, self.log_path.read_text()[-2000:]))
            self.leader = self.leader or self._find_leader()
            if self.leader:
                state = self.run('systemctl', 'is-system-running', check=False).stdout.strip()
                if state in ('running', 'degraded'):
                    return self
            time.sleep(0.5)
        self.stop()
        raise RealSystemdError('the container\'s systemd did not finish booting within %d s' % timeout)

    def _find_leader(self):
        """The container's PID 1 as the machine sees it: the child of systemd-nspawn."""
        try:
            children = Path('/proc/%d/task/%d/children' % (self.proc.pid, self.proc.pid)).read_text().split()
        except OSError:
            return None
        for pid in children:
            try:
                if Path('/proc/%s/comm' % pid).read_text().strip() == 'systemd':
                    return int(pid)
            except OSError:
                continue
        return None

    def enter(self):
        """The command prefix that runs a program inside the container (its mount, PID, IPC, UTS namespaces)."""
        if not self.leader:
            raise RealSystemdError('the container is not running')
        return ['nsenter', '--target', str(self.leader), '--mount', '--uts', '--ipc', '--pid', '--']

    def run(self, *cmd, check=True, timeout=120, input=None):
        env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8',
               'SYSTEMD_COLORS': '0', 'SYSTEMD_PAGER': ''}
        proc = subprocess.run(self.enter() + list(cmd), capture_output=True, text=True, timeout=timeout, env=env,
                              input=input)
        if check and proc.returncode != 0:
            raise RealSystemdError('%s failed (%d): %s%s' % (' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def python_wrapper(self):
        """An interpreter for Ansible (ansible_python_interpreter): the container's python3, in its namespaces."""
        path = self.directory / 'container-python3'
        path.write_text('#!/bin/sh\nexec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin '
                        'LANG=C.UTF-8 %s /usr/bin/python3 "$@"\n' % ' '.join(self.enter()))
        path.chmod(0o755)
        return path

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, timeout=60):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if self.leader:
                self.run('systemctl', 'poweroff', '--no-block', check=False, timeout=30)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.leader = None
        # nspawn keeps an empty propagation directory under the machine's /run (it refuses to remove it
        # when /run is no tmpfs): remove ours.
        propagate = Path('/run/systemd/nspawn/propagate') / self.name
        shutil.rmtree(propagate, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
