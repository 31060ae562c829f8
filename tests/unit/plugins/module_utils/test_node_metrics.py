"""The node metrics reader: text-format parser edge cases, node figures, windows, HTTP fetch."""

from __future__ import annotations

import http.server
import math
import socket
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.module_utils import _node_metrics as nm
from ansible_collections.autonomi.network_migration.plugins.module_utils._errors import (
    MetricsParseError,
    MetricsUnreachable,
)

FIXTURES = Path(__file__).resolve().parents[3] / 'unit' / 'fixtures' / 'metrics'


def page(name):
    return nm.NodeMetrics(nm.Metrics.from_text((FIXTURES / name).read_text()), url=f'fixture:{name}')


# -- parser ------------------------------------------------------------------------------


def test_edge_cases():
    metrics = nm.Metrics.from_text((FIXTURES / 'edge_cases.txt').read_text())
    (labels, value), = metrics.series('weird_labels')
    assert labels == {'path': 'C:\\dir\\file', 'quote': 'say "hi"', 'newline': 'a\nb', 'comma': 'x,y',
                      'brace': '}{'}
    assert value == 1
    assert metrics.series('spaced_metric') == [({'a': '1', 'b': '2'}, 7.0)]
    assert metrics.value('no_labels_with_timestamp') == 3.5
    assert metrics.series('empty_braces') == [({}, 4.0)]
    assert math.isnan(metrics.value('nan_value'))
    assert metrics.value('pos_inf') == math.inf and metrics.value('neg_inf') == -math.inf
    assert metrics.value('scientific') == 1500 and metrics.value('negative') == -2
    assert metrics.value('colon:in:name') == 9
    assert metrics.value('with_exemplar_total', transport='iroh') == 17
    assert metrics.value('duplicate_series') == 3  # value() sums matching series
    assert metrics.value('duplicate_series', x='2') == 2
    assert metrics.value('absent', default='none') == 'none'
    assert not metrics.has('absent')


def test_empty_page():
    assert nm.parse_text('') == []
    assert nm.parse_text('# only a comment\n\n') == []


def test_crlf_line_endings():
    assert nm.parse_text('a 1\r\nb{x="y"} 2\r\n') == [('a', {}, 1.0), ('b', {'x': 'y'}, 2.0)]


@pytest.mark.parametrize('text,match', [
    ('good 1\nbad{x="1} 2', 'line 2: unterminated label value'),
    ('m{x="1" y="2"} 1', 'expected , or }'),
    ('m{1x="1"} 1', 'bad label name'),
    ('m{x 1} 1', 'expected = after label x'),
    ('m{x=1} 1', 'expected a quoted value for label x'),
    ('m one', "'one' is not a sample value"),
    ('m', 'expected "<value> \\[timestamp\\]"'),
    ('m 1 2 3', 'expected "<value>'),
    ('{x="1"} 1', 'no metric name'),
])
def test_parse_errors_name_the_line(text, match):
    with pytest.raises(MetricsParseError, match=match):
        nm.parse_text(text)


# -- node figures ------------------------------------------------------------------------


def test_dual_stack_node_figures():
    node = page('dual_stack_t0.txt')
    assert node.mode == 'dual_stack'
    assert node.version == '0.4.6'
    assert node.connected_peers == 18
    assert node.transport_peers('libp2p') == 12 and node.transport_peers('iroh') == 9
    assert node.routing_table_size == 42
    assert node.closest_peers_ok == 500 and node.closest_peers_error == 12  # two error labels summed
    assert node.requests('libp2p') == 2000 and node.requests('libp2p', 'error') == 50
    buckets = node.duration_buckets('iroh')
    assert buckets[0] == (0.005, 150.0) and math.isinf(buckets[-1][0])
    assert node.summary()['connected_peers_by_transport'] == {'libp2p': 12, 'iroh': 9}


def test_legacy_node_has_no_mode():
    node = page('legacy_no_mode.txt')
    assert node.mode is None
    assert node.transport_peers('iroh') is None
    assert node.connected_peers == 15


def test_several_active_modes_is_an_error():
    text = 'ant_node_transport_mode{mode="libp2p_only"} 1\nant_node_transport_mode{mode="dual_stack"} 1\n'
    with pytest.raises(MetricsParseError, match='several active transport modes: dual_stack, libp2p_only'):
        assert nm.NodeMetrics(nm.Metrics.from_text(text)).mode is None  # the property raises


def test_unknown_mode_is_an_error():
    with pytest.raises(MetricsParseError, match="unknown transport mode 'quic_only'"):
        assert nm.NodeMetrics(nm.Metrics.from_text('ant_node_transport_mode{mode="quic_only"} 1\n')).mode is None


def test_no_active_mode():
    assert nm.NodeMetrics(nm.Metrics.from_text('ant_node_transport_mode{mode="dual_stack"} 0\n')).mode is None


def test_version_label_fallback():
    assert nm.NodeMetrics(nm.Metrics.from_text('ant_node_antnode_version_info{version="1.2"} 1\n')).version == '1.2'


# -- histograms and windows --------------------------------------------------------------

INF = math.inf


@pytest.mark.parametrize('buckets,q,expected', [
    ([(0.1, 50), (0.2, 100), (INF, 100)], 0.5, 0.1),           # exactly at a bucket bound
    ([(0.1, 50), (0.2, 100), (INF, 100)], 0.95, 0.19),         # interpolated in (0.1, 0.2]
    ([(0.1, 100), (INF, 100)], 0.5, 0.05),                     # first bucket starts at 0
    ([(0.1, 10), (0.2, 20), (INF, 100)], 0.95, 0.2),           # rank in +Inf: last finite bound
    ([(0.1, 0), (0.2, 0), (INF, 0)], 0.95, None),              # no observations
    ([(INF, 10)], 0.95, None),                                 # no finite bucket
    ([(0.1, 5), (0.2, 10)], 0.95, None),                       # no +Inf bucket: not a histogram
    ([], 0.95, None),
])
def test_histogram_quantile(buckets, q, expected):
    result = nm.histogram_quantile(q, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_counter_delta_and_reset():
    assert nm.counter_delta(10, 15) == 5
    assert nm.counter_delta(10, 3) == 3  # the node restarted: counting from zero again
    assert nm.counter_delta(None, 3) is None


def test_bucket_delta_reset_takes_the_new_histogram():
    before = [(0.1, 50.0), (INF, 60.0)]
    assert nm.bucket_delta(before, [(0.1, 55.0), (INF, 70.0)]) == [(0.1, 5.0), (INF, 10.0)]
    assert nm.bucket_delta(before, [(0.1, 2.0), (INF, 3.0)]) == [(0.1, 2.0), (INF, 3.0)]


def test_window_of_a_healthy_node():
    first, second = page('dual_stack_t0.txt'), page('dual_stack_t1.txt')
    libp2p = nm.transport_window(first, second, 'libp2p', 5.0)
    assert libp2p['requests'] == 100 and libp2p['errors'] == 2
    assert libp2p['error_rate'] == pytest.approx(0.02)
    assert libp2p['request_rate'] == pytest.approx(20.0)
    assert libp2p['p95_latency_seconds'] == pytest.approx(0.25)
    iroh = nm.transport_window(first, second, 'iroh', 5.0)
    assert iroh['error_rate'] == pytest.approx(0.01)
    assert iroh['p95_latency_seconds'] == pytest.approx(0.1 + 0.15 * 5 / 7)
    assert iroh['dial_failures'] == 0
    kad = nm.closest_peers_window(first, second)
    assert kad == {'ok': 20.0, 'errors': 0.0, 'success_rate': 1.0}


def test_window_of_a_faulted_node():
    first, second = page('dual_stack_t0.txt'), page('dual_stack_faulted_t1.txt')
    iroh = nm.transport_window(first, second, 'iroh', 5.0)
    assert iroh['error_rate'] == pytest.approx(0.3)
    assert iroh['p95_latency_seconds'] == pytest.approx(1.0 + 1.5 * 13 / 18)
    assert iroh['dial_failures'] == 117  # 3 reasons x (40 - 1)
    assert nm.closest_peers_window(first, second)['success_rate'] == pytest.approx(0.25)


def test_window_without_traffic():
    first = page('libp2p_only.txt')
    iroh = nm.transport_window(first, first, 'iroh', 5.0)
    assert iroh['requests'] == 0 and iroh['error_rate'] is None and iroh['p95_latency_seconds'] is None


# -- fetching ----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    body = (FIXTURES / 'dual_stack_t0.txt').read_bytes()

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.server.mode == 'slow':
            time.sleep(2)
        if self.server.mode == 'error':
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b'node is not running\n')
            return
        payload = b'this is {not metrics\n' if self.server.mode == 'garbage' else self.body
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4')
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.mode = 'ok'
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_scrape(server):
    node = nm.scrape(server.server_address[1])
    assert node.mode == 'dual_stack'
    assert node.url == f'http://127.0.0.1:{server.server_address[1]}/metrics'


def test_http_error(server):
    server.mode = 'error'
    with pytest.raises(MetricsUnreachable, match='answered HTTP 503'):
        nm.scrape(server.server_address[1])


def test_garbage_page_names_the_url(server):
    server.mode = 'garbage'
    with pytest.raises(MetricsParseError, match=r'http://127.0.0.1:\d+/metrics: line 1'):
        nm.scrape(server.server_address[1])


def test_timeout(server):
    server.mode = 'slow'
    started = time.monotonic()
    with pytest.raises(MetricsUnreachable, match='cannot be read'):
        nm.scrape(server.server_address[1], timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_connection_refused():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    free = sock.getsockname()[1]
    sock.close()
    with pytest.raises(MetricsUnreachable, match=f'127.0.0.1:{free}/metrics cannot be read'):
        nm.scrape(free, timeout=1)


def test_parse_only_the_named_metrics():
    text = ('# HELP ant_node_transport_mode mode\n'
            'ant_node_transport_mode{mode="dual_stack"} 1\n'
            'ant_node_transport_mode_changes_total 3\n'  # a longer name that starts with a wanted one
            'ant_networking_connected_peers 12\n'
            'some_other_metric{this is not parsed at all\n')
    samples = nm.parse_text(text, nm.READINESS_METRICS)
    assert samples == [('ant_node_transport_mode', {'mode': 'dual_stack'}, 1.0),
                       ('ant_networking_connected_peers', {}, 12.0)]
    node = nm.NodeMetrics(nm.Metrics(samples))
    assert node.mode == 'dual_stack' and node.connected_peers == 12
    with pytest.raises(MetricsParseError):
        nm.parse_text(text)  # the whole page is still checked when every metric is read
