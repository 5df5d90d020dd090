"""The suite's own rule (tests/conftest.py): a run with a skipped or xfailed test fails."""
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = '''
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("a tool is missing")

@pytest.mark.xfail
def test_xfails():
    assert False
'''


def pytest_run(d: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=d,
                          capture_output=True, text=True, timeout=120)


def test_a_skip_or_an_xfail_fails_the_run(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    r = pytest_run(tmp_path)
    assert r.returncode == 1, r.stdout
    assert "2 test(s) skipped or xfailed" in r.stdout and "test_sample.py::test_skips" in r.stdout
    assert pytest_run(tmp_path, "-k", "runs").returncode == 0        # deselecting is not skipping
