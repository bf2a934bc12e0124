#!/usr/bin/env python3
"""Runs GoogleTest binaries under a hard timeout and counts their test cases.

    run_tests.py [--label L] [--timeout S] [--results FILE] [--exclude FILE] BINARY...
    run_tests.py --check NAME [--results FILE] -- COMMAND...
    run_tests.py --summarize FILE

Each binary runs with --gtest_output=json, so the count is per test case.
A binary that crashes, hangs past the timeout (a scheduler bug usually
hangs) or writes no report counts as one failed test named after it.
With --exclude, the tests FILE names (one Suite.Test per line; "#" starts
a comment) are left out of every binary's run (--gtest_filter).
With --results, one line per test ("PASS name" / "FAIL name") is appended
to FILE; --summarize reads such a file and prints "N passed, N failed" as
its last line, exiting non-zero if anything failed.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time


def read_exclusions(path):
    """The Suite.Test names listed in an --exclude file."""
    if not path:
        return []
    with open(path) as f:
        return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


def gtest_filter(excluded):
    return ["--gtest_filter=-" + ":".join(excluded)] if excluded else []


def list_tests(path, excluded=()):
    """The binary's test names (Suite.Test), from --gtest_list_tests."""
    try:
        out = subprocess.run([path, "--gtest_list_tests"] + gtest_filter(excluded), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=60, check=False).stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return []
    names, suite = [], None
    for line in out.splitlines():
        if not line.strip() or line.startswith("Running main()"):
            continue
        if not line.startswith(" "):
            suite = line.split("#")[0].strip()
        elif suite:
            names.append(suite + line.split("#")[0].strip())
    return names


def run_binary(path, timeout, excluded=()):
    """Returns ([(name, passed)], log_text)."""
    expected = list_tests(path, excluded)
    report = path + ".json"
    if os.path.exists(report):
        os.remove(report)
    start = time.monotonic()
    # In a session of its own, so that a timeout kills what the binary
    # started too (a test that runs gdb or a child process), not just it.
    proc = subprocess.Popen([path, "--gtest_output=json:" + report] + gtest_filter(excluded),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        log = out.decode(errors="replace")
        code = proc.returncode
    except KeyboardInterrupt:  # Ctrl-C reaches only us now: take the test down too
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        log = (out or b"").decode(errors="replace")
        log += f"\n*** {path}: killed after the {timeout} s timeout (a hang is a failure)\n"
        code = None
    elapsed = time.monotonic() - start
    results = []
    data = None
    if code is not None and os.path.exists(report) and os.path.getsize(report) > 0:
        try:
            with open(report) as f:
                data = json.load(f)
        except ValueError:
            data = None  # cut off mid-write: fall back to the log
    if data is not None:
        for suite in data.get("testsuites", []):
            for case in suite.get("testsuite", []):
                if case.get("status") == "NOTRUN" or case.get("result") == "SKIPPED":
                    continue
                ok = not case.get("failures")
                results.append((f"{suite['name']}.{case['name']}", ok))
    else:
        # No report: the binary died mid-run. Keep what its output says
        # passed, and fail the test that was running.
        running = None
        for line in log.splitlines():
            if line.startswith("[ RUN      ] "):
                running = line[13:].strip()
            elif line.startswith("[       OK ] ") or line.startswith("[  FAILED  ] "):
                name = line[13:].split(" (")[0].strip()
                if name == running:
                    results.append((name, line.startswith("[       OK ]")))
                    running = None
        if running:
            why = "timed out" if code is None else "crashed"
            results.append((running + f" ({why})", False))
        # Tests the binary never reached count as failed, not as absent.
        seen = {name.split(" (")[0] for name, _ in results}
        skipped = {l[13:].split(" (")[0].strip() for l in log.splitlines() if l.startswith("[  SKIPPED ] ")}
        for name in expected:
            if name not in seen and name not in skipped:
                results.append((name + " (not run: the binary died first)", False))
    if code is None:
        results.append((os.path.basename(path) + " (timed out)", False))
    elif code != 0 and all(ok for _, ok in results):
        # Died after (or before) its report was written: still a failure.
        results.append((os.path.basename(path) + f" (exit status {code})", False))
    # A sanitizer warning is a problem the run did not stop for (e.g. ASan
    # noticing a stack switch it was not told about): a failure too.
    warnings = [l for l in log.splitlines() if "WARNING: AddressSanitizer" in l or "WARNING: ASan" in l]
    if warnings:
        results.append((os.path.basename(path) + f" (sanitizer warning: {warnings[0].strip()[:120]})", False))
    if not results:
        results.append((os.path.basename(path) + " (ran no test)", False))
    return results, log, elapsed


def append_results(path, label, results):
    if not path:
        return
    with open(path, "a") as f:
        for name, ok in results:
            f.write(f"{'PASS' if ok else 'FAIL'} {label}: {name}\n")


def summarize(path):
    passed = failed = 0
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.startswith("PASS "):
                    passed += 1
                elif line.startswith("FAIL "):
                    failed += 1
                    print("  failed:", line[5:].rstrip())
    if passed + failed == 0:
        failed = 1
        print("  failed: no test ran at all")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--results")
    ap.add_argument("--check")
    ap.add_argument("--summarize")
    ap.add_argument("--exclude")
    ap.add_argument("rest", nargs="*")
    args = ap.parse_args()

    if args.summarize:
        return summarize(args.summarize)

    if args.check:
        start = time.monotonic()
        proc = subprocess.run(args.rest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        ok = proc.returncode == 0
        status = "ok" if ok else "FAILED"
        print(f"check {args.check}: {status} ({time.monotonic() - start:.1f} s)")
        if not ok:
            sys.stdout.write(proc.stdout.decode(errors="replace"))
        append_results(args.results, "check", [(args.check, ok)])
        return 0 if ok else 1

    total_pass = total_fail = 0
    excluded = read_exclusions(args.exclude)
    for binary in args.rest:
        results, log, elapsed = run_binary(binary, args.timeout, excluded)
        npass = sum(1 for _, ok in results if ok)
        nfail = len(results) - npass
        total_pass += npass
        total_fail += nfail
        print(f"{args.label}: {os.path.basename(binary)}: {npass} passed, {nfail} failed ({elapsed:.1f} s)")
        if nfail:
            sys.stdout.write(log[-6000:])
            for name, ok in results:
                if not ok:
                    print(f"  FAILED {name}")
        append_results(args.results, args.label, [(f"{os.path.basename(binary)}: {n}", ok) for n, ok in results])
    print(f"{args.label}: {total_pass} passed, {total_fail} failed")
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
