"""The control file: a tiny command language that changes the simulated kernel.

One command per line (``#`` comments and blank lines are ignored)::

    alloc_pages ORDER [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME] [use=USE] [buffers=1]
    free_pages ID | free_pages tag=NAME
    kmem_cache_create NAME SIZE [align=A] [flags=SLAB_HWCACHE_ALIGN|...]
    kmem_cache_alloc NAME [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME]
    kmem_cache_free NAME ID | kmem_cache_free NAME tag=NAME
    kmem_cache_shrink NAME
    kmem_cache_destroy NAME
    kmalloc SIZE [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME]
    kfree ID | kfree tag=NAME
    alloc_pages_exact SIZE [gfp=FLAGS] [node=N] [cpu=C] [tag=NAME]
    compact_memory | compact node=N
    sleep DURATION
    touch ID | touch tag=NAME
    oom_score_adj ADJ tag=NAME
    sysctl vm.NAME VALUE
    memory_block N offline|online|online_kernel|online_movable
    tracefs FILE VALUE
    drop_caches | drain_pages | reset | help

An ID may also be a range ``A-B`` (as printed in the ``ok A-B`` reply).
``use=`` says what the pages are for (anon, pagecache, kernel_stack, page_tables), so meminfo's
AnonPages, Cached, KernelStack and PageTables follow them.  ``tag=`` names the task that owns
what is allocated (procsim.mm.task); untagged allocations belong to the default task.

Numbers, one grammar everywhere (IDs, ORDER, count, node, cpu, align, SIZE, numeric gfp):
a NUMBER is ASCII decimal digits without sign or leading zero (``0``, ``17``; ``010`` is
refused rather than read as 8 or 10).  A SIZE (kmalloc, kmem_cache_create, align) is a NUMBER
of bytes, optionally followed by ``K``, ``M`` or ``G`` (binary: ×1024, ``KiB`` spelling too;
``2.5k`` is refused).  Only in FLAGS may a part be hexadecimal, ``0x`` and hex digits, as flag
bits are written in the kernel (``gfp=0xcc0`` is GFP_KERNEL).  A DURATION (sleep) is a NUMBER
of seconds, or a NUMBER followed by ``ms``, ``us`` or ``ns`` (``sleep 2``, ``sleep 250ms``).

Time is simulated (procsim.mm.timer): ``sleep`` lets the machine idle, running the kernel's
deferred work (the vmstat worker's pcp decay and drains, kswapd) as it falls due, and every
other command that succeeds costs one jiffy (``Kernel.tick``), so kswapd woken by one command
has run before the next.  A command that fails leaves the clock where it was.

Every line is atomic: it either succeeds completely or leaves the allocation state as it
was (a ``count=K`` that runs out of memory half way frees what it got, in reverse order).
Errors carry the kernel's errno: EINVAL (malformed, control characters and line breaks other
than the one ending the line, bad numbers), ENOMEM, ENOENT (unknown cache, ID or tag, or an ID
reclaim dropped), EBUSY, EEXIST, EPERM (SLUB's own caches).

A line is parsed into a small frozen command value (``parse``), which is applied to a Kernel
(``Command.apply``) for the reply; adding a command is a dataclass with ``@command``.

Limits, so that a runaway script cannot exhaust the daemon's memory:
``MAX_LINE`` bytes per line (an overlong line fails its write; the next write starts afresh),
``MAX_COMMANDS`` lines per write(), ``MAX_COUNT`` per command (``MAX_PAGE_COUNT`` for
``alloc_pages 0`` and page ID ranges: order-0 pages are kept as runs, a few bytes per run, so a
whole 1 TiB machine fits), ``LOG_LINES`` entries of at
most ``LOGGED_CHARS`` characters (and a reply of ``LOGGED_CHARS``) in the log ring,
``MAX_LISTED`` lines in ``allocations``; an error quotes at most ``QUOTED`` characters of input.
"""
from __future__ import annotations

import errno as E
import re
import traceback
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar

from procsim.mm import gfp as G
from procsim.mm.errors import MMError
from procsim.mm.huge_memory import count_thp_fault
from procsim.mm.task import check_buffers
from procsim.mm.page_types import MAX_PAGE_ORDER as MAX_ORDER
from procsim.views import allocations as _allocations
from procsim.views.allocations import MAX_LISTED  # noqa: F401  (a documented limit)

MAX_LINE = 4096
MAX_COMMANDS = 10000
MAX_COUNT = 1 << 22
MAX_PAGE_COUNT = 1 << 28       # 1 TiB of 4 KiB pages
LOG_LINES = 1000
LOGGED_CHARS = 200             # a logged line (and its reply) is cut here: the log ring stays small
QUOTED = 64                    # an error message quotes at most this much of the input
MAX_MESSAGE = 512              # ... and is cut here whatever the core put in it
PAGE_USES = ("anon", "pagecache", "kernel_stack", "page_tables")   # alloc_pages use=

_TAG = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
_NUMBER = r"(?:0|[1-9][0-9]*)"
_NUMBER_RE = re.compile(_NUMBER, re.ASCII)
_HEX_RE = re.compile(r"0[xX][0-9a-fA-F]+", re.ASCII)
_SIZE_RE = re.compile(rf"({_NUMBER})(?:([KMGkmg])(?:iB)?)?", re.ASCII)
_ID_RE = re.compile(rf"({_NUMBER})(?:-({_NUMBER}))?", re.ASCII)
_SIZE_SHIFT = {None: 0, "k": 10, "m": 20, "g": 30}
# Control characters, and every character str.splitlines() takes for a line break (CR, VT,
# FF, \x1c-\x1e, NEL, LS, PS): a line is split on "\n" only and refuses the rest.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_BLANKS = " \t"
_WORDS = re.compile("[ \t]+")

# `help` replies with the synopsis of the module docstring, so the two cannot drift apart.
HELP = "\n".join(line.strip() for line in (__doc__ or "::\n\n").split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines())


def split_lines(text: str) -> list[str]:
    """A write's text -> its lines, split on "\\n" only (str.splitlines() also splits on CR, VT,
    FF, \\x1c-\\x1e, U+0085, U+2028 and U+2029, which Control.run refuses inside a line).
    A last line without its newline is included."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _q(text: str) -> str:
    """text quoted for an error message, cut at QUOTED characters."""
    return repr(text) if len(text) <= QUOTED else repr(text[:QUOTED]) + f"... ({len(text)} chars)"


class ControlError(Exception):
    """A command that failed: ``errno`` plus a message for the ``error ENAME: msg`` reply."""

    def __init__(self, errno: int, message: str):
        super().__init__(message)
        self.errno, self.message = errno, message

    @property
    def reply(self) -> str:
        msg = self.message if len(self.message) <= MAX_MESSAGE else self.message[:MAX_MESSAGE] + "..."
        return f"error {E.errorcode.get(self.errno, str(self.errno))}: {msg}"


def _as_control_error(e: Exception) -> ControlError:
    """MMError (and anything else with an int errno) -> ControlError; other exceptions are bugs."""
    if isinstance(e, ControlError):
        return e
    code = getattr(e, "errno", None)
    if isinstance(code, int) and code > 0:
        return ControlError(code, getattr(e, "message", None) or str(e))
    err = ControlError(E.EIO, f"internal error: {type(e).__name__}: {e}")
    err.internal = traceback.format_exc()    # logged by the session once its lock is released
    return err


# --- values: the number grammar and the other words --------------------------------------------
def number(value: str, what: str, lo: int, hi: int) -> int:
    """A NUMBER in lo..hi."""
    if not _NUMBER_RE.fullmatch(value):
        raise ControlError(E.EINVAL, f"{what} must be a number in {lo}..{hi} (decimal digits, no sign or"
                                     f" leading zero), not {_q(value)}")
    return _in_range(int(value), what, lo, hi)


def size(value: str, what: str, lo: int, hi: int) -> int:
    """A SIZE in bytes, lo..hi."""
    m = _SIZE_RE.fullmatch(value)
    if not m:
        raise ControlError(E.EINVAL, f"{what}: not a size: {_q(value)} (a whole number of bytes,"
                                     " optionally with K, M or G)")
    v = int(m.group(1)) << _SIZE_SHIFT[m.group(2) and m.group(2).lower()]
    if not lo <= v <= hi:
        raise ControlError(E.EINVAL, f"{what} must be {lo}..{_bytes(hi)} bytes, not {v}")
    return v


def _bytes(n: int) -> str:
    return f"{n >> 30}GiB" if n >= 1 << 30 and not n & ((1 << 30) - 1) else str(n)


def _in_range(v: int, what: str, lo: int, hi: int) -> int:
    if not lo <= v <= hi:
        raise ControlError(E.EINVAL, f"{what} must be in {lo}..{hi}, not {v}")
    return v


def _order(v, verb): return number(v, "order", 0, MAX_ORDER)
def _node(v, verb): return number(v, "node", 0, 1 << 16)
def _cpu(v, verb): return number(v, "cpu", 0, 1 << 16)
def _count(v, verb): return number(v, "count", 1, MAX_PAGE_COUNT if verb == "alloc_pages" else MAX_COUNT)
def _size(v, verb): return size(v, "size", 1, 1 << 30)
def _align(v, verb): return size(v, "align", 0, 1 << 20)
def _word(v, verb): return v
def _buffers(v, verb): return number(v, "buffers", 0, 1)


_DURATION_RE = re.compile(rf"({_NUMBER})(s|ms|us|ns)?", re.ASCII)
_DURATION_NS = {None: 10 ** 9, "s": 10 ** 9, "ms": 10 ** 6, "us": 10 ** 3, "ns": 1}
MAX_SLEEP_NS = 30 * 86400 * 10 ** 9            # a month of idling in one command


def _duration(v, verb) -> int:
    """A DURATION -> nanoseconds."""
    m = _DURATION_RE.fullmatch(v)
    if not m:
        raise ControlError(E.EINVAL, f"{verb}: not a duration: {_q(v)} (a NUMBER of seconds, or with ms, us, ns)")
    ns = int(m.group(1)) * _DURATION_NS[m.group(2)]
    if ns > MAX_SLEEP_NS:
        raise ControlError(E.EINVAL, f"{verb}: at most 30 days at once, not {_q(v)}")
    return ns


def _show_duration(ns):
    return f"{ns}ns"


def _tag(v, verb):
    if not _TAG.fullmatch(v):
        raise ControlError(E.EINVAL, f"bad tag {_q(v)} (letters, digits, _.:+-, at most 64)")
    return v


def _use(v, verb):
    if v not in PAGE_USES:
        raise ControlError(E.EINVAL, f"{verb}: use= must be one of {'|'.join(PAGE_USES)}, not {_q(v)}")
    return v


def _gfp(v, verb):
    """GFP names joined with |; a part that is a number must follow the grammar (no sign)."""
    for part in v.split("|"):
        if part not in G.NAMES and (part[:1].isdigit() or part[:1] in "+-"):
            if not (_NUMBER_RE.fullmatch(part) or _HEX_RE.fullmatch(part)) or int(part, 0) >> 32:
                raise ControlError(E.EINVAL, f"gfp: {_q(part)} is not flag bits (a NUMBER or 0x hex below 2^32)")
    try:
        return G.parse_gfp(v)
    except MMError as e:
        raise _as_control_error(e) from None


def _slab_flags(v, verb):
    from procsim.mm.slub import parse_slab_flags
    try:
        return parse_slab_flags(v)
    except MMError as e:
        raise _as_control_error(e) from None


def _cache_name(v, verb):
    if not re.fullmatch(r"[^\s:#/\x00-\x1f\x7f-\x9f]{1,64}", v) or v in (".", ".."):
        raise ControlError(E.EINVAL, f"bad cache name {_q(v)} (no /, . or .., control characters:"
                                     " it names sys/kernel/slab/NAME)")
    return v


def _ids(v, verb) -> tuple[int, int]:
    m = _ID_RE.fullmatch(v)
    if not m:
        raise ControlError(E.EINVAL, f"{verb}: bad ID {_q(v)} (a number or A-B: decimal, no sign or leading zero)")
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    if hi < lo or hi - lo >= (MAX_PAGE_COUNT if verb == "free_pages" else MAX_COUNT):
        raise ControlError(E.EINVAL, f"{verb}: bad ID range {v}")
    return lo, hi


def _show_ids(ids): return str(ids[0]) if ids[0] == ids[1] else f"{ids[0]}-{ids[1]}"


def _show_gfp(bits):
    name = G.format_gfp(bits)
    return name if G.parse_gfp(name) == bits else hex(bits)


def _show_slab_flags(bits):
    from procsim.mm.slub import format_slab_flags
    return format_slab_flags(bits)


# --- commands ----------------------------------------------------------------------------------
def arg(name: str, parse, default=None, at: int = 0, show=str):
    """A positional argument, shown as name in usage messages; positional arguments come in
    the order of ``at``, then of declaration."""
    return field(default=default, metadata={"parse": parse, "arg": name, "at": at, "show": show})


def opt(parse, default=None, show=str):
    """An option ``key=VALUE``; the key is the field's name; show(value) spells it back."""
    return field(default=default, metadata={"parse": parse, "show": show})


COMMANDS: dict[str, type] = {}


def command(verb: str):
    """Register a command class under verb, as a frozen keyword-only dataclass."""
    def register(cls):
        cls.verb = verb
        cls = dataclass(frozen=True, kw_only=True)(cls)
        # positional arguments first, then options, each in declaration order
        cls.spec = tuple(sorted(fields(cls), key=lambda f: f.metadata.get("at", 2)))
        cls.parsers = tuple((f.name, f.metadata["parse"]) for f in cls.spec)
        cls.options = frozenset(f.name for f in cls.spec if "arg" not in f.metadata)
        cls.args = tuple((f.name, f.metadata["arg"]) for f in cls.spec if "arg" in f.metadata)
        cls.args_by_tag = tuple(a for a in cls.args if a[0] != "ids")    # `kfree tag=x`, not `kfree ID`
        COMMANDS[verb] = cls
        return cls
    return register


class Command:
    verb: ClassVar[str]
    ticks: ClassVar[bool] = True            # costs one jiffy when it succeeds (Kernel.tick)
    spec: ClassVar[tuple]                   # the fields: positional arguments first, then options
    parsers: ClassVar[tuple]                # (field, parse(value, verb)) in that order
    options: ClassVar[frozenset]            # the keys of key=VALUE
    args: ClassVar[tuple]                   # (field, NAME shown in usage) of positional arguments
    args_by_tag: ClassVar[tuple]            # ... when tag= replaces the ID

    def apply(self, k) -> str:
        raise NotImplementedError

    def line(self) -> str:
        """The command spelled canonically: parse(cmd.line()) == cmd."""
        words = [self.verb]
        for f in self.spec:
            v = getattr(self, f.name)
            if v is None or ("arg" not in f.metadata and v == f.default):
                continue
            shown = f.metadata["show"](v)
            words.append(shown if "arg" in f.metadata else f"{f.name}={shown}")
        return " ".join(words)


def _ok_ids(ids: range) -> str:
    return f"ok {ids.start}" if len(ids) == 1 else f"ok {ids.start}-{ids.stop - 1}"


def _cache(k, name: str, objects: bool = False):
    """The cache called name; with objects=True, one a script may allocate from and free to:
    not kmem_cache / kmem_cache_node, whose objects are SLUB's own cache structures."""
    slab = k.slab
    c = slab.find(name)
    if c is None:
        raise ControlError(E.ENOENT, f"no kmem_cache named {_q(name)}")
    if objects and c in (getattr(slab, "kmem_cache", None), getattr(slab, "kmem_cache_node", None)):
        raise ControlError(E.EPERM, f"{name} holds SLUB's own structures; kmem_cache_create makes them")
    return c


@dataclass(frozen=True, kw_only=True)
class _Allocate(Command):
    """The options every allocating command takes."""
    gfp: int = opt(_gfp, G.GFP_KERNEL, show=_show_gfp)
    node: int | None = opt(_node)
    cpu: int | None = opt(_cpu)
    count: int = opt(_count, 1)
    tag: str | None = opt(_tag)

    def _where(self, k) -> dict:
        """node/cpu, checked against this machine."""
        return {"node": None if self.node is None else _in_range(self.node, "node", 0, len(k.nodes) - 1),
                "cpu": None if self.cpu is None else _in_range(self.cpu, "cpu", 0, k.nr_cpu_ids - 1)}


@command("alloc_pages")
class AllocPages(_Allocate):
    order: int = arg("ORDER", _order)
    use: str | None = opt(_use)
    gfp: int | None = opt(_gfp, None, show=_show_gfp)   # None: the use's own gfp (gfp.use_gfp)
    buffers: int = opt(_buffers, 0)    # 1: a block-mapped file's page cache, a buffer_head a page

    def apply(self, k):
        if self.buffers:                               # before anything counts or commits
            check_buffers(self.use, self.order)
        if self.order and self.count > MAX_COUNT:     # only order 0 comes as runs
            raise ControlError(E.EINVAL, f"count must be in 1..{MAX_COUNT} for order {self.order}, not {self.count}")
        if self.use == "anon":                         # an anon mapping commits memory first (mmap)
            t = k.tasks.find_task(self.tag)
            k.vm_enough_memory(self.count << self.order, getattr(t, "total_vm", 0) if t is not None else 0)
        gfp = self.gfp
        if gfp is None:
            gfp = G.use_gfp(self.use, k.profile.folios) if self.use in G.USER_USES else G.GFP_KERNEL
        try:
            ids = k.tasks.alloc_pages(self.tag, self.order, gfp, self.count, use=self.use, buffers=bool(self.buffers),
                                      **self._where(k))
        except MMError:
            count_thp_fault(k, self.order, gfp, 0, True)
            raise
        count_thp_fault(k, self.order, gfp, len(ids), False)
        return _ok_ids(ids)


@command("alloc_pages_exact")
class AllocPagesExact(Command):
    """alloc_pages_exact(): the covering power-of-two block, split, its tail pages freed;
    replies the IDs of the order-0 pages kept ("ask for 3 pages: take 4, give one back")."""
    size: int = arg("SIZE", _size)
    gfp: int = opt(_gfp, G.GFP_KERNEL, show=_show_gfp)
    node: int | None = opt(_node)
    cpu: int | None = opt(_cpu)
    tag: str | None = opt(_tag)

    def apply(self, k):
        return _ok_ids(k.tasks.alloc_pages_exact(self.tag, self.size, self.gfp, **_Allocate._where(self, k)))


@command("compact_memory")
class CompactMemory(Command):
    """vm.compact_memory: compact every zone of every node (compact_nodes())."""
    def apply(self, k):
        k.compact_nodes()
        return "ok"


@command("compact")
class CompactNode(Command):
    """/sys/devices/system/node/nodeN/compact: compact every zone of node N (compact_node())."""
    node: int | None = opt(_node)

    def apply(self, k):
        if self.node is None:
            raise ControlError(E.EINVAL, "compact: node=N is required (compact_memory compacts every node)")
        k.compact_node(_in_range(self.node, "node", 0, len(k.nodes) - 1))
        return "ok"


@command("kmem_cache_alloc")
class KmemCacheAlloc(_Allocate):
    cache: str = arg("NAME", _word)

    def apply(self, k):
        cache = _cache(k, self.cache, objects=True)
        return _ok_ids(k.tasks.kmem_cache_alloc(self.tag, cache, self.gfp, self.count, **self._where(k)))


@command("kmalloc")
class Kmalloc(_Allocate):
    size: int = arg("SIZE", _size)

    def apply(self, k):
        return _ok_ids(k.tasks.kmalloc(self.tag, self.size, self.gfp, self.count, **self._where(k)))


@dataclass(frozen=True, kw_only=True)
class _Free(Command):
    """Free by ID (or range), or every allocation of this kind a tag owns."""
    ids: tuple[int, int] | None = arg("ID", _ids, at=1, show=_show_ids)     # after a cache NAME
    tag: str | None = opt(_word)
    kind: ClassVar[str]

    def _free(self, k, cache: str | None = None) -> str:
        tasks = k.tasks
        if self.ids is not None:
            sel = tasks.select_ids(*self.ids, self.kind, cache)
        else:
            sel = tasks.select_task(tasks.find_task(self.tag), self.kind, cache)
            if not sel:
                raise ControlError(E.ENOENT, f"no live {self.kind} allocations tagged {_q(self.tag)}"
                                   + (f" in {cache}" if cache else ""))
        return f"ok freed {tasks.free(sel)}"


@command("free_pages")
class FreePages(_Free):
    kind = "pages"

    def apply(self, k):
        return self._free(k)


@command("kfree")
class Kfree(_Free):
    kind = "kmalloc"

    def apply(self, k):
        return self._free(k)


@command("kmem_cache_free")
class KmemCacheFree(_Free):
    kind = "slab"
    cache: str = arg("NAME", _word)

    def apply(self, k):
        return self._free(k, _cache(k, self.cache, objects=True).name)


@command("kmem_cache_create")
class KmemCacheCreate(Command):
    name: str = arg("NAME", _cache_name)
    size: int = arg("SIZE", _size)
    align: int = opt(_align, 0)
    flags: int = opt(_slab_flags, 0, show=_show_slab_flags)

    def apply(self, k):
        c = k.slab.kmem_cache_create(self.name, self.size, align=self.align, flags=self.flags)
        return f"ok {c.name} objsize={c.size} objperslab={c.objects} pagesperslab={1 << c.order}"


@command("kmem_cache_shrink")
class KmemCacheShrink(Command):
    cache: str = arg("NAME", _word)

    def apply(self, k):
        return f"ok freed {k.slab.kmem_cache_shrink(_cache(k, self.cache))} pages"


@command("kmem_cache_destroy")
class KmemCacheDestroy(Command):
    cache: str = arg("NAME", _word)

    def apply(self, k):
        k.slab.kmem_cache_destroy(_cache(k, self.cache))
        return "ok"


@command("touch")
class Touch(Command):
    """mark_page_accessed() on page allocations (by ID or tag): the first touch sets
    PG_referenced, the second moves an inactive anon/page-cache folio to the active list.
    A swapped-out anon member is faulted back in first (do_swap_page: pswpin)."""
    ids: tuple[int, int] | None = arg("ID", _ids, show=_show_ids)
    tag: str | None = opt(_tag)

    def apply(self, k):
        from procsim.mm.vmscan import LRU_OF_USE, mark_members_accessed
        tasks = k.tasks
        sel = tasks.select_ids(*self.ids, "pages") if self.ids is not None else \
            tasks.select_task(tasks.find_task(self.tag), "pages")
        if not sel:
            raise ControlError(E.ENOENT, f"no live page allocations tagged {_q(self.tag)}")
        sel = [(b, ranges) for b, ranges in sel if b.use in LRU_OF_USE]
        swapped_in = tasks.swap_in(sel)
        n = 0
        for b, ranges in sel:
            for lo, hi in ranges:                       # index ranges, hi exclusive; runs as runs
                mark_members_accessed(k, b, lo, hi)     # swapped out again meanwhile: not touched
                n += sum(m for _, p, m, _ in b.stretch(lo, hi) if tasks.in_memory_value(p))
        return f"ok touched {n}" + (f" ({swapped_in} swapped in)" if swapped_in else "")


def _adj(v, verb):
    neg = v.startswith("-")
    n = number(v[1:] if neg else v, "oom_score_adj", 0, 1000)
    return -n if neg else n


@command("oom_score_adj")
class OomScoreAdj(Command):
    """/proc/PID/oom_score_adj of the tag's task (-1000 never killed .. 1000 killed first)."""
    adj: int = arg("ADJ", _adj)
    tag: str = opt(_tag)

    def apply(self, k):
        if self.tag is None:
            raise ControlError(E.EINVAL, "oom_score_adj: tag= names the task")
        k.tasks.task(self.tag).oom_score_adj = self.adj
        k.generation += 1
        return "ok"


def _sysctl_name(v, verb):
    from procsim.mm import sysctl
    try:
        return "vm." + sysctl.lookup(v).name
    except MMError as e:
        raise _as_control_error(e) from None


@command("sysctl")
class Sysctl(Command):
    """Write a vm sysctl as /proc/sys/vm/NAME takes it (values of a vector joined by commas);
    writes to M/sysctl/vm/NAME are journaled as this command."""
    name: str = arg("NAME", _sysctl_name)
    value: str = arg("VALUE", _word, at=1)

    def apply(self, k):
        from procsim.mm import sysctl
        return "ok " + sysctl.write(k, self.name, self.value.replace(",", " ")).replace(" ", ",")


def _block_state(v, verb):
    from procsim.mm.memory_hotplug import ONLINE_TYPES
    if v not in ONLINE_TYPES:
        raise ControlError(E.EINVAL, f"{verb}: state must be one of {', '.join(ONLINE_TYPES)}")
    return v


@command("memory_block")
class MemoryBlockState(Command):
    """``echo STATE > /sys/devices/system/memory/memoryN/state`` (chmem, lsmem's blocks):
    take memory block N off line or back on line as mm/memory_hotplug.c does; writes to
    M/sys/devices/system/memory/memoryN/{state,online} are journaled as this command."""
    nr: int = arg("N", lambda v, verb: number(v, "memory block", 0, 1 << 24))
    state: str = arg("STATE", _block_state, at=1)

    def apply(self, k):
        from procsim.mm import memory_hotplug
        return "ok " + memory_hotplug.set_state(k, self.nr, self.state)


@command("tracefs")
class Tracefs(Command):
    """A write to sys/kernel/tracing/FILE (tracing_on, events/.../enable, buffer_size_kb,
    per_cpu/cpuN/buffer_size_kb, trace to reset the rings): the tracing state is the machine's
    too, so those writes are journaled as this command and replayed.  Costs no jiffy: tracing
    observes, it never moves the machine (procsim/mm/trace.py)."""
    ticks = False
    file: str = arg("FILE", _word)
    value: str = arg("VALUE", _word, at=1)

    def apply(self, k):
        from procsim.mm import trace
        trace.write_file(k.trace, self.file, self.value, k.nr_cpu_ids)
        return "ok"


@command("drop_caches")
class DropCaches(Command):
    """drop_slab() (vm.drop_caches 2: the shrinkers), then kmem_cache_shrink of every cache
    (what /sys/kernel/slab/*/shrink does): the empty slabs SLUB keeps go back too."""
    def apply(self, k):
        freed = k.drop_slab()
        freed += sum(k.slab.kmem_cache_shrink(c) for c in list(k.slab.caches))
        return f"ok freed {freed} pages"


@command("drain_pages")
class DrainPages(Command):
    """drain_all_pages(): every per-cpu page list back to the buddy allocator, where free
    blocks merge; direct reclaim runs it before retrying an allocation."""
    def apply(self, k):
        k.drain_all_pages()
        return "ok"


@command("sleep")
class Sleep(Command):
    """Let the machine idle: the clock moves and due deferred work runs (Kernel.sleep)."""
    ticks = False
    ns: int = arg("DURATION", _duration, show=_show_duration)

    def apply(self, k):
        k.sleep(self.ns)
        return "ok"


@command("reset")
class Reset(Command):
    """Boot the machine again: Control.run swaps the kernel (build first: a failed boot keeps
    the old state)."""
    ticks = False                           # the new kernel's clock starts at boot

    def apply(self, k):
        return "ok"


@command("help")
class Help(Command):
    ticks = False                           # changes nothing (and is not journaled)

    def apply(self, k):
        return "ok\n" + "\n".join("  " + l for l in HELP.splitlines())


def parse(text: str) -> Command:
    """One line (without comment) -> its command value; ControlError(EINVAL) if malformed."""
    bad = _CONTROL_CHARS.search(text)
    if bad:
        raise ControlError(E.EINVAL, f"control character {bad.group()!r} in the line")
    # Words are separated by spaces and tabs only (str.split() would also split on U+00A0 and
    # other Unicode spaces; on ASCII text, whose other separators run() refuses, they agree).
    verb, *words = text.split() if text.isascii() else _WORDS.split(text)
    cls = COMMANDS.get(verb)
    if cls is None:
        raise ControlError(E.EINVAL, f"unknown command {_q(verb)} (try: help)")
    allowed = cls.options
    args, opts = [], {}
    for w in words:
        key, eq, value = w.partition("=")
        if eq:
            if key not in allowed:
                raise ControlError(E.EINVAL, f"{verb}: unknown option {_q(key)}"
                                   + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""))
            if key in opts:
                raise ControlError(E.EINVAL, f"{verb}: {key}= given twice")
            if not value:
                raise ControlError(E.EINVAL, f"{verb}: {key}= needs a value")
            opts[key] = value
        else:
            args.append(w)
    need = cls.args_by_tag if "tag" in opts else cls.args
    if len(args) != len(need):
        usage = next(l for l in HELP.splitlines() if verb in l.replace("|", " ").split())
        expected = " ".join(shown for _, shown in need) or "no arguments"
        raise ControlError(E.EINVAL, f"{verb}: expected {expected} (usage: {usage})")
    for (name, _), value in zip(need, args, strict=False):
        opts[name] = value
    return cls(**{name: parse_value(opts[name], verb) for name, parse_value in cls.parsers if name in opts})


@dataclass
class Reply:
    line: str
    text: str
    errno: int = 0


class Control:
    """Interprets control lines against a Kernel; the kernel's ``tasks`` keep what they allocated.

    ``boot`` builds a fresh Kernel (used at start and by ``reset``).  Not thread safe:
    the session holds its lock around every call.
    """

    def __init__(self, boot: Callable[[], object]):
        self._boot = boot
        self.kernel = boot()
        self.boots = 1                      # bumped by reset: part of the view cache key
        self.serial = 0                     # bumped by every command: cache key of log/allocations
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.internal_error: tuple[str, str] | None = None   # (line, traceback) of a core bug, for the session
        self._rows: dict = {}               # the allocations listing's rows per batch

    @property
    def next_id(self) -> int:
        return self.kernel.tasks.next_id

    # --- entry point ---------------------------------------------------------------------
    def run(self, line: str) -> Reply | None:
        """Apply one line; None for blank/comment lines.  Never raises for bad input.
        The line is never split: a line break inside it is refused (see split_lines)."""
        bad = _CONTROL_CHARS.search(line)
        text = line.split("#", 1)[0].strip(_BLANKS)
        if not text and not bad:
            return None
        self.serial += 1
        try:
            if len(line) > MAX_LINE:
                raise ControlError(E.EINVAL, f"line longer than {MAX_LINE} bytes")
            if bad:                         # in the comment too: nothing of such a line runs
                raise ControlError(E.EINVAL, f"control character {bad.group()!r} in the line")
            out = Reply(text, self.apply(parse(text)))
        except Exception as e:              # ControlError, MMError; anything else is a core bug: keep serving
            err = _as_control_error(e)
            out = Reply(text, err.reply, err.errno)
            if getattr(err, "internal", None):  # Session stops writes and logs it (never print here)
                self.internal_error = (text, err.internal)
        self.note(text, out.text)
        return out

    def apply(self, cmd: Command) -> str:
        if isinstance(cmd, Reset):
            kernel = self._boot()           # build first: a failed boot keeps the old state
            self.kernel = kernel
            self.boots += 1
            self._rows = {}
        reply = cmd.apply(self.kernel)
        if cmd.ticks:
            self.kernel.tick()
        return reply

    def note(self, text: str, reply: str) -> None:
        """One log entry; the shell also logs what it refuses before a line exists (not UTF-8,
        overlong).  Printable and short whatever the input was."""
        shown = text if len(text) <= LOGGED_CHARS else text[:LOGGED_CHARS] + f"... ({len(text)} chars)"
        shown = _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], shown)
        first = reply.split("\n", 1)[0]
        if len(first) > LOGGED_CHARS:
            first = first[:LOGGED_CHARS] + "..."
        self.log.append(f"{self.serial} {shown} -> {first}")

    # --- listings ------------------------------------------------------------------------
    def render_log(self) -> bytes:
        return "".join(l + "\n" for l in self.log).encode()

    def render_allocations(self) -> bytes:
        """The ``allocations`` file (procsim.views.allocations), its rows kept between renders."""
        return _allocations.render(self.kernel, self._rows)
