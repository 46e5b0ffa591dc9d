#!/bin/sh
# /init of the harness initramfs (busybox).  Mounts the usual filesystems
# and dispatches on the kernel command line parameter
#
#   ksm.harness=MODE      (default: shell)
#
# to /harness/MODE.sh, i.e. scripts/guest/MODE.sh in the repo: new modes
# are added by dropping a script there.  The machine powers off afterwards.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM=${TERM:-vt100}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec 0<>/dev/console 1>&0 2>&0
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname ksm-guest

# Parse our parameters (ksm.harness=, ksm.only=, ksm.timeout=, ...) into
# KSM_HARNESS, KSM_ONLY, KSM_TIMEOUT, ... for the mode scripts.
for arg in $(cat /proc/cmdline); do
	case $arg in
	ksm.*=*)
		key=${arg%%=*}
		key=$(echo "${key#ksm.}" | tr 'a-z.-' 'A-Z__')
		export "KSM_$key=${arg#*=}"
		;;
	esac
done
MODE=${KSM_HARNESS:-shell}

echo "harness: guest up: $(uname -r), mode $MODE, $(grep -c ^processor /proc/cpuinfo) cpus, nodes: $(ls -d /sys/devices/system/node/node* 2>/dev/null | sed 's|.*/||' | tr '\n' ' ')"

if [ -x "/harness/$MODE.sh" ]; then
	"/harness/$MODE.sh"
	echo "harness: mode $MODE finished (exit $?)"
else
	echo "harness: ERROR: no guest script for mode '$MODE' (/harness/$MODE.sh)"
	echo "KSMTEST-ERROR unknown-mode $MODE"
fi

sync
poweroff -f
# poweroff failed: make the kernel panic so qemu (-no-reboot) exits.
echo "harness: poweroff failed"
exit 1
