# Chromium and its WebDriver, for the web view's test in a real headless
# browser (tests/web/test_browser.py). Nothing to start: just installed.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
wait_for Chromium chromedriver --version
