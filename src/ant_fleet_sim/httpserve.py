"""A minimal HTTP/1.1 server on asyncio Protocols (keep-alive, Content-Length bodies).

Enough for Prometheus scrapes, urllib clients and the control API; 1,000 of these listeners
cost next to nothing while idle. A handler is ``handler(request) -> Response | awaitable |
None``; None means "never answer" (an unresponsive node keeps the connection open).
"""

from __future__ import annotations

import asyncio
import json

REASONS = {200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request',
           404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large',
           500: 'Internal Server Error'}
MAX_HEAD = 16384
MAX_BODY = 1 << 20


class Request:
    __slots__ = ('method', 'path', 'query', 'headers', 'body')

    def __init__(self, method, target, headers, body):
        self.method = method
        path, _, query = target.partition('?')
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self):
        if not self.body:
            return {}
        return json.loads(self.body.decode('utf-8'))


class Response:
    __slots__ = ('status', 'content_type', 'body')

    def __init__(self, status, body=b'', content_type='text/plain; charset=utf-8'):
        self.status = status
        self.body = body
        self.content_type = content_type

    @classmethod
    def json(cls, status, payload):
        return cls(status, (json.dumps(payload, indent=1, sort_keys=False) + '\n').encode('utf-8'),
                   'application/json')


def encode_response(response, keep_alive=True):
    head = 'HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n' % (
        response.status, REASONS.get(response.status, 'Status'), response.content_type, len(response.body),
        '' if keep_alive else 'Connection: close\r\n')
    return head.encode('latin-1') + response.body


class HTTPProtocol(asyncio.Protocol):
    """One connection. ``owner`` tracks open connections so a stopped node can drop them."""

    __slots__ = ('handler', 'owner', 'transport', 'buffer', 'busy', 'closed')

    def __init__(self, handler, owner=None):
        self.handler = handler
        self.owner = owner
        self.transport = None
        self.buffer = b''
        self.busy = False
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        if self.owner is not None:
            self.owner.add(self)

    def connection_lost(self, exc):
        self.closed = True
        if self.owner is not None:
            self.owner.discard(self)

    def data_received(self, data):
        self.buffer += data
        if not self.busy:
            self._process()

    def _process(self):
        while not self.busy and not self.closed:
            end = self.buffer.find(b'\r\n\r\n')
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._send(Response(413, b'request head too large\n'), keep_alive=False)
                return
            head = self.buffer[:end].decode('latin-1')
            lines = head.split('\r\n')
            try:
                method, target, _version = lines[0].split(' ', 2)
            except ValueError:
                self._send(Response(400, b'bad request line\n'), keep_alive=False)
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(':')
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get('content-length') or 0)
            if length > MAX_BODY:
                self._send(Response(413, b'body too large\n'), keep_alive=False)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            keep_alive = headers.get('connection', '').lower() != 'close'
            request = Request(method, target, headers, body)
            try:
                result = self.handler(request)
            except Exception as exc:  # a handler bug must not kill the server
                result = Response(500, ('internal error: %s\n' % exc).encode())
            if result is None:
                self.busy = True  # never answer: hold the connection
                return
            if isinstance(result, Response):
                self._send(result, keep_alive)
                continue
            self.busy = True
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t, ka=keep_alive: self._done(t, ka))
            return

    def _done(self, task, keep_alive):
        self.busy = False
        if task.cancelled():
            result = Response(500, b'cancelled\n')
        elif task.exception() is not None:
            result = Response(500, ('internal error: %s\n' % task.exception()).encode())
        else:
            result = task.result()
        if result is None:
            self.busy = True
            return
        self._send(result, keep_alive)
        self._process()

    def _send(self, response, keep_alive=True):
        if self.closed:
            return
        self.transport.write(encode_response(response, keep_alive))
        if not keep_alive:
            self.transport.close()
            self.closed = True

    def drop(self):
        if not self.closed:
            self.transport.abort()
            self.closed = True
