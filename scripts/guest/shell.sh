#!/bin/sh
# ksm.harness=shell: interactive busybox shell on the serial console.
# Leave it with "exit" (or Ctrl-A x to kill qemu).
echo "harness: interactive shell; 'exit' powers the guest off"
setsid cttyhack sh -l
