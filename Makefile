# genode-migrate: set-up, component ROMs, tests, demo.
#
# `make test` and `make demo` do all set-up on a fresh Debian 12 machine (as root):
# the virtualenv and its packages, the ARM cross compiler, the component ROMs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# ---- Python virtualenv -------------------------------------------------------------
PYTHON     ?= python3
VENV       := .venv
VENV_PY    := $(VENV)/bin/python
# Touched after a successful `pip install -e '.[dev]'`; re-install when pyproject.toml changes.
VENV_STAMP := $(VENV)/.genode-migrate-installed

# ---- apt (root, or sudo when not root) ---------------------------------------------
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# ---- component ROMs: ARMv7 freestanding ELF files ----------------------------------
CROSS     ?= arm-linux-gnueabihf-
ARM_CC    := $(CROSS)gcc
EMU_C     := genode_cr/emu/c
LINK_LD   := $(EMU_C)/link.ld
BUILD_DIR := build
OBJ_DIR   := $(BUILD_DIR)/obj
ROM_DIR   := $(BUILD_DIR)/roms

ROM_CFLAGS  := -marm -march=armv7-a -mfloat-abi=soft -ffreestanding -nostdlib -static \
               -O2 -fno-pic -fno-stack-protector -Wall -Wextra -Werror -I $(EMU_C)/include
ROM_LDFLAGS := -T $(LINK_LD) -Wl,--build-id=none
ROM_LIBS    := -lgcc

RUNTIME_SRCS   := $(sort $(wildcard $(EMU_C)/runtime/*.S)) $(sort $(wildcard $(EMU_C)/runtime/*.c))
COMPONENT_SRCS := $(sort $(wildcard $(EMU_C)/components/*.c))
COMPONENTS     := $(basename $(notdir $(COMPONENT_SRCS)))
# build/obj/<path below genode_cr/emu/c>/<file>.o, e.g. build/obj/runtime/crt0.S.o
RUNTIME_OBJS   := $(patsubst $(EMU_C)/%,$(OBJ_DIR)/%.o,$(RUNTIME_SRCS))
COMPONENT_OBJS := $(patsubst $(EMU_C)/%,$(OBJ_DIR)/%.o,$(COMPONENT_SRCS))
ROMS           := $(addprefix $(ROM_DIR)/,$(COMPONENTS))

# Absolute ROM directory, exported to the tests, the demo and the benchmarks.
export GENODE_CR_ROM_DIR := $(abspath $(ROM_DIR))

PYTEST_ARGS ?=

# ---- QEMU board image (deploy/qemu): kernel + initramfs in a cache outside git ------
QEMU_PACKAGES := qemu-system-x86 busybox-static cpio

.PHONY: help venv toolchain roms proto qemu-packages qemu-image test demo demo-board bench \
        clean distclean

help:
	@echo "make demo       a lab of emulated boards, a live move with the migrate CLI"
	@echo "make demo-board the board layer alone: checkpoint to a file, restore (genode-cr)"
	@echo "make test       the whole test suite (PYTEST_ARGS='...' passes options to pytest)"
	@echo "make venv       create $(VENV) and install the project with its dev extra"
	@echo "make toolchain  install the ARM cross compiler when missing (apt)"
	@echo "make roms       build the component ROMs into $(ROM_DIR)/"
	@echo "make qemu-image the QEMU board image (deploy/qemu; installs QEMU when missing)"
	@echo "make proto      regenerate Python code from proto/"
	@echo "make bench      run every bench/*.py"
	@echo "make clean      remove $(BUILD_DIR)/ (distclean: also $(VENV))"

# ---- venv --------------------------------------------------------------------------
venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@if ! $(VENV_PY) -c 'import sys' 2>/dev/null; then \
	  if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	    $(APT_GET) update && $(APT_GET) install -y python3-venv; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  $(PYTHON) -m venv --clear $(VENV); \
	fi
	$(VENV_PY) -m pip install -e '.[dev]'
	touch $@

# ---- cross compiler ----------------------------------------------------------------
toolchain:
	@if ! command -v $(ARM_CC) >/dev/null 2>&1; then \
	  echo "$(ARM_CC) missing: installing gcc-arm-linux-gnueabihf"; \
	  $(APT_GET) update && $(APT_GET) install -y gcc-arm-linux-gnueabihf; \
	fi

# ---- component ROMs ----------------------------------------------------------------
# ROMs whose component source is gone are removed, so build/roms/ lists exactly the components.
STALE_ROMS := $(filter-out $(ROMS),$(wildcard $(ROM_DIR)/*))

roms: $(ROMS)
	$(if $(STALE_ROMS),rm -f $(STALE_ROMS))

# Objects also depend on the Makefile (flags) and, via -MMD, on every header they include.
# The toolchain is an order-only prerequisite: checked, never a reason to rebuild.
$(OBJ_DIR)/%.c.o: $(EMU_C)/%.c Makefile | toolchain
	@mkdir -p $(@D)
	$(ARM_CC) $(ROM_CFLAGS) -MMD -MP -c -o $@ $<

$(OBJ_DIR)/%.S.o: $(EMU_C)/%.S Makefile | toolchain
	@mkdir -p $(@D)
	$(ARM_CC) $(ROM_CFLAGS) -MMD -MP -c -o $@ $<

# Runtime objects first (crt0 etc.), then the component, then libgcc.
$(ROMS): $(ROM_DIR)/%: $(RUNTIME_OBJS) $(OBJ_DIR)/components/%.c.o $(LINK_LD) | toolchain
	@mkdir -p $(@D)
	$(ARM_CC) $(ROM_CFLAGS) $(ROM_LDFLAGS) -o $@ $(RUNTIME_OBJS) $(OBJ_DIR)/components/$*.c.o $(ROM_LIBS)

-include $(RUNTIME_OBJS:.o=.d) $(COMPONENT_OBJS:.o=.d)

# ---- QEMU board image --------------------------------------------------------------
# Installs what the image and the system tests need when missing. The kernel is
# not installed: build_image.py takes it with `apt-get download`, which needs the
# package lists (empty on a fresh machine until `apt-get update`).
qemu-packages:
	@if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || [ ! -x /bin/busybox ] \
	    || ! command -v cpio >/dev/null 2>&1; then \
	  echo "installing $(QEMU_PACKAGES)"; \
	  $(APT_GET) update && $(APT_GET) install -y --no-install-recommends $(QEMU_PACKAGES); \
	elif ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then \
	  $(APT_GET) update; \
	fi

# Quick when nothing changed: the script compares a hash of its inputs with its stamp.
qemu-image: qemu-packages venv
	$(VENV_PY) deploy/qemu/build_image.py

# ---- protobuf / gRPC code ----------------------------------------------------------
proto: venv
	$(VENV_PY) scripts/gen_proto.py

# ---- tests, demo, benchmarks -------------------------------------------------------
# The system tests (tests/system) fail instead of skipping when QEMU is not there.
test: export MIGRATE_REQUIRE_QEMU := 1
test: venv toolchain roms qemu-image
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

demo: venv toolchain roms
	$(VENV_PY) -m migrate.demo

# The board layer alone: a move by hand, checkpoint file and restore (genode-cr).
demo-board: venv toolchain roms
	$(VENV_PY) -m genode_cr.demo

bench: venv toolchain roms
	@shopt -s nullglob; benches=(bench/*.py); \
	if [ $${#benches[@]} -eq 0 ]; then echo "no bench/*.py"; exit 0; fi; \
	for b in "$${benches[@]}"; do \
	  echo "== $$b"; \
	  $(VENV_PY) "$$b"; \
	done

# ---- cleaning ----------------------------------------------------------------------
clean:
	rm -rf $(BUILD_DIR) .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
