"""mypy on src/haina passes (configuration: [tool.mypy] in pyproject.toml). `make lint` runs
mypy, and `.ci/run` runs `make lint` as a phase of its own, so inside the suite this runs only
when asked for (``HAINA_TEST_MYPY=1``): typing is checked once per CI run, not twice."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HAINA_TEST_MYPY") != "1",
                    reason="make lint runs mypy (HAINA_TEST_MYPY=1 runs it here too)")
def test_mypy_passes_on_src():
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
