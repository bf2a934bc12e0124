#!/usr/bin/env bash
# Self-test of tests/excerpts.py: in a temporary fake repository, walkthroughs
# that follow the label conventions must pass, and each kind of mistake must
# fail with its own message. check_excerpts.sh runs this first, so a broken
# checker cannot pass every walkthrough by accident.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gt-excerpts-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS RESULTS

ph=$tmp/phase9-demo
mkdir -p "$ph/src" "$ph/examples" "$tmp/docs"
cat >"$ph/src/a.cpp" <<'EOF'
#include "a.hpp"

namespace gt {

void scheduler::yield() noexcept {
    control_block* next = pick_next();
    if (next == nullptr) return;
    run_queue_.push_back(running_);
    switch_to(next);
}

int scheduler::count() const { return n_; }

}  // namespace gt
EOF
cat >"$ph/examples/hello.cpp" <<'EOF'
#include <cstdio>
int main() { std::puts("hello from thread 1"); std::puts("  indented line"); }
EOF
cat >"$ph/Makefile" <<'EOF'
examples: build/examples/hello
build/examples/hello: examples/hello.cpp
	@mkdir -p build/examples
	$(CXX) $< -o $@
EOF

# ---- walkthroughs that must pass ----------------------------------------
cat >"$ph/README.md" <<'EOF'
# Demo phase

File: [src/a.cpp](src/a.cpp) · `scheduler::yield`
```cpp
void scheduler::yield() noexcept {
    control_block* next = pick_next();
    // ...
    switch_to(next);
}
```

An excerpt may start and end with an elision, and blank lines may separate
the label from its block:

File: [src/a.cpp](src/a.cpp)


```cpp
...
int scheduler::count() const { return n_; }
...
```

A label shown inside a code block is an example, not a label:

````markdown
File: [src/missing.cpp](src/missing.cpp)
```cpp
nothing here
```
````

Output of [examples/hello.cpp](examples/hello.cpp):
```console
$ build/examples/hello
hello from thread 1
  indented line
```
EOF
cat >"$tmp/README.md" <<'EOF'
File: [phase9-demo/src/a.cpp](phase9-demo/src/a.cpp) · the end of `gt::scheduler::count()`, `yield`
```cpp
}  // namespace gt
```
EOF
cat >"$tmp/docs/guide.md" <<'EOF'
In docs/, links are relative to docs/ (as on a code host); the text may be
the path from the repository root:

File: [phase9-demo/src/a.cpp](../phase9-demo/src/a.cpp)
  ```cpp
  #include "a.hpp"

  namespace gt {
  ```

Output of [phase9-demo/examples/hello.cpp](../phase9-demo/examples/hello.cpp):
```
hello from thread 1
  indented line
```
EOF

failures=0
if ! out=$(python3 "$here/excerpts.py" --root "$tmp" 2>&1); then
  echo "excerpts selftest: good walkthroughs were rejected:"
  echo "$out" | sed 's/^/    /'
  failures=$((failures + 1))
elif ! grep -q "6 labelled block(s) in 3 Markdown file(s), 0 problem(s)" <<<"$out"; then
  echo "excerpts selftest: expected 6 blocks in 3 files, got: $out"
  failures=$((failures + 1))
fi

# ---- walkthroughs that must fail, each with its message -------------------
# expect_failure NAME EXPECTED-TEXT < walkthrough (written as phase9-demo/BAD.md)
expect_failure() {
  local name=$1 want=$2 out
  cat >"$ph/BAD.md"
  if out=$(python3 "$here/excerpts.py" --root "$tmp" "$ph/BAD.md" 2>&1); then
    echo "excerpts selftest: '$name' was accepted"
    failures=$((failures + 1))
  elif ! grep -qF -- "$want" <<<"$out"; then
    echo "excerpts selftest: '$name' failed without saying \"$want\":"
    echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  fi
  rm -f "$ph/BAD.md"
}

expect_failure "changed line" "BAD.md:4: '    control_block* next = pick_first();'" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
void scheduler::yield() noexcept {
    control_block* next = pick_first();
}
```
EOF
expect_failure "changed line reports where the match stopped" "line 6 there is '    control_block* next = pick_next();'" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
void scheduler::yield() noexcept {
    control_block* next = pick_first();
}
```
EOF
expect_failure "missing file" "label names src/gone.cpp, which does not exist" <<'EOF'
File: [src/gone.cpp](src/gone.cpp)
```cpp
int x;
```
EOF
expect_failure "lines out of order" "out of order, or an elision is missing" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
    switch_to(next);
...
    control_block* next = pick_next();
```
EOF
expect_failure "skipped lines without an elision" "BAD.md:4: '    switch_to(next);'" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
    control_block* next = pick_next();
    switch_to(next);
```
EOF
expect_failure "indentation differs" "BAD.md:3: 'control_block* next = pick_next();'" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
control_block* next = pick_next();
```
EOF
expect_failure "stale output" "is not what the program prints now" <<'EOF'
Output of [examples/hello.cpp](examples/hello.cpp):
```
hello from thread 2
  indented line
```
EOF
expect_failure "output missing a line" "+  indented line" <<'EOF'
Output of [examples/hello.cpp](examples/hello.cpp):
```
$ build/examples/hello
hello from thread 1
```
EOF
expect_failure "label without a block" "label is not followed by a fenced code block" <<'EOF'
File: [src/a.cpp](src/a.cpp)

Some prose instead of the excerpt.
EOF
expect_failure "malformed label" "looks like a label but does not parse" <<'EOF'
File: src/a.cpp
```cpp
int x;
```
EOF
expect_failure "block never closed" "code block is never closed" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
#include "a.hpp"
EOF
expect_failure "renamed symbol" "\`resume\` does not occur in src/a.cpp" <<'EOF'
File: [src/a.cpp](src/a.cpp) · `scheduler::resume`
```cpp
#include "a.hpp"
```
EOF
expect_failure "one renamed symbol of several" "\`resume\` does not occur in src/a.cpp" <<'EOF'
File: [src/a.cpp](src/a.cpp) · the functions `scheduler::yield` and `scheduler::resume`
```cpp
#include "a.hpp"
```
EOF
expect_failure "text after the link without a ·" "looks like a label but does not parse" <<'EOF'
File: [src/a.cpp](src/a.cpp) `scheduler::yield`
```cpp
#include "a.hpp"
```
EOF
expect_failure "text and link disagree" "name different files" <<'EOF'
File: [src/b.cpp](src/a.cpp)
```cpp
#include "a.hpp"
```
EOF
expect_failure "output of a non-example" "must name a phase's examples/<name>.cpp" <<'EOF'
Output of [src/a.cpp](src/a.cpp):
```
hello
```
EOF
expect_failure "empty excerpt" "the block shows no line of the file" <<'EOF'
File: [src/a.cpp](src/a.cpp)
```cpp
...
```
EOF

if [ "$failures" -gt 0 ]; then
  echo "excerpts selftest: $failures case(s) wrong: tests/excerpts.py is broken"
  exit 1
fi
echo "excerpts selftest: ok"
