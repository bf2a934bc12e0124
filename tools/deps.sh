#!/usr/bin/env bash
# Installs the Debian packages a make target needs, or says how to.
#
#   tools/deps.sh build|test|demo|bench|docs|trace|clang|all
#
# clang: the test set plus clang (make test CXX=clang++). Any set also gets
# clang when the environment's CXX names it (make exports CXX=clang++ given
# on its command line to the recipes that run this script).
# Quiet when everything is present. Otherwise installs the missing packages
# with apt-get (directly as root, through sudo otherwise) and says so in one
# line; where it cannot, it prints the exact command to run and fails.
set -euo pipefail

need=${1:-all}
build=(g++ make python3 coreutils nlohmann-json3-dev)
test=("${build[@]}" libgtest-dev graphviz fonts-dejavu-core gdb)
# wrk, libuv1-dev, nginx-light: the HTTP benchmark of phase 5 (its client and two peers).
bench=("${build[@]}" libbenchmark-dev libboost-context-dev libboost-fiber-dev wrk libuv1-dev nginx-light)
docs=(doxygen graphviz fonts-dejavu-core)
trace=("${build[@]}" python3-matplotlib)
clang=("${test[@]}" clang)
all=("${test[@]}" "${bench[@]}" "${docs[@]}" "${trace[@]}" "${clang[@]}" valgrind gdb clang-format)

case "$need" in
  build|demo) pkgs=("${build[@]}") ;;
  test|asan|check) pkgs=("${test[@]}") ;;
  bench) pkgs=("${bench[@]}") ;;
  docs) pkgs=("${docs[@]}") ;;
  trace) pkgs=("${trace[@]}") ;;
  clang) pkgs=("${clang[@]}") ;;
  all) pkgs=("${all[@]}") ;;
  *) echo "tools/deps.sh: unknown set '$need' (build, test, demo, bench, docs, trace, clang, all)" >&2; exit 2 ;;
esac
case "$(basename "${CXX:-}")" in *clang*) pkgs+=(clang) ;; esac

missing=()
for p in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "Missing Debian packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "Installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo $cmd >/tmp/gt-deps.log 2>&1; then
  # A fresh machine may have no package lists yet.
  $sudo apt-get update -qq >>/tmp/gt-deps.log 2>&1 || true
  if ! $sudo $cmd >>/tmp/gt-deps.log 2>&1; then
    echo "Could not install ${missing[*]} (log: /tmp/gt-deps.log). Run:" >&2
    echo "  sudo apt-get update && sudo $cmd" >&2
    exit 1
  fi
fi
