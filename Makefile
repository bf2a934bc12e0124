# Green Threads from Scratch: the top-level entry points.
#
#   make demo            the guided tour: every phase's demo, in order
#   make test            every phase's tests + the cross-phase checks; ends with "N passed, N failed"
#                        (when something failed, make adds its own error line after it)
#   make test-phaseN     one phase's tests (e.g. make test-phase1)
#   make demo-phaseN     one phase's demo
#   make bench           every phase's benchmarks    (bench-phaseN: one phase)
#   make asan            every phase's tests under AddressSanitizer + UBSan (asan-phaseN: one phase)
#   make docs            Doxygen + Graphviz, one site per phase, into build/docs/
#   make diff-phaseN     what phase N adds to phase N-1, the runtime (include/, src/) first and the
#                        walkthrough last (build outputs excluded; STAT=1: per-file counts)
#   make changes-tables  rewrite the "What changed" table of every walkthrough from its diff
#   make trace-phaseN    run phase N's demo with GT_TRACE and draw the timeline (from phase 2),
#                        into phaseN-*/build/trace/; the repository stays as it was
#   make trace-picture-phaseN   the same, then redraw the picture the walkthrough shows
#                        (phaseN-*/diagrams/trace_<demo>.png, committed)
#   make check           the snapshot-consistency checks in tests/
#   make deps            install everything the project can use (Debian packages)
#   make clean           remove every build folder
#   CXX=clang++          with any of them: build with Clang instead of GCC (into each phase's build/clang)
#
# Phases are discovered: any folder named phase<N>-<topic> is one.

PHASES  := $(sort $(wildcard phase[0-9]-*))
NUMBERS := $(patsubst phase%,%,$(foreach p,$(PHASES),$(firstword $(subst -, ,$(p)))))
phase    = $(wildcard phase$(1)-*)
RESULTS := $(CURDIR)/build/results.txt
MAKEFLAGS += --no-print-directory
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all demo test bench asan docs check check-into deps clean diagrams trace \
        $(addprefix test-phase,$(NUMBERS)) $(addprefix demo-phase,$(NUMBERS)) \
        $(addprefix bench-phase,$(NUMBERS)) $(addprefix asan-phase,$(NUMBERS)) \
        $(addprefix diff-phase,$(NUMBERS)) $(addprefix trace-phase,$(NUMBERS)) \
        $(addprefix trace-picture-phase,$(NUMBERS)) changes-tables

all:
	@tools/deps.sh build
	@for p in $(PHASES); do $(MAKE) -j$(JOBS) -C $$p all || exit 1; done

deps:
	@tools/deps.sh all

demo:
	@tools/deps.sh demo
	@for n in $(NUMBERS); do \
	  p=$$(ls -d phase$$n-*); \
	  $(MAKE) -s -j$(JOBS) -C $$p examples >/dev/null || exit 1; \
	  echo "=== Phase $$n: $$p ==="; \
	  $(MAKE) -s -C $$p demo || exit 1; \
	done

$(addprefix demo-phase,$(NUMBERS)): demo-phase%:
	@tools/deps.sh demo
	@$(MAKE) -s -j$(JOBS) -C $(call phase,$*) examples >/dev/null
	@$(MAKE) -s -C $(call phase,$*) demo

# Each phase's tests, then the cross-phase checks; one summary line at the end.
test:
	@tools/deps.sh test
	@mkdir -p build && rm -f $(RESULTS)
	@for p in $(PHASES); do \
	  $(MAKE) -j$(JOBS) -C $$p tests >build/$$p-build.log 2>&1 \
	    || { cat build/$$p-build.log; echo "FAIL $$p: build" >>$(RESULTS); continue; }; \
	  $(MAKE) -C $$p test RESULTS=$(RESULTS) || true; \
	done
	@$(MAKE) check-into RESULTS=$(RESULTS) || true
	@python3 common/run_tests.py --summarize $(RESULTS)

$(addprefix test-phase,$(NUMBERS)): test-phase%:
	@tools/deps.sh test
	@$(MAKE) -j$(JOBS) -C $(call phase,$*) tests >/dev/null
	@$(MAKE) -C $(call phase,$*) test

asan:
	@tools/deps.sh test
	@mkdir -p build && rm -f build/asan-results.txt
	@for p in $(PHASES); do \
	  $(MAKE) -j$(JOBS) -C $$p SANITIZE=1 tests >build/$$p-asan-build.log 2>&1 \
	    || { cat build/$$p-asan-build.log; echo "FAIL $$p: asan build" >>build/asan-results.txt; continue; }; \
	  $(MAKE) -C $$p SANITIZE=1 test RESULTS=$(CURDIR)/build/asan-results.txt || true; \
	done
	@python3 common/run_tests.py --summarize build/asan-results.txt

$(addprefix asan-phase,$(NUMBERS)): asan-phase%:
	@tools/deps.sh test
	@$(MAKE) -j$(JOBS) -C $(call phase,$*) asan

bench:
	@tools/deps.sh bench
	@for p in $(PHASES); do $(MAKE) -j$(JOBS) -C $$p benches >/dev/null && $(MAKE) -C $$p bench || exit 1; done

$(addprefix bench-phase,$(NUMBERS)): bench-phase%:
	@tools/deps.sh bench
	@$(MAKE) -j$(JOBS) -C $(call phase,$*) benches >/dev/null
	@$(MAKE) -C $(call phase,$*) bench

# diff-phaseN: the lesson of phase N, as a unified diff against phase N-1.
$(addprefix diff-phase,$(NUMBERS)): diff-phase%:
	@tools/phase_diff.sh $* $(if $(STAT),--stat)

# The "What changed" tables of the walkthroughs, from the diffs (make check
# fails when they drift: tests/check_tables.sh).
changes-tables:
	@python3 tools/changes_table.py

docs:
	@tools/deps.sh docs
	@tools/docs.sh $(PHASES)

diagrams:
	@for p in $(PHASES); do $(MAKE) -C $$p diagrams || exit 1; done

# trace-phaseN: run phase N's traced demo with GT_TRACE and draw its timeline
# (into the phase's build/trace/); trace-picture-phaseN also redraws the
# committed picture, diagrams/trace_<demo>.png.
$(addprefix trace-phase,$(NUMBERS)): trace-phase%:
	@tools/deps.sh trace
	@$(MAKE) -j$(JOBS) -C $(call phase,$*) examples >/dev/null
	@$(MAKE) -C $(call phase,$*) trace

$(addprefix trace-picture-phase,$(NUMBERS)): trace-picture-phase%:
	@tools/deps.sh trace
	@$(MAKE) -j$(JOBS) -C $(call phase,$*) examples >/dev/null
	@$(MAKE) -C $(call phase,$*) trace-picture

# The cross-phase checks: every tests/check_*.sh, each one PASS/FAIL line.
CHECKS := $(sort $(wildcard tests/check_*.sh))
check:
	@tools/deps.sh test
	@mkdir -p build && rm -f build/check-results.txt
	@$(MAKE) check-into RESULTS=$(CURDIR)/build/check-results.txt || true
	@python3 common/run_tests.py --summarize build/check-results.txt

check-into:
	@status=0; for c in $(CHECKS); do \
	  python3 common/run_tests.py --check $$(basename $$c .sh) --results $(RESULTS) -- $$c || status=1; \
	done; exit $$status

clean:
	@for p in $(PHASES); do $(MAKE) -C $$p clean; done
	rm -rf build
