"""The shared acceptance programs: written for the original, they must print the same.

Each program in ``../shared/acceptance`` runs in a subprocess with this
interpreter; its normalised output must equal the recorded output of the
original TaskFlow 6.5.0 (``expected/<name>.out``).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

ACCEPTANCE = pathlib.Path(__file__).resolve().parents[2].parent / 'shared' / 'acceptance'


def _runner():
    spec = importlib.util.spec_from_file_location('acceptance_run', ACCEPTANCE / 'run.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _programs() -> list[str]:
    if not ACCEPTANCE.is_dir():
        return []
    return sorted(p.stem for p in ACCEPTANCE.glob('*.py') if p.name != 'run.py')


@pytest.fixture(scope='module')
def runner():
    if not ACCEPTANCE.is_dir():
        pytest.skip('the shared acceptance programs are not beside the project (%s)'
                    % ACCEPTANCE)
    module = _runner()
    assert pathlib.Path(sys.executable).exists()
    return module


@pytest.mark.parametrize('name', _programs())
def test_program_prints_what_the_original_printed(runner, name):
    output, problem = runner.run_program(name)
    expected = (ACCEPTANCE / 'expected' / (name + '.out')).read_text(encoding='utf-8')
    assert problem is None, problem
    assert runner.normalise(output) == runner.normalise(expected)


def test_every_recorded_program_is_collected():
    recorded = sorted(p.stem for p in (ACCEPTANCE / 'expected').glob('*.out'))
    assert recorded == _programs()
