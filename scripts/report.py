#!/usr/bin/env python3
"""Host-side result parsing for the KSM harness.

  report.py splat [--ours-symbols FILE] LOG
      Print kernel splats (panic, oops, BUG, WARNING, KASAN, lockdep, RCU,
      hung task, Call Trace...) found in a console log; exit 1 if any.

  report.py check --log LOG [--results FILE] [--known FILE] [--guest-status S]
                  [--ours-symbols FILE]
      Parse a "make check" run: KUnit KTAP from the console log (suites whose
      name starts with "ksm"), KSMTEST markers from the results channel, the
      known-failures list, and splats.  Prints a per-suite table and, as the
      last line, "N passed, N failed, N skipped".  Exit 1 on any real
      failure, a splat, or a guest that did not finish.

  --ours-symbols FILE: the functions mm/ksm/ defines (build-kernel.sh writes
  build/<variant>/ksm-symbols).  A KCSAN data-race report is then a splat
  only if one of its racing functions (the ones its title names) is ours;
  the others are listed as notes.  Without it every KCSAN report is a splat.
"""

import argparse
import fnmatch
import os
import re
import sys

TS = re.compile(r"\[\s*\d+\.\d+\]")
TS_PREFIX = re.compile(r"^\s*\[\s*\d+\.\d+\] ?")

# Kernel messages that fail a run.  Only matched on kernel (timestamped)
# lines, so test programs printing these words do not trip them.
SPLAT_PATTERNS = [
    r"Kernel panic",
    r"\bOops\b",
    r"\bBUG:",
    r"\bWARNING:",
    r"kernel BUG at",
    r"cut here \]",
    r"general protection fault",
    r"KASAN:",
    r"KFENCE:",
    r"UBSAN:",
    r"Unable to handle kernel",
    r"invalid opcode:",
    r"possible circular locking",
    r"possible recursive locking",
    r"inconsistent lock state",
    r"suspicious RCU usage",
    r"possible irq lock inversion",
    r"bad unlock balance",
    r"held lock freed",
    r"lock held when returning to user space",
    r"lockdep.*(turning off|disabled)",
    r"DEBUG_LOCKS_WARN_ON",
    r"Call Trace",
    r"INFO: task .* blocked for more than",
    r"rcu: INFO: .*stall",
    r"detected stall",
    r"soft lockup",
    r"hard LOCKUP",
    r"list_(add|del) corruption",
    r"page dumped because",
    r"VM_BUG_ON",
    r"unreferenced object",
]
SPLAT = re.compile("|".join("(?:%s)" % p for p in SPLAT_PATTERNS))


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace").replace("\r", "")
    return text.split("\n")


# The OOM killer's report and the OOM reaper's "unable to reap" note carry
# a stack dump ("Call Trace") by design: tests that exceed a memcg limit on
# purpose produce them.  Inside such a report, up to its last line, only
# the stack dump is tolerated; any other splat pattern still fails the run.
OOM_REPORT_START = re.compile(r"invoked oom-killer:|oom_reaper: unable to reap")
OOM_REPORT_END = re.compile(r"Killed process|</TASK>")
OOM_TOLERATED = re.compile(r"Call Trace")


# "BUG: KCSAN: data-race in foo / bar", "... data-race in foo" (other side
# unknown), "BUG: KCSAN: assert: race in foo / bar".
KCSAN_TITLE = re.compile(r"BUG: KCSAN: [^/]*? in (\S+)(?: / (\S+))?")


def kcsan_functions(msg):
    """The racing functions a KCSAN report's title names (offsets and
    compiler suffixes such as .isra.0 dropped)."""
    m = KCSAN_TITLE.search(msg)
    if not m:
        return []
    return [re.sub(r"[+.].*", "", f) for f in m.groups() if f]


def find_splats(lines, ours=None, kcsan_notes=None):
    """Line numbers and text of the splats in LINES.  With OURS (a set of
    function names), a KCSAN report none of whose racing functions is in
    OURS is not a splat; its title goes to KCSAN_NOTES instead."""
    have_ts = any(TS.search(l) for l in lines)
    hits = []
    in_oom = False
    for i, line in enumerate(lines):
        m = TS.search(line)
        if have_ts and not m:
            continue
        msg = line[m.end():] if m else line
        if OOM_REPORT_START.search(msg):
            in_oom = True
        funcs = kcsan_functions(msg)
        if funcs and ours is not None and not any(f in ours for f in funcs):
            if kcsan_notes is not None:
                kcsan_notes.append((i + 1, line))
            continue
        if SPLAT.search(msg) and not (in_oom and OOM_TOLERATED.search(msg)):
            hits.append((i + 1, line))
        if in_oom and OOM_REPORT_END.search(msg):
            in_oom = False
    return hits


def read_symbols(path):
    if not path:
        return None
    with open(path) as f:
        return {l.strip() for l in f if l.strip()}


def print_kcsan_notes(notes, log, limit=20):
    if not notes:
        return
    print("note: %d KCSAN data-race report(s) outside mm/ksm/ (not counted):" % len(notes))
    for n, line in notes[:limit]:
        print("  %s:%d: %s" % (os.path.relpath(log), n, line.strip()))
    if len(notes) > limit:
        print("  ... %d more" % (len(notes) - limit))


def print_splats(hits, log, limit=40):
    print("KERNEL SPLAT in %s (%d offending line(s)):" % (log, len(hits)))
    for n, line in hits[:limit]:
        print("  %s:%d: %s" % (os.path.relpath(log), n, line.strip()))
    if len(hits) > limit:
        print("  ... %d more" % (len(hits) - limit))


# ---------------------------------------------------------------------------
# KUnit (KTAP) parsing


KTAP_RESULT = re.compile(r"^(not )?ok (\d+)(?: - |\s+)?(.*)$")


def split_directive(rest):
    """'name # SKIP reason' -> (name, 'SKIP'|'XFAIL'|None, reason)."""
    m = re.search(r"\s*#\s*(SKIP|skip|XFAIL|xfail|TODO|todo)\b\s*(.*)$", rest)
    if not m:
        return rest.strip(), None, ""
    return rest[: m.start()].strip(), m.group(1).upper(), m.group(2).strip()


def parse_kunit(lines):
    """Return (results, other_suites): results are (suite, name, RES) for
    the cases (depth 1) of every top-level suite; incomplete suites (kernel
    died mid-suite) get a synthetic failure."""
    results = []
    other = []
    suite = None
    cases = 0
    plan = None
    for raw in lines:
        line = TS_PREFIX.sub("", raw, count=1)
        m = re.match(r"^    # Subtest: (\S+)", line)
        if m:
            if suite is not None:
                results.append((suite, suite + ":incomplete", "FAIL"))
            suite, cases, plan = m.group(1), 0, None
            continue
        if suite is None:
            continue
        m = re.match(r"^    1\.\.(\d+)", line)
        if m:
            plan = int(m.group(1))
            continue
        m = re.match(r"^    (not )?ok \d+\s*(.*)$", line)
        if m:
            name, directive, reason = split_directive(m.group(2))
            if directive == "SKIP":
                res = "SKIP"
            elif m.group(1) and directive != "TODO":
                res = "FAIL"
            else:
                res = "PASS"
            results.append((suite, name or reason or "case%d" % (cases + 1), res))
            cases += 1
            continue
        m = re.match(r"^(not )?ok \d+\s*(.*)$", line)
        if m:  # end of the suite
            if plan is not None and cases < plan:
                results.append((suite, suite + ":incomplete(%d/%d)" % (cases, plan), "FAIL"))
            elif cases == 0:
                _, directive, _ = split_directive(m.group(2))
                res = "SKIP" if directive == "SKIP" else ("FAIL" if m.group(1) else "PASS")
                results.append((suite, suite, res))
            suite = None
    if suite is not None:
        results.append((suite, suite + ":incomplete", "FAIL"))
    mine = []
    for s, n, r in results:
        if s.startswith("ksm"):
            mine.append(("kunit:" + s, n, r))
        elif s not in other:
            other.append(s)
    return mine, other


# ---------------------------------------------------------------------------
# Guest markers


def parse_markers(lines):
    results, rcs, flaky = [], [], []
    begun = done = False
    errors = []
    for raw in lines:
        i = raw.find("KSMTEST")
        if i < 0:
            continue
        line = raw[i:].strip()
        parts = line.split()
        tag = parts[0]
        if tag == "KSMTEST" and len(parts) >= 4 and parts[-1] in ("PASS", "FAIL", "SKIP"):
            results.append((parts[1], " ".join(parts[2:-1]), parts[-1]))
        elif tag == "KSMTEST-RC":
            rcs.append(line)
        elif tag == "KSMTEST-FLAKY" and len(parts) >= 3:
            flaky.append((parts[1], " ".join(parts[2:])))
        elif tag == "KSMTEST-BEGIN":
            begun = True
        elif tag == "KSMTEST-DONE":
            done = True
        elif tag in ("KSMTEST-ERROR", "KSMTEST-ABORT"):
            errors.append(line)
    return results, rcs, begun, done, errors, flaky


def load_known(path):
    known = []
    if not path or not os.path.exists(path):
        return known
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test, _, reason = line.partition("|")
            fields = test.split(None, 1)
            if len(fields) != 2:
                print("warning: %s:%d: expected '<suite> <test name> | <reason>'" % (path, n))
                continue
            known.append((fields[0], fields[1].strip(), reason.strip() or "(no reason given)"))
    return known


def match_known(known, suite, name):
    for ks, kn, reason in known:
        if fnmatch.fnmatchcase(suite, ks) and fnmatch.fnmatchcase(name, kn):
            return reason
    return None


def check(args):
    log_lines = read_lines(args.log)
    res_lines = read_lines(args.results) if args.results else []
    results, rcs, begun, done, errors, flaky = parse_markers(res_lines)
    source = args.results
    if not (begun or results):
        # No results channel (or it stayed empty): fall back to the console.
        results, rcs, begun, done, errors, flaky = parse_markers(log_lines)
        source = args.log
    kunit, other_suites = parse_kunit(log_lines)
    known = load_known(args.known)

    suites = {}  # name -> [passed, failed, skipped]
    order = []

    def row(s):
        if s not in suites:
            suites[s] = [0, 0, 0]
            order.append(s)
        return suites[s]

    failures, known_hit, known_passed, skips = [], [], [], []
    if not kunit:
        row("kunit")
    for suite, name, res in kunit + results:
        r = row(suite)
        reason = match_known(known, suite, name)
        if res == "FAIL" and reason is not None:
            r[2] += 1
            known_hit.append((suite, name, reason))
        elif res == "FAIL":
            r[1] += 1
            failures.append((suite, name))
        elif res == "SKIP":
            r[2] += 1
            skips.append((suite, name))
        else:
            r[0] += 1
            if reason is not None:
                known_passed.append((suite, name, reason))

    problems = []
    kcsan_notes = []
    hits = find_splats(log_lines, read_symbols(args.ours_symbols), kcsan_notes)
    if hits:
        row("kernel")[1] += 1
        failures.append(("kernel", "console splat"))
        problems.append("kernel splat on the console (see above)")
    if not done:
        row("guest")[1] += 1
        failures.append(("guest", "finished"))
        if args.guest_status == "timeout":
            problems.append("guest did not finish: timed out (KSMTEST-DONE missing)")
        elif args.guest_status == "killed":
            problems.append("guest did not finish: qemu was killed by another process (KSMTEST-DONE missing)")
        elif not begun:
            problems.append("guest test runner never started (KSMTEST-BEGIN missing; boot failure?)")
        else:
            problems.append("guest died before finishing (KSMTEST-DONE missing)")
    for e in errors:
        problems.append("guest: " + e)
    if not kunit and not results and done:
        if args.only:
            problems.append("ONLY=%s matched no test" % args.only)
        else:
            problems.append("no test ran")

    # ------------------------------------------------------------ output
    print_kcsan_notes(kcsan_notes, args.log)
    if hits:
        print_splats(hits, args.log)
        print()
    if rcs and args.verbose:
        for l in rcs:
            print("  " + l)
    if other_suites:
        print("note: ignored %d non-KSM KUnit suite(s): %s" % (len(other_suites), " ".join(other_suites)))
    for s, n in skips:
        print("SKIP: %s %s" % (s, n))
    for s, n in flaky:
        print("FLAKY (failed, then passed on retry): %s %s" % (s, n))
    for s, n, reason in known_hit:
        print("KNOWN FAILURE (counted as skipped): %s %s | %s" % (s, n, reason))
    for s, n, reason in known_passed:
        print("NOTE: known failure now PASSES, remove it from tests/known-failures.txt: %s %s | %s" % (s, n, reason))
    for s, n in failures:
        print("FAIL: %s %s" % (s, n))
    for p in problems:
        print("ERROR: " + p)
    print()
    width = max([len(s) for s in order] + [20])
    print("%-*s %8s %8s %8s" % (width, "suite", "passed", "failed", "skipped"))
    for s in order:
        p, f, k = suites[s]
        print("%-*s %8d %8d %8d" % (width, s, p, f, k))
    tp = sum(v[0] for v in suites.values())
    tf = sum(v[1] for v in suites.values())
    ts = sum(v[2] for v in suites.values())
    print("%-*s %8d %8d %8d" % (width, "total", tp, tf, ts))
    print("(console log: %s, results: %s)" % (os.path.relpath(args.log), os.path.relpath(source)))
    print("%d passed, %d failed, %d skipped" % (tp, tf, ts))
    return 1 if (tf or problems) else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("splat")
    sp.add_argument("--ours-symbols")
    sp.add_argument("log")
    cp = sub.add_parser("check")
    cp.add_argument("--ours-symbols")
    cp.add_argument("--log", required=True)
    cp.add_argument("--results")
    cp.add_argument("--known")
    cp.add_argument("--guest-status", default="ok")
    cp.add_argument("--only", default="")
    cp.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.cmd == "splat":
        kcsan_notes = []
        hits = find_splats(read_lines(args.log), read_symbols(args.ours_symbols), kcsan_notes)
        print_kcsan_notes(kcsan_notes, args.log)
        if hits:
            print_splats(hits, args.log)
            return 1
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
