# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the node-side modules share: options, the host's node inventory, error translation.

The options here are documented once in ``doc_fragments/_node.py``.
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.autonomi.network_migration.plugins.module_utils._antctl import (
    DEFAULT_ANTCTL_PATH,
    DEFAULT_COMMAND_TIMEOUT,
    STATUS_RUNNING,
    Antctl,
    select_nodes,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    CommandError,
    MetricsError,
    MetricsUnreachable,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import (
    DEFAULT_SYSTEMCTL,
    DEFAULT_UNIT_DIR,
    no_metrics_port_reason,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import (
    DEFAULT_METRICS_HOST,
    DEFAULT_METRICS_TIMEOUT,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_metrics import (
    scrape as scrape_node,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._systemd import Systemd

# Scrapes of one host's nodes run in parallel, at most this many at a time.
MAX_PARALLEL_SCRAPES = 16


def node_argument_spec():
    """Options of every node-side module (doc fragment ``autonomi.network_migration._node``)."""
    return dict(
        nodes=dict(type='list', elements='str', default=[]),
        antctl_path=dict(type='path', default=DEFAULT_ANTCTL_PATH),
        antctl_env=dict(type='dict', default={}),
        antctl_timeout=dict(type='int', default=DEFAULT_COMMAND_TIMEOUT),
        metrics_host=dict(type='str', default=DEFAULT_METRICS_HOST),
        metrics_timeout=dict(type='float', default=DEFAULT_METRICS_TIMEOUT),
        unit_dir=dict(type='path', default=DEFAULT_UNIT_DIR),
        systemctl_path=dict(type='str', default=DEFAULT_SYSTEMCTL),
    )


def antctl_from_params(params):
    return Antctl(path=params['antctl_path'], env=params['antctl_env'], timeout=params['antctl_timeout'])


def systemd_from_params(params):
    return Systemd(unit_dir=params['unit_dir'], systemctl=params['systemctl_path'])


def reader_from_params(params):
    return NodeReader(antctl_from_params(params), metrics_host=params['metrics_host'],
                      metrics_timeout=params['metrics_timeout'], systemd=systemd_from_params(params))


def parallel_map(func, items, workers=MAX_PARALLEL_SCRAPES):
    """``[func(item) for item in items]`` on a few threads (the scrapes wait on the network)."""
    items = list(items)
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))


class NodeReader:
    """Reads the selected nodes of the host: registry from antctl, live figures from metrics."""

    def __init__(self, antctl, metrics_host=DEFAULT_METRICS_HOST, metrics_timeout=DEFAULT_METRICS_TIMEOUT,
                 scraper=scrape_node, systemd=None):
        self.antctl = antctl
        self.systemd = systemd
        self.metrics_host = metrics_host
        self.metrics_timeout = metrics_timeout
        self._scrape = scraper

    def registry(self):
        """Every node of ``antctl status --json``, with ``configured_mode`` from its drop-in."""
        nodes = self.antctl.status()
        if self.systemd is not None:
            for node in nodes:
                node['configured_mode'] = self.systemd.configured_mode(node['service_name'])
        return nodes

    def nodes(self, selectors=None):
        return select_nodes(self.registry(), selectors)

    def scrape(self, node, metadata=False, names=None):
        """NodeMetrics of a node; raises MetricsError (MetricsUnreachable when it has no port).

        ``names``: only these metrics are parsed (READINESS_METRICS for the mode and readiness).
        """
        if not node.get('metrics_port'):
            raise MetricsUnreachable(no_metrics_port_reason(node['service_name']))
        extra = {}
        if metadata:
            extra['metadata'] = True
        if names is not None:
            extra['names'] = names
        return self._scrape(node['metrics_port'], host=self.metrics_host, timeout=self.metrics_timeout, **extra)

    def try_scrape(self, node, metadata=False):
        """(NodeMetrics, None) or (None, reason) — for loops that must not stop on one node."""
        if node['status'] != STATUS_RUNNING:
            return None, f"node is {node['status']}"
        try:
            return self.scrape(node, metadata=metadata), None
        except MetricsError as exc:
            return None, str(exc)


def fail_from_error(module, exc, **extra):
    """The one place where a domain error becomes ``fail_json``."""
    result = dict(extra)
    if isinstance(exc, CommandError):
        result.update({k: v for k, v in exc.details().items() if v not in (None, [])})
    if isinstance(exc, MetricsError) and exc.url:
        result['url'] = exc.url
    module.fail_json(msg=str(exc), exception=traceback.format_exc(), **result)
