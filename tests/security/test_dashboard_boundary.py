"""The dashboard answers its own names and its own page only (issue 22, finding 5): a foreign Host
(DNS rebinding) and a page of another origin get nothing from the API or /ws; the token is read
from the address once (the page), then travels as a session cookie, and is never printed."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ant_fleet_sim.testing import wait_for
from ant_network_migration_dashboard import boundary, testing

pytestmark = pytest.mark.security

API = ('/', '/status', '/status.schema.json', '/health', '/metrics')
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'


@pytest.fixture
def prometheus():
    with testing.StubPrometheus() as stub:
        yield stub


@pytest.fixture
def dashboard(ledger_path, prometheus):
    started = []

    def start(**options):
        running = testing.RunningService(str(ledger_path), prometheus.url, **options).start()
        started.append(running)
        auth = {'Authorization': f"Bearer {options['token']}"} if options.get('token') else {}
        wait_for(lambda: httpx.get(running.url + '/health', headers=auth, timeout=5).status_code == 200, timeout=30,
                 what='ready')
        return running

    yield start
    for running in started:
        running.stop()


def handshake_status(port, host):
    """The HTTP status a WebSocket handshake for ``Host: host`` gets (written by hand: a client
    library sets Host from the URL)."""
    request = (f'GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(request.encode())
        return int(sock.recv(4096).split(b' ', 2)[1])


def refused_ws(url, **kwargs):
    with pytest.raises(InvalidStatus) as caught:
        with connect(url, open_timeout=10, **kwargs) as ws:
            ws.recv(timeout=5)
    return caught.value.response.status_code


def test_a_foreign_host_gets_nothing(dashboard):
    running = dashboard()
    for path in API:
        assert httpx.get(running.url + path, timeout=10).status_code == 200, path
        response = httpx.get(running.url + path, headers={'Host': f'attacker.example:{running.port}'}, timeout=10)
        assert response.status_code == 400, path
        assert 'progress' not in response.text
    assert handshake_status(running.port, 'attacker.example') == 403
    assert handshake_status(running.port, f'127.0.0.1:{running.port}') == 101
    with connect(running.ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['type'] == 'status'


def test_configured_names_are_answered(dashboard):
    running = dashboard(allowed_hosts=['dashboard.example.com', '*.ops.example'])
    for host in ('dashboard.example.com', 'DASHBOARD.example.com:8090', 'mon-1.ops.example', 'localhost',
                 f'[::1]:{running.port}'):
        assert httpx.get(running.url + '/status', headers={'Host': host}, timeout=10).status_code == 200, host
    for host in ('example.com', 'ops.example.evil', 'dashboard.example.com.evil', 'localhost.'):
        assert httpx.get(running.url + '/status', headers={'Host': host}, timeout=10).status_code == 400, host


def test_another_origin_gets_nothing(dashboard):
    running = dashboard()
    own = f'http://127.0.0.1:{running.port}'
    for origin in ('http://127.0.0.1:1', f'http://localhost:{running.port}', 'http://evil.example', 'null'):
        for path in API:
            response = httpx.get(running.url + path, headers={'Origin': origin}, timeout=10)
            assert response.status_code == 403, (origin, path)
        assert refused_ws(running.ws_url, origin=origin) == 403, origin
    assert httpx.get(running.url + '/status', headers={'Origin': own}, timeout=10).status_code == 200
    with connect(running.ws_url, origin=own, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['type'] == 'status'


def test_the_token_is_read_from_the_address_once_then_a_cookie(dashboard):
    token = 'T0ken-from-the-address'
    running = dashboard(token=token)
    # Only the page takes ?token=; the API and /ws want the header or the page's cookie.
    assert httpx.get(running.url + f'/status?token={token}', timeout=10).status_code == 401
    assert refused_ws(running.ws_url + f'?token={token}') == 403
    page = httpx.get(running.url + f'/?token={token}', timeout=10)
    assert page.status_code == 200
    assert page.headers['referrer-policy'] == 'no-referrer' and 'no-store' in page.headers['cache-control']
    cookie = page.headers['set-cookie']
    assert cookie.startswith(boundary.SESSION_COOKIE + '=') and token not in cookie
    assert 'HttpOnly' in cookie and 'SameSite=strict' in cookie.replace('Strict', 'strict')
    session = {boundary.SESSION_COOKIE: page.cookies[boundary.SESSION_COOKIE]}
    assert httpx.get(running.url + '/status', cookies=session, timeout=10).status_code == 200
    header = f'{boundary.SESSION_COOKIE}={session[boundary.SESSION_COOKIE]}'
    with connect(running.ws_url, additional_headers={'Cookie': header}, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['type'] == 'status'
    wrong = {boundary.SESSION_COOKIE: boundary.session_value('another-token')}
    assert httpx.get(running.url + '/status', cookies=wrong, timeout=10).status_code == 401
    # The page itself drops the token from the address (and so from the history).
    assert 'history.replaceState' in page.text and '"?token=" +' not in page.text


def start_cli_dashboard(*args, attempts=3):
    """``ant-network-migration ... dashboard --listen 127.0.0.1:<free port>``: (process, port, its first line),
    on another port when another process took the one picked."""
    exe = os.path.join(os.path.dirname(sys.executable), 'ant-network-migration')
    for _ in range(attempts):
        port = testing.free_port()
        proc = subprocess.Popen([exe, *args, 'dashboard', '--listen', f'127.0.0.1:{port}'], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        line = proc.stdout.readline()
        if 'address already in use' not in line:
            return proc, port, line
        proc.wait(timeout=30)
    raise AssertionError(f'no free port for the dashboard after {attempts} attempts')


def test_the_dashboard_prints_no_prometheus_password(ledger_path, prometheus):
    secret = 'scrape-pa55word'
    url = prometheus.url.replace('http://', f'http://scraper:{secret}@')
    proc, port, line = start_cli_dashboard('--ledger', str(ledger_path), '--prometheus-url', url)
    try:
        assert line.startswith('dashboard: ') and 'scraper:********@' in line, line
        doc = httpx.get(f'http://127.0.0.1:{port}/status', timeout=10).json()
        assert secret not in json.dumps(doc)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert secret not in line + out


ATTACKER_PAGE = '''<!doctype html><title>elsewhere</title><script>
const target = "127.0.0.1:%d";
window.results = {ws: "pending", api: "pending", nocors: "pending"};
const ws = new WebSocket("ws://" + target + "/ws");
ws.onmessage = (e) => { window.results.ws = "READ: " + e.data.slice(0, 40); };
ws.onerror = () => { if (window.results.ws === "pending") window.results.ws = "refused"; };
ws.onclose = () => { if (window.results.ws === "pending") window.results.ws = "refused"; };
fetch("http://" + target + "/status").then(r => r.text()).then(t => { window.results.api = "READ: " + t.slice(0, 40); },
                                                                   () => { window.results.api = "refused"; });
fetch("http://" + target + "/status", {mode: "no-cors"}).then(r => { window.results.nocors = "status " + r.status; },
                                                              () => { window.results.nocors = "refused"; });
</script>'''


class _Page(http.server.BaseHTTPRequestHandler):
    body = b''

    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        self.send_header('Content-Type', 'text/html')
        self.send_header('Content-Length', str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_a_cross_origin_page_in_chromium_cannot_read_the_dashboard(dashboard, tmp_path):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        if os.environ.get('CI') == 'true':
            pytest.fail(f'{CHROMIUM} is missing: scripts/setup.sh --test installs the Debian package chromium')
        pytest.skip('chromium is not installed (apt-get install chromium)')
    token = 'browser-t0ken'
    running = dashboard()
    protected = dashboard(token=token)
    handler = type('Page', (_Page,), {'body': (ATTACKER_PAGE % running.port).encode()})
    elsewhere = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'])
            try:
                # Another origin of this very machine (another port): neither /ws nor the API is readable.
                page = browser.new_page()
                page.goto(f'http://127.0.0.1:{elsewhere.server_address[1]}/')
                page.wait_for_function('Object.values(window.results).every(v => v !== "pending")', timeout=30000)
                results = page.evaluate('window.results')
                assert results['ws'] == 'refused', results
                assert results['api'] == 'refused', results
                assert not results['nocors'].startswith('READ'), results

                # The dashboard's own page still works: live over /ws.
                own = browser.new_page()
                own.goto(running.url + '/')
                own.wait_for_function("document.querySelector('#conn').textContent.startsWith('live')", timeout=30000)

                # With a token: opened once with ?token=, the address loses it and the page stays live.
                mine = browser.new_context().new_page()
                mine.goto(protected.url + f'/?token={token}')
                mine.wait_for_function("document.querySelector('#conn').textContent.startsWith('live')",
                                       timeout=30000)
                assert token not in mine.url and mine.evaluate('location.search') == ''
                # The WebSocket the page opened went without the token: the cookie authorised it.
                assert mine.evaluate('ws.url').endswith('/ws')
            finally:
                browser.close()
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
