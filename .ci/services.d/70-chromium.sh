# Chromium and its WebDriver (the web view's browser test drives a real
# headless browser; no daemon to start).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
wait_for Chromium chromium --headless --no-sandbox --disable-gpu --version
