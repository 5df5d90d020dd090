"""Every broken machine description in tests/bad_configs/ is refused by ``procsim check``,
``render`` and ``mount`` alike: one line ``FILE:LINE: message`` on stderr and exit 2, never a
traceback, and nothing mounted.  Descriptions that validate but cannot boot included."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from procsim.testing import mounts, procsim_cmd

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))


def expectation(path: Path) -> tuple[int, str]:
    m = re.match(rb"# expect (\d+): ([^\n]*)\n", path.read_bytes())
    assert m, f"{path.name}: first line must be '# expect LINE: TEXT'"
    return int(m.group(1)), m.group(2).decode()


def run_cli(argv, capsys, monkeypatch) -> tuple[int, str]:
    """procsim.cli.main in this process; serve() must never be reached."""
    import procsim.fs
    from procsim import cli

    def no_serve(*a, **kw):
        raise AssertionError("a broken description got as far as mounting")
    monkeypatch.setattr(procsim.fs, "serve", no_serve)
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in argv])
    return e.value.code, capsys.readouterr().err


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
@pytest.mark.parametrize("how", ["check", "render", "mount"])
def test_bad_config_is_one_line_file_line_exit_2(path, how, tmp_path, capsys, monkeypatch):
    line, text = expectation(path)
    argv = {"check": ["check", path], "render": ["render", "--config", path, "meminfo"],
            "mount": ["mount", "--foreground", "--config", path, tmp_path]}[how]
    code, err = run_cli(argv, capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith(f"{path}:{line}: "), err
    assert text in err, err


def test_boot_failure_through_the_real_daemon(tmp_path):
    """`procsim mount` (daemon mode) passes the child's one-line refusal and status on."""
    path = next(p for p in CORPUS if p.stem == "boot_misses_by_the_watermarks")
    mp = tmp_path / "mnt"
    mp.mkdir()
    r = subprocess.run(procsim_cmd("mount", "--config", path, mp), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and not mounts(mp)
    assert r.stderr.startswith(f"{path}:7: the machine does not boot: ENOMEM") and "Traceback" not in r.stderr


def test_yaml_fuzz_never_tracebacks():
    """Seeded mutations of a good description: ConfigError or a Machine, nothing else."""
    import random
    from procsim import machine as M
    from procsim.mm import layout
    base = (Path(__file__).parent.parent / "configs" / "seed-vm.yaml").read_text()
    values = ["017", "0o17", "0b11", "0x1F", "1_000", "1:30", "+5", "-1", "~", "[]", "{}", "'x'", "1e3", "1.5",
              "0", "18446744073709551616", "1PiB", "0MiB", "1KiB", "1.5GiB", "yes", ".inf", ".nan", "1 GiB",
              "!!binary aGk=", "\"\\x00\"", "[1, [2]]", "{a: b}"]
    spots = list(re.finditer(r"(?<=: )[^,}\n#]+", base))
    rng = random.Random(7)
    for _ in range(300):
        s = rng.choice(spots)
        text = base[:s.start()] + rng.choice(values) + base[s.end():]
        try:
            layout.build(M.loads(text, "fuzz.yaml"))
        except M.ConfigError as e:
            assert re.match(r"fuzz\.yaml:\d+: \S", str(e))


@pytest.mark.parametrize("path,text", [("/dev/zero", "not a machine description"), ("/", "cannot read")])
def test_devices_and_directories_are_not_machines(path, text, capsys, monkeypatch):
    code, err = run_cli(["check", path], capsys, monkeypatch)
    assert code == 2 and err.startswith(f"{path}:") and text in err and err.count("\n") == 1
