"""The SMBIOS encoder, checked by the real dmidecode and by an independent structure walker."""
from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess

from procsim import machine
from procsim.views import smbios

CONFIGS = machine.CONFIGS_DIR
dmidecode = shutil.which("dmidecode") or "dmidecode"       # installed by make deps


def load(name: str) -> machine.Machine:
    return machine.load(CONFIGS / f"{name}.yaml")


def decode(tmp_path, m: machine.Machine, *args: str) -> str:
    f = tmp_path / "dump.bin"
    f.write_bytes(smbios.dump(m))
    out = subprocess.run([dmidecode, "--from-dump", str(f), *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def records(text: str) -> list[tuple[int, dict[str, str]]]:
    """dmidecode's text -> [(type, {field: value})], top-level `Key: value` lines only."""
    out = []
    for block in text.split("\n\n"):
        m = re.search(r"^Handle 0x[0-9A-F]+, DMI type (\d+),", block, re.M)
        if not m:
            continue
        fields = dict(re.findall(r"^\t([^\t:][^:]*): (.*)$", block, re.M))
        out.append((int(m.group(1)), fields))
    return out


def size_texts(nbytes: int) -> set[str]:
    """How dmidecode versions print a DIMM size: 3.3+ `16 GB`, older `16384 MB`."""
    mb = nbytes >> 20
    out = {f"{mb} MB"}
    if mb % 1024 == 0:
        out.add(f"{mb // 1024} GB")
    return out


def walk(tab: bytes) -> list[tuple[int, int, int, bytes, list[bytes]]]:
    """Independent walker: (type, length, handle, formatted area, strings) per structure."""
    out, off = [], 0
    while off < len(tab):
        stype, length, handle = struct.unpack_from("<BBH", tab, off)
        assert length >= 4
        area = tab[off:off + length]
        end = tab.index(b"\0\0", off + length)
        raw = tab[off + length:end]
        strings = raw.split(b"\0") if raw else []
        out.append((stype, length, handle, area, strings))
        off = end + 2
        if stype == 127:
            break
    assert off == len(tab), "bytes after the end-of-table structure"
    return out


def test_seed_server_processors_and_dimms_as_seed_000(tmp_path):
    m = load("seed-server")
    recs = records(decode(tmp_path, m))
    cpus = [f for t, f in recs if t == 4]
    assert len(cpus) == 2
    for i, f in enumerate(cpus):
        assert f["Socket Designation"] == f"CPU {i + 1}"
        assert f["Version"] == "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz"
        assert f["Core Count"] == "12" and f["Core Enabled"] == "12"
        assert f["Thread Count"] == "24"
        assert f["Family"] == "Xeon"
        assert f["Max Speed"] == "2500 MHz"
    dimms = [f for t, f in recs if t == 17]
    assert [d["Locator"] for d in dimms] == [
        "CPU1 DIMM A1", "CPU1 DIMM A2", "CPU1 DIMM B1", "CPU1 DIMM B2",
        "CPU2 DIMM A1", "CPU2 DIMM A2", "CPU2 DIMM B1", "CPU2 DIMM B2"]
    for d in dimms:
        assert d["Size"] in {"16 GB", "16384 MB"}
        assert d["Type"] == "DDR4"
        assert d["Speed"] == "2133 MT/s"
    assert dimms[5]["Bank Locator"] == "P1_Node1_Channel0_Dimm1"
    arrays = [f for t, f in recs if t == 16]
    assert [a["Number Of Devices"] for a in arrays] == ["4", "4"]
    assert [a["Maximum Capacity"] for a in arrays] == ["64 GB", "64 GB"]
    assert recs[-1][0] == 127


def test_big_machine_uses_extended_size_for_32g_dimms(tmp_path):
    m = load("big-4s-1t")
    recs = records(decode(tmp_path, m))
    dimms = [f for t, f in recs if t == 17]
    assert len(dimms) == 32
    for d, want in zip(dimms, m.dimms, strict=False):
        assert d["Size"] in size_texts(want.size)
        assert d["Locator"] == want.locator
        assert d["Speed"] == "3200 MT/s"
    cpus = [f for t, f in recs if t == 4]
    assert [c["Socket Designation"] for c in cpus] == ["CPU 1", "CPU 2", "CPU 3", "CPU 4"]
    assert all(c["Core Count"] == "32" and c["Thread Count"] == "64" for c in cpus)
    # the raw Size WORD says "see Extended Size" (0x7FFF) and the DWORD holds MB
    for stype, _length, _, area, _ in walk(smbios.table(m)):
        if stype == 17:
            size, = struct.unpack_from("<H", area, 0x0C)
            ext, = struct.unpack_from("<I", area, 0x1C)
            assert (size, ext) == (0x7FFF, 32 * 1024)
    # type 19 ranges cover exactly the installed memory: 1 TiB
    ranges = [f for t, f in recs if t == 19]
    total = 0
    for r in ranges:
        lo, hi = int(r["Starting Address"], 16), int(r["Ending Address"], 16)
        total += hi - lo + 1
    assert total == 32 * 32 << 30


def test_more_than_255_cores_go_in_core_count_2(tmp_path):
    m = load("seed-server")
    m = dataclasses.replace(m, sockets=(dataclasses.replace(m.sockets[0], cores=300, threads=600),
                                        m.sockets[1]))
    cpus = [f for t, f in records(decode(tmp_path, m, "-t", "4"))]
    assert cpus[0]["Core Count"] == "300" and cpus[0]["Thread Count"] == "600"
    assert cpus[1]["Core Count"] == "12"


def test_string_query_and_many_dimms_keep_unique_handles(tmp_path):
    m = load("seed-server")
    out = decode(tmp_path, m, "-s", "processor-version")
    assert out.splitlines() == ["Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz"] * 2
    many = dataclasses.replace(m, dimms=tuple(
        dataclasses.replace(m.dimms[i % 8], locator=f"SLOT {i}") for i in range(300)))
    recs = records(decode(tmp_path, many))
    assert [f["Locator"] for t, f in recs if t == 17] == [f"SLOT {i}" for i in range(300)]
    handles = [h for _, _, h, _, _ in walk(smbios.table(many))]
    assert len(set(handles)) == len(handles)


def test_entry_point_checksum_length_and_address():
    m = load("seed-server")
    ep, tab = smbios.entry_point(m), smbios.table(m)
    assert len(ep) == 0x18 and ep[:5] == b"_SM3_"
    assert sum(ep) % 256 == 0
    anchor, _, eplen, major, minor, _, eprev, _, maxsize, addr = struct.unpack("<5sBBBBBBBIQ", ep)
    assert (eplen, major, eprev, maxsize) == (0x18, 3, 1, len(tab))
    d = smbios.dump(m)
    assert d[0x20:] == tab and d[0x18:0x20] == bytes(8)
    assert struct.unpack_from("<Q", d, 0x10)[0] == 0x20 and sum(d[:0x18]) % 256 == 0


def test_structures_are_well_formed_and_complete():
    m = load("big-4s-1t")
    structs = walk(smbios.table(m))
    types = [s[0] for s in structs]
    assert types.count(4) == 4 and types.count(16) == 4 and types.count(17) == 32
    assert types[0] == 0 and types[-1] == 127
    lengths = {0: 0x18, 1: 0x1B, 4: 0x30, 16: 0x17, 17: 0x28, 19: 0x1F, 127: 4}
    for stype, length, _, area, strings in structs:
        assert length == lengths[stype]
        # every string number in the formatted area points into the string set
        if stype == 17:
            loc = area[0x10]
            assert strings[loc - 1].decode().startswith("CPU")


def test_plain_dmidecode_reads_the_sysfs_pair(tmp_path):
    """Plain `dmidecode` (sysfs mode) in a private mount namespace; --dump-bin of it round-trips."""
    m = load("seed-server")
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "smbios_entry_point").write_bytes(smbios.entry_point(m))
    (tables / "DMI").write_bytes(smbios.table(m))
    rt = tmp_path / "rt.bin"
    script = (f"mount -t tmpfs procsim-fw /sys/firmware && mkdir -p /sys/firmware/dmi/tables && "
              f"mount --bind {tables} /sys/firmware/dmi/tables && dmidecode -t 4,17 && "
              f"dmidecode --dump-bin {rt} >/dev/null")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec", script],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Getting SMBIOS data from sysfs." in out.stdout
    recs = records(out.stdout)
    assert [f["Socket Designation"] for t, f in recs if t == 4] == ["CPU 1", "CPU 2"]
    assert [f["Locator"] for t, f in recs if t == 17][0] == "CPU1 DIMM A1"
    assert rt.read_bytes() == smbios.dump(m)


def test_module_cli_writes_a_dump_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "big.dmi"
    assert smbios.main([str(CONFIGS / "big-4s-1t.yaml"), str(out)]) == 0
    res = subprocess.run([dmidecode, "--from-dump", str(out), "-s", "processor-version"],
                         capture_output=True, text=True, timeout=30)
    assert res.stdout.splitlines() == ["Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz"] * 4
    assert smbios.main([str(tmp_path / "missing.yaml"), str(tmp_path / "x")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
