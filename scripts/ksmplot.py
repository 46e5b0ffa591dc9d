"""SVG plots for the harness reports, drawn with gnuplot.

Shared by scripts/bench-report.py ("make bench") and scripts/demo-report.py
("make demo"): the data goes to whitespace-separated .dat files, the plot
to a gnuplot script next to them, and gnuplot (package gnuplot-nox) turns
that into an SVG.  Without gnuplot the script is left for later.

    write_dat(path, header, rows)
    svg(directory, stem, title, panels, layout=(rows, cols), size=(w, h), key="top left")

A panel is a dict: title, xlabel, ylabel, series (a list of (datafile,
using, title) triples, e.g. ("x.dat", "1:2", "ours")) and optionally
marks, a list of (x, text) drawn as labelled vertical lines.
"""
import os
import shutil
import subprocess


def write_dat(path, header, rows):
    """Write rows (sequences of numbers or strings) under a "# header"."""
    with open(path, "w") as fh:
        fh.write("# %s\n" % header)
        for r in rows:
            fh.write(" ".join(str(x) for x in r) + "\n")


def _quote(s):
    return '"%s"' % str(s).replace("\\", "\\\\").replace('"', '\\"')


def script(stem, title, panels, layout, size, key):
    """The gnuplot script (a string) that draws panels into stem.svg."""
    rows, cols = layout
    out = ['set terminal svg size %d,%d dynamic noenhanced font "sans,11"' % size,
           "set output %s" % _quote(stem + ".svg"), "set key %s" % key, "set grid"]
    multi = rows * cols > 1
    if multi:
        out.append("set multiplot layout %d,%d title %s" % (rows, cols, _quote(title)))
    for p in panels:
        out.append("set title %s" % _quote(p["title"] if multi else "%s: %s" % (title, p["title"])))
        out.append("set xlabel %s" % _quote(p["xlabel"]))
        out.append("set ylabel %s" % _quote(p["ylabel"]))
        for i, (x, text) in enumerate(p.get("marks", ()), 1):
            out.append("set arrow %d from %g, graph 0 to %g, graph 1 nohead dashtype 2 lc rgb \"gray40\""
                       % (i, x, x))
            out.append("set label %d %s at %g, graph 0.98 rotate by 90 right offset 1,0 tc rgb \"gray30\""
                       % (i, _quote(text), x))
        out.append("plot " + ", ".join("%s using %s with lines lw 2 title %s" % (_quote(f), u, _quote(t))
                                       for f, u, t in p["series"]))
        if p.get("marks"):
            out.append("unset arrow")
            out.append("unset label")
    if multi:
        out.append("unset multiplot")
    return "\n".join(out) + "\n"


def svg(directory, stem, title, panels, layout=(1, 1), size=(960, 540), key="top left"):
    """Write directory/stem.gp and, with gnuplot, directory/stem.svg.

    key is where gnuplot puts the legend ("set key ...").  Returns (svg
    path or None, one line saying what happened).
    """
    gp = os.path.join(directory, stem + ".gp")
    with open(gp, "w") as fh:
        fh.write(script(stem, title, panels, layout, size, key))
    if not shutil.which("gnuplot"):
        return None, "gnuplot not installed; script in %s" % gp
    r = subprocess.run(["gnuplot", os.path.basename(gp)], cwd=directory, capture_output=True, text=True)
    path = os.path.join(directory, stem + ".svg")
    if r.returncode != 0 or not os.path.exists(path):
        return None, "gnuplot failed: %s" % (r.stderr.strip().splitlines()[-1:] or ["?"])[0]
    return path, path
