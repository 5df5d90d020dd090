"""SMBIOS 3.0 encoder: Machine -> the bytes firmware leaves for dmidecode.

Pure: no files, no clock.  Three products:

* :func:`entry_point` and :func:`table`: what the kernel exports as
  ``/sys/firmware/dmi/tables/smbios_entry_point`` and ``.../DMI``.
* :func:`dump`: the ``dmidecode --dump-bin`` file layout (entry point at 0, zero padding,
  the table at 0x20, the entry point's address rewritten to 0x20) for ``--from-dump``.

Structures (DMTF DSP0134 3.0): type 0 BIOS, 1 System, 4 Processor per socket, 16 Physical
Memory Array per socket, 17 Memory Device per DIMM, 19 Memory Array Mapped Address per RAM
range, 127 End of Table.  Each structure is a formatted area (``<BBH`` type, length, handle,
then fields) followed by its string set: NUL-terminated strings and one more NUL; an empty set
is two NULs.  String number 0 means "Not Specified".
"""
from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass

from .. import machine
from ..machine import MiB, KiB, Machine
from ..mm.layout import place_dimms
from ..mm.page_types import PAGE_SHIFT

SMBIOS_MAJOR, SMBIOS_MINOR, SMBIOS_DOCREV = 3, 0, 0
EP_LENGTH = 0x18                    # SMBIOS 3.0 64-bit entry point
DUMP_TABLE_OFFSET = 0x20            # where --dump-bin puts the table
# Where the table sits in the firmware's physical address space: the legacy BIOS area
# (0xF0000-0xFFFFF), inside the first MiB that e820 and the kernel reserve, as SeaBIOS does.
TABLE_PHYS_ADDR = 0x000F1000

class _Handles:
    """Structure handles.  ``type << 8 | index`` (0x0400 = first type 4), the scheme many
    BIOSes use, while every type has fewer than 256 structures; otherwise plain sequential
    numbers in table order, so no two structures ever share a handle."""

    def __init__(self, sockets: int, dimms: int, ranges: int):
        counts = {0: 1, 1: 1, 4: sockets, 16: sockets, 17: dimms, 19: ranges, 127: 1}
        self.base, n = {}, 0
        for t, c in counts.items():
            self.base[t], n = n, n + c
        self.per_type = max(counts.values()) <= 0x100

    def of(self, stype: int, index: int) -> int:
        return (stype << 8 | index) if self.per_type else self.base[stype] + index


# --------------------------------------------------------------------------------------------
# CPU identity, from the model string: CPUID family/model/stepping and the data /proc/cpuinfo
# and type 4 print.  Only models we know are described; anything else gets a generic x86-64
# identity (family 6 model 6 stepping 3, what QEMU's 32-bit "QEMU Virtual CPU" reports).

@dataclass(frozen=True)
class CpuId:
    vendor: str                     # CPUID vendor string (vendor_id in cpuinfo)
    family: int
    model: int
    stepping: int
    cache_kb: int = 0               # "cache size" (the last-level cache); 0 = not printed
    cpuid_level: int = 13
    phys_bits: int = 46
    virt_bits: int = 48
    edx: int = 0xBFEBFBFF           # CPUID(1).EDX feature word, type 4 Processor ID high half
    extra_flags: tuple[str, ...] = ()

    @property
    def signature(self) -> int:
        """CPUID(1).EAX: stepping, model, family, extended model/family fields."""
        fam = min(self.family, 0xF)
        ext_fam = self.family - 0xF if self.family > 0xF else 0
        return (self.stepping | (self.model & 0xF) << 4 | fam << 8
                | (self.model >> 4) << 16 | ext_fam << 20)


_HASWELL = ("fma", "movbe", "f16c", "rdrand", "abm", "fsgsbase", "bmi1", "avx2", "smep",
            "bmi2", "erms", "invpcid")
_SKYLAKE_SP = _HASWELL + ("rdseed", "adx", "smap", "clflushopt", "clwb", "avx512f", "avx512dq",
                          "avx512cd", "avx512bw", "avx512vl", "xsaveopt", "xsavec", "xsaves")
_KNOWN_CPUS: tuple[tuple[str, CpuId], ...] = (
    ("E5-2680 v3", CpuId("GenuineIntel", 6, 63, 2, 30720, 15, 46, 48, extra_flags=_HASWELL)),
    ("Platinum 8255C", CpuId("GenuineIntel", 6, 85, 7, 36608, 22, 46, 48,
                             extra_flags=_SKYLAKE_SP + ("avx512_vnni",))),
    ("Platinum 8358", CpuId("GenuineIntel", 6, 106, 6, 49152, 27, 46, 57,
                            extra_flags=_SKYLAKE_SP + ("avx512_vnni", "avx512_bitalg", "sha_ni",
                                                       "vaes", "vpclmulqdq", "gfni"))),
    ("QEMU Virtual CPU", CpuId("AuthenticAMD", 15, 107, 1, 512, 13, 40, 48, edx=0x078BFBFD)),
)


def cpu_identity(model: str) -> CpuId:
    for key, ident in _KNOWN_CPUS:
        if key in model:
            return ident
    vendor = "AuthenticAMD" if "AMD" in model else "GenuineIntel"
    return CpuId(vendor, 6, 6, 3, 0, 13, 40, 48, edx=0x0783FBFF)


def cpu_mhz(model: str) -> int:
    """The nominal clock the model string names (``@ 2.50GHz`` -> 2500), else 0 (unknown)."""
    m = re.search(r"@\s*(\d+(?:\.\d+)?)\s*([GM])Hz", model)
    if not m:
        return 0
    return round(float(m.group(1)) * (1000 if m.group(2) == "G" else 1))


# --------------------------------------------------------------------------------------------
# Structure packing

class _Strings:
    """One structure's string set: ``add`` returns the 1-based string number (0 for "")."""

    def __init__(self):
        self.items: list[str] = []

    def add(self, s: str) -> int:
        if not s:
            return 0
        self.items.append(s)
        return len(self.items)

    def encode(self) -> bytes:
        if not self.items:
            return b"\0\0"
        return b"".join(s.encode("ascii", "replace") + b"\0" for s in self.items) + b"\0"


def _structure(stype: int, handle: int, fmt: str, fields: tuple, strings: _Strings) -> bytes:
    body = struct.pack("<" + fmt, *fields)
    return struct.pack("<BBH", stype, 4 + len(body), handle) + body + strings.encode()


def _bios(handle: int) -> bytes:
    """Type 0, SMBIOS 2.4 length (0x18): vendor, version, date, ROM size; 64-bit capable."""
    s = _Strings()
    vendor, version, date = s.add("procsim"), s.add("1.0"), s.add("01/01/2024")
    # characteristics: bit 3 "not supported" would hide the rest; set PCI (7), BIOS
    # upgradeable (11), selectable boot (16); ext byte 2 bit 3 UEFI supported.
    chars = (1 << 7) | (1 << 11) | (1 << 16)
    return _structure(0, handle, "BBHBBQBBBBBB",
                      (vendor, version, 0xE800, date, 0x0F, chars, 0x01, 0x0C, 1, 0, 0xFF, 0xFF), s)


def _system(m: Machine, handle: int) -> bytes:
    """Type 1, SMBIOS 2.4 length (0x1B).  The UUID is all 0xFF: "not present but settable"."""
    s = _Strings()
    manu, product, version = s.add("procsim"), s.add(m.name), s.add("1.0")
    serial, sku, family = s.add("Not Specified"), s.add(""), s.add("procsim")
    return _structure(1, handle, "BBBB16sBBB",
                      (manu, product, version, serial, b"\xff" * 16, 0x06, sku, family), s)


_XEON = 0xB3                        # Processor Family: Intel Xeon
_FAMILY_OTHER = 0x01


def _processor(m: Machine, i: int, handle: int) -> bytes:
    """Type 4 with the 3.0 length (0x30) so Core/Thread Count 2 can carry more than 255."""
    sock = m.sockets[i]
    ident = cpu_identity(sock.model)
    mhz = cpu_mhz(sock.model)
    s = _Strings()
    designation = s.add(f"CPU {i + 1}")
    manu = s.add("Intel(R) Corporation" if ident.vendor == "GenuineIntel" else
                 "Advanced Micro Devices, Inc." if ident.vendor == "AuthenticAMD" else ident.vendor)
    version = s.add(sock.model)
    family = _XEON if "Xeon" in sock.model else _FAMILY_OTHER
    # characteristics: 64-bit capable, multi-core, hardware thread, execute protection
    chars = 1 << 2 | (1 << 3 if sock.cores > 1 else 0) | (1 << 4 if sock.threads > sock.cores else 0) | 1 << 5
    fields = (
        designation, 0x03, family, manu,                 # type 3 = Central Processor
        ident.signature, ident.edx, version,
        0x00,                                            # voltage: none of the legacy bits
        0, mhz, mhz,                                     # external clock unknown, max, current
        0x41,                                            # socket populated, CPU enabled
        0x01,                                            # upgrade: other
        0xFFFF, 0xFFFF, 0xFFFF,                          # no cache structures
        0, 0, 0,                                         # serial, asset tag, part number
        min(sock.cores, 0xFF), min(sock.cores, 0xFF), min(sock.threads, 0xFF),
        chars, family,
        sock.cores, sock.cores, sock.threads,
    )
    return _structure(4, handle, "BBBBIIBBHHHBBHHHBBBBBBHHHHH", fields, s)


def _memory_array(m: Machine, i: int, ndev: int, handle: int) -> bytes:
    """Type 16 (0x17): one array per socket's memory controller; capacity = what is fitted."""
    cap = m.node_memory(i)
    kb = cap // KiB
    fields = (0x03, 0x03, 0x06,                          # system board, system memory, multi-bit ECC
              kb if kb < 0x80000000 else 0x80000000,
              0xFFFE, ndev,                              # no error information structure
              0 if kb < 0x80000000 else cap)
    return _structure(16, handle, "BBBIHHQ", fields, _Strings())


_MEMORY_TYPE = {"DDR2": 0x13, "DDR3": 0x18, "DDR4": 0x1A, "LPDDR4": 0x1E, "DDR5": 0x22, "LPDDR5": 0x23}
_VOLTAGE_MV = {"DDR2": 1800, "DDR3": 1500, "DDR4": 1200, "LPDDR4": 1100, "DDR5": 1100, "LPDDR5": 1050}


def _memory_device(m: Machine, j: int, handle: int, array_handle: int) -> bytes:
    """Type 17, 2.8 layout (0x28).  Size is a WORD in MB; from 32 GiB on (0x7FFF MB and up)
    it reads 0x7FFF and the real size goes in the Extended Size DWORD."""
    d = m.dimms[j]
    mb = d.size // MiB
    s = _Strings()
    locator, bank = s.add(d.locator), s.add(d.bank)
    mv = _VOLTAGE_MV[d.type]
    fields = (
        array_handle, 0xFFFE,                            # no error information
        72, 64,                                          # total width (ECC), data width
        mb if mb < 0x7FFF else 0x7FFF,
        0x09, 0,                                         # form factor DIMM, no device set
        locator, bank,
        _MEMORY_TYPE[d.type], 0x0080,                    # type detail: synchronous
        d.speed, 0, 0, 0, 0,                             # manufacturer, serial, asset tag, part: none
        0x00,                                            # attributes: rank unknown
        mb if mb >= 0x7FFF else 0,
        d.speed, mv, mv, mv,
    )
    return _structure(17, handle, "HHHHHBBBBBHHBBBBBIHHHH", fields, s)


def mapped_ranges(m: Machine) -> list[tuple[int, int, int]]:
    """(socket, start, end) byte ranges each memory controller decodes: the layout's DIMM
    placement (procsim.mm.layout.place_dimms), never worked out again here."""
    return [(nid, s << PAGE_SHIFT, e << PAGE_SHIFT) for nid, ranges in enumerate(place_dimms(m)) for s, e in ranges]


def _mapped_address(start: int, end: int, handle: int, array_handle: int, width: int) -> bytes:
    """Type 19 (0x1F): addresses in KiB; past 4 TiB the 3.x extended QWORDs carry bytes."""
    lo, hi = start // KiB, end // KiB - 1
    if hi < 0xFFFFFFFF:
        fields = (lo, hi, array_handle, width, 0, 0)
    else:
        fields = (0xFFFFFFFF, 0xFFFFFFFF, array_handle, width, start, end - 1)
    return _structure(19, handle, "IIHBQQ", fields, _Strings())


def table(m: Machine) -> bytes:
    """The structure table (``/sys/firmware/dmi/tables/DMI``)."""
    ranges = mapped_ranges(m)
    h = _Handles(len(m.sockets), len(m.dimms), len(ranges))
    parts = [_bios(h.of(0, 0)), _system(m, h.of(1, 0))]
    parts += [_processor(m, i, h.of(4, i)) for i in range(len(m.sockets))]
    for i in range(len(m.sockets)):
        parts.append(_memory_array(m, i, sum(1 for d in m.dimms if d.socket == i), h.of(16, i)))
    parts += [_memory_device(m, j, h.of(17, j), h.of(16, d.socket)) for j, d in enumerate(m.dimms)]
    for k, (sock, start, end) in enumerate(ranges):
        width = sum(1 for d in m.dimms if d.socket == sock)
        parts.append(_mapped_address(start, end, h.of(19, k), h.of(16, sock), min(width, 0xFF)))
    parts.append(struct.pack("<BBH", 127, 4, h.of(127, 0)) + b"\0\0")
    return b"".join(parts)


def _checksum(data: bytes) -> int:
    return -sum(data) & 0xFF


def entry_point(m: Machine, address: int = TABLE_PHYS_ADDR) -> bytes:
    """The 24-byte ``_SM3_`` entry point: the bytes must sum to 0 mod 256."""
    ep = bytearray(struct.pack("<5sBBBBBBBIQ", b"_SM3_", 0, EP_LENGTH, SMBIOS_MAJOR, SMBIOS_MINOR,
                               SMBIOS_DOCREV, 0x01, 0, len(table(m)), address))
    ep[5] = _checksum(ep)
    return bytes(ep)


def dump(m: Machine) -> bytes:
    """The ``dmidecode --dump-bin`` file: EP at 0 (address = 0x20), padding, table at 0x20."""
    ep = entry_point(m, DUMP_TABLE_OFFSET)
    return ep + b"\0" * (DUMP_TABLE_OFFSET - len(ep)) + table(m)


def main(argv: list[str] | None = None) -> int:
    """``python -m procsim.views.smbios [CONFIG] FILE``: write the --dump-bin file for
    ``dmidecode --from-dump FILE`` (CONFIG defaults to the embedded seed-server)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m procsim.views.smbios [CONFIG.yaml] FILE", file=sys.stderr)
        return 2
    try:
        m = machine.load(args[0]) if len(args) == 2 else machine.load_default()
        with open(args[-1], "wb") as f:
            f.write(dump(m))
    except machine.ConfigError as e:
        print(f"procsim: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"procsim: {args[-1]}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
