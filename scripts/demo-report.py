#!/usr/bin/env python3
"""Summary and plot of a "make demo" run (scripts/guest/demo.sh).

    demo-report.py RESULTS OUTDIR

RESULTS is the guest's results channel (build/logs/<variant>-demo.results):
"KSMDEMO-CSV <line>" lines (ksm_stat --csv samples: time,pages_sharing,
saved_mib), "KSMDEMO-PHASE <epoch> <name>" lines and the summary lines
(KSMDEMO-SUMMARY, -RUN, -STRESSNG, -QEMU, -OK, -FAIL).  Writes
OUTDIR/ksm-demo.csv (the samples as the guest wrote them), ksm-demo.dat,
ksm-demo.gp and, with gnuplot, ksm-demo.svg (scripts/ksmplot.py): MiB
saved over time, the phases marked.  Prints the summary lines and the
path of the plot.  Exits 1 when there are no samples.
"""
import os
import sys

import ksmplot


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    results, out = sys.argv[1], sys.argv[2]
    csv_lines, phases, summary = [], [], []
    with open(results, errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("KSMDEMO-CSV "):
                csv_lines.append(line[len("KSMDEMO-CSV "):])
            elif line.startswith("KSMDEMO-PHASE "):
                parts = line.split(None, 2)
                if len(parts) == 3:
                    phases.append((float(parts[1]), parts[2]))
            elif line.startswith("KSMDEMO"):
                summary.append(line)

    samples = []
    for line in csv_lines:
        f = line.split(",")
        try:
            samples.append((float(f[0]), int(f[1]), float(f[2])))
        except (ValueError, IndexError):
            continue    # the header, or a line the serial port mangled
    print()
    print("make demo: summary")
    for line in summary:
        print("  " + line)
    if not samples:
        print("demo: no ksm_stat samples on the results channel (%s)" % results)
        return 1

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ksm-demo.csv"), "w") as fh:
        fh.write("\n".join(csv_lines) + "\n")
    t0 = samples[0][0]
    ksmplot.write_dat(os.path.join(out, "ksm-demo.dat"), "t_s saved_mib pages_sharing",
                      (("%.3f" % (t - t0), "%.2f" % mib, sharing) for t, sharing, mib in samples))
    panel = {"title": "memory saved (pages_sharing + ksm_zero_pages)", "xlabel": "seconds",
             "ylabel": "MiB saved", "series": [("ksm-demo.dat", "1:2", "MiB saved")],
             # phases start at whole seconds (busybox date): never before 0
             "marks": [(max(t - t0, 0), name) for t, name in phases]}
    peak = max(samples, key=lambda s: s[2])
    path, msg = ksmplot.svg(out, "ksm-demo", "make demo", [panel], key="off")
    print("  %d samples over %.0f s; most saved: %.1f MiB (pages_sharing %d) at %.0f s"
          % (len(samples), samples[-1][0] - t0, peak[2], peak[1], peak[0] - t0))
    print("==> demo: plot of memory saved over time: %s" % msg)
    return 0 if path else 1


if __name__ == "__main__":
    sys.exit(main())
