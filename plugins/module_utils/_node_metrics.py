# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node metrics reader: Prometheus text format, per-node figures, short-window rates.

A node serves its metrics on ``http://127.0.0.1:<metrics_port>/metrics``
(docs/node-interface.md). Runs on fleet hosts: standard library only, Python 3.11.
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request

from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    MetricsParseError,
    MetricsUnreachable,
)
from ansible_collections.autonomi.network_migration.plugins.module_utils._modes import MODES, TRANSPORTS
from ansible_collections.autonomi.network_migration.plugins.module_utils._node_interface import (
    M_CLOSEST_ERROR,
    M_CLOSEST_OK_COUNT,
    M_CONNECTED,
    M_DIAL_FAILURES,
    M_DURATION_BUCKET,
    M_IROH_DIRECT,
    M_IROH_HOLEPUNCH,
    M_IROH_RELAY,
    M_MODE,
    M_NETWORK_SIZE,
    M_OPEN_CONNECTIONS,
    M_RECORDS,
    M_REQUESTS,
    M_ROUTING_TABLE,
    M_TRANSPORT_CONNECTED,
    M_UPTIME,
    M_VERSION,
    METADATA_PATH,
    METRICS_PATH,
    iroh_names,
)

DEFAULT_METRICS_HOST = '127.0.0.1'
# What says whether a node runs a mode and is ready: NodeMetrics.mode and .connected_peers.
READINESS_METRICS = (M_MODE, M_CONNECTED)
DEFAULT_METRICS_TIMEOUT = 5.0
# The two exposition formats a node may serve (both are parsed).
OPENMETRICS = 'openmetrics'
PROMETHEUS_TEXT = 'prometheus_text'

_TYPE_RE = re.compile(r'^#\s*TYPE\s+(\S+)\s+(\S+)')
_NAME_RE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
_LABEL_NAME_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
_ESCAPES = {'\\': '\\', '"': '"', 'n': '\n'}


def _parse_float(text, line_no, line):
    try:
        return float(text)  # accepts NaN, +Inf, -Inf, 1e3
    except ValueError:
        raise MetricsParseError(f'line {line_no}: {text!r} is not a sample value: {line}') from None


def _skip_blanks(line, pos):
    while pos < len(line) and line[pos] in ' \t':
        pos += 1
    return pos


def _parse_labels(line, pos, line_no):
    """Parse ``{a="x",b="y"}`` starting at ``line[pos] == '{'``; return (labels, next pos)."""
    labels = {}
    pos += 1
    n = len(line)
    while True:
        pos = _skip_blanks(line, pos)
        if pos < n and line[pos] == '}':
            return labels, pos + 1
        match = _LABEL_NAME_RE.match(line, pos)
        if not match:
            raise MetricsParseError(f'line {line_no}: bad label name at column {pos + 1}: {line}')
        name = match.group(0)
        pos = match.end()
        pos = _skip_blanks(line, pos)
        if line[pos:pos + 1] != '=':
            raise MetricsParseError(f'line {line_no}: expected = after label {name}: {line}')
        pos = _skip_blanks(line, pos + 1)
        if line[pos:pos + 1] != '"':
            raise MetricsParseError(f'line {line_no}: expected a quoted value for label {name}: {line}')
        pos += 1
        value = []
        while True:
            if pos >= n:
                raise MetricsParseError(f'line {line_no}: unterminated label value: {line}')
            char = line[pos]
            if char == '\\' and pos + 1 < n:
                value.append(_ESCAPES.get(line[pos + 1], '\\' + line[pos + 1]))
                pos += 2
            elif char == '"':
                pos += 1
                break
            else:
                value.append(char)
                pos += 1
        labels[name] = ''.join(value)
        pos = _skip_blanks(line, pos)
        if pos < n and line[pos] == ',':
            pos += 1
        elif pos < n and line[pos] == '}':
            return labels, pos + 1
        else:
            raise MetricsParseError(f'line {line_no}: expected , or }} in labels: {line}')


def parse_text(text, names=None):
    """Parse Prometheus text exposition format (and the OpenMetrics subset nodes use).

    Returns a list of ``(name, labels, value)``. Comments, ``# HELP`` / ``# TYPE`` lines,
    timestamps, exemplars and ``# EOF`` are accepted and ignored. ``names`` (a tuple of metric
    names): only the samples of these metrics are parsed and returned, the other lines are skipped
    unread (a readiness poll needs two metrics of a page of a hundred lines).
    """
    samples = []
    for line_no, raw in enumerate(text.split('\n'), 1):
        line = raw.strip()
        if not line or line.startswith('#') or (names is not None and not line.startswith(names)):
            continue
        match = _NAME_RE.match(line)
        if not match:
            raise MetricsParseError(f'line {line_no}: no metric name: {raw}')
        name = match.group(0)
        if names is not None and name not in names:
            continue  # a longer name that starts with a wanted one
        pos = _skip_blanks(line, match.end())
        labels = {}
        if pos < len(line) and line[pos] == '{':
            labels, pos = _parse_labels(line, pos, line_no)
        rest = line[pos:].split('#', 1)[0].split()  # drop an OpenMetrics exemplar
        if not rest or len(rest) > 2:
            raise MetricsParseError(f'line {line_no}: expected "<value> [timestamp]": {raw}')
        samples.append((name, labels, _parse_float(rest[0], line_no, raw)))
    return samples


class Metrics:
    """The samples of one scrape, with lookups by name and labels."""

    def __init__(self, samples):
        self.samples = samples
        self._by_name = {}
        for name, labels, value in samples:
            self._by_name.setdefault(name, []).append((labels, value))

    @classmethod
    def from_text(cls, text, names=None):
        return cls(parse_text(text, names))

    def has(self, name):
        return name in self._by_name

    def series(self, name, **match):
        """(labels, value) of every series of ``name`` whose labels include ``match``."""
        return [(labels, value) for labels, value in self._by_name.get(name, [])
                if all(labels.get(k) == v for k, v in match.items())]

    def value(self, name, default=None, **match):
        """Sum of the matching series (a single series' value), or ``default`` if none."""
        found = self.series(name, **match)
        if not found:
            return default
        return sum(value for _labels, value in found)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a node endpoint never redirects; a redirect is an HTTP error here


_OPENER = None


def _opener():
    """One opener per module process for the plain-HTTP scrapes: no proxy (the endpoints are on the
    host itself, whatever http_proxy says), no redirects, no TLS context built per request."""
    global _OPENER
    if _OPENER is None:
        _OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    return _OPENER


def metrics_url(port, host=DEFAULT_METRICS_HOST, path=METRICS_PATH):
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}{path}"


def fetch_page(port, host=DEFAULT_METRICS_HOST, timeout=DEFAULT_METRICS_TIMEOUT, path=METRICS_PATH):
    """GET a node's metrics page: (text, Content-Type); raise MetricsUnreachable on any network or HTTP error."""
    url = metrics_url(port, host, path)
    try:
        with _opener().open(url, timeout=timeout) as response:
            return response.read().decode('utf-8', errors='replace'), response.headers.get('Content-Type') or ''
    except urllib.error.HTTPError as exc:
        raise MetricsUnreachable(f'{url} answered HTTP {exc.code}', url=url) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', exc)
        raise MetricsUnreachable(f'{url} cannot be read: {reason}', url=url) from None


def fetch_text(port, host=DEFAULT_METRICS_HOST, timeout=DEFAULT_METRICS_TIMEOUT, path=METRICS_PATH):
    """GET a node's metrics page; raise MetricsUnreachable on any network or HTTP error."""
    return fetch_page(port, host=host, timeout=timeout, path=path)[0]


def exposition_format(text, content_type=''):
    """``openmetrics`` or ``prometheus_text``: what a page is, by its Content-Type, else by its ``# EOF``.

    Real nodes serve OpenMetrics (prometheus-client: ``application/openmetrics-text;charset=utf-8;
    version=1.0.0``, integer counters, ``# EOF``); the classic text format 0.0.4 (``text/plain``) is
    accepted too. :func:`parse_text` reads both.
    """
    if 'openmetrics' in (content_type or '').lower():
        return OPENMETRICS
    if 'text/plain' in (content_type or '').lower():
        return PROMETHEUS_TEXT
    return OPENMETRICS if text.rstrip().endswith('# EOF') else PROMETHEUS_TEXT


def declared_types(text):
    """{family name: type} from the ``# TYPE`` lines of a page, whether or not samples follow.

    prometheus-client 0.23.1 (pinned by ant-node) declares a labelled family that was never touched
    with ``# HELP`` / ``# TYPE`` and no sample (prometheus/client_rust #271, changed in 0.24.1): such
    a family is there and its value is zero, not missing.
    """
    return {m.group(1): m.group(2) for m in map(_TYPE_RE.match, text.splitlines()) if m}


def scrape(port, host=DEFAULT_METRICS_HOST, timeout=DEFAULT_METRICS_TIMEOUT, metadata=False, names=None):
    """Fetch and parse one node's metrics; return a NodeMetrics.

    ``metadata=True`` reads ``/metadata`` too (the version Info lives there); a node without it
    is not an error: the version then comes from antctl. ``names``: parse only these metrics
    (for example READINESS_METRICS); the others then read as absent.
    """
    text = fetch_text(port, host=host, timeout=timeout)
    url = metrics_url(port, host)
    try:
        samples = parse_text(text, names)
    except MetricsParseError as exc:
        raise MetricsParseError(f'{url}: {exc}', url=url) from None
    if metadata:
        try:
            samples += parse_text(fetch_text(port, host=host, timeout=timeout, path=METADATA_PATH))
        except (MetricsUnreachable, MetricsParseError):
            pass
    return NodeMetrics(Metrics(samples), url=url)


def _int_or_none(value):
    return None if value is None or math.isnan(value) else int(value)


class NodeMetrics:
    """The figures of one node read from one scrape."""

    def __init__(self, metrics, url=None):
        self.metrics = metrics
        self.url = url

    @property
    def mode(self):
        """The active transport mode (the ``mode`` label whose value is 1), or None.

        None when the node does not export ``ant_node_transport_mode`` (a node that
        predates the dual-stack interface) or no mode is marked active. Several active
        modes is a broken node: MetricsParseError.
        """
        active = [labels.get('mode') for labels, value in self.metrics.series(M_MODE) if value == 1]
        if len(active) > 1:
            names = ', '.join(sorted(map(str, active)))
            raise MetricsParseError(f"{self.url or 'node'} reports several active transport modes: {names}",
                                    url=self.url)
        if not active:
            return None
        if active[0] not in MODES:
            raise MetricsParseError(f"{self.url or 'node'} reports unknown transport mode {active[0]!r}",
                                    url=self.url)
        return active[0]

    @property
    def connected_peers(self):
        return _int_or_none(self.metrics.value(M_CONNECTED))

    def transport_peers(self, transport):
        return _int_or_none(self.metrics.value(M_TRANSPORT_CONNECTED, transport=transport))

    @property
    def routing_table_size(self):
        return _int_or_none(self.metrics.value(M_ROUTING_TABLE))

    @property
    def closest_peers_ok(self):
        """Successful GetClosestPeers queries: the ``_count`` of libp2p's histogram (None when absent)."""
        return self.metrics.value(M_CLOSEST_OK_COUNT)

    @property
    def closest_peers_error(self):
        """Failed GetClosestPeers queries (all ``error`` labels). libp2p creates the counter at the
        first error, so an absent family next to a present histogram means 0; None when neither is."""
        value = self.metrics.value(M_CLOSEST_ERROR)
        if value is None and self.metrics.has(M_CLOSEST_OK_COUNT):
            return 0.0
        return value

    def iroh_counter(self, suffix):
        """An iroh socket counter by its suffix (``socket_`` group, else the older ``magicsock_``)."""
        for name in iroh_names(suffix):
            if self.metrics.has(name):
                return self.metrics.value(name)
        return None

    @property
    def uptime(self):
        return self.metrics.value(M_UPTIME)

    @property
    def version(self):
        for labels, _value in self.metrics.series(M_VERSION):
            found = labels.get('antnode_version') or labels.get('version')
            if found:
                return found
        return None

    def requests(self, transport, outcome=None):
        match = {'transport': transport}
        if outcome:
            match['outcome'] = outcome
        return self.metrics.value(M_REQUESTS, **match)

    def duration_buckets(self, transport):
        """Cumulative histogram buckets of request latency: sorted list of (le, count)."""
        buckets = {}
        for labels, value in self.metrics.series(M_DURATION_BUCKET, transport=transport):
            try:
                upper = float(labels['le'])
            except (KeyError, ValueError):
                continue
            buckets[upper] = buckets.get(upper, 0.0) + value
        return sorted(buckets.items())

    def dial_failures(self, transport):
        return self.metrics.value(M_DIAL_FAILURES, transport=transport)

    def summary(self):
        """The node's current figures as plain data (no rates)."""
        return {
            'mode': self.mode,
            'version': self.version,
            'connected_peers': self.connected_peers,
            'connected_peers_by_transport': {t: self.transport_peers(t) for t in TRANSPORTS},
            'routing_table_size': self.routing_table_size,
            'open_connections': _int_or_none(self.metrics.value(M_OPEN_CONNECTIONS)),
            'estimated_network_size': _int_or_none(self.metrics.value(M_NETWORK_SIZE)),
            'records_stored': _int_or_none(self.metrics.value(M_RECORDS)),
            'uptime_seconds': self.uptime,
            'iroh': {
                'direct_connections': _int_or_none(self.iroh_counter(M_IROH_DIRECT)),
                'relay_paths': _int_or_none(self.iroh_counter(M_IROH_RELAY)),
                'holepunch_attempts': _int_or_none(self.iroh_counter(M_IROH_HOLEPUNCH)),
            },
        }


def counter_delta(before, after):
    """Increase of a counter between two scrapes, Prometheus-style: a drop is a reset."""
    if before is None or after is None:
        return None
    if after < before:
        return after
    return after - before


def histogram_quantile(q, buckets):
    """Quantile ``q`` from cumulative ``(le, count)`` buckets, as Prometheus computes it.

    Linear interpolation inside the bucket that holds the rank; the lower bound of the
    first bucket is 0 (when its upper bound is positive); a rank in the +Inf bucket
    answers the upper bound of the last finite bucket. None when there are no
    observations or no finite bucket.
    """
    buckets = sorted(buckets)
    if not buckets or not math.isinf(buckets[-1][0]):
        return None
    total = buckets[-1][1]
    if total <= 0 or len(buckets) < 2:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for i, (le, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(le):
                return buckets[-2][0]
            if i == 0 and le <= 0:
                return le
            width = count - prev_count
            if width <= 0:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / width
        prev_le, prev_count = le, count
    return buckets[-2][0]


def bucket_delta(before, after):
    """Per-bucket increase between two scrapes of one histogram (reset-aware)."""
    old = dict(before)
    reset = any(after_count < old.get(le, 0.0) for le, after_count in after)
    if reset:
        return list(after)
    return [(le, count - old.get(le, 0.0)) for le, count in after]


def transport_window(first, second, transport, elapsed):
    """Request rate, error rate and latency quantile of one transport between two scrapes."""
    ok = counter_delta(first.requests(transport, 'success'), second.requests(transport, 'success'))
    errors = counter_delta(first.requests(transport, 'error'), second.requests(transport, 'error'))
    total = None if ok is None and errors is None else (ok or 0.0) + (errors or 0.0)
    latency = None
    after = second.duration_buckets(transport)
    if after:
        latency = histogram_quantile(0.95, bucket_delta(first.duration_buckets(transport), after))
    return {
        'requests': _round(total),
        'errors': _round(errors),
        'request_rate': _round(total / elapsed) if total is not None and elapsed > 0 else None,
        'error_rate': _round(errors / total if errors else 0.0) if total else None,
        'p95_latency_seconds': _round(latency),
        'dial_failures': _round(counter_delta(first.dial_failures(transport), second.dial_failures(transport))),
    }


def closest_peers_window(first, second):
    """Closest-peer (Kademlia) query outcomes between two scrapes."""
    ok = counter_delta(first.closest_peers_ok, second.closest_peers_ok)
    errors = counter_delta(first.closest_peers_error, second.closest_peers_error)
    total = None if ok is None and errors is None else (ok or 0.0) + (errors or 0.0)
    return {
        'ok': _round(ok),
        'errors': _round(errors),
        'success_rate': _round((ok or 0.0) / total) if total else None,
    }


def _round(value, digits=6):
    return None if value is None else round(value, digits)
