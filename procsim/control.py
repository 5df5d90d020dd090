"""The control file: a tiny command language that changes the simulated kernel.

One command per line (``#`` comments and blank lines are ignored)::

    alloc_pages ORDER [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME] [use=USE]
    free_pages ID | free_pages tag=NAME
    kmem_cache_create NAME SIZE [align=A] [flags=SLAB_HWCACHE_ALIGN|...]
    kmem_cache_alloc NAME [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME]
    kmem_cache_free NAME ID | kmem_cache_free NAME tag=NAME
    kmem_cache_shrink NAME
    kmem_cache_destroy NAME
    kmalloc SIZE [gfp=FLAGS] [node=N] [cpu=C] [count=K] [tag=NAME]
    kfree ID | kfree tag=NAME
    drop_caches | reset | help

An ID may also be a range ``A-B`` (as printed in the ``ok A-B`` reply).
``use=`` says what the pages are for (anon, pagecache, kernel_stack, page_tables), so meminfo's
AnonPages, Cached, KernelStack and PageTables follow them.

Every line is atomic: it either succeeds completely or leaves the allocation state as it
was (a ``count=K`` that runs out of memory half way frees what it got, in reverse order).
Errors carry the kernel's errno: EINVAL (malformed, control characters, non-ASCII numbers),
ENOMEM, ENOENT (unknown cache, ID or tag), EBUSY, EEXIST, EPERM (SLUB's own caches).

Allocations are stored per command, not per object: a group holds its first ID, its
kind and an ``array('Q')`` of pfns / object addresses, so ``kmalloc 64 count=1000000``
costs 8 bytes per object here.  (Page allocations also keep the kernel's ``Page`` handle,
because ``Kernel.free_pages`` takes one.)

Limits, so that a runaway script cannot exhaust the daemon's memory:
``MAX_LINE`` bytes per line (an overlong line fails its write; the next write starts afresh),
``MAX_COMMANDS`` lines per write(), ``MAX_COUNT`` per command, ``LOG_LINES`` entries of at
most ``LOGGED_CHARS`` characters in the log ring, ``MAX_LISTED`` lines in ``allocations``.
"""
from __future__ import annotations

import errno as E
import re
import traceback
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

MAX_LINE = 4096
MAX_COMMANDS = 10000
MAX_COUNT = 1 << 22
LOG_LINES = 1000
MAX_LISTED = 100000
from procsim.mm.page_types import MAX_PAGE_ORDER as MAX_ORDER, PAGE_SIZE, PAGE_OFFSET
PAGE_USES = ("anon", "pagecache", "kernel_stack", "page_tables")   # alloc_pages use=
DEAD = (1 << 64) - 1            # marks a freed slot in a group's address array

_TAG = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
_ID = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
LOGGED_CHARS = 200             # a logged line is cut here: the log ring stays small

# `help` replies with the synopsis of the module docstring, so the two cannot drift apart.
HELP = "\n".join(line.strip() for line in (__doc__ or "::\n\n").split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines())


class ControlError(Exception):
    """A command that failed: ``errno`` plus a message for the ``error ENAME: msg`` reply."""

    def __init__(self, errno: int, message: str):
        super().__init__(message)
        self.errno, self.message = errno, message

    @property
    def reply(self) -> str:
        return f"error {E.errorcode.get(self.errno, str(self.errno))}: {self.message}"


def _parse_gfp(text: str) -> int:
    from procsim.mm.gfp import parse_gfp
    return parse_gfp(text)


def _parse_slab_flags(text: str) -> int:
    from procsim.mm.slub import parse_slab_flags
    return parse_slab_flags(text)


def _as_control_error(e: Exception) -> ControlError:
    """MMError (and anything else with an int errno) -> ControlError; other exceptions are bugs."""
    code = getattr(e, "errno", None)
    if isinstance(code, int) and code > 0:
        return ControlError(code, getattr(e, "message", None) or str(e))
    traceback.print_exc()
    return ControlError(E.EIO, f"internal error: {type(e).__name__}: {e}")


@dataclass
class Group:
    """The allocations one command made: IDs first .. first+len(addrs)-1."""
    first: int
    kind: str                   # "pages" | "slab" | "kmalloc"
    what: object                # order (pages), cache name (slab), requested size (kmalloc)
    tag: str | None
    addrs: array                # pfn (pages) or object address; DEAD once freed
    pages: list | None = None   # the kernel's Page handles (pages only)
    live: int = 0

    @property
    def last(self) -> int:
        return self.first + len(self.addrs) - 1


@dataclass
class Reply:
    line: str
    text: str
    errno: int = 0


@dataclass
class _Cmd:
    name: str
    args: list[str]
    opts: dict[str, str] = field(default_factory=dict)


class Control:
    """Interprets control lines against a Kernel and remembers what they allocated.

    ``boot`` builds a fresh Kernel (used at start and by ``reset``).  Not thread safe:
    the session holds its lock around every call.
    """

    def __init__(self, boot: Callable[[], object]):
        self._boot = boot
        self.kernel = boot()
        self.boots = 1                      # bumped by reset: part of the view cache key
        self.serial = 0                     # bumped by every command: cache key of log/allocations
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self._clear()

    def _clear(self) -> None:
        self.groups: list[Group] = []       # ordered by first ID
        self._firsts: list[int] = []
        self.next_id = 1
        self._rows: dict[int, tuple[int, list[str]]] = {}   # allocations rows per group: first -> (live, rows)

    # --- entry point ---------------------------------------------------------------------
    def run(self, line: str) -> Reply | None:
        """Apply one line; None for blank/comment lines.  Never raises for bad input."""
        text = line.split("#", 1)[0].strip()
        if not text:
            return None
        self.serial += 1
        try:
            if len(line) > MAX_LINE:
                raise ControlError(E.EINVAL, f"line longer than {MAX_LINE} bytes")
            bad = _CONTROL_CHARS.search(text)
            if bad:
                raise ControlError(E.EINVAL, f"control character {bad.group()!r} in the line")
            out = Reply(text, self._dispatch(self._parse(text)))
        except ControlError as e:
            out = Reply(text, e.reply, e.errno)
        except Exception as e:              # a bug in the core: report it, keep serving
            err = _as_control_error(e)
            out = Reply(text, err.reply, err.errno)
        self.note(text, out.text)
        return out

    def note(self, text: str, reply: str) -> None:
        """One log entry; the shell also logs what it refuses before a line exists (not UTF-8,
        overlong).  Printable and short whatever the input was."""
        shown = text if len(text) <= LOGGED_CHARS else text[:LOGGED_CHARS] + f"... ({len(text)} chars)"
        shown = _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], shown)
        self.log.append(f"{self.serial} {shown} -> {reply.splitlines()[0]}")

    # --- parsing -------------------------------------------------------------------------
    _SPEC = {   # command: (positional names, allowed options)
        "alloc_pages": (("ORDER",), {"gfp", "node", "cpu", "count", "tag", "use"}),
        "free_pages": (("ID",), {"tag"}),
        "kmem_cache_create": (("NAME", "SIZE"), {"align", "flags"}),
        "kmem_cache_alloc": (("NAME",), {"gfp", "node", "cpu", "count", "tag"}),
        "kmem_cache_free": (("NAME", "ID"), {"tag"}),
        "kmem_cache_shrink": (("NAME",), set()),
        "kmem_cache_destroy": (("NAME",), set()),
        "kmalloc": (("SIZE",), {"gfp", "node", "cpu", "count", "tag"}),
        "kfree": (("ID",), {"tag"}),
        "drop_caches": ((), set()),
        "reset": ((), set()),
        "help": ((), set()),
    }

    def _parse(self, text: str) -> _Cmd:
        name, *words = text.split()
        if name not in self._SPEC:
            raise ControlError(E.EINVAL, f"unknown command {name!r} (try: help)")
        positional, allowed = self._SPEC[name]
        cmd = _Cmd(name, [])
        for w in words:
            key, eq, value = w.partition("=")
            if eq:
                if key not in allowed:
                    raise ControlError(E.EINVAL, f"{name}: unknown option {key!r}"
                                       + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""))
                if key in cmd.opts:
                    raise ControlError(E.EINVAL, f"{name}: {key}= given twice")
                if not value:
                    raise ControlError(E.EINVAL, f"{name}: {key}= needs a value")
                cmd.opts[key] = value
            else:
                cmd.args.append(w)
        need = list(positional)
        if "ID" in need and "tag" in cmd.opts:      # `kfree tag=x` instead of `kfree ID`
            need.remove("ID")
        if len(cmd.args) != len(need):
            usage = next(l for l in HELP.splitlines() if name in l.replace("|", " ").split())
            raise ControlError(E.EINVAL, f"{name}: expected {' '.join(need) or 'no arguments'} (usage: {usage})")
        return cmd

    @staticmethod
    def _int(value: str, what: str, lo: int, hi: int) -> int:
        try:
            if not value.isascii():             # int() would take other scripts' digits
                raise ValueError
            v = int(value, 0)
        except ValueError:
            raise ControlError(E.EINVAL, f"{what} must be a number, not {value!r}") from None
        if not lo <= v <= hi:
            raise ControlError(E.EINVAL, f"{what} must be in {lo}..{hi}, not {v}")
        return v

    @staticmethod
    def _size(value: str, what: str) -> int:
        from procsim.machine import parse_size
        try:
            if not value.isascii():
                raise ValueError(f"not a size: {value!r}")
            v = parse_size(value)
        except ValueError as e:
            raise ControlError(E.EINVAL, f"{what}: {e}") from None
        if v < 1 or v > 1 << 30:
            raise ControlError(E.EINVAL, f"{what} must be 1..1GiB bytes, not {v}")
        return v

    def _where(self, cmd: _Cmd) -> tuple[int, dict]:
        """gfp/node/cpu options -> keyword arguments for the core."""
        k = self.kernel
        out = {}
        try:
            gfp = _parse_gfp(cmd.opts.get("gfp", "GFP_KERNEL"))
        except Exception as e:
            raise _as_control_error(e) from None
        if "node" in cmd.opts:
            out["node"] = self._int(cmd.opts["node"], "node", 0, len(k.nodes) - 1)
        if "cpu" in cmd.opts:
            out["cpu"] = self._int(cmd.opts["cpu"], "cpu", 0, k.nr_cpu_ids - 1)
        return gfp, out

    def _count_tag(self, cmd: _Cmd) -> tuple[int, str | None]:
        count = self._int(cmd.opts.get("count", "1"), "count", 1, MAX_COUNT)
        tag = cmd.opts.get("tag")
        if tag is not None and not _TAG.fullmatch(tag):
            raise ControlError(E.EINVAL, f"bad tag {tag!r} (letters, digits, _.:+-, at most 64)")
        return count, tag

    def _cache(self, name: str, objects: bool = False):
        """The cache called name; with objects=True, one a script may allocate from and free to:
        not kmem_cache / kmem_cache_node, whose objects are SLUB's own cache structures."""
        slab = self.kernel.slab
        c = slab.find(name)
        if c is None:
            raise ControlError(E.ENOENT, f"no kmem_cache named {name!r}")
        if objects and c in (getattr(slab, "kmem_cache", None), getattr(slab, "kmem_cache_node", None)):
            raise ControlError(E.EPERM, f"{name} holds SLUB's own structures; kmem_cache_create makes them")
        return c

    # --- commands ------------------------------------------------------------------------
    def _dispatch(self, cmd: _Cmd) -> str:
        return getattr(self, "_do_" + cmd.name)(cmd)

    def _allocate(self, kind, what, tag, count, alloc, free, keep_pages=False) -> str:
        """Run ``alloc()`` count times; on any failure undo with ``free()`` and re-raise."""
        addrs = array("Q")
        pages = [] if keep_pages else None
        try:
            for _ in range(count):
                got = alloc()
                if keep_pages:
                    pages.append(got)
                    addrs.append(got.pfn)
                else:
                    addrs.append(got)
        except Exception as e:
            for item in reversed(pages if keep_pages else addrs):
                free(item)
            err = _as_control_error(e)
            if count > 1:
                err.message += f" (at allocation {len(addrs) + 1} of {count}; the {len(addrs)} made were freed)"
            raise err from None
        g = Group(self.next_id, kind, what, tag, addrs, pages, live=count)
        self.groups.append(g)
        self._firsts.append(g.first)
        self.next_id += count
        return f"ok {g.first}" if count == 1 else f"ok {g.first}-{g.last}"

    def _do_alloc_pages(self, cmd):
        order = self._int(cmd.args[0], "order", 0, MAX_ORDER)
        gfp, where = self._where(cmd)
        count, tag = self._count_tag(cmd)
        if "use" in cmd.opts:
            if cmd.opts["use"] not in PAGE_USES:
                raise ControlError(E.EINVAL, f"alloc_pages: use= must be one of {'|'.join(PAGE_USES)},"
                                             f" not {cmd.opts['use']!r}")
            where["use"] = cmd.opts["use"]
        k = self.kernel
        return self._allocate("pages", order, tag, count,
                              lambda: k.alloc_pages(order, gfp, **where), k.free_pages, keep_pages=True)

    def _do_kmem_cache_alloc(self, cmd):
        cache = self._cache(cmd.args[0], objects=True)
        gfp, where = self._where(cmd)
        count, tag = self._count_tag(cmd)
        slab = self.kernel.slab
        return self._allocate("slab", cache.name, tag, count,
                              lambda: slab.kmem_cache_alloc(cache, gfp, **where),
                              lambda a: slab.kmem_cache_free(cache, a))

    def _do_kmalloc(self, cmd):
        size = self._size(cmd.args[0], "size")
        gfp, where = self._where(cmd)
        count, tag = self._count_tag(cmd)
        slab = self.kernel.slab
        return self._allocate("kmalloc", size, tag, count,
                              lambda: slab.kmalloc(size, gfp, **where), slab.kfree)

    def _select(self, cmd: _Cmd, kind: str, cache: str | None = None) -> list[tuple[Group, int]]:
        """The live (group, index) pairs a free command names; ENOENT/EINVAL before any change."""
        if "tag" in cmd.opts:
            if cmd.args[1 if cache else 0:]:
                raise ControlError(E.EINVAL, f"{cmd.name}: give an ID or tag=, not both")
            tag = cmd.opts["tag"]
            sel = [(g, i) for g in self.groups if g.tag == tag and g.kind == kind
                   and (cache is None or g.what == cache)
                   for i in range(len(g.addrs)) if g.addrs[i] != DEAD]
            if not sel:
                raise ControlError(E.ENOENT, f"no live {kind} allocations tagged {tag!r}"
                                   + (f" in {cache}" if cache else ""))
            return sel
        m = _ID.fullmatch(cmd.args[-1])
        if not m:
            raise ControlError(E.EINVAL, f"{cmd.name}: bad ID {cmd.args[-1]!r} (a number or A-B)")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if hi < lo or hi - lo >= MAX_COUNT:
            raise ControlError(E.EINVAL, f"{cmd.name}: bad ID range {cmd.args[-1]}")
        sel = []
        for id_ in range(lo, hi + 1):
            j = bisect_right(self._firsts, id_) - 1
            g = self.groups[j] if j >= 0 else None
            if g is None or id_ > g.last or g.addrs[id_ - g.first] == DEAD:
                raise ControlError(E.ENOENT, f"no live allocation with ID {id_}")
            if g.kind != kind or (cache is not None and g.what != cache):
                owner = f"{g.kind} of {g.what}" if g.kind == "slab" else g.kind
                raise ControlError(E.EINVAL, f"ID {id_} is a {owner} allocation, not {cache or kind}")
            sel.append((g, id_ - g.first))
        return sel

    def _release(self, sel, free) -> str:
        for g, i in sel:
            free(g.pages[i] if g.pages is not None else g.addrs[i])
            g.addrs[i] = DEAD
            if g.pages is not None:
                g.pages[i] = None
            g.live -= 1
        if any(g.live == 0 for g, _ in sel):
            self.groups = [g for g in self.groups if g.live]
            self._firsts = [g.first for g in self.groups]
        return f"ok freed {len(sel)}"

    def _do_free_pages(self, cmd):
        return self._release(self._select(cmd, "pages"), self.kernel.free_pages)

    def _do_kfree(self, cmd):
        return self._release(self._select(cmd, "kmalloc"), self.kernel.slab.kfree)

    def _do_kmem_cache_free(self, cmd):
        cache = self._cache(cmd.args[0], objects=True)
        slab = self.kernel.slab
        return self._release(self._select(cmd, "slab", cache.name),
                             lambda a: slab.kmem_cache_free(cache, a))

    def _do_kmem_cache_create(self, cmd):
        name = cmd.args[0]
        if not re.fullmatch(r"[^\s:#]{1,64}", name):
            raise ControlError(E.EINVAL, f"bad cache name {name!r}")
        size = self._size(cmd.args[1], "size")
        align = self._int(cmd.opts.get("align", "0"), "align", 0, 1 << 20)
        flags = 0
        if "flags" in cmd.opts:
            try:
                flags = _parse_slab_flags(cmd.opts["flags"])
            except Exception as e:
                raise _as_control_error(e) from None
        try:
            c = self.kernel.slab.kmem_cache_create(name, size, align=align, flags=flags)
        except Exception as e:
            raise _as_control_error(e) from None
        return f"ok {c.name} objsize={c.size} objperslab={c.objects} pagesperslab={1 << c.order}"

    def _do_kmem_cache_shrink(self, cmd):
        cache = self._cache(cmd.args[0])
        return f"ok freed {self.kernel.slab.kmem_cache_shrink(cache)} pages"

    def _do_kmem_cache_destroy(self, cmd):
        cache = self._cache(cmd.args[0])
        try:
            self.kernel.slab.kmem_cache_destroy(cache)
        except Exception as e:
            raise _as_control_error(e) from None
        return "ok"

    def _do_drop_caches(self, cmd):
        return f"ok freed {self.kernel.drop_slab()} pages"

    def _do_reset(self, cmd):
        kernel = self._boot()                 # build first: a failed boot keeps the old state
        self.kernel = kernel
        self.boots += 1
        self._clear()
        return "ok"

    def _do_help(self, cmd):
        return "ok\n" + "\n".join("  " + l for l in HELP.splitlines())

    # --- listings ------------------------------------------------------------------------
    def render_log(self) -> bytes:
        return "".join(l + "\n" for l in self.log).encode()

    def render_allocations(self) -> bytes:
        """One line per live allocation (the first MAX_LISTED of them).

        It is rendered under the session lock, so rows are kept per group and redone only
        when the group lost members (a live object's slab, zone and pfn never change): a
        100000-line listing is not rebuilt after every command."""
        zone_of = self._zone_finder()
        out = [f"{'ID':>8} {'TAG':<12} {'KIND':<8} {'CACHE/ORDER':<20} {'NODE':>4} {'ZONE':<8} {'PFN':>10} {'BYTES':>8}"]
        listed = total = 0
        kept = {}
        for g in self.groups:
            total += g.live
            if listed >= MAX_LISTED:
                continue
            hit = self._rows.get(g.first)
            if hit is None or hit[0] != g.live:
                hit = (g.live, self._group_rows(g, zone_of))
            kept[g.first] = hit
            rows = hit[1][:MAX_LISTED - listed]
            out.extend(rows)
            listed += len(rows)
        self._rows = kept
        if total > listed:
            out.append(f"# {total - listed} more live allocations not listed (at most {MAX_LISTED} lines)")
        return ("\n".join(out) + "\n").encode()

    def _zone_finder(self):
        zones = sorted((z.start_pfn, z.start_pfn + z.spanned, z) for z in self.kernel.zones if z.spanned)
        starts = [s for s, _, _ in zones]

        def zone_of(pfn):
            j = bisect_right(starts, pfn) - 1
            if j >= 0 and pfn < zones[j][1]:
                return zones[j][2]
            return None
        return zone_of

    def _group_rows(self, g: Group, zone_of) -> list[str]:
        """The rows of g's live members, at most MAX_LISTED."""
        slab = self.kernel.slab
        out = []
        for i, a in enumerate(g.addrs):
            if a == DEAD:
                continue
            if len(out) >= MAX_LISTED:
                break
            if g.kind == "pages":
                pfn, what, size = a, f"order {g.what}", PAGE_SIZE << g.what
            else:
                pfn = (a - PAGE_OFFSET) // PAGE_SIZE
                cache = slab.cache_of(a)
                if cache is not None:
                    what, size = cache.name, cache.size
                else:                       # a large kmalloc: compound pages
                    order = max(0, (g.what - 1).bit_length() - 12)
                    what, size = f"order {order}", PAGE_SIZE << order
            z = zone_of(pfn)
            out.append(f"{g.first + i:>8} {g.tag or '-':<12} {g.kind:<8} {what:<20} "
                       f"{z.node if z else '?':>4} {z.name if z else '?':<8} {pfn:>10} {size:>8}")
        return out
