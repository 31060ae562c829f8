"""Local notification receivers for Alertmanager: a webhook receiver and an SMTP sink.

Tests (and a curious operator of the simulated fleet) point Alertmanager's ``webhook_configs``
and ``email_configs`` at these and read what was delivered:

    with WebhookReceiver() as hook, SmtpSink() as smtp:
        ...  # Alertmanager receivers: webhook url=hook.url, email smarthost=smtp.smarthost
        hook.wait_for(lambda n: n['status'] == 'firing')
        smtp.wait_for(lambda m: 'HighErrorRateIroh' in m['subject'])

Both listen on 127.0.0.1 on a free port, keep every delivery in memory with the time it arrived
(``time.monotonic()``), and stop on exit.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import layout


class ReceiverTimeout(AssertionError):
    pass


class _Store:
    def __init__(self):
        self._items = []
        self._cond = threading.Condition()

    def add(self, item):
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def items(self):
        with self._cond:
            return list(self._items)

    def clear(self):
        with self._cond:
            self._items.clear()

    def wait_for(self, predicate, timeout, what):
        """The first item satisfying ``predicate`` (waiting for it), or ReceiverTimeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self._items:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReceiverTimeout('timed out after %.0f s waiting for %s; received %d item(s)'
                                          % (timeout, what, len(self._items)))
                self._cond.wait(min(left, 0.5))


class WebhookReceiver:
    """Alertmanager's webhook payloads (``{status, alerts: [...], groupLabels, ...}``), as received."""

    def __init__(self, port=None, path='/alerts'):
        self.port = port or layout.free_port()
        self.path = path
        self.url = 'http://127.0.0.1:%d%s' % (self.port, path)
        self._store = _Store()
        self._server = None
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        store, path = self._store, self.path

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    self.send_error(400, 'not JSON')
                    return
                if self.path != path:
                    self.send_error(404)
                    return
                payload['_received_at'] = time.monotonic()
                store.add(payload)
                self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name='webhook-receiver', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def notifications(self):
        return self._store.items()

    def alerts(self, alertname=None, status=None):
        """Every alert of every notification, flattened, each with the notification's ``_received_at``."""
        out = []
        for note in self.notifications:
            for alert in note.get('alerts', []):
                if alertname and alert['labels'].get('alertname') != alertname:
                    continue
                if status and alert.get('status') != status:
                    continue
                out.append(dict(alert, _received_at=note['_received_at'], _receiver=note.get('receiver')))
        return out

    def wait_for(self, predicate, timeout=60.0, what='a webhook notification'):
        return self._store.wait_for(predicate, timeout, what)

    def wait_alert(self, alertname, status='firing', timeout=60.0):
        """The first notification carrying ``alertname`` with ``status``; returns that alert."""
        def has(note):
            return any(a['labels'].get('alertname') == alertname and a.get('status') == status
                       for a in note.get('alerts', []))

        note = self.wait_for(has, timeout, 'alert %s (%s) at the webhook' % (alertname, status))
        return next(dict(a, _received_at=note['_received_at'], _receiver=note.get('receiver'))
                    for a in note['alerts'] if a['labels'].get('alertname') == alertname and a.get('status') == status)

    def clear(self):
        self._store.clear()


class SmtpSink:
    """An SMTP server that accepts every message (no TLS, no auth) and keeps it parsed."""

    def __init__(self, port=None):
        self.port = port or layout.free_port()
        self.smarthost = '127.0.0.1:%d' % self.port
        self._store = _Store()
        self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        from aiosmtpd.controller import Controller  # pylint: disable=import-outside-toplevel

        store = self._store

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                body = message.get_body(preferencelist=('plain', 'html'))
                store.add({'from': envelope.mail_from, 'to': list(envelope.rcpt_tos),
                           'subject': str(message.get('Subject', '')),
                           'body': body.get_content() if body is not None else '',
                           'raw': envelope.content.decode('utf-8', 'replace'),
                           '_received_at': time.monotonic()})
                return '250 Message accepted for delivery'

        self._controller = Controller(Handler(), hostname='127.0.0.1', port=self.port)
        self._controller.start()
        return self

    def stop(self):
        if self._controller:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self):
        return self._store.items()

    def wait_for(self, predicate, timeout=60.0, what='an e-mail'):
        return self._store.wait_for(predicate, timeout, what)
