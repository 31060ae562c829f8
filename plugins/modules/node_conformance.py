#!/usr/bin/python
# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: node_conformance
short_description: Check one host against the node interface the collection relies on
version_added: 0.2.0
description:
  - For a person building a dual-stack ant-node or preparing a host. Checks every item of the collection's
    C(docs/node-interface.md) on the host and reports each as V(present), V(missing), V(wrong) or V(absent_ok).
  - "Items: C(antctl status --json) and the node fields it must carry; the systemd units of the services under
    O(unit_dir) and the transport-mode drop-in mechanism (a drop-in's C(ANT_TRANSPORT_MODE) is what the node runs);
    each contract metric of every running node, with its name, type and labels, on C(/metrics) or C(/metadata)."
  - Fails when a required item is missing or wrong, naming it. Changes nothing.
author:
  - Autonomi network operations (@autonomi)
extends_documentation_fragment:
  - autonomi.network_migration._node
  - autonomi.network_migration._attributes
  - autonomi.network_migration._attributes.IDEMPOTENT
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  fail_on_optional:
    description:
      - Fail also when an optional item (one the collection can do without) is missing or wrong.
    type: bool
    default: false
notes:
  - "Privileges: reading C(antctl status --json) may need root (the node registry is root's on a system install);
    reading drop-ins and metrics does not. Run it with C(become) like the other node tasks."
seealso:
  - module: autonomi.network_migration.transport_info
"""

EXAMPLES = r"""
- name: Check one host against the node interface
  autonomi.network_migration.node_conformance:
  become: true
  register: conformance
"""

RETURN = r"""
items:
  description: One entry per checked item.
  returned: always
  type: list
  elements: dict
  contains:
    item:
      description: The item, e.g. C(metric libp2p_kad_query_result_get_closest_peers_ok) or C(antctl status --json).
      type: str
    kind:
      description: V(antctl), V(systemd) or V(metric).
      type: str
    required:
      description: Whether the collection needs it.
      type: bool
    status:
      description: V(present), V(missing), V(wrong) or V(absent_ok) (a counter that appears with its first event).
      type: str
    detail:
      description: What was found, and for V(missing) / V(wrong) what is expected.
      type: str
summary:
  description: How many items have each status.
  returned: always
  type: dict
  sample: {present: 20, missing: 0, wrong: 0, absent_ok: 2}
failed_items:
  description: The items that make the check fail.
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import STATUS_RUNNING
from ansible_collections.autonomi.network_migration.plugins.module_utils._common import (
    fail_from_error,
    node_argument_spec,
    parallel_map,
    reader_from_params,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    CommandError,
    MetricsError,
    NodeError,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import (
    CONTRACT_METRICS,
    IROH_GROUPS,
    METADATA_PATH,
    TRANSPORT_MODE_ENV,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import fetch_text, parse_text
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import parse_environment

PRESENT = 'present'
MISSING = 'missing'
WRONG = 'wrong'
ABSENT_OK = 'absent_ok'
STATUSES = (PRESENT, MISSING, WRONG, ABSENT_OK)
# Fields of `antctl status --json` nodes the collection reads (ant-service-management NodeServiceData).
NODE_FIELDS = ('service_name', 'status', 'peer_id', 'version', 'metrics_port', 'rpc_socket_addr')
# What a TYPE line may say for each contract type (an Info is a gauge `_info` in the Prometheus text format).
TYPE_ALIASES = {'gauge': ('gauge',), 'counter': ('counter',), 'histogram': ('histogram',), 'info': ('info', 'gauge')}
SAMPLE_SUFFIXES = {'gauge': ('',), 'counter': ('_total',), 'histogram': ('_bucket', '_sum', '_count'),
                   'info': ('_info',)}
_TYPE_RE = re.compile(r'^#\s*TYPE\s+(\S+)\s+(\S+)')


def page_types(text):
    """{family name: type} from the TYPE lines of a metrics page."""
    return {m.group(1): m.group(2) for m in map(_TYPE_RE.match, text.splitlines()) if m}


class Conformance:
    def __init__(self, reader):
        self.reader = reader
        self.items = []

    def add(self, item, kind, required, status, detail):
        self.items.append({'item': item, 'kind': kind, 'required': required, 'status': status, 'detail': detail})

    # -- antctl and systemd ------------------------------------------------------------------

    def check_antctl(self):
        try:
            nodes = self.reader.registry()
        except CommandError as exc:
            self.add('antctl status --json', 'antctl', True, WRONG if exc.rc else MISSING, str(exc))
            return []
        except NodeError as exc:
            self.add('antctl status --json', 'antctl', True, WRONG, str(exc))
            return []
        self.add('antctl status --json', 'antctl', True, PRESENT, f'{len(nodes)} node(s) in the registry')
        raw_missing = sorted({f for n in nodes for f in NODE_FIELDS if n.get(f) in (None, '')
                              and not (f == 'peer_id' and n['status'] != STATUS_RUNNING)})
        self.add('antctl status --json node fields', 'antctl', True, WRONG if raw_missing else PRESENT,
                 f"nodes lack {', '.join(raw_missing)}" if raw_missing else ', '.join(NODE_FIELDS))
        return nodes

    def check_systemd(self, nodes):
        systemd = self.reader.systemd
        if not os.path.isdir(systemd.unit_dir):
            self.add('systemd unit directory', 'systemd', True, MISSING,
                     f'{systemd.unit_dir} does not exist (set unit_dir to where antctl installs the services)')
            return
        without = [n['service_name'] for n in nodes
                   if not os.path.isfile(os.path.join(systemd.unit_dir, f"{n['service_name']}.service"))]
        self.add('systemd units of the node services', 'systemd', True, MISSING if without else PRESENT,
                 f"no unit file for {', '.join(without)} in {systemd.unit_dir}" if without
                 else f'{len(nodes)} unit(s) in {systemd.unit_dir}')
        try:
            systemd.run('--version')
            self.add('systemctl', 'systemd', True, PRESENT, systemd.systemctl)
        except CommandError as exc:
            # A stand-in without --version still answers show; only a missing command is a failure.
            status = MISSING if exc.rc is None else PRESENT
            self.add('systemctl', 'systemd', True, status, str(exc) if status == MISSING else systemd.systemctl)

    def check_mode_env(self, node, running_mode):
        """The drop-in's ANT_TRANSPORT_MODE is what the node runs (the switch works on this host)."""
        systemd = self.reader.systemd
        try:
            shown = systemd.show(node['service_name'], 'Environment').get('Environment', '')
        except CommandError as exc:
            return WRONG, f"systemctl show {node['service_name']}: {exc}"
        loaded = parse_environment('[Service]\nEnvironment=' + shown).get(TRANSPORT_MODE_ENV) if shown else None
        if loaded is None:
            return PRESENT, f"{node['service_name']}: no {TRANSPORT_MODE_ENV} set, runs {running_mode}"
        if loaded != running_mode:
            return WRONG, (f"{node['service_name']} runs {running_mode} but systemd starts it with "
                           f'{TRANSPORT_MODE_ENV}={loaded}: the node does not take its mode from the environment')
        return PRESENT, f"{node['service_name']}: {TRANSPORT_MODE_ENV}={loaded}, runs {loaded}"

    # -- metrics -------------------------------------------------------------------------------

    def _pages(self, node):
        port, host, timeout = node['metrics_port'], self.reader.metrics_host, self.reader.metrics_timeout
        metrics = fetch_text(port, host=host, timeout=timeout)
        try:
            metadata = fetch_text(port, host=host, timeout=timeout, path=METADATA_PATH)
        except MetricsError:
            metadata = ''
        return {'/metrics': metrics, METADATA_PATH: metadata}

    @staticmethod
    def judge_metric(family, mtype, labels, path, absent_ok, pages):
        """(status, detail) of one contract metric family on one node's pages."""
        families = [family]
        if family.startswith('socket_'):
            families = [f'{group}_{family[len("socket_"):]}' for group in IROH_GROUPS]
        elsewhere = '/metrics' if path == METADATA_PATH else METADATA_PATH
        for name in families:
            for where in (path, elsewhere):
                text = pages.get(where) or ''
                samples = [(n, lab) for n, lab, _v in parse_text(text)
                           if n in [name + s for s in SAMPLE_SUFFIXES[mtype]]]
                declared = page_types(text).get(name)
                if not samples and declared is None:
                    continue
                if declared is not None and declared not in TYPE_ALIASES[mtype]:
                    return WRONG, f'{name} on {where} is a {declared}, expected a {mtype}'
                if not samples:
                    return WRONG, f'{name} on {where} is declared but has no sample'
                if where != path:
                    return WRONG, f'{name} is served on {where}, expected on {path}'
                lacking = sorted({lab for _n, found in samples for lab in labels if lab not in found})
                if lacking:
                    return WRONG, f"{name} samples lack the label(s) {', '.join(lacking)}"
                if mtype == 'histogram' and not any(n.endswith('_count') for n, _l in samples):
                    return WRONG, f'{name} has no _count sample (a histogram needs _bucket, _sum and _count)'
                return PRESENT, f"{name} ({mtype}{', labels ' + ', '.join(labels) if labels else ''}) on {where}"
        if absent_ok:
            return ABSENT_OK, f'{family} not served yet (a counter that appears with its first event)'
        return MISSING, f"{family} ({mtype}{', labels ' + ', '.join(labels) if labels else ''}) not on {path}"

    def check_metrics(self, nodes):
        running = [n for n in nodes if n['status'] == STATUS_RUNNING and n.get('metrics_port')]
        if not running:
            self.add('a running node to read', 'metric', True, MISSING, 'no running node with a metrics_port')
            return

        def read(node):
            try:
                return node, self._pages(node), None
            except MetricsError as exc:
                return node, None, str(exc)

        scraped = parallel_map(read, running)
        readable = [(node, pages) for node, pages, _err in scraped if pages is not None]
        unreadable = [f"{node['service_name']}: {err}" for node, _p, err in scraped if err]
        self.add('metrics endpoint of every running node', 'metric', True, WRONG if unreadable else PRESENT,
                 '; '.join(unreadable) if unreadable else f'{len(readable)} node(s) read')
        if not readable:
            return
        for family, mtype, labels, path, required, absent_ok in CONTRACT_METRICS:
            verdicts = [(node, *self.judge_metric(family, mtype, labels, path, absent_ok, pages))
                        for node, pages in readable]
            worst = max(verdicts, key=lambda v: (MISSING, WRONG, ABSENT_OK, PRESENT)[::-1].index(v[1]))
            node, status, detail = worst
            if status != PRESENT:
                detail = f"{node['service_name']}: {detail}"
            self.add(f'metric {family}', 'metric', required, status, detail)
        self.check_mode_semantics(readable)

    def check_mode_semantics(self, readable):
        problems, notes = [], []
        for node, pages in readable:
            active = [lab.get('mode') for n, lab, v in parse_text(pages['/metrics'])
                      if n == 'ant_node_transport_mode' and v == 1]
            if len(active) != 1 or active[0] not in MODES:
                problems.append(f"{node['service_name']} marks {active or 'no mode'} active "
                                f"(expected exactly one of {', '.join(MODES)} at 1)")
                continue
            status, detail = self.check_mode_env(node, active[0])
            (problems if status == WRONG else notes).append(detail)
        self.add('transport mode from ANT_TRANSPORT_MODE', 'systemd', True, WRONG if problems else PRESENT,
                 '; '.join(problems or notes))

    def run(self, fail_on_optional=False):
        nodes = self.check_antctl()
        if nodes:
            self.check_systemd(nodes)
            self.check_metrics(nodes)
        elif self.items and self.items[0]['status'] == PRESENT:
            self.add('nodes in the registry', 'antctl', True, MISSING, 'antctl knows no node on this host')
        failed = [i['item'] for i in self.items if i['status'] in (MISSING, WRONG)
                  and (i['required'] or fail_on_optional)]
        return {
            'changed': False,
            'items': self.items,
            'summary': {s: sum(1 for i in self.items if i['status'] == s) for s in STATUSES},
            'failed_items': failed,
        }


def main():
    spec = node_argument_spec()
    spec.update(fail_on_optional=dict(type='bool', default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        result = Conformance(reader_from_params(module.params)).run(module.params['fail_on_optional'])
    except NodeError as exc:
        fail_from_error(module, exc, changed=False)
    if result['failed_items']:
        details = [f"{i['item']}: {i['status']} ({i['detail']})" for i in result['items']
                   if i['item'] in result['failed_items']]
        module.fail_json(msg=f"{len(details)} item(s) of the node interface missing or wrong: " + '; '.join(details),
                         **result)
    module.exit_json(msg='the host meets the node interface ({present} present, {absent_ok} not yet served, '
                         '{missing} missing, {wrong} wrong)'.format(**result['summary']), **result)


if __name__ == '__main__':
    main()
