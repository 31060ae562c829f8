"""The plain-HTTP client of the simulated antctl and systemctl, against the simulator's own server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time

import pytest

from ant_fleet_sim import layout, wire
from ant_fleet_sim.httpserve import HTTPProtocol, Response


def handler(request):
    if request.path == '/hold':
        return None  # never answers
    if request.path == '/echo':
        return Response.json(200, {'method': request.method, 'body': request.json()})
    if request.path == '/missing':
        return Response.json(404, {'error': 'no such host'})
    return Response(200, b'hello')


@pytest.fixture(scope='module')
def port():
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(lambda: HTTPProtocol(handler), '127.0.0.1', 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server.sockets[0].getsockname()[1]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


def test_get_and_post_with_a_json_body(port):
    assert wire.request('http://127.0.0.1:%d/' % port) == (200, b'hello')
    status, body = wire.request('http://127.0.0.1:%d/echo' % port, method='POST', body=b'{"units": ["a"]}')
    assert status == 200 and b'"method": "POST"' in body and b'"units": [' in body


def test_an_error_status_comes_back_with_its_body(port):
    status, body = wire.request('http://127.0.0.1:%d/missing' % port)
    assert status == 404 and b'no such host' in body


def test_the_timeout_bounds_a_request_that_is_never_answered(port):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        wire.request('http://127.0.0.1:%d/hold' % port, timeout=0.5)
    assert time.monotonic() - started < 5


def test_refused_and_not_http():
    free = layout.free_port()
    with pytest.raises(ConnectionRefusedError):
        wire.request('http://127.0.0.1:%d/' % free, timeout=2)
    with pytest.raises(ValueError):
        wire.request('https://127.0.0.1:%d/' % free)

    talker = socket.create_server(('127.0.0.1', 0))

    def answer():
        conn, _addr = talker.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b'SSH-2.0-OpenSSH_9.2\r\n')
    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(ValueError, match='not an HTTP response'):
        wire.request('http://127.0.0.1:%d/' % talker.getsockname()[1], timeout=5)
    talker.close()


def test_the_tools_do_not_import_urllib():
    # They run once per antctl / systemctl call; urllib.request cost ~40 ms of CPU per call.
    code = ('import sys, ant_fleet_sim.antctl, ant_fleet_sim.systemctl; '
            'print(sorted(m for m in sys.modules if m.startswith(("urllib.request", "http.client"))))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
