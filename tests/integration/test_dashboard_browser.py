"""A real browser (Debian's headless chromium driven by Playwright) on the dashboard page while a
wave runs on the simulated fleet: the page follows the wave live, without a reload."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ansible_collections.autonomi.network_migration.plugins.plugin_utils import ledger as ledger_lib
from ant_network_migration_dashboard import testing
from ant_network_migration_dashboard.testing import RunningService

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'scenarios'))
from scenario_harness import Fleet  # noqa: E402  (the shared fleet + playbook harness)

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'


def _browser(playwright):
    if not os.path.exists(CHROMIUM):
        if os.environ.get('CI') == 'true':
            pytest.fail(f'{CHROMIUM} is missing: scripts/setup.sh --test installs the Debian package chromium')
        pytest.skip('chromium is not installed (apt-get install chromium)')
    # Playwright drives the system chromium; it never downloads a browser.
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'])


def _text(page, element_id):
    return page.text_content(f'#{element_id}')


@pytest.mark.integration
def test_page_follows_a_wave_live(tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get('DASHBOARD_SCREENSHOT_DIR') or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with Fleet(tmp_path / 'fleet', hosts=4, nodes_per_host=2) as fleet, \
            RunningService(str(fleet.ledger_path), fleet.stack.prometheus_url, poll_interval=0.5,
                           prometheus_interval=2) as dashboard, sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={'width': 1440, 'height': 1100})
            page.goto(dashboard.url + '/')
            page.evaluate('window.__sameDocument = "yes"')  # gone if the page reloads
            # Live connection and Prometheus figures for both transports.
            page.wait_for_function("document.querySelector('#conn').textContent.startsWith('live')", timeout=30000)
            page.wait_for_function("document.querySelector('[data-testid=libp2p-health_score]').textContent !== '–'",
                                   timeout=60000)
            before = _text(page, 'coverage')

            run = fleet.start_play('rollout.yml', 'wave=50', 'wave_require_canary=false')
            try:
                # The run appears, then dual-stack coverage climbs while the wave is under way.
                page.wait_for_function("document.querySelector('#run-stage').textContent === 'wave'", timeout=120000)
                page.wait_for_function(
                    "parseFloat(document.querySelector('#coverage').textContent) > 0", timeout=300000)
                assert _text(page, 'coverage') != before
                assert run.poll() is None or run.returncode == 0, fleet.output_of(run)
                page.screenshot(path=str(shots / 'dashboard-during-wave.png'), full_page=True)
                assert run.wait(timeout=600) == 0, fleet.output_of(run)
            finally:
                if run.poll() is None:
                    fleet.kill(run)
            page.wait_for_function("document.querySelector('#coverage').textContent.startsWith('50.0 %')",
                                   timeout=30000)
            page.wait_for_function("document.querySelector('#run-state').textContent.startsWith('ended: ')",
                                   timeout=30000)
            # The stage and the outcome are the ones the ledger recorded with the run (its kind, its outcome).
            assert _text(page, 'migration-run').startswith('wave (run ') and ': ok at ' in _text(page, 'migration-run')
            assert page.evaluate('window.__sameDocument') == 'yes', 'the page reloaded'
            assert not page.is_visible('#missing-banner')
            states = _text(page, 'states')
            assert 'dual_stack_stable4' in states.replace(' ', ''), states
            page.screenshot(path=str(shots / 'dashboard.png'), full_page=True)
            assert (shots / 'dashboard.png').stat().st_size > 10000
        finally:
            browser.close()


@pytest.mark.integration
def test_page_shows_operator_text_as_text_and_says_what_is_missing(tmp_path):
    """Banners for pause and halt with hostile operator text; Prometheus down; the service gone."""
    from playwright.sync_api import sync_playwright

    ledger = tmp_path / 'ledger.sqlite3'
    testing.fill_ledger(ledger, hosts=2, nodes_per_host=2)
    handle = ledger_lib.open_ledger(str(ledger))
    handle.set_pause('<img src=x onerror="window.__owned=1"> checking p95', 'dave')
    handle.close()
    stub = testing.StubPrometheus().start()
    service = RunningService(str(ledger), stub.url, poll_interval=0.5, prometheus_interval=1).start()
    try:
        with sync_playwright() as playwright:
            browser = _browser(playwright)
            try:
                page = browser.new_page()
                page.goto(service.url + '/')
                page.wait_for_function("document.querySelector('#pause-banner').textContent.includes('checking p95')",
                                       timeout=30000)
                assert '<img src=x onerror="window.__owned=1"> checking p95' in _text(page, 'pause-banner')
                assert page.query_selector('img') is None and page.evaluate('window.__owned') is None
                assert not page.is_visible('#halt-banner')
                # The rules as the gate judges them (the stub's healthy figures): every one passes.
                page.wait_for_function("document.querySelector('#rules').textContent.includes('pass')", timeout=30000)
                assert 'high_error_rate_iroh' in _text(page, 'rules') and 'fail' not in _text(page, 'rules')

                handle = ledger_lib.open_ledger(str(ledger))
                handle.set_halt('gate failed: <b>iroh</b> error rate', 'gate', 'migration_gate')
                handle.close()
                page.wait_for_function("document.querySelector('#halt-banner').textContent.includes('HALTED')",
                                       timeout=10000)
                assert 'gate failed: <b>iroh</b> error rate' in _text(page, 'halt-banner')

                stub.stop()
                page.wait_for_function("document.querySelector('#missing-banner').textContent.includes('prometheus')",
                                       timeout=30000)
                assert 'prometheus unavailable' in _text(page, 'missing-banner')
                assert 'unavailable' in _text(page, 'conn')

                service.stop()
                page.wait_for_function("document.querySelector('#conn').textContent.startsWith('connection lost')",
                                       timeout=30000)
                page.screenshot(path=str(tmp_path / 'dashboard-connection-lost.png'), full_page=True)
            finally:
                browser.close()
    finally:
        service.stop()
        stub.stop()
