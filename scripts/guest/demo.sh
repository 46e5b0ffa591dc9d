#!/bin/sh
# ksm.harness=demo: placeholder; the demo is not written yet.
echo "harness: demo: not yet (drop the real demo into scripts/guest/demo.sh)"
