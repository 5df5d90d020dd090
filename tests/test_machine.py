"""Machine descriptions: every shipped config loads; broken ones fail with FILE:LINE."""
import pytest

from procsim.machine import ConfigError, load, loads, parse_size, CONFIGS_DIR, GiB

SHIPPED = sorted(CONFIGS_DIR.glob("*.yaml"))


def test_ships_the_four_machines():
    assert {p.stem for p in SHIPPED} >= {"tiny", "seed-vm", "seed-server", "big-4s-1t"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    m = load(path)
    assert m.nr_cpu_ids == sum(s.threads for s in m.sockets) > 0


def test_seed_server_topology():
    m = load(CONFIGS_DIR / "seed-server.yaml")
    assert m.nr_cpu_ids == 48
    assert [m.node_memory(n) for n in (0, 1)] == [64 * GiB, 64 * GiB]
    # Linux numbering on a 2-socket Intel server: cores of socket 0, socket 1, then siblings
    assert m.node_cpus(0) == list(range(0, 12)) + list(range(24, 36))
    assert m.node_cpus(1) == list(range(12, 24)) + list(range(36, 48))
    assert m.distances == ((10, 21), (21, 10))


@pytest.mark.parametrize("text,value", [("16GiB", 16 * GiB), ("16384MB", 16 * GiB), ("16G", 16 * GiB),
                                        ("512k", 512 * 1024), ("4096", 4096), ("1.5GiB", 3 * GiB // 2)])
def test_sizes(text, value):
    assert parse_size(text) == value


BASE = """\
sockets:
  - {cores: 2, threads: 4}
dimms:
  - {socket: 0, size: 1GiB}
"""


@pytest.mark.parametrize("text,line,words", [
    (BASE + "bogus: 1\n", 5, "unknown key 'bogus'"),
    ("sockets:\n  - {cores: 2, threads: 3}\ndimms:\n  - {socket: 0, size: 1GiB}\n", 2, "multiple of cores"),
    ("sockets:\n  - {cores: 0}\ndimms:\n  - {socket: 0, size: 1GiB}\n", 2, "at least 1"),
    ("sockets:\n  - {cores: two}\ndimms:\n  - {socket: 0, size: 1GiB}\n", 2, "whole number"),
    (BASE.replace("socket: 0", "socket: 3"), 4, "socket 3"),
    (BASE.replace("1GiB", "0"), 4, "at least"),
    (BASE.replace("1GiB", "-1GiB"), 4, "not a size"),
    (BASE.replace("1GiB", "1PiB"), 4, "absurdly large"),
    (BASE + "numa_distances: [[10, 21]]\n", 5, "needs 1 entries"),
    (BASE.replace("{cores: 2, threads: 4}", "{cores: 2}\n  - {cores: 2}")
     + "numa_distances:\n  - [10, 21]\n  - [20, 10]\n", 7, "not symmetric"),
    (BASE.replace("{cores: 2, threads: 4}", "{cores: 2}\n  - {cores: 2}")
     + "numa_distances:\n  - [11, 21]\n  - [21, 10]\n", 7, "must be 10"),
    (BASE + "tunables: {watermark_scale_factor: 0}\n", 5, "at least 1"),
    ("sockets: [\n", 2, "YAML syntax"),
    ("sockets: []\ndimms: []\n", 1, "at least one socket"),
    (BASE + "boot:\n  pages:\n    - {use: anon, size: 1MiB, node: 4}\n", 7, "node 4 does not exist"),
])
def test_broken_descriptions_name_file_and_line(text, line, words):
    with pytest.raises(ConfigError) as e:
        loads(text, "m.yaml")
    assert str(e.value).startswith(f"m.yaml:{line}: "), str(e.value)
    assert words in str(e.value)


def test_cpu_numbering_by_socket_and_interleaved():
    """2 sockets x 2 cores x 2 threads: Intel firmware numbers the first threads first
    (node 0 = 0,1,4,5); qemu numbers socket by socket (node 0 = 0-3), as the real kernel
    under qemu shows in tests/data/oracle/two-node.txt."""
    base = ("sockets:\n  - {cores: 2, threads: 4}\n  - {cores: 2, threads: 4}\n"
            "dimms:\n  - {socket: 0, size: 1GiB}\n  - {socket: 1, size: 1GiB}\n")
    m = loads(base)
    assert (m.node_cpus(0), m.node_cpus(1)) == ([0, 1, 4, 5], [2, 3, 6, 7])
    m = loads("cpu_numbering: by_socket\n" + base)
    assert (m.node_cpus(0), m.node_cpus(1)) == ([0, 1, 2, 3], [4, 5, 6, 7])
    assert m.cpu_topology()[:4] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]


def test_cpu_numbering_unknown_is_refused_at_its_line():
    with pytest.raises(ConfigError, match=r"<string>:2: cpu_numbering must be one of"):
        loads("sockets: [{cores: 1}]\ncpu_numbering: qemu\ndimms: [{socket: 0, size: 1GiB}]\n")


def test_kernel_version_key():
    base = "sockets: [{cores: 1}]\ndimms: [{socket: 0, size: 1GiB}]\n"
    assert loads(base).kernel == "6.18"
    assert loads('kernel: "6.1"\n' + base).kernel == "6.1"
    assert loads("kernel: 5.4\n" + base).kernel == "5.4"      # YAML's float keeps its text
    with pytest.raises(ConfigError, match=r"<string>:1: kernel must be one of 6.18, 6.1, 5.4"):
        loads('kernel: "4.18"\n' + base)
