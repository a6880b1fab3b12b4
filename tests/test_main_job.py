"""The README's main job really persists, dies and resumes."""

from __future__ import annotations

import pathlib
import subprocess
import sys

MAIN_JOB = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'main_job.py'


def test_main_job_resumes_a_killed_flow_without_redoing_finished_steps(tmp_path):
    proc = subprocess.run([sys.executable, str(MAIN_JOB), '--db', str(tmp_path / 'o.db')],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'Killed worker' in out
    saved = out.split('3. What SQLite holds now', 1)[1].split('4. Resuming', 1)[0]
    assert "flow 'fulfil-order' is RUNNING" in saved
    assert 'pack-parcel    RUNNING' in saved and 'validate       SUCCESS' in saved
    # Finished steps ran once in total; the interrupted one ran in both workers.
    assert out.count('validating order') == 1
    assert out.count('reserving stock') == 1
    assert out.count('packing parcel') == 2
    assert "5. Final, persisted: flow 'fulfil-order' is SUCCESS" in out
    assert 'attempt 1 failed' in out and 'TRK-PCL-A-1001' in out
