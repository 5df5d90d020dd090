"""benchmarks/determinism.py --check guards every pfn and rendered byte of a seeded 30000-step
workload on each shipped machine (the hand-inlined hot paths have no other guard): it runs in
the suite, so a change that moves a decision fails `make test` unless its digest is rewritten
on purpose (`--write`, explained in the commit)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_determinism_digests_match_the_reference():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "determinism.py"), "--check"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith(f"same as {ROOT / 'benchmarks' / 'determinism.txt'}")
