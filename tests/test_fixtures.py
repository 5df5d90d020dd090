"""`procsim fixtures` and the public API it stands on: commands reach every machine and the
manifest, bad input is one clear line and writes nothing, reruns replace their own trees."""
import json
import subprocess

import pytest

import procsim
from procsim import fixtures
from procsim.testing import procsim_cmd

COMMANDS = "kmem_cache_create probe 200\n# a comment\nkmem_cache_alloc probe count=30\n"


def sh(*args, cwd=None):
    return subprocess.run(procsim_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=300)


def test_commands_reach_every_machine_and_the_manifest(tmp_path):
    cmds = tmp_path / "cmds"
    cmds.write_text(COMMANDS)
    out = tmp_path / "out"
    r = sh("fixtures", out, "-c", "tiny", "-c", "seed-vm", "--commands", cmds)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["machines"]) == ["seed-vm", "tiny"]
    assert manifest["remake"] == f"procsim fixtures OUT --config tiny --config seed-vm --commands {cmds}"
    for name in ("tiny", "seed-vm"):
        want = procsim.boot(name, COMMANDS.splitlines())
        slabinfo = (out / name / "proc/slabinfo").read_bytes()
        assert slabinfo == want.render("slabinfo") and b"\nprobe " in slabinfo
        assert manifest["machines"][name]["commands"] == COMMANDS.splitlines()
        assert (out / name / "commands").read_text() == COMMANDS
        assert (out / name / "sys/devices/system/node/node0/meminfo").read_bytes() == \
            want.render("sys/devices/system/node/node0/meminfo")


def test_rerun_replaces_its_own_trees_and_refuses_other_directories(tmp_path):
    out = tmp_path / "out"
    assert sh("fixtures", out, "-c", "tiny").returncode == 0
    (out / "tiny" / "proc" / "stale").write_text("left from an older procsim")
    assert sh("fixtures", out, "-c", "tiny").returncode == 0
    assert not (out / "tiny" / "proc" / "stale").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = sh("fixtures", other, "-c", "tiny")
    assert r.returncode == 1 and "not a procsim fixtures directory" in r.stderr
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_kernel_profiles_make_one_subtree_per_machine_and_kernel(tmp_path):
    """--kernel V (repeatable): each machine once per profile, as MACHINE@V, rendered with that
    version's formats (6.1's zoneinfo has no high_min line; 5.4's has no boost line)."""
    out = tmp_path / "out"
    r = sh("fixtures", out, "-c", "tiny", "--kernel", "6.18", "--kernel", "6.1", "--kernel", "5.4")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["machines"]) == ["tiny@5.4", "tiny@6.1", "tiny@6.18"]
    assert {n: v["kernel"] for n, v in manifest["machines"].items()} == \
        {"tiny@6.18": "6.18", "tiny@6.1": "6.1", "tiny@5.4": "5.4"}
    assert manifest["remake"] == "procsim fixtures OUT --config tiny --kernel 6.18 --kernel 6.1 --kernel 5.4"
    zoneinfo = {v: (out / f"tiny@{v}" / "proc/zoneinfo").read_text() for v in ("6.18", "6.1", "5.4")}
    assert "high_min" in zoneinfo["6.18"] and "high_min" not in zoneinfo["6.1"]
    assert "  boost " in zoneinfo["6.1"] and "  boost " not in zoneinfo["5.4"]
    assert zoneinfo["6.18"] == procsim.boot("tiny").render("zoneinfo").decode()


@pytest.mark.parametrize("args,code,message", [
    (["-c", "no-such-machine"], 2, "shipped machines: big-4s-1t, seed-server, seed-vm, seed-vm-5.4, tiny"),
    (["-c", "tiny", "-c", "tiny"], 1, "machine 'tiny' given twice"),
    (["-c", "tiny", "--kernel", "4.18"], 1, "--kernel 4.18: not a profile (one of 6.18, 6.1, 5.4, 3.10)"),
    (["-c", "tiny", "--commands", "CMDS"], 1, "CMDS:2: kfree 99: error ENOENT"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, code, message):
    cmds = tmp_path / "cmds"
    cmds.write_text("kmalloc 64\nkfree 99\n")
    args = [str(cmds) if a == "CMDS" else a for a in args]
    r = sh("fixtures", tmp_path / "out", *args)
    assert r.returncode == code and message.replace("CMDS", str(cmds)) in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_api_errors_name_what_is_wrong():
    sim = procsim.boot("tiny")
    with pytest.raises(procsim.CommandError) as e:
        sim.run("kmalloc 64", "kmem_cache_alloc nosuch")
    assert e.value.line == "kmem_cache_alloc nosuch" and e.value.reply.startswith("error ENOENT")
    assert "nosuch" not in sim.render("slabinfo").decode()
    with pytest.raises(KeyError, match="no view 'zoneinf'"):
        sim.render("zoneinf")
    assert procsim.tree_path("zoneinfo") == "proc/zoneinfo"
    assert procsim.tree_path("/sys/devices/system/cpu/online") == "sys/devices/system/cpu/online"


def test_trees_are_laid_out_like_root(tmp_path):
    """issue 29.5: sysctls under proc/sys, debugfs under sys/kernel/debug, the log at dev/kmsg,
    no procsim-only directories (proc/sysctl, proc/debug, proc/kmsg, pictures) in the tree."""
    assert procsim.tree_path("sysctl/vm/min_free_kbytes") == "proc/sys/vm/min_free_kbytes"
    assert procsim.tree_path("debug/extfrag/extfrag_index") == "sys/kernel/debug/extfrag/extfrag_index"
    assert procsim.tree_path("kmsg") == "dev/kmsg"
    assert procsim.tree_path("pictures/zones.svg") is None
    sim = procsim.boot("tiny")
    root = sim.write_tree(tmp_path / "t")
    assert (root / "proc/sys/vm/min_free_kbytes").read_bytes() == sim.render("sysctl/vm/min_free_kbytes")
    assert (root / "sys/kernel/debug/extfrag/unusable_index").is_file()
    assert (root / "dev/kmsg").read_bytes() == sim.render("kmsg")
    assert sorted(p.name for p in root.iterdir()) == ["dev", "proc", "sys"]
    assert not any((root / "proc" / d).exists() for d in ("sysctl", "debug", "kmsg", "pictures"))
    manifest, files = fixtures.build(["tiny"], [])
    assert "tiny/proc/sys/vm/min_free_kbytes" in files and "tiny/dev/kmsg" in files
    assert not any(p.startswith(("tiny/proc/sysctl", "tiny/proc/debug", "tiny/pictures", "tiny/proc/pictures"))
                   for p in files)


def test_readme_lists_the_shipped_machines():
    """README's procsim.machines() line is what the function returns (issue 29.5)."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"procsim.machines()                               # {procsim.machines()!r}" in readme
