"""systemctl stand-in of one simulated host: the subset the collection uses.

Invoked by ``DIR/hosts/<host>/bin/systemctl``. Verbs: ``daemon-reload``, ``start``, ``stop``,
``restart``, ``show [-p P]... [--value]``, ``is-active``. Units are ``antnodeN[.service]``.
Messages and exit codes follow systemctl: an unknown unit is ``Unit X.service not found.``
(exit 5), ``is-active`` prints the state and exits 3 when it is not active. The simulator
daemon keeps the manager's state (what was loaded at the last daemon-reload).
"""

from __future__ import annotations

import os
import sys

from .antctl import Sim


def run(argv):
    host_dir = None
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == '--host-dir':
            host_dir = argv[i + 1]
            i += 2
            continue
        args.append(argv[i])
        i += 1
    props, value_only, words = [], False, []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ('-p', '--property'):
            props += args[i + 1].split(',')
            i += 2
            continue
        if arg.startswith('--property='):
            props += arg.split('=', 1)[1].split(',')
        elif arg == '--value':
            value_only = True
        elif arg in ('--no-pager', '--quiet', '-q', '--no-ask-password', '--system'):
            pass
        elif arg.startswith('-'):
            sys.stderr.write('systemctl: unrecognized option \'%s\'\n' % arg)
            return 1
        else:
            words.append(arg)
        i += 1
    if not words:
        sys.stderr.write('systemctl (ant-fleet-sim): a verb is required: daemon-reload, start, stop, restart, show, '
                         'is-active\n')
        return 1
    verb, units = words[0], [u[:-len('.service')] if u.endswith('.service') else u for u in words[1:]]
    if verb not in ('daemon-reload', 'start', 'stop', 'restart', 'show', 'is-active'):
        sys.stderr.write('Unknown command verb \'%s\'.\n' % verb)
        return 1
    if verb != 'daemon-reload' and not units:
        sys.stderr.write('Too few arguments.\n')
        return 1
    if verb in ('daemon-reload', 'start', 'stop', 'restart') and os.geteuid() != 0:
        # As systemd answers an unprivileged caller over D-Bus when no polkit rule grants it.
        if verb == 'daemon-reload':
            sys.stderr.write('Failed to reload daemon: Access denied\n')
        else:
            for unit in units:
                sys.stderr.write('Failed to %s %s.service: Access denied\n' % (verb, unit))
        return 1
    sim = Sim(host_dir)
    try:
        code, doc = sim.call('POST', '/api/hosts/%s/systemctl' % sim.host,
                             {'verb': verb, 'units': units, 'properties': props}, timeout=None)
    except ConnectionError as exc:
        sys.stderr.write('System has not been booted with systemd as init system (PID 1). Can\'t operate.\n'
                         'Failed to connect to bus: %s\n' % exc)
        return 1
    if doc.get('stdout'):
        if verb == 'show' and value_only:
            for line in doc['stdout'].splitlines():
                print(line.partition('=')[2])
        else:
            sys.stdout.write(doc['stdout'])
    if doc.get('stderr'):
        sys.stderr.write(doc['stderr'])
    return int(doc.get('rc', 0 if code == 200 else 1))


def main():
    sys.exit(run(sys.argv[1:]))


if __name__ == '__main__':
    main()
