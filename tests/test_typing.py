"""The engine and storage type-check under ``mypy --strict`` (see pyproject's [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys

from tests import _services


def test_engines_and_storage_pass_strict_type_checking():
    proc = subprocess.run([sys.executable, '-m', 'mypy'], cwd=_services.REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
