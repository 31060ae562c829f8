# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine of the ``node_conformance`` module: one host checked against docs/node-interface.md.

Every item says how it was verified (``verified_by``), or that it could not be (status
``unverified``, with the reason): an item is ``present`` only when something on the host showed it.
Nodes antctl keeps as ``Removed`` (no unit, no process) are skipped and listed. Changes nothing.
Standard library only: runs on fleet hosts.
"""

from __future__ import annotations

import os

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import STATUS_REMOVED, STATUS_RUNNING
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import parallel_map
from ansible_collections.autonomi.network_migration.plugins.module_utils._dropins import REMOVE_HINT, audit, describe
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    CommandError,
    MetricsError,
    NodeError,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODE_TRANSPORTS, MODES
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import (
    CONTRACT_METRICS,
    IROH_GROUPS,
    M_CONNECTED,
    M_MODE,
    M_TRANSPORT_CONNECTED,
    METADATA_PATH,
    METRICS_PATH,
    METRICS_SERVER_FIX,
    MODE_WITHOUT_ENV,
    TRANSPORT_MODE_ENV,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import (
    OPENMETRICS,
    declared_types,
    exposition_format,
    fetch_page,
    parse_text,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import parse_environment

PRESENT = 'present'
MISSING = 'missing'
WRONG = 'wrong'
ABSENT_OK = 'absent_ok'
UNVERIFIED = 'unverified'
STATUSES = (PRESENT, MISSING, WRONG, ABSENT_OK, UNVERIFIED)
# The worst verdict of one item over several nodes comes first.
_SEVERITY = (MISSING, WRONG, UNVERIFIED, ABSENT_OK, PRESENT)
# Fields of `antctl status --json` nodes the collection reads (ant-service-management NodeServiceData).
NODE_FIELDS = ('service_name', 'status', 'peer_id', 'version', 'rpc_socket_addr')
# What a TYPE line may say for each contract type (an Info is a gauge `_info` in the classic text format).
TYPE_ALIASES = {'gauge': ('gauge',), 'counter': ('counter',), 'histogram': ('histogram',), 'info': ('info', 'gauge')}
SAMPLE_SUFFIXES = {'gauge': ('',), 'counter': ('_total',), 'histogram': ('_bucket', '_sum', '_count'),
                   'info': ('_info',)}
FORMAT_NAMES = {OPENMETRICS: 'OpenMetrics', 'prometheus_text': 'Prometheus text 0.0.4'}


def _names(nodes):
    return ', '.join(n['service_name'] for n in nodes)


class Conformance:
    """Checks one host; ``run()`` returns the module result (items, summary, failed items, report lines)."""

    def __init__(self, reader, fetch=fetch_page):
        self.reader = reader
        self.fetch = fetch
        self.items = []
        self.skipped = []
        self.stale_dropins = []

    def add(self, item, kind, required, status, detail, verified_by):
        self.items.append({'item': item, 'kind': kind, 'required': required, 'status': status, 'detail': detail,
                           'verified_by': verified_by})

    # -- antctl -------------------------------------------------------------------------------

    def check_antctl(self):
        """Every node of the registry (Removed ones too); None when antctl cannot be read."""
        item, how = 'antctl status --json', 'ran antctl status --json'
        try:
            nodes = self.reader.registry()
        except CommandError as exc:
            self.add(item, 'antctl', True, WRONG if exc.rc else MISSING, str(exc), how)
            return None
        except NodeError as exc:
            self.add(item, 'antctl', True, WRONG, str(exc), how)
            return None
        removed = [n for n in nodes if n['status'] == STATUS_REMOVED]
        self.skipped = [{'service_name': n['service_name'], 'status': n['status'],
                         'reason': 'Removed in antctl status: no unit, no process (antctl remove keeps the entry)'}
                        for n in removed]
        detail = f'{len(nodes) - len(removed)} node(s)'
        if removed:
            detail += f'; {len(removed)} Removed, skipped: {_names(removed)}'
        self.add(item, 'antctl', True, PRESENT, detail, how)
        return nodes

    def check_node_fields(self, active):
        lacking = sorted({f for n in active for f in NODE_FIELDS if n.get(f) in (None, '')
                          and not (f == 'peer_id' and n['status'] != STATUS_RUNNING)})
        self.add('antctl status --json node fields', 'antctl', True, WRONG if lacking else PRESENT,
                 f"nodes lack {', '.join(lacking)}" if lacking else ', '.join(NODE_FIELDS) + ' (peer_id once started)',
                 f'read the fields of {len(active)} node(s) that are not Removed')

    def check_metrics_server(self, active):
        without = [n for n in active if not n.get('metrics_port')]
        if without:
            detail = (f'{_names(without)}: metrics_port is null (added without --enable-metrics-server or '
                      '--metrics-port): the node serves no metrics, so its mode and readiness cannot be read; '
                      f'antctl cannot turn it on for an existing node: add nodes with `{METRICS_SERVER_FIX}`')
        else:
            detail = f'{len(active)} node(s) have a metrics_port'
        self.add('metrics server of every node (antctl add --enable-metrics-server)', 'antctl', True,
                 WRONG if without else PRESENT, detail, 'read metrics_port of every node in antctl status --json')

    # -- systemd ------------------------------------------------------------------------------

    def check_systemd(self, active):
        systemd = self.reader.systemd
        if not os.path.isdir(systemd.unit_dir):
            self.add('systemd unit directory', 'systemd', True, MISSING,
                     f'{systemd.unit_dir} does not exist (set unit_dir to where antctl installs the services)',
                     f'looked for {systemd.unit_dir}')
            return False
        without = [n for n in active if not systemd.has_unit(n['service_name'])]
        self.add('systemd units of the node services', 'systemd', True, MISSING if without else PRESENT,
                 f'no unit file for {_names(without)} in {systemd.unit_dir}' if without
                 else f'{len(active)} unit(s) in {systemd.unit_dir}',
                 f'looked for <service>.service in {systemd.unit_dir} for every node that is not Removed')
        try:
            systemd.run('--version')
            self.add('systemctl', 'systemd', True, PRESENT, systemd.systemctl, f'ran {systemd.systemctl} --version')
        except CommandError as exc:
            # A stand-in without --version still answers show; only a missing command is a failure.
            status = MISSING if exc.rc is None else PRESENT
            self.add('systemctl', 'systemd', True, status, str(exc) if status == MISSING else systemd.systemctl,
                     f'ran {systemd.systemctl} --version')
        return True

    def check_dropins(self, nodes):
        systemd = self.reader.systemd
        how = f'read every {systemd.unit_dir}/*.service.d/ant-transport-mode.conf against antctl status'
        try:
            self.stale_dropins = audit(nodes, systemd)
        except CommandError as exc:
            self.add('transport-mode drop-ins belong to their nodes', 'systemd', True, UNVERIFIED, str(exc), how)
            return
        if self.stale_dropins:
            detail = '; '.join(describe(self.stale_dropins)) + '; ' + REMOVE_HINT
        else:
            detail = f'{len(systemd.dropin_services())} drop-in(s), each belongs to its node'
        self.add('transport-mode drop-ins belong to their nodes', 'systemd', True,
                 WRONG if self.stale_dropins else PRESENT, detail, how)

    def _loaded_mode(self, service):
        """(ANT_TRANSPORT_MODE systemd loaded for the service or None, error or None)."""
        try:
            shown = self.reader.systemd.show(service, 'Environment').get('Environment', '')
        except CommandError as exc:
            return None, f'systemctl show {service}: {exc}'
        return (parse_environment('[Service]\nEnvironment=' + shown).get(TRANSPORT_MODE_ENV) if shown else None), None

    def check_mode_env(self, running):
        """The mode a node runs is the ANT_TRANSPORT_MODE systemd started it with (libp2p_only without it).

        Verified on the nodes that have the variable; with none, only the default is: the item then says
        ``unverified`` instead of pretending the switch was seen working.
        """
        item = 'transport mode from ANT_TRANSPORT_MODE'
        how = 'systemctl show -p Environment of each running node against its ant_node_transport_mode'
        problems, with_var, without_var = [], [], []
        for node, mode in running:
            loaded, error = self._loaded_mode(node['service_name'])
            if error:
                problems.append(error)
            elif loaded is None:
                without_var.append(node)
                if mode != MODE_WITHOUT_ENV:
                    problems.append(f"{node['service_name']} runs {mode} without {TRANSPORT_MODE_ENV} "
                                    f'(a node without it runs {MODE_WITHOUT_ENV})')
            elif loaded != mode:
                problems.append(f"{node['service_name']} runs {mode} but systemd starts it with "
                                f'{TRANSPORT_MODE_ENV}={loaded}: the node does not take its mode from the environment')
            else:
                with_var.append(node)
        if problems:
            self.add(item, 'systemd', True, WRONG, '; '.join(problems), how)
        elif with_var:
            self.add(item, 'systemd', True, PRESENT,
                     f'{_names(with_var)} run(s) the mode {TRANSPORT_MODE_ENV} sets'
                     + (f'; {_names(without_var)} without it run {MODE_WITHOUT_ENV}' if without_var else ''), how)
        elif without_var:
            self.add(item, 'systemd', True, UNVERIFIED,
                     f'no running node has {TRANSPORT_MODE_ENV} set: {_names(without_var)} run {MODE_WITHOUT_ENV} as '
                     'a node without it must; that a node takes its mode from the variable is seen once a drop-in sets '
                     'it (transport_mode on one node, e.g. the canary)', how)
        else:
            self.add(item, 'systemd', True, UNVERIFIED, 'no running node whose mode could be read', how)

    # -- metrics -------------------------------------------------------------------------------

    def _pages(self, node):
        port, host, timeout = node['metrics_port'], self.reader.metrics_host, self.reader.metrics_timeout
        metrics, content_type = self.fetch(port, host=host, timeout=timeout)
        try:
            metadata = self.fetch(port, host=host, timeout=timeout, path=METADATA_PATH)[0]
        except MetricsError:
            metadata = ''
        pages = {METRICS_PATH: metrics, METADATA_PATH: metadata}
        # Parse now: a page that does not parse is a broken endpoint, said once, not per family.
        parsed = {path: parse_text(text) for path, text in pages.items()}
        return {'pages': pages, 'samples': parsed, 'format': exposition_format(metrics, content_type),
                'content_type': content_type}

    @staticmethod
    def judge_metric(family, mtype, labels, path, absent_ok, read):
        """(status, detail) of one contract metric family on one node's pages."""
        families = [family]
        if family.startswith('socket_'):
            families = [f'{group}_{family[len("socket_"):]}' for group in IROH_GROUPS]
        elsewhere = METRICS_PATH if path == METADATA_PATH else METADATA_PATH
        what = f"{mtype}{', labels ' + ', '.join(labels) if labels else ''}"
        for name in families:
            sample_names = [name + s for s in SAMPLE_SUFFIXES[mtype]]
            for where in (path, elsewhere):
                samples = [(n, lab) for n, lab, _v in read['samples'][where] if n in sample_names]
                types = declared_types(read['pages'][where])
                declared = types.get(name) or next((types[n] for n in sample_names if n in types), None)
                if not samples and declared is None:
                    continue
                if declared is not None and declared not in TYPE_ALIASES[mtype]:
                    return WRONG, f'{name} on {where} is a {declared}, expected a {mtype}'
                if where != path:
                    return WRONG, f'{name} is served on {where}, expected on {path}'
                found = f'{what} on {where}' if name == family else (
                    f'{name} ({what}) on {where}: the group of iroh before 0.96, {name.split("_", 1)[0]}_')
                if not samples:
                    # prometheus-client 0.23.1: a labelled family never touched is declared with no sample.
                    return PRESENT, f'{found}: declared, no sample yet (zero)'
                lacking = sorted({lab for _n, found in samples for lab in labels if lab not in found})
                if lacking:
                    return WRONG, f"{name} samples lack the label(s) {', '.join(lacking)}"
                if mtype == 'histogram' and not any(n.endswith('_count') for n, _l in samples):
                    return WRONG, f'{name} has no _count sample (a histogram needs _bucket, _sum and _count)'
                return PRESENT, found
        if absent_ok:
            return ABSENT_OK, f'{family} not served yet (a counter that appears with its first event)'
        return MISSING, f'{family} ({what}) not on {path}'

    def check_metrics(self, active):
        running = [n for n in active if n['status'] == STATUS_RUNNING and n.get('metrics_port')]
        how = f'scraped {METRICS_PATH} and {METADATA_PATH} of {{}} running node(s)'
        per_family = 'scraped {} node(s)'
        if not running:
            reason = 'no running node with a metrics port to read'
            self.add('metrics endpoint of every running node', 'metric', True, UNVERIFIED, reason, 'antctl status')
            for family, _mtype, _labels, _path, required, _absent_ok in CONTRACT_METRICS:
                self.add(f'metric {family}', 'metric', required, UNVERIFIED, reason, 'nothing to scrape')
            return []

        def read(node):
            try:
                return node, self._pages(node), None
            except MetricsError as exc:
                return node, None, str(exc)

        scraped = parallel_map(read, running)
        readable = [(node, pages) for node, pages, _err in scraped if pages is not None]
        unreadable = [f"{node['service_name']}: {err}" for node, _p, err in scraped if err]
        self.add('metrics endpoint of every running node', 'metric', True, WRONG if unreadable else PRESENT,
                 '; '.join(unreadable) if unreadable else f'{len(readable)} node(s) read',
                 how.format(len(running)))
        if not readable:
            return []
        how, per_family = how.format(len(readable)), per_family.format(len(readable))
        formats = {}
        for node, read_pages in readable:
            formats.setdefault(read_pages['format'], []).append(node)
        self.add('exposition format', 'metric', True, PRESENT,
                 '; '.join(f'{FORMAT_NAMES[f]} on {len(nodes)} node(s)' for f, nodes in sorted(formats.items()))
                 + ' (both are parsed)', 'Content-Type and # EOF of each page')
        for family, mtype, labels, path, required, absent_ok in CONTRACT_METRICS:
            verdicts = [(node, *self.judge_metric(family, mtype, labels, path, absent_ok, read_pages))
                        for node, read_pages in readable]
            node, status, detail = min(verdicts, key=lambda v: _SEVERITY.index(v[1]))
            if status != PRESENT:
                detail = f"{node['service_name']}: {detail}"
            self.add(f'metric {family}', 'metric', required, status, detail, per_family)
        return readable

    @staticmethod
    def _values(read_pages, name):
        return [(labels, value) for n, labels, value in read_pages['samples'][METRICS_PATH] if n == name]

    def check_mode_metric(self, readable):
        """Exactly one mode at 1. Returns [(node, mode)] of the nodes whose mode was read."""
        problems, modes = [], []
        for node, read_pages in readable:
            active = [lab.get('mode') for lab, value in self._values(read_pages, M_MODE) if value == 1]
            if len(active) != 1 or active[0] not in MODES:
                problems.append(f"{node['service_name']} marks {active or 'no mode'} active "
                                f"(expected exactly one of {', '.join(MODES)} at 1)")
            else:
                modes.append((node, active[0]))
        self.add(f'{M_MODE} marks the mode the node runs', 'metric', True, WRONG if problems else PRESENT,
                 '; '.join(problems) if problems else f'one mode at 1 on each of {len(modes)} node(s)',
                 f'read {M_MODE} of every readable node')
        return modes

    def check_readiness(self, readable, modes):
        """Readiness counts the peers of every transport the node runs: in iroh_only too.

        ``ant_networking_connected_peers`` is what the collection (and antctl's RPC ``network_info``, which
        antctl waits on after a start) compares with 5. Counting libp2p swarm peers only, an iroh_only node
        would never be ready: it must count at least the iroh peers of a node that runs iroh.
        """
        item = 'readiness counts the peers of every transport the mode runs'
        how = f'compared {M_CONNECTED} with {M_TRANSPORT_CONNECTED}{{transport}} on nodes running iroh'
        pages = dict((n['service_name'], p) for n, p in readable)
        problems, checked = [], []
        for node, mode in modes:
            if 'iroh' not in MODE_TRANSPORTS.get(mode, ()):
                continue
            read_pages = pages[node['service_name']]
            total = sum(v for _l, v in self._values(read_pages, M_CONNECTED))
            per = {lab.get('transport'): v for lab, v in self._values(read_pages, M_TRANSPORT_CONNECTED)}
            needed = per.get('iroh', 0) if mode == 'iroh_only' else max(per.values(), default=0)
            checked.append(node)
            if total < needed:
                problems.append(f"{node['service_name']} ({mode}) has {needed:g} iroh peer(s) but {M_CONNECTED} "
                                f'{total:g}: it counts libp2p swarm peers only, so an iroh_only node would never be '
                                'ready (neither for the collection nor for antctl start, which waits on RPC '
                                'network_info > 5 peers)')
        if problems:
            self.add(item, 'metric', True, WRONG, '; '.join(problems), how)
        elif checked:
            self.add(item, 'metric', True, PRESENT, f'{_names(checked)}: {M_CONNECTED} counts the iroh peers too', how)
        else:
            self.add(item, 'metric', True, UNVERIFIED,
                     'no readable node runs iroh yet; checked once one does (the canary, in dual_stack)', how)

    # -- the whole host -----------------------------------------------------------------------

    def run(self, fail_on_optional=False):
        nodes = self.check_antctl()
        if nodes is not None:
            active = [n for n in nodes if n['status'] != STATUS_REMOVED]
            if active:
                self.check_node_fields(active)
                self.check_metrics_server(active)
            else:
                self.add('nodes in the registry', 'antctl', True, MISSING,
                         'antctl knows no node on this host (that is not Removed)', 'ran antctl status --json')
            if self.check_systemd(active):
                self.check_dropins(nodes)
            if active:
                readable = self.check_metrics(active)
                modes = self.check_mode_metric(readable) if readable else []
                self.check_mode_env(modes)
                self.check_readiness(readable, modes)
        failed = [i['item'] for i in self.items if i['status'] in (MISSING, WRONG)
                  and (i['required'] or fail_on_optional)]
        result = {
            'changed': False,
            'items': self.items,
            'summary': {s: sum(1 for i in self.items if i['status'] == s) for s in STATUSES},
            'failed_items': failed,
            'skipped_nodes': self.skipped,
            'stale_dropins': self.stale_dropins,
        }
        result['report'] = report_lines(result)
        return result


def report_lines(result):
    """The tidy per-item list an operator reads: status, item, what was found, how it was verified."""
    width = max((len(i['item']) for i in result['items']), default=0)
    lines = []
    for item in result['items']:
        flag = '' if item['required'] else ' (optional)'
        lines.append(f"{item['status'].upper():<10} {item['item']:<{width}}  {item['detail']}{flag} "
                     f"[{item['verified_by']}]")
    for node in result['skipped_nodes']:
        lines.append(f"{'SKIPPED':<10} {node['service_name']:<{width}}  {node['reason']}")
    return lines
