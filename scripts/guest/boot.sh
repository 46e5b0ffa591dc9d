#!/bin/sh
# ksm.harness=boot: smoke test - show the machine, then power off.
echo "harness: kernel $(uname -r)"
cat /proc/cmdline
ls /sys/devices/system/node/
ls /sys/kernel/mm/ksm/ 2>/dev/null || echo "harness: no /sys/kernel/mm/ksm"
free -m
echo "KSMBOOT-OK"
