"""The web view in a real headless Chromium: watch a flow fail live, retry it, see it finish.

Drives Debian's ``chromium`` through ``chromium-driver`` with Selenium; the
web server and the flow are the real ``taskflow`` command in subprocesses.
Set ``TASKFLOW_UPDATE_SCREENSHOTS=1`` to refresh the screenshots in ``docs/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests import _services
from tests.operate import flows
from tests.web import _server

DOCS = _server.REPO / 'docs'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--window-size=1300,1400']


@pytest.fixture
def browser(tmp_path):
    chromium = _services.require_program('chromium', 'chromium', 'chromium-browser')
    driver_path = _services.require_program('chromedriver', 'chromedriver')
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS + ['--user-data-dir=%s' % (tmp_path / 'chromium-profile')]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(predicate, timeout=30.0, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


def keep_screenshot(driver, tmp_path, name):
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get('TASKFLOW_UPDATE_SCREENSHOTS') == '1':
        shutil.copy(path, DOCS / name)
    return path


def test_watch_a_flow_fail_live_then_retry_it_from_the_failed_atom(browser, tmp_path):
    from selenium.webdriver.common.by import By

    url = 'sqlite:///%s' % (tmp_path / 'web.db')
    log = str(tmp_path / 'log')
    flows.break_task(log, 'charge')
    with _server.web_server(url, '--allow-actions') as base:
        browser.get(base + '/')
        # Start the flow only now, so the browser sees it run.
        run = subprocess.Popen(_server.taskflow_command() + [
            'run', 'tests.operate.flows:make_orders', '--backend', url,
            '--store', 'log=%s' % log, '--store', 'delay=0.6', '--store', 'api_token=s3cr3t'],
            cwd=str(_server.REPO), env=_server.env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            link = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#flows a'),
                            what='the new flow on the index page (it polls)')[0]
            link.click()
            wait_for(lambda: browser.execute_script('return window.taskflowFlowState'),
                     what='the flow page')
            browser.execute_script('window.stillTheSamePage = true')
            seen = set()

            def state():
                value = browser.execute_script('return window.taskflowFlowState')
                seen.add(value)
                return value
            wait_for(lambda: state() == 'REVERTED', what='the flow to be reverted')
            out, _ = run.communicate(timeout=30)
        finally:
            if run.poll() is None:
                run.kill()
        assert 'RUNNING' in seen, seen            # we watched it run...
        # ...and fail, without reloading the page.
        assert browser.execute_script('return window.stillTheSamePage') is True
        charge_row = browser.find_element(By.CSS_SELECTOR, '#atoms tr[data-atom="charge"]')
        assert 'RuntimeError: charge is broken' in charge_row.text
        failure = browser.find_element(By.CSS_SELECTOR, 'details.failure[data-atom="charge"]')
        assert 'Traceback (most recent call last)' in failure.text
        node = browser.find_element(By.CSS_SELECTOR, '#graph g.atom[data-atom="charge"]')
        assert 'state-REVERTED' in node.get_attribute('class')
        assert 'api_token=***' in browser.page_source and 's3cr3t' not in browser.page_source
        keep_screenshot(browser, tmp_path, 'web-flow-page.png')

        # Fix the cause, then retry from the failed atom (with confirmation).
        flows.break_task(log, 'charge', broken=False)
        before = flows.ran(log)
        browser.find_element(By.ID, 'action-retry').click()
        dialog = wait_for(lambda: [d for d in browser.find_elements(By.ID, 'confirm')
                                   if d.is_displayed()], what='the confirmation dialog')[0]
        assert 'Retry from failed atom?' in dialog.text
        browser.find_element(By.ID, 'confirm-why').send_keys('payment gateway is back')
        browser.find_element(By.ID, 'confirm-ok').click()
        wait_for(lambda: browser.execute_script('return window.taskflowFlowState')
                 == 'SUCCESS', what='the retried flow to succeed')
        node = browser.find_element(By.CSS_SELECTOR, '#graph g.atom[data-atom="charge"]')
        assert 'state-SUCCESS' in node.get_attribute('class')
        history = browser.find_element(By.ID, 'history').text
        assert 'retry' in history and 'payment gateway is back' in history
        keep_screenshot(browser, tmp_path, 'web-flow-retried.png')
    # What succeeded before was not run again.
    assert flows.ran(log)[len(before):] == ['exec charge', 'exec ship', 'exec receipt']
