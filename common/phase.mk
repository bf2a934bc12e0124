# Build rules shared by every phase. A phase's Makefile is one line,
#   include ../common/phase.mk
# so every phase builds, tests and benchmarks the same way, from its own
# sources only. Run from a phase folder (make -C phaseN-name <target>):
#
#   all        build/libgt.a, the examples, the tests and the benchmarks
#   lib        build/libgt.a only
#   test       run this phase's GoogleTest binaries (each under a hard timeout)
#   test-inherited FROM=../<earlier phase>
#              build the earlier phase's tests against this phase's library and run them
#   demo       run every example in examples/, in name order
#   bench      run the benchmarks; JSON results in build/bench/
#   asan       build everything into build/asan with AddressSanitizer +
#              UndefinedBehaviorSanitizer and run the tests there
#   diagrams   render diagrams/*.dot to diagrams/*.svg (committed renders, each
#              ending with its source's SHA-256)
#   trace      run a demo with GT_TRACE and draw its timeline, into
#              build/trace/ (the trace and trace_<demo>.png)
#   trace-picture  the same, then copy the picture over the committed
#              diagrams/trace_<demo>.png that the walkthrough shows
#   clean      remove build/
#
# Knobs: CXX (g++ or clang++), BUILD (output folder; default build/, or
# build/clang with Clang, plus /asan with SANITIZE=1), SANITIZE=1, OPT (optimisation flags),
# TEST_TIMEOUT (seconds per test binary), RESULTS (file to append PASS/FAIL
# lines to, for the top-level summary), BENCH_ARGS (extra benchmark flags),
# HAVE_BOOST_FIBER (1/0: benchmarks with/without their Boost peers; found
# from the installed libraries by default).
#
# A phase's Makefile may set, before the include line:
#   TEST_ENV            environment of its own test binaries (VAR=value ...)
#   INHERITED_TEST_ENV  environment of the earlier phase's tests in test-inherited
# and a phase may list, in tests/superseded.txt, tests of the earlier phase
# whose behaviour it deliberately changes (one Suite.Test per line, with a
# "#" comment saying what changed): test-inherited leaves those out, and the
# phase's own copy of each asserts the new behaviour.

COMMON       := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PHASE        := $(notdir $(CURDIR))
# Both of Debian's compilers build everything (make test CXX=clang++). A
# Clang build has a folder of its own, build/clang, as a sanitized one has
# (.../asan): make would otherwise find the other compiler's objects up to
# date and link and run those.
CXX_IS_CLANG := $(findstring clang,$(shell $(CXX) --version 2>/dev/null))
BUILD        ?= build$(if $(CXX_IS_CLANG),/clang)$(if $(SANITIZE),/asan)
OPT          ?= -O2
TEST_TIMEOUT ?= 120
ARCH         := $(shell uname -m)
PYTHON       ?= python3

SANITIZERS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_FLAGS  := $(if $(SANITIZE),$(SANITIZERS))
# GCC 12's flow analysis is confused by sanitizer instrumentation and warns
# "may be used uninitialized" inside libstdc++ (std::function in std::regex).
# Clang has no such warning and rejects the option.
SAN_CXXFLAGS := $(if $(SANITIZE),$(if $(CXX_IS_CLANG),,-Wno-maybe-uninitialized))
# Clang links the sanitizer runtime into the program itself by default: then
# ASan's allocator and its locks count as the program's own code, where a
# tick may switch threads. -shared-libsan keeps it a shared library, as GCC
# does (the walkthrough of preemption, on safe points).
ifneq ($(and $(SANITIZE),$(CXX_IS_CLANG)),)
  SAN_LDFLAGS := -shared-libsan -Wl,-rpath,$(shell $(CXX) -print-runtime-dir)
endif
# Under ASan, also put locals on fake stacks: exercises the fiber-switch annotations.
ASAN_ENV   := $(if $(SANITIZE),ASAN_OPTIONS=detect_stack_use_after_return=1:$(ASAN_OPTIONS))
# -fstack-clash-protection: a function whose frame is bigger than a page
# touches it page by page as it grows, so it cannot step over a thread's
# guard page (Debian's GCC and Clang leave it off by default; compile your
# own thread code with it too).
CXXFLAGS  += -std=c++20 -g -Wall -Wextra -Wpedantic -Werror -fstack-clash-protection $(SAN_FLAGS) $(SAN_CXXFLAGS)
CPPFLAGS  += -Iinclude -Isrc -MMD -MP
LDFLAGS   += $(SAN_FLAGS) $(SAN_LDFLAGS)
LDLIBS    += -pthread

# ---- the library --------------------------------------------------------
LIB_SRCS := $(wildcard src/*.cpp) $(wildcard src/arch/*_$(ARCH).S)
LIB_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB      := $(BUILD)/libgt.a
# The same library at -O0, for the -O0 test binaries: the runtime's own code
# must be correct at both levels too.
LIB_O0_OBJS := $(patsubst %,$(BUILD)/obj-O0/%.o,$(LIB_SRCS))
LIB_O0      := $(BUILD)/libgt-O0.a
# And a release build (-DNDEBUG: invariant checks compiled out), which the
# benchmarks link: what a production build of the runtime costs.
LIB_REL_OBJS := $(patsubst %,$(BUILD)/obj-release/%.o,$(LIB_SRCS))
LIB_REL      := $(BUILD)/libgt-release.a
# Every build of the library keeps a frame pointer in every function. A new
# thread starts with rbp = 0 (make_context), which ends the rbp chain that
# perf --call-graph=fp, profilers and hand-written unwinders follow, but only
# if each runtime frame between the trampoline and the thread's code (first
# of all thread_main) pushes rbp and points it at its frame: at -O1 and above
# GCC otherwise uses rbp as one more register, and the thread's code would
# find, say, the scheduler's address as its caller's frame.
# (The library's objects depend on this file, so that a build folder made
# before a change of these flags is rebuilt with them.)
$(LIB_OBJS) $(LIB_O0_OBJS) $(LIB_REL_OBJS): CXXFLAGS += -fno-omit-frame-pointer
$(LIB_OBJS) $(LIB_O0_OBJS) $(LIB_REL_OBJS): $(COMMON)/phase.mk

# ---- examples, tests, benchmarks ----------------------------------------
EXAMPLES      := $(patsubst examples/%.cpp,$(BUILD)/examples/%,$(wildcard examples/*.cpp))
TEST_MAINS    := $(wildcard tests/*_test.cpp)
TEST_HELPERS  := $(filter-out $(TEST_MAINS),$(wildcard tests/*.cpp)) $(wildcard tests/*_$(ARCH).S)
TEST_HELPER_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(TEST_HELPERS))
# A test helper named *_fp.cpp is built with frame pointers at every -O
# level, as the code of a program profiled with perf --call-graph=fp is
# (tests/frame_chain_fp.cpp). The pattern also covers test-inherited's copies.
%_fp.cpp.o: CXXFLAGS += -fno-omit-frame-pointer
# Every test is built twice: at $(OPT) and at -O0 (test and library), because
# ABI mistakes in a context switch (stack alignment, clobbered registers)
# show up differently.
TESTS         := $(patsubst tests/%.cpp,$(BUILD)/tests/%,$(TEST_MAINS)) \
                 $(patsubst tests/%.cpp,$(BUILD)/tests/%_O0,$(TEST_MAINS))
GTEST_LIBS    := -lgtest_main -lgtest
BENCH_SRCS    := $(wildcard bench/*.cpp)
BENCHES       := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRCS))
# Peers for the side-by-side benchmarks, used when their Debian packages
# (libboost-context-dev, libboost-fiber-dev: tools/deps.sh bench) are
# installed. Decided from what the link needs, the two libraries as the
# compiler finds them, not from the headers: libboost1.74-dev ships
# boost/fiber/*.hpp without the libraries (and the libraries' -dev packages
# bring the headers). -print-file-name prints the full path of a library it
# finds, else the bare name. Asked once, and only by a benchmark build;
# HAVE_BOOST_FIBER=0 or 1 on the command line decides instead.
found_lib         = $(filter /%,$(shell $(CXX) -print-file-name=$(1) 2>/dev/null))
boost_fiber_probe = $(if $(and $(call found_lib,libboost_fiber.so),$(call found_lib,libboost_context.so)),1,0)
HAVE_BOOST_FIBER ?= $(eval HAVE_BOOST_FIBER := $(boost_fiber_probe))$(HAVE_BOOST_FIBER)
BENCH_CPPFLAGS    = $(if $(filter 1,$(HAVE_BOOST_FIBER)),-DGT_HAVE_BOOST_FIBER=1)
BENCH_LIBS        = -lbenchmark $(if $(filter 1,$(HAVE_BOOST_FIBER)),-lboost_fiber -lboost_context)
# Said once per make that builds or runs the benchmarks without the peers.
boost_fiber_note  = $(if $(BENCHES),$(if $(filter 1,$(HAVE_BOOST_FIBER)),,@echo "note: Boost.Fiber's libraries are not installed \
  (tools/deps.sh bench): benchmarks built without their Boost peers"))

.PHONY: all lib examples tests benches test test-inherited demo bench asan diagrams trace trace-picture clean
.DEFAULT_GOAL := all
# Keep object files that pattern chains would otherwise delete as intermediates.
.SECONDARY:

all: lib examples tests benches
lib: $(LIB)
examples: $(EXAMPLES)
tests: $(TESTS)
benches: $(BENCHES)
	$(boost_fiber_note)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(LIB_O0): $(LIB_O0_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/obj-O0/%.cpp.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -O0 -c $< -o $@

$(BUILD)/obj-O0/%.S.o: %.S
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(SAN_FLAGS) -g -c $< -o $@

$(LIB_REL): $(LIB_REL_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/obj-release/%.cpp.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(OPT) -DNDEBUG -c $< -o $@

$(BUILD)/obj-release/%.S.o: %.S
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(SAN_FLAGS) -g -c $< -o $@

$(BUILD)/obj/%.cpp.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(OPT) -c $< -o $@

$(BUILD)/obj/%.S.o: %.S
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(SAN_FLAGS) -g -c $< -o $@

$(BUILD)/obj/%_O0.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -O0 -c $< -o $@

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.cpp.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%_O0: $(BUILD)/obj/tests/%_O0.o $(TEST_HELPER_OBJS) $(LIB_O0)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GTEST_LIBS) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.cpp.o $(TEST_HELPER_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GTEST_LIBS) $(LDLIBS) -o $@

# A benchmark is compiled again when the peers come or go: its object
# depends on a file holding HAVE_BOOST_FIBER, rewritten only when the value
# changes. The file is written while make reads the object's prerequisites
# (second expansion: only when a benchmark is built), not by a recipe: with
# .SECONDARY, make never runs the recipe of a missing file whose dependant
# exists. The empty rule lets make accept a file it found missing earlier.
BOOST_FIBER_STAMP := $(BUILD)/obj/bench/boost-fiber.txt
boost_fiber_stamp  = $(shell mkdir -p $(dir $(BOOST_FIBER_STAMP)) && \
  { [ "$$(cat $(BOOST_FIBER_STAMP) 2>/dev/null)" = "$(HAVE_BOOST_FIBER)" ] || \
    echo "$(HAVE_BOOST_FIBER)" >$(BOOST_FIBER_STAMP); } && echo $(BOOST_FIBER_STAMP))
$(BOOST_FIBER_STAMP): ;
.SECONDEXPANSION:
$(BUILD)/obj/bench/%.cpp.o: bench/%.cpp $$(boost_fiber_stamp)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(COMMON) $(BENCH_CPPFLAGS) $(CXXFLAGS) $(OPT) -DNDEBUG -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.cpp.o $(LIB_REL)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(BENCH_LIBS) $(LDLIBS) -o $@

test: $(TESTS)
	@$(ASAN_ENV) $(TEST_ENV) $(PYTHON) $(COMMON)/run_tests.py --label $(PHASE) --timeout $(TEST_TIMEOUT) \
	  $(if $(RESULTS),--results $(RESULTS)) $(TESTS)

# The tests of an earlier phase, compiled against this phase's headers and
# library: proof that this phase still does everything the earlier one did.
ifdef FROM
# FROM=../phase1-basic/ (as tab completion writes it) means FROM=../phase1-basic.
override FROM     := $(patsubst %/,%,$(FROM))
INHERITED_DIR     := $(BUILD)/inherited/$(notdir $(FROM))
INHERITED_MAINS   := $(wildcard $(FROM)/tests/*_test.cpp)
INHERITED_HELPERS := $(filter-out $(INHERITED_MAINS),$(wildcard $(FROM)/tests/*.cpp)) \
                     $(wildcard $(FROM)/tests/*_$(ARCH).S)
INHERITED_HELPER_OBJS := $(patsubst $(FROM)/tests/%,$(INHERITED_DIR)/obj/%.o,$(INHERITED_HELPERS))
INHERITED_TESTS   := $(patsubst $(FROM)/tests/%.cpp,$(INHERITED_DIR)/%,$(INHERITED_MAINS))

$(INHERITED_DIR)/obj/%.cpp.o: $(FROM)/tests/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(OPT) -c $< -o $@

$(INHERITED_DIR)/obj/%.S.o: $(FROM)/tests/%.S
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(SAN_FLAGS) -g -c $< -o $@

$(INHERITED_DIR)/%: $(INHERITED_DIR)/obj/%.cpp.o $(INHERITED_HELPER_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GTEST_LIBS) $(LDLIBS) -o $@

test-inherited: $(INHERITED_TESTS)
	@test -d $(FROM)/tests || { echo "test-inherited: $(FROM)/tests does not exist (FROM=$(FROM))" >&2; exit 2; }
	@$(ASAN_ENV) $(INHERITED_TEST_ENV) $(PYTHON) $(COMMON)/run_tests.py --label "$(PHASE) running $(notdir $(FROM))'s tests" \
	  --timeout $(TEST_TIMEOUT) $(if $(RESULTS),--results $(RESULTS)) \
	  $(if $(wildcard tests/superseded.txt),--exclude tests/superseded.txt) $(INHERITED_TESTS)
else
test-inherited:
	@echo "test-inherited: say which phase's tests to run, e.g. FROM=../phase1-basic" >&2; exit 2
endif

demo: $(EXAMPLES)
	@for e in $(EXAMPLES); do echo "--- $$e"; $$e || exit 1; done

bench: $(BENCHES)
	$(boost_fiber_note)
	@for b in $(BENCHES); do \
	  echo "--- $$b"; \
	  $$b --benchmark_out=$$b.json --benchmark_out_format=json $(BENCH_ARGS) || exit 1; \
	done

asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SANITIZE=1 test

# The trace picture: run a demo with GT_TRACE and draw its timeline (phases
# whose runtime writes traces, i.e. that have src/trace.cpp). The demo is
# the example whose comments show how to run it with GT_TRACE. `trace`
# writes only into $(BUILD); `trace-picture` also copies the picture over
# the committed one the walkthrough shows, diagrams/trace_<demo>.png.
TRACE_DEMO ?= $(basename $(notdir $(firstword $(shell grep -l 'GT_TRACE=' examples/*.cpp 2>/dev/null))))
TRACE_JSON := $(BUILD)/trace/$(TRACE_DEMO).trace.json
TRACE_PNG  := $(BUILD)/trace/trace_$(TRACE_DEMO).png
ifneq ($(wildcard src/trace.cpp),)
trace: $(BUILD)/examples/$(TRACE_DEMO)
	@mkdir -p $(BUILD)/trace
	GT_TRACE=$(TRACE_JSON) $(BUILD)/examples/$(TRACE_DEMO) >/dev/null
	/usr/bin/python3 $(COMMON)/trace_timeline.py $(TRACE_JSON) $(TRACE_PNG) \
	  --title "GT_TRACE of examples/$(TRACE_DEMO).cpp"
	@echo "trace: $(TRACE_JSON) (open it in ui.perfetto.dev); picture: $(TRACE_PNG)"

trace-picture: trace
	cp $(TRACE_PNG) diagrams/trace_$(TRACE_DEMO).png
	@echo "trace-picture: diagrams/trace_$(TRACE_DEMO).png redrawn from this run (commit it if the walkthrough should show it)"
else
trace trace-picture:
	@echo "$(PHASE) writes no traces (GT_TRACE arrives with thread management, phase 2)"
endif

DOTS := $(wildcard diagrams/*.dot)
diagrams: $(DOTS:.dot=.svg)
# The render ends with the SHA-256 of its source, so that a check can tell
# the render of this very source on any machine (tests/check_diagrams.sh:
# positions depend on the fonts installed, the fingerprint does not).
diagrams/%.svg: diagrams/%.dot FORCE
	dot -Tsvg $< -o $@
	echo "<!-- source: $(notdir $<) sha256 $$(sha256sum <$< | cut -d' ' -f1) -->" >>$@

FORCE:

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
