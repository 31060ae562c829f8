"""A simulated fleet reached over SSH, the way a real fleet is.

One OpenSSH server (Debian's ``/usr/sbin/sshd``, not the system's ssh service) listens on a
loopback port with its own configuration, host key and authorized key under ``STATE/ssh/``.
Every simulated host has its own unprivileged account ``antsim-<host>``; Ansible logs in with key
authentication only, runs modules with ``/usr/bin/python3`` (the system Python) and pipelining,
and becomes root through sudo (a sudoers drop-in scoped to this fleet's accounts, NOPASSWD,
removed again when the server stops). Privileges are real: the simulated host's directory
(registry, unit directory) belongs to root, so a module that needs root fails without ``become``.

    python -m ant_fleet_sim.ssh up --state-dir .state [--port 2222]   # after ant-fleet-sim up
    python -m ant_fleet_sim.ssh down --state-dir .state

``up`` rewrites ``STATE/inventory/hosts.yml`` with the SSH connection of every host. The server
runs under a small supervisor that stops it (and removes the sudoers drop-in) when ``down`` is
called, when the simulator daemon of the same state directory stops, or when it is killed.

Needs root on the controller machine (accounts, sudoers, sshd's privilege separation); Debian
packages ``openssh-server`` and ``sudo`` (``scripts/setup.sh --test`` installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from . import layout

SSHD = '/usr/sbin/sshd'
SYSTEM_PYTHON = '/usr/bin/python3'
ACCOUNT_PREFIX = 'antsim-'
ACCOUNT_RE = re.compile(r'^[a-z_][a-z0-9_-]{0,31}$')
SUDOERS_DIR = Path('/etc/sudoers.d')
ACCOUNTS_LOCK = Path('/run/lock/ant-fleet-sim-accounts.lock')
PRIVSEP_DIR = Path('/run/sshd')
# The line of a simulator wrapper (STATE/hosts/<host>/bin/*) that starts the controller's Python.
WRAPPER_EXEC = re.compile(r'exec "([^"]+)" -m ant_fleet_sim\.')
REQUIRED_PROGRAMS = {
    SSHD: 'openssh-server',
    'ssh': 'openssh-client',
    'ssh-keygen': 'openssh-client',
    'sudo': 'sudo',
    'visudo': 'sudo',
    'useradd': 'passwd',
}


class SshError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------- paths
class SshState:
    """The files of the SSH side of one state directory (``STATE/ssh/``)."""

    def __init__(self, state_dir):
        self.state = layout.StateDir(state_dir)
        self.dir = self.state.root / 'ssh'

    config = property(lambda self: self.dir / 'sshd_config')
    host_key = property(lambda self: self.dir / 'ssh_host_ed25519_key')
    client_key = property(lambda self: self.dir / 'id_ed25519')
    authorized_keys = property(lambda self: self.dir / 'authorized_keys')
    known_hosts = property(lambda self: self.dir / 'known_hosts')
    info_file = property(lambda self: self.dir / 'ssh.json')
    log_file = property(lambda self: self.dir / 'sshd.log')
    supervisor_log = property(lambda self: self.dir / 'supervisor.log')

    @property
    def sudoers_file(self):
        """One drop-in per state directory, so that fleets side by side never remove each other's."""
        digest = hashlib.sha256(str(self.state.root).encode()).hexdigest()[:12]
        return SUDOERS_DIR / ('ant-fleet-sim-%s' % digest)

    def read_info(self):
        try:
            return json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None


def account_name(host):
    """The account of simulated host ``host``: ``antsim-<host>`` (a valid, at most 32-character user name)."""
    name = ACCOUNT_PREFIX + host
    if not host or not ACCOUNT_RE.match(name):
        raise SshError('host name %r gives the account name %r, which is not a valid user name '
                       '(lower-case letters, digits, - and _, at most 32 characters)' % (host, name))
    return name


# ---------------------------------------------------------------------------------------- checks
def check_requirements():
    """Raise SshError naming what is missing (root, programs) and how to install it."""
    if os.geteuid() != 0:
        raise SshError('the SSH fleet needs root on this machine (it creates accounts, a sudoers drop-in and runs '
                       'sshd); run as root or use the local connection (without SIM_SSH / ssh=True)')
    missing = sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items()
                      if not (os.access(prog, os.X_OK) if prog.startswith('/') else shutil.which(prog))})
    if missing:
        raise SshError('the SSH fleet needs the Debian package(s) %s: apt-get install %s '
                       '(scripts/setup.sh --test installs them)' % (', '.join(missing), ' '.join(missing)))
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise SshError('the SSH fleet runs modules with the system Python %s, which is missing '
                       '(Debian package python3)' % SYSTEM_PYTHON)


def _run(argv, what, input_text=None, timeout=60):
    proc = subprocess.run(argv, capture_output=True, text=True, input=input_text, timeout=timeout)
    if proc.returncode != 0:
        raise SshError('%s failed (exit %d): %s' % (what, proc.returncode,
                                                   (proc.stderr or proc.stdout).strip()[-800:]))
    return proc


# ---------------------------------------------------------------------------------------- accounts
@contextlib.contextmanager
def _accounts_lock():
    ACCOUNTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(ACCOUNTS_LOCK, 'a') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_account(name, host):
    """Create the unprivileged account ``name`` unless it exists; returns True when created.

    No password (``*``: no password login, but not a locked account, which sshd would refuse),
    a home directory, ``/bin/sh``. An existing account is reused as it is (accounts survive a
    fleet; ``userdel -r antsim-<host>`` removes one).
    """
    with _accounts_lock():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if entry is None:
            _run(['useradd', '--create-home', '--shell', '/bin/sh', '--password', '*',
                  '--comment', 'ant-fleet-sim simulated host %s' % host, name], 'useradd %s' % name)
            return True
    if entry.pw_uid == 0:
        raise SshError('account %s exists with uid 0; the SSH fleet needs unprivileged accounts' % name)
    if entry.pw_shell.endswith(('nologin', 'false')):
        raise SshError('account %s exists with the shell %s: sshd cannot run commands for it '
                       '(usermod -s /bin/sh %s, or remove it)' % (name, entry.pw_shell, name))
    return False


def write_sudoers(paths, accounts):
    """Install the sudoers drop-in of this fleet's accounts (validated with visudo first)."""
    alias = 'ANTSIM_' + paths.sudoers_file.name.rsplit('-', 1)[1].upper()
    text = ('# ant-fleet-sim: become (sudo, no password) for the accounts of the simulated fleet under\n'
            '# %s. Removed when that fleet\'s SSH server stops.\n'
            'User_Alias %s = %s\n'
            'Defaults:%s !requiretty, !lecture\n'
            '%s ALL=(ALL:ALL) NOPASSWD: ALL\n') % (paths.state.root, alias, ', '.join(accounts), alias, alias)
    tmp = paths.dir / 'sudoers.check'
    tmp.write_text(text)
    os.chmod(tmp, 0o440)
    _run(['visudo', '-c', '-q', '-f', str(tmp)], 'visudo check of the sudoers drop-in')
    SUDOERS_DIR.mkdir(mode=0o755, exist_ok=True)
    existed = paths.sudoers_file.exists()
    os.replace(tmp, paths.sudoers_file)
    return not existed


def remove_sudoers(paths, info):
    if info and info.get('sudoers_created') and paths.sudoers_file.exists():
        with contextlib.suppress(OSError):
            paths.sudoers_file.unlink()
            return True
    return False


# ---------------------------------------------------------------------------------------- files
def _keygen(path, comment):
    if not path.exists():
        _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', str(path)], 'ssh-keygen %s' % path)
    return Path(str(path) + '.pub').read_text().strip()


def _sshd_config(paths, port, accounts):
    return '\n'.join([
        '# sshd of the simulated fleet under %s (ant-fleet-sim); not the system ssh service.' % paths.state.root,
        'Port %d' % port,
        'ListenAddress 127.0.0.1',
        'HostKey %s' % paths.host_key,
        'PidFile %s' % (paths.dir / 'sshd.pid'),
        'AuthorizedKeysFile %s' % paths.authorized_keys,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'HostbasedAuthentication no',
        'PermitEmptyPasswords no',
        'PermitRootLogin no',
        'AllowUsers %s' % ' '.join(accounts),
        'UsePAM no',
        # The authorized_keys file lives in the state directory (root-owned, 0644) whose parents may
        # include /tmp (mode 1777), which StrictModes would refuse; ownership is set by this module.
        'StrictModes no',
        'UseDNS no',
        # Ansible opens up to `forks` connections at once: more than the default 10 unauthenticated ones.
        'MaxStartups 200',
        'MaxSessions 50',
        'X11Forwarding no',
        'AllowTcpForwarding no',
        'AllowAgentForwarding no',
        'PermitTunnel no',
        'PrintMotd no',
        'PrintLastLog no',
        'Subsystem sftp internal-sftp',
        'LogLevel VERBOSE',
        '',
    ])


def _make_state_traversable(state):
    """Other users (the host accounts) must reach STATE/hosts/<host>/ and STATE/sim.json: the state
    directory and its parents must be searchable (o+x). Fails naming the first that is not."""
    for path in [state.root, *state.root.parents]:
        mode = path.stat().st_mode
        if path == state.root and not mode & 0o001:
            os.chmod(path, (mode & 0o7777) | 0o711)
        elif not mode & 0o001:
            raise SshError('the host accounts cannot reach the state directory %s: %s is not searchable by other '
                           'users (mode %o); put the state directory elsewhere (SIM_STATE_DIR=/var/tmp/...) or '
                           'chmod o+x %s' % (state.root, path, mode & 0o777, path))


def install_host_commands(state):
    """Make the host-side commands (STATE/hosts/<host>/bin/*: antctl and its kin) run with the system
    Python from a root-owned copy of this package, as a real host's antctl does not live in the
    controller's virtualenv (which the host accounts may not even reach, e.g. a pyenv under /root).

    The wrappers the simulator wrote name the controller's interpreter; each is rewritten to
    ``/usr/bin/python3`` with ``PYTHONPATH`` set to ``STATE/ssh/lib``. Returns the rewritten paths.
    """
    lib = SshState(state.root).dir / 'lib'
    target = lib / __package__
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(Path(__file__).parent, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for path in [lib, *lib.rglob('*')]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    rewritten = []
    for wrapper in sorted(state.root.glob('hosts/*/bin/*')):
        text = wrapper.read_text()
        if not WRAPPER_EXEC.search(text):
            continue
        lines = []
        for line in text.splitlines():
            if WRAPPER_EXEC.search(line):
                lines.append('PYTHONPATH="%s"; export PYTHONPATH' % lib)
                line = WRAPPER_EXEC.sub(lambda m: 'exec "%s" -m %s.' % (SYSTEM_PYTHON, __package__), line)
            lines.append(line)
        layout.atomic_write(wrapper, '\n'.join(lines) + '\n', mode=0o755)
        rewritten.append(wrapper)
    if not rewritten:
        raise SshError('no host command under %s/hosts/*/bin runs `exec "<python>" -m %s...`: the simulator '
                       'writes its wrappers differently now; update ant_fleet_sim.ssh.install_host_commands'
                       % (state.root, __package__))
    return rewritten


# ---------------------------------------------------------------------------------------- server
def _sshd_children(pid):
    """Pids of the processes under ``pid`` (its per-connection sshd processes and theirs)."""
    parents = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stop_sshd(pid, config):
    """Stop our sshd and the sessions it forked (the controller's SSH masters then exit too)."""
    if not layout.process_matches(pid, SSHD, str(config)):
        return False
    sessions = _sshd_children(pid)
    layout.terminate(pid, (SSHD, str(config)), timeout=5.0)
    for child in sessions:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGTERM)
    return True


def _banner(port, timeout=1.0):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=timeout) as sock:
            return sock.recv(64).startswith(b'SSH-2.0-')
    except OSError:
        return False


def supervise(state_dir, owner=None):
    """Run sshd in the foreground as a child; stop it when asked (SIGTERM), when it dies or when the
    owner (the simulator daemon, ``pid:starttime``) is gone. Then remove the sudoers drop-in."""
    paths = SshState(state_dir)
    info = paths.read_info() or {}
    stop = {'flag': False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(flag=True))
    signal.signal(signal.SIGINT, lambda *a: stop.update(flag=True))
    log = open(paths.log_file, 'ab')
    proc = subprocess.Popen([SSHD, '-D', '-f', str(paths.config), '-E', str(paths.log_file)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    reason = 'stopped'
    try:
        while not stop['flag']:
            if proc.poll() is not None:
                reason = 'sshd exited with code %s' % proc.returncode
                break
            if owner and not layout.owner_alive(owner):
                reason = 'the simulator (%s) is gone' % owner
                break
            time.sleep(0.5)
    finally:
        _stop_sshd(proc.pid, paths.config)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
        remove_sudoers(paths, info)
        print('%s: %s; sshd and the sudoers drop-in removed' % (time.strftime('%H:%M:%S'), reason), flush=True)
    return 0


def start(state_dir, hosts=None, port=None, timeout=30.0):
    """Set up accounts, keys, sudoers and sshd for the running simulator under ``state_dir``.

    Returns the info dict (port, accounts, key and known_hosts paths). Rewrites the inventory.
    """
    check_requirements()
    paths = SshState(state_dir)
    state = paths.state
    sim = state.read_sim()
    if not state.running_pid() or not sim:
        raise SshError('no simulator is running under %s: start it first (ant-fleet-sim up --state-dir %s)'
                       % (state.root, state.root))
    stop(state_dir)
    hosts = list(hosts or state.read_config().host_names())
    accounts = {host: account_name(host) for host in hosts}
    _make_state_traversable(state)
    install_host_commands(state)
    # Searchable, not listable: sshd reads authorized_keys as the account; the private keys stay 0600.
    paths.dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(paths.dir, 0o711)
    created = [name for host, name in accounts.items() if ensure_account(name, host)]
    _keygen(paths.host_key, 'ant-fleet-sim sshd %s' % state.root)
    client_pub = _keygen(paths.client_key, 'ant-fleet-sim controller %s' % state.root)
    layout.atomic_write(paths.authorized_keys, client_pub + '\n', mode=0o644)
    sudoers_created = write_sudoers(paths, sorted(accounts.values()))
    info = {'accounts': accounts, 'created_accounts': created, 'sudoers': str(paths.sudoers_file),
            'sudoers_created': sudoers_created, 'client_key': str(paths.client_key),
            'known_hosts': str(paths.known_hosts), 'config': str(paths.config)}
    layout.atomic_write(paths.info_file, json.dumps(info, indent=1) + '\n')
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        owner = '%d:%s' % (sim['pid'], layout.process_start_time(sim['pid']))
        last_error = None
        for _attempt in range(3):
            info['port'] = port or layout.free_port()
            layout.atomic_write(paths.config, _sshd_config(paths, info['port'], sorted(accounts.values())), mode=0o600)
            _run([SSHD, '-t', '-f', str(paths.config)], 'sshd -t (configuration check)')
            layout.atomic_write(paths.info_file, json.dumps(info, indent=1) + '\n')
            if not paths.sudoers_file.exists():  # the supervisor of a failed attempt removed it
                write_sudoers(paths, sorted(accounts.values()))
            log = open(paths.supervisor_log, 'ab')
            proc = subprocess.Popen([layout.python_interpreter(), '-m', 'ant_fleet_sim.ssh', 'supervise',
                                     '--state-dir', str(state.root), '--owner', owner],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
            log.close()
            info['supervisor_pid'] = proc.pid
            layout.atomic_write(paths.info_file, json.dumps(info, indent=1) + '\n')
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None and not _banner(info['port']):
                time.sleep(0.05)
            if proc.poll() is None and _banner(info['port']):
                break
            layout.terminate(proc.pid, ('ant_fleet_sim.ssh', str(state.root)), timeout=5.0)
            last_error = paths.log_file.read_text(errors='replace')[-1500:] if paths.log_file.exists() else ''
            if port or 'Address already in use' not in last_error:
                raise SshError('sshd did not start on 127.0.0.1:%d (log %s):\n%s' % (info['port'], paths.log_file,
                                                                                     last_error))
        else:
            raise SshError('sshd found no free port after 3 attempts:\n%s' % last_error)
        info['sshd_pid'] = int((paths.dir / 'sshd.pid').read_text()) if (paths.dir / 'sshd.pid').exists() else None
        host_pub = Path(str(paths.host_key) + '.pub').read_text().split()
        layout.atomic_write(paths.known_hosts, '[127.0.0.1]:%d %s %s\n' % (info['port'], host_pub[0], host_pub[1]))
        layout.atomic_write(paths.info_file, json.dumps(info, indent=1) + '\n')
        write_inventory(state_dir, info)
        preflight(state_dir, info)
    except BaseException:
        # Nothing half-made stays behind: no sshd, no sudoers drop-in.
        stop(state_dir)
        remove_sudoers(paths, info)
        raise
    return info


def stop(state_dir):
    """Stop the SSH server of ``state_dir`` (and remove its sudoers drop-in); True when one ran."""
    paths = SshState(state_dir)
    info = paths.read_info()
    if not info:
        return False
    stopped = False
    pid = info.get('supervisor_pid')
    if pid and layout.process_matches(pid, 'ant_fleet_sim.ssh', str(paths.state.root)):
        layout.terminate(pid, ('ant_fleet_sim.ssh', str(paths.state.root)), timeout=10.0)
        stopped = True
    # A supervisor killed with SIGKILL leaves its sshd behind: stop it by its pid file.
    with contextlib.suppress(OSError, ValueError):
        sshd_pid = int((paths.dir / 'sshd.pid').read_text())
        stopped = _stop_sshd(sshd_pid, paths.config) or stopped
    stopped = remove_sudoers(paths, info) or stopped
    return stopped


# ---------------------------------------------------------------------------------------- inventory
def connection_vars(info, host):
    """The inventory variables that reach simulated host ``host`` over SSH, as a real host is reached."""
    return {
        'ansible_connection': 'ssh',
        'ansible_host': '127.0.0.1',
        'ansible_port': info['port'],
        'ansible_user': info['accounts'][host],
        'ansible_ssh_private_key_file': info['client_key'],
        'ansible_host_key_checking': True,
        'ansible_ssh_common_args': '-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'
                                   % info['known_hosts'],
        'ansible_ssh_pipelining': True,
        'ansible_python_interpreter': SYSTEM_PYTHON,
        'ansible_become': True,
        'ansible_become_method': 'sudo',
        'migration_become': True,
    }


def write_inventory(state_dir, info):
    """Rewrite STATE/inventory/hosts.yml: every host with its SSH connection (antctl paths kept)."""
    state = layout.StateDir(state_dir)
    data = yaml.safe_load(state.inventory.read_text())
    fleet = data['all']['children']['fleet']
    for host, hostvars in fleet['hosts'].items():
        hostvars.pop('ansible_python_interpreter', None)
        hostvars.update(connection_vars(info, host))
    text = ('# Generated by ant-fleet-sim up and ant_fleet_sim.ssh up: the simulated fleet, every host reached\n'
            '# over SSH (127.0.0.1:%d, one account per host, become through sudo, the system Python).\n'
            % info['port'])
    layout.atomic_write(state.inventory, text + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def ssh_command(info, host, command):
    """argv of a plain ``ssh`` to simulated host ``host`` running ``command`` (as its account)."""
    return ['ssh', '-p', str(info['port']), '-i', info['client_key'], '-o', 'IdentitiesOnly=yes',
            '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=%s' % info['known_hosts'],
            '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR',
            '%s@127.0.0.1' % info['accounts'][host], command]


def preflight(state_dir, info, timeout=30):
    """Over SSH, as each host's account: the host's antctl is executable, sudo works without a
    password and runs the system Python as root, and the simulator is reachable (``antctl status``
    as root: not root, antctl reads the user's own empty registry, as the real one does)."""
    state = layout.StateDir(state_dir)
    for host in info['accounts']:
        antctl = state.antctl(host)
        command = ('test -x %s && sudo -n %s status --json >/dev/null && sudo -n %s -c "import os; print(os.geteuid())"'
                   % (antctl, antctl, SYSTEM_PYTHON))
        proc = subprocess.run(ssh_command(info, host, command), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or proc.stdout.strip().splitlines()[-1:] != ['0']:
            raise SshError('preflight over SSH failed for %s (account %s): %s' % (
                host, info['accounts'][host], (proc.stderr or proc.stdout).strip()[-800:] or 'exit %d'
                % proc.returncode))


# ---------------------------------------------------------------------------------------- CLI
def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m ant_fleet_sim.ssh',
                                     description='Reach the simulated fleet under STATE over SSH (see module doc).')
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', help='accounts, keys, sudoers, sshd; rewrites STATE/inventory/hosts.yml')
    up.add_argument('--state-dir', required=True)
    up.add_argument('--port', type=int, default=0, help='sshd port on 127.0.0.1 (default: a free one)')
    down = sub.add_parser('down', help='stop sshd and remove the sudoers drop-in')
    down.add_argument('--state-dir', required=True)
    sup = sub.add_parser('supervise', help=argparse.SUPPRESS)
    sup.add_argument('--state-dir', required=True)
    sup.add_argument('--owner')
    args = parser.parse_args(argv)
    try:
        if args.command == 'supervise':
            return supervise(args.state_dir, args.owner)
        if args.command == 'up':
            info = start(args.state_dir, port=args.port or None)
            print('SSH fleet: sshd on 127.0.0.1:%d, accounts %s, key %s' % (
                info['port'], ', '.join(info['accounts'].values()), info['client_key']))
            return 0
        print('ssh: %s' % ('stopped' if stop(args.state_dir) else 'nothing was running'))
        return 0
    except SshError as exc:
        print('Error: %s' % exc, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
