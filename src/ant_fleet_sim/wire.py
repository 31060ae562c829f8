"""The plain-HTTP client of the simulator's command-line stand-ins (antctl, systemctl).

They run once per antctl or systemctl call the collection makes, and a real antctl is a native
binary that starts in a few milliseconds. Importing urllib.request (http.client, email, ssl) cost
about 40 ms of CPU per call, more than half of each call, so they talk HTTP over a socket here:
the daemon's API and the nodes' RPC endpoints are this package's own servers (httpserve), which
always send Content-Length and close the connection when asked to.
"""

from __future__ import annotations

import socket
import time


def request(url, method='GET', body=None, timeout=30.0, content_type='application/json'):
    """(status, body) of one HTTP request to ``http://host:port/path``, within ``timeout`` seconds in
    all (None: no limit). OSError (refused, reset, TimeoutError) when it cannot be made; ValueError
    for an answer that is not HTTP."""
    if not url.startswith('http://'):
        raise ValueError('not an http:// URL: %s' % url)
    authority, _slash, path = url[len('http://'):].partition('/')
    host, _colon, port = authority.rpartition(':')
    if not host or not port.isdigit():
        raise ValueError('no host:port in %s' % url)
    data = b'' if body is None else body
    head = ['%s /%s HTTP/1.1' % (method, path), 'Host: %s' % authority, 'Connection: close',
            'Content-Length: %d' % len(data)]
    if body is not None:
        head.append('Content-Type: %s' % content_type)
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks = []
    with socket.create_connection((host.strip('[]'), int(port)), timeout=timeout) as sock:
        sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') + data)
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError('timed out')
                sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b''.join(chunks)
    head_bytes, sep, payload = raw.partition(b'\r\n\r\n')
    lines = head_bytes.decode('latin-1').split('\r\n')
    status = lines[0].split(None, 2)
    if not sep or len(status) < 2 or not status[0].startswith('HTTP/') or not status[1].isdigit():
        raise ValueError('not an HTTP response from %s' % url)
    for line in lines[1:]:
        name, _colon, value = line.partition(':')
        if name.strip().lower() == 'content-length' and value.strip().isdigit():
            payload = payload[:int(value.strip())]
    return int(status[1]), payload
