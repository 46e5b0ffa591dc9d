#!/bin/sh
# ksm.harness=idle: nothing to do.  "make demo" boots its QEMU guests
# inside its own guest with this mode: their RAM, which QEMU marks
# mergeable, is what ksmd merges there.  Says that userspace is up, then
# idles until killed or ksm.duration seconds (default 600) have passed.
echo "KSMIDLE-UP $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s"
sleep "${KSM_DURATION:-600}"
