"""`sar -B` through `procsim exec` reports the simulated paging rates (issue 26, "time that
flows").  sysstat's sadc reads /proc/vmstat (pgpgin, pgpgout, pgfault, pgmajfault, pgfree,
pgscan_*, pgsteal_*) and /proc/uptime, both bound from the mount, whose clock follows the wall
(`procsim mount`'s default): so pgfree/s is what the control writes free per second.  The
header's CPU count comes from the simulated /sys/devices/system/cpu; its kernel release and
host name are uname(2)'s, the host's, and its times are the host's clock."""
from __future__ import annotations

import re
import subprocess
import threading
import time

from procsim.harness import mounted
from procsim.testing import CONFIGS, procsim_cmd

PAGES = 1000            # freed per write
PERIOD = 0.25           # seconds between writes: 4000 pages/s


def sar(mp, *args) -> tuple[str, dict[str, float]]:
    """`sar ARGS` through exec, in the C locale with ISO dates and no colours: its output and
    the Average line's values by column name."""
    r = subprocess.run(procsim_cmd("exec", mp, "--", "env", "LC_ALL=C", "S_TIME_FORMAT=ISO", "S_COLORS=never",
                                   "sar", *args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(x.split() for x in lines if "pgfree/s" in x)
    avg = next(x.split() for x in lines if x.startswith("Average:"))
    assert len(avg) == len(header), r.stdout
    return r.stdout, {name: float(v) for name, v in zip(header[1:], avg[1:], strict=True)}


def vmstat(mp) -> tuple[int, float]:
    """(pgfree, simulated uptime in seconds) now."""
    free = int(re.search(r"^pgfree (\d+)$", (mp / "vmstat").read_text(), re.M).group(1))
    return free, float((mp / "uptime").read_text().split()[0])


def test_sar_B_reports_the_simulated_pgfree_rate(tmp_path):
    """A writer frees PAGES pages every PERIOD s through the control file; `sar -B 1 3` prints
    an average pgfree/s within 2x of that rate, measured both from the simulated vmstat and
    uptime and from the writes' own count and time.  With nothing written, pgfree/s is ~0.
    The header names the simulated CPU count (3 here, whatever the host has)."""
    config = tmp_path / "tiny3.yaml"
    text = (CONFIGS / "tiny.yaml").read_text()
    assert "cores: 1, threads: 2" in text
    config.write_text(text.replace("cores: 1, threads: 2", "cores: 3, threads: 3"))
    with mounted(config) as m:
        mp = m.path
        out, idle = sar(mp, "-B", "1", "2")
        assert re.search(r"\(3 CPU\)", out.splitlines()[0]), out
        assert idle["pgfree/s"] < 50, out                          # nothing written: ~0

        stop, writes, failed = threading.Event(), [0], []

        def writer():
            try:
                with open(mp / "control", "w") as f:
                    while not stop.is_set():
                        f.write(f"alloc_pages 0 count={PAGES} tag=t\nfree_pages tag=t\n")
                        f.flush()
                        writes[0] += 1
                        stop.wait(PERIOD)
            except OSError as e:                                   # reported below, not lost
                failed.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            time.sleep(2 * PERIOD)
            free0, up0 = vmstat(mp)
            w0, t0 = writes[0], time.monotonic()
            out, busy = sar(mp, "-B", "1", "3")
            free1, up1 = vmstat(mp)
            w1, t1 = writes[0], time.monotonic()
        finally:
            stop.set()
            t.join(10)
        assert not failed, failed
        simulated = (free1 - free0) / (up1 - up0)                  # pages/s on the simulated clock
        written = (w1 - w0) * PAGES / (t1 - t0)                    # pages/s the writer freed
        assert written > 0.5 * PAGES / PERIOD                      # the writer kept its pace
        for rate in (simulated, written):
            assert rate / 2 <= busy["pgfree/s"] <= 2 * rate, (out, simulated, written)
        assert busy["pgpgin/s"] == busy["pgpgout/s"] == 0.0, out    # nothing read or written to disk
