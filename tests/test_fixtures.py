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
    """docs/library.md's procsim.machines() line is what the function returns (issue 29.5)."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "docs" / "library.md").read_text()
    assert f"procsim.machines()                               # {procsim.machines()!r}" in readme
# --- 30 §1b: fixtures never write outside OUT, never follow a link, never leave half a tree ----
TINY = (procsim.machine.CONFIGS_DIR / "tiny.yaml").read_text()


def _config(tmp_path, text, filename="m.yaml"):
    p = tmp_path / filename
    p.write_text(text)
    return p


@pytest.mark.parametrize("name,why", [
    ('"../x"', "holds a '/'"), ('".."', "would name a directory"), ('"."', "would name a directory"),
    ('"a/b"', "holds a '/'"), ('"a\\nb"', "holds a control character"),
    ('"a\\x01b"', "holds a control character"),
])
def test_machine_names_that_name_a_path_are_refused_with_file_line(tmp_path, name, why):
    cfg = _config(tmp_path, TINY.replace("name: tiny", f"name: {name}"))
    out = tmp_path / "sub" / "out"
    r = sh("fixtures", out, "-c", cfg)
    line = TINY.splitlines().index("name: tiny") + 1
    assert r.returncode == 2 and f"{cfg}:{line}: name " in r.stderr and why in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]      # nothing beside OUT


def test_a_file_name_that_names_a_path_is_refused(tmp_path):
    cfg = _config(tmp_path, TINY.replace("name: tiny\n", ""), "...yaml")
    r = sh("fixtures", tmp_path / "out", "-c", cfg)
    assert r.returncode == 2 and "would name a directory" in r.stderr and "add a name:" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["...yaml"]


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "a\x01b"])
def test_boot_cache_names_that_name_a_path_are_refused(name):
    text = TINY + f"boot:\n  caches:\n    - {{name: {json.dumps(name)}, size: 64}}\n"
    with pytest.raises(procsim.machine.ConfigError) as e:
        procsim.machine.loads(text, "c.yaml")
    assert str(e.value).startswith(f"c.yaml:{len(TINY.splitlines()) + 3}: cache name "), str(e.value)


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "a\x01b", "a\x7fb"])
def test_kmem_cache_create_refuses_names_that_name_a_path(name):
    sim = procsim.boot("tiny")
    before = sim.render("slabinfo")
    with pytest.raises(procsim.CommandError) as e:
        sim.run(f"kmem_cache_create {name} 64")
    assert e.value.reply.startswith(("error EINVAL: bad cache name", "error EINVAL: control character")), e.value.reply
    assert sim.render("slabinfo") == before
    assert sim.run("kmem_cache_create a.b 64")[0].startswith("ok a.b ")      # a dot inside is a name


def test_a_symlink_at_out_machine_is_replaced_not_followed(tmp_path):
    out = tmp_path / "out"
    assert sh("fixtures", out, "-c", "tiny").returncode == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    import shutil
    shutil.rmtree(out / "tiny")
    (out / "tiny").symlink_to(victim)
    assert sh("fixtures", out, "-c", "tiny").returncode == 0
    assert [p.name for p in victim.iterdir()] == ["keep"] and (victim / "keep").read_text() == "mine"
    assert not (out / "tiny").is_symlink() and (out / "tiny" / "proc" / "zoneinfo").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tiny"]   # no staging left


def test_tar_never_overwrites_a_file_it_did_not_make(tmp_path):
    out = tmp_path / "fx.tar"
    out.write_text("my notes")
    r = sh("fixtures", out, "-c", "tiny", "--tar")
    assert r.returncode == 1 and "not a procsim fixtures tar" in r.stderr and out.read_text() == "my notes"
    out.unlink()
    assert sh("fixtures", out, "-c", "tiny", "--tar").returncode == 0
    first = out.read_bytes()
    assert sh("fixtures", out, "-c", "tiny", "--tar").returncode == 0     # its own tar: replaced
    assert out.read_bytes() == first
    import tarfile
    with tarfile.open(out) as t:
        assert all(not n.startswith(("/", "..")) and ".." not in n.split("/") for n in t.getnames())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fx.tar"]


@pytest.mark.parametrize("rel", ["../x/proc/zoneinfo", "/etc/x", "a/../../b", "a/./b", "a\nb/c"])
def test_members_outside_out_are_refused_before_anything_is_written(tmp_path, rel):
    from procsim import fixtures
    for write in (fixtures.write_dir, fixtures.write_tar):
        with pytest.raises(fixtures.FixturesError, match="not a path below OUT"):
            write(tmp_path / "out", {"manifest.json": b"{}", rel: b"x"})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_tree_and_no_half_tree(tmp_path, monkeypatch):
    """ENOSPC in the middle of a rerun: the previous tree and manifest stay as they were, no
    staging directory is left; the same for --tar (the old tar stays)."""
    import errno
    from pathlib import Path
    from procsim import fixtures
    out = tmp_path / "out"
    _, files = fixtures.build(["tiny"], [])
    fixtures.write_dir(out, files)
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _, files2 = fixtures.build(["tiny"], ["kmalloc 64 count=100"])
    assert files2 != files
    real, calls = Path.write_bytes, []

    def full(self, data):
        calls.append(self)
        if len(calls) > 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="No space"):
        fixtures.write_dir(out, files2)
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and sorted(p.name for p in out.iterdir()) == ["manifest.json", "tiny"]
    monkeypatch.undo()

    tar = tmp_path / "fx.tar"
    fixtures.write_tar(tar, files)
    old = tar.read_bytes()
    import os as _os
    real_fdopen = _os.fdopen

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        f.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return f
    monkeypatch.setattr(fixtures.os, "fdopen", fdopen)
    with pytest.raises(OSError, match="No space"):
        fixtures.write_tar(tar, files2)
    assert tar.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["fx.tar", "out"]
