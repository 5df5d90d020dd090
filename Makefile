# procsim: the two commands are `make run` and `make test`; both set everything up first.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
APT_PKGS := fuse3 libfuse2 procps numactl dmidecode util-linux prometheus-node-exporter python3-venv trace-cmd hwloc-nox sysstat \
            chromium fonts-dejavu-core linux-source-6.1 gcc libc6-dev make xz-utils
MNT   ?= mnt
ORACLE_APT_PKGS := qemu-system-x86 busybox-static cpio e2fsprogs
# make bench measures reads beside LXCFS's (the peer that serves /proc/meminfo from FUSE)
BENCH_APT_PKGS := lxcfs
# The kernel's own slabinfo tool (tools/vm/slabinfo.c in 6.1), run by the tests against the
# simulated /sys/kernel/slab.
KSRC  := /usr/src/linux-source-6.1.tar.xz
SLABINFO := build/slabinfo

.PHONY: run test lint bench bench-deps setup deps venv clean oracle oracle-deps

setup: deps venv $(SLABINFO)

# System packages: only what is missing, only as root (CI and fresh machines run as root).
# Another apt-get (unattended-upgrades on a fresh VM) may hold the dpkg or the lists lock:
# wait for it, saying so, at most APT_LOCK_WAIT seconds (DPkg::Lock::Timeout covers the dpkg
# lock only; `apt-get update`'s lists lock is retried here).
APT_LOCK_WAIT ?= 600
APT_LOCK_POLL ?= 5
APT_LOCK_STEP := 10
# $(call apt_install,PACKAGES)
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing packages:$$missing (run as root or apt-get install them)"; exit 1; fi; \
	  deadline=$$(( $$(date +%s) + $(APT_LOCK_WAIT) )); told=; \
	  aptw() { \
	    while ! out=$$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_STEP) "$$@" 2>&1); do \
	      case "$$out" in *"Could not get lock"*|*"Unable to lock"*|*"Unable to acquire the dpkg"*) ;; \
	        *) printf '%s\n' "$$out" >&2; return 1;; esac; \
	      if [ "$$(date +%s)" -ge "$$deadline" ]; then printf '%s\n' "$$out" >&2; \
	        echo "gave up after $(APT_LOCK_WAIT) s waiting for the apt lock (APT_LOCK_WAIT=seconds waits longer)" >&2; return 1; fi; \
	      [ -n "$$told" ] || echo "waiting for the apt lock, at most $(APT_LOCK_WAIT) s: $$(printf '%s\n' "$$out" | grep -m1 -i lock)"; \
	      told=1; sleep $(APT_LOCK_POLL); \
	    done; }; \
	  echo "apt-get install$$missing"; \
	  aptw update -qq && aptw install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_PKGS))

# The oracle boots Debian's 6.1 kernel in qemu (oracle/run.py fetches the kernel package).
oracle-deps:
	$(call apt_install,$(ORACLE_APT_PKGS))

bench-deps:
	$(call apt_install,$(BENCH_APT_PKGS))

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

$(SLABINFO): | deps
	@mkdir -p build/src
	tar -xJf $(KSRC) -C build/src --strip-components=1 linux-source-6.1/tools/vm/slabinfo.c
	gcc -O2 -Wall -o $@ build/src/tools/vm/slabinfo.c

run: setup
	@mkdir -p $(MNT)
	$(VENV)/bin/procsim mount --foreground --banner $(MNT)

# ruff with the project's configuration (pyproject.toml: F and B), over the whole tree
lint: venv
	$(VENV)/bin/ruff check .

# pytest-xdist: one worker per CPU, each test module (or state-machine class) on one worker,
# so module-scoped boots are shared and the long property tests run side by side
PYTEST_ARGS ?= -n auto --dist loadscope

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup bench-deps
	$(PY) benchmarks/run.py

# Boot the machines of oracle/machines in qemu (captures cached in .oracle-cache/) and print
# how procsim's files differ from the real kernel's; then the pressure guest (oracle/pressure:
# a virtio disk, dd, a hog until the OOM kill) and its replay in procsim.  ORACLE_ARGS: machine
# names or `pressure`, --boot, -v.
oracle: setup oracle-deps
	$(PY) oracle/run.py $(ORACLE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .oracle-cache
