# Copyright: Contributors to the autonomi.network_migration collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dashboard service: a Starlette app and the poller that keeps its status document current.

The poller asks the ledger for its newest event / history id every ``poll_interval`` seconds (two
indexed one-row queries) and rebuilds the ledger part only when that changed (or every
``ledger_refresh`` seconds, for health observations that write no event); it scrapes Prometheus
every ``prometheus_interval`` seconds. A new document is pushed to every WebSocket client.
Blocking reads run in worker threads, one per source, so a hung Prometheus never delays the
ledger's updates and no request waits for a source.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.resources
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import redaction

from . import boundary, metrics, sources, status

PING_INTERVAL = 5.0


class Service:
    """Holds the latest snapshots and the status document; owns the poller."""

    def __init__(self, ledger_location, prometheus_url=None, poll_interval=1.0, prometheus_interval=5.0,
                 ledger_refresh=15.0, token=None, overrides=None, history_seconds=600, host_policy=None,
                 alert_settings=None):
        self.ledger = sources.LedgerReader(ledger_location)
        self.prometheus = sources.PrometheusReader(prometheus_url, overrides=overrides, settings=alert_settings)
        self.poll_interval = float(poll_interval)
        self.prometheus_interval = float(prometheus_interval)
        self.ledger_refresh = float(ledger_refresh)
        self.token = token or None
        self.host_policy = host_policy or boundary.HostPolicy()
        self.history = status.History(status.modes.TRANSPORTS, keep_seconds=history_seconds)
        self.ledger_state = {'data': None, 'error': None, 'checked_at': None, 'last_ok_at': None, 'token': None,
                             'location': sources.describe_location(ledger_location)}
        self.prometheus_state = {'data': None, 'error': None, 'checked_at': None, 'last_ok_at': None,
                                 'url': redaction.redact_text(prometheus_url)}
        self.document = None
        self.document_text = None
        self.ledger_metrics_text = None
        self.version = 0
        self.build_seconds = 0.0
        self.clients = set()
        self._changed = None
        self._poller = None
        self._ledger_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='dashboard-ledger')
        self._prom_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='dashboard-prometheus')
        self._last_ledger_snapshot = 0.0
        self._last_prometheus = 0.0
        self._prom_task = None
        self.registry = metrics.registry_for(self)

    # -- readiness ---------------------------------------------------------------------

    def health(self):
        checks = {
            'ledger': {'ok': bool(self.ledger_state['data']) and not self.ledger_state['error'],
                       'error': self.ledger_state['error'], 'checked_at': status.iso(self.ledger_state['checked_at'])},
            'prometheus': {'ok': bool(self.prometheus_state['data']) and not self.prometheus_state['error'],
                           'error': self.prometheus_state['error'],
                           'checked_at': status.iso(self.prometheus_state['checked_at'])},
        }
        live = self._poller is not None and not self._poller.done()
        return {'live': live, 'ready': live and all(c['ok'] for c in checks.values()), 'checks': checks}

    # -- refreshing --------------------------------------------------------------------

    def _rebuild(self):
        started = time.perf_counter()
        doc = status.build(self.ledger_state, self.prometheus_state, self.history)
        text = status.dumps(doc)
        self.build_seconds = time.perf_counter() - started
        self.version += 1
        self.document, self.document_text = doc, text
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def refresh_ledger(self, force=False):
        """Poll the ledger's change token; re-read it when it moved. True when the data changed."""
        loop = asyncio.get_running_loop()
        now = time.time()
        token, error = await loop.run_in_executor(self._ledger_pool, self.ledger.change_token)
        state = self.ledger_state
        state['checked_at'] = now
        stale = time.monotonic() - self._last_ledger_snapshot >= self.ledger_refresh
        if error is None and not force and token == state['token'] and not stale and state['error'] is None:
            return False
        if error is not None:
            changed = state['error'] != error
            state['error'] = error
            return changed
        data, error = await loop.run_in_executor(self._ledger_pool, self.ledger.snapshot, state['data'],
                                                 stale or force or not state['data'])
        self._last_ledger_snapshot = time.monotonic()
        if error is not None:
            changed = state['error'] != error
            state['error'] = error
            return changed
        changed = data != state['data'] or state['error'] is not None
        state.update(data=data, error=None, token=token, last_ok_at=now)
        return changed

    async def refresh_metrics_text(self):
        """The ledger's own exposition for /metrics, read at scrape time (not at every ledger change)."""
        loop = asyncio.get_running_loop()
        text, error = await loop.run_in_executor(self._ledger_pool, self.ledger.metrics_text)
        self.ledger_metrics_text = text if error is None else None

    async def refresh_prometheus(self):
        loop = asyncio.get_running_loop()
        now = time.time()
        data, error = await loop.run_in_executor(self._prom_pool, self.prometheus.snapshot)
        state = self.prometheus_state
        state['checked_at'] = now
        self._last_prometheus = time.monotonic()
        if error is not None:
            state['error'] = error
            return True
        self.history.add(now, data['transports'])
        state.update(data=data, error=None, last_ok_at=now)
        return True

    async def refresh(self, force=False):
        """One tick: the ledger always, Prometheus when due (not awaited by the ledger)."""
        changed = await self.refresh_ledger(force=force)
        due = time.monotonic() - self._last_prometheus >= self.prometheus_interval
        if force:
            changed = await self.refresh_prometheus() or changed
        elif due and (self._prom_task is None or self._prom_task.done()):
            self._prom_task = asyncio.create_task(self._prometheus_tick())
        if changed or self.document is None:
            self._rebuild()

    async def _prometheus_tick(self):
        await self.refresh_prometheus()
        self._rebuild()

    async def run_poller(self):
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                # Never let one bad tick stop the updates; the document says what failed.
                self.ledger_state['error'] = f'dashboard poller: {type(exc).__name__}: {exc}'
                self._rebuild()
            await asyncio.sleep(self.poll_interval)

    async def start(self):
        self._changed = asyncio.Event()
        await self.refresh(force=True)
        self._poller = asyncio.create_task(self.run_poller())

    async def stop(self):
        for task in (self._poller, self._prom_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._ledger_pool, self.ledger.close)
        await loop.run_in_executor(self._prom_pool, self.prometheus.close)
        self._ledger_pool.shutdown(wait=False)
        self._prom_pool.shutdown(wait=False)

    async def wait_change(self, version, timeout):
        """Wait until the document is newer than ``version`` (or ``timeout`` passes)."""
        if self.version != version:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

def _page():
    return importlib.resources.files(__package__).joinpath('static/index.html').read_text(encoding='utf-8')


def create_app(service):
    page = _page()

    def guard(request, url_token=False):
        if not boundary.authorized(request, service.token, url_token=url_token):
            return PlainTextResponse('401 Unauthorized: this dashboard needs its token '
                                     '(Authorization: Bearer <token>, or open the page once with ?token=<token>)\n',
                                     status_code=401, headers={'WWW-Authenticate': 'Bearer'})
        return None

    async def index(request: Request):
        denied = guard(request, url_token=True)
        if denied:
            return denied
        response = HTMLResponse(page, headers={'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer'})
        if service.token and 'token' in request.query_params:
            # The token came in the address: from now on the page's requests carry a session cookie
            # (the page removes the token from the address bar and history).
            response.set_cookie(boundary.SESSION_COOKIE, boundary.session_value(service.token), httponly=True,
                                samesite='strict', secure=request.url.scheme == 'https')
        return response

    async def status_endpoint(request: Request):
        denied = guard(request)
        if denied:
            return denied
        return Response(service.document_text, media_type='application/json', headers={'Cache-Control': 'no-store'})

    async def schema_endpoint(request: Request):
        return guard(request) or JSONResponse(status.load_schema())

    async def health_endpoint(request: Request):
        denied = guard(request)
        if denied:
            return denied
        health = service.health()
        probe = request.path_params.get('probe')
        if probe not in (None, 'live', 'ready'):
            return PlainTextResponse('404 Not Found: /health, /health/live or /health/ready\n', status_code=404)
        if probe == 'live':
            return JSONResponse({'live': health['live']}, status_code=200 if health['live'] else 503)
        return JSONResponse(health, status_code=200 if health['ready'] else 503)

    async def metrics_endpoint(request: Request):
        denied = guard(request)
        if denied:
            return denied
        await service.refresh_metrics_text()
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    async def ws_endpoint(websocket: WebSocket):
        if not boundary.authorized(websocket, service.token):
            await websocket.close(code=4401)
            return
        await websocket.accept()
        service.clients.add(websocket)
        try:
            version = -1
            last_sent = 0.0
            while True:
                if service.version != version:
                    version = service.version
                    await websocket.send_text('{"type":"status","status":' + service.document_text + '}')
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent >= PING_INTERVAL:
                    await websocket.send_text('{"type":"ping","at":"%s"}' % status.iso(time.time()))
                    last_sent = time.monotonic()
                await service.wait_change(version, PING_INTERVAL)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            service.clients.discard(websocket)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route('/', index),
        Route('/status', status_endpoint),
        Route('/status.schema.json', schema_endpoint),
        Route('/health', health_endpoint),
        Route('/health/{probe:str}', health_endpoint),
        Route('/metrics', metrics_endpoint),
        WebSocketRoute('/ws', ws_endpoint),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(boundary.RequestBoundary, policy=service.host_policy)])
    app.state.service = service
    return app
