"""The simulator's minimal HTTP/1.1 server: keep-alive, pipelining, bodies, held requests."""

from __future__ import annotations

import asyncio

from ant_fleet_sim.httpserve import HTTPProtocol, Response


def handler(request):
    if request.path == '/hold':
        return None
    if request.path == '/slow':
        async def later():
            await asyncio.sleep(0.05)
            return Response(200, b'slow')
        return later()
    if request.path == '/echo':
        return Response.json(200, {'method': request.method, 'body': request.json(), 'query': request.query})
    return Response(200, b'hello')


async def exchange(payload, read_for=0.3):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPProtocol(handler), '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(payload)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_for)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        pass
    writer.close()
    server.close()
    return b''.join(chunks)


def test_keep_alive_and_pipelining():
    req = b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
    out = asyncio.run(exchange(req + b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' + req))
    assert out.count(b'HTTP/1.1 200 OK') == 3
    assert out.index(b'slow') < out.rindex(b'hello')  # answers keep the request order


def test_post_body_and_query():
    body = b'{"a": 1}'
    out = asyncio.run(exchange(b'POST /echo?x=1 HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body)))
    assert b'"method": "POST"' in out and b'"a": 1' in out and b'"query": "x=1"' in out


def test_held_request_gets_no_answer():
    assert asyncio.run(exchange(b'GET /hold HTTP/1.1\r\n\r\n')) == b''


def test_connection_close_and_bad_request():
    out = asyncio.run(exchange(b'GET / HTTP/1.1\r\nConnection: close\r\n\r\n'))
    assert b'Connection: close' in out
    assert b'400 Bad Request' in asyncio.run(exchange(b'NONSENSE\r\n\r\n'))
