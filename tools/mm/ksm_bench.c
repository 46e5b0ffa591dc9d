// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_bench - KSM benchmark workloads, run in the guest by "make bench".
 *
 *   ksm_bench [options] WORKLOAD
 *
 * WORKLOAD is one of
 *
 *   nodups    PROCS x MIB of random pages: ksmd CPU per scanned page over
 *             SCANS full scans, pages per second, bookkeeping per page
 *   alldups   PROCS x MIB of one repeated byte: scans, CPU and time until
 *             the savings stop growing
 *   mix       PROCS x MIB of a VM-like mix (25% zero pages, 40% identical
 *             across processes, 10% repeated within a process, 25% unique),
 *             same figures as alldups
 *   pairs     PROCS x MIB where page i of every process holds content i:
 *             with two processes every merge makes a new KSM page of two
 *             pages (none joins an existing one); same figures as alldups
 *   corunner  a memory-bound loop's throughput with ksmd idle, then with
 *             ksmd scanning PROCS x MIB of random pages at full speed
 *   mappers   PROCS x MIB of one byte ('c') merged into as few KSM pages as
 *             max_page_sharing allows (one, when it covers every page):
 *             time and ksmd CPU to merge; then every process rewrites its
 *             memory ('d', one page 'e') with ksmd stopped, and time and
 *             ksmd CPU of the next two full scans and until all is merged
 *             again; then the time and CPU of run=2 (unmerge)
 *   vmas      one process maps PAGES of one content, made into PAGES VMAs
 *             of one anon_vma by mprotect()ing every other page read-only;
 *             once merged, the time of move_pages() of every KSM page to
 *             the other NUMA node and back (each move walks every mapper
 *             of the KSM page and, for each, the VMAs of its anon_vma)
 *   parallel  no KSM: the wall time for one thread to read MIB of memory
 *             four times, and for two threads to read half of it each at
 *             once; two_over_one is the second rate over the first, the
 *             most two ksmd threads could gain in this guest on this host
 *   reset     only reset KSM (run=2, 6.12 defaults and our knobs' boot
 *             values, run=0)
 *
 * Options:
 *   -p PROCS   processes (default 1)
 *   -m MIB     MiB per process (default 64)
 *   -s PAGES   pages_to_scan (default 4000)
 *   -S MSECS   sleep_millisecs (default 0)
 *   -n SCANS   nodups: full scans to measure (default 2); alldups/mix:
 *              at most this many full scans (default 12)
 *   -t SECS    give up on any wait after SECS seconds (default 900)
 *   -i MSECS   sampling interval (default 50)
 *   -d SECS    corunner: length of each measuring window (default 5)
 *   -N PAGES   vmas: pages (and VMAs) of the region (default 20000)
 *   -k KNOB=V  extra KSM sysfs setting after the reset (repeatable)
 *   -g N       put the processes, round-robin, in N cgroups (v2) of their
 *              own, created and removed around the run (merge domains)
 *   -l LABEL   name of the workload in the output (default WORKLOAD)
 *   -v         print a sample line every interval (for plots)
 *
 * Before each workload KSM is reset to the 6.12 defaults, then
 * pages_to_scan and sleep_millisecs are set and ksmd is started once every
 * process has filled its memory.  ksmd's CPU time is utime + stime of every
 * kernel thread whose name starts with "ksmd" (/proc/PID/stat).  Waits are
 * on /sys/kernel/mm/ksm/full_scans or pages_sharing, bounded by -t.
 * Results are lines
 *
 *   BENCH LABEL KEY VALUE
 *   BENCHSAMPLE LABEL T_MS PAGES_SHARING SAVED_PAGES KSMD_CPU_MS FULL_SCANS
 *
 * "saved" pages are pages_sharing + ksm_zero_pages.
 *
 * Physical floor (nodups, alldups, mix): once every process has filled its
 * memory and before ksmd starts, the processes one after the other (never
 * two at once) each read their whole region once, every byte through 64-bit
 * loads, timed by the reader's own CPU clock (CLOCK_THREAD_CPUTIME_ID, as
 * ksmd's figure is its CPU time: time the host steals counts in neither).
 * The keys
 *
 *   floor_ns_per_page  the sum of those times over the workload's pages:
 *                      what reading each page ksmd will scan once costs
 *   nodup_over_floor   nodups: ns_per_page (ksmd CPU per scanned page) over
 *                      floor_ns_per_page
 *   merge_over_floor   alldups, mix: converge_cpu_ms over the saved pages at
 *                      that sample (ksmd CPU per merged page) over
 *                      floor_ns_per_page
 *
 * are "-" when the floor could not be taken or ksmd CPU was below the
 * resolution of its clock ticks.
 *
 * Rescans (alldups, mix): once the savings converged, every later pass
 * visits memory that is merged already.  rescan_ns_per_page is ksmd CPU
 * over pages_scanned from the first sample after the converging full scan
 * to the last sample: what keeping merged memory merged costs per page and
 * pass; "-" when fewer than half the workload's pages were scanned then.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/mempolicy.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define HPAGE		(2UL << 20)
#define MAX_KSMD	64
#define MAX_KNOBS	16
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_PRESENT_BIT	63
#define KPF_KSM		21

enum workload {
	WL_NODUPS, WL_ALLDUPS, WL_MIX, WL_CORUNNER, WL_MAPPERS, WL_VMAS,
	WL_PARALLEL, WL_PAIRS, WL_RESET,
};

static const char *const wl_names[] = {
	"nodups", "alldups", "mix", "corunner", "mappers", "vmas", "parallel",
	"pairs", "reset",
};

static struct {
	enum workload wl;
	const char *label;
	int procs;
	size_t mib;
	long pages_to_scan;
	long sleep_ms;
	int scans;
	int timeout;
	int interval_ms;
	int window;
	long pages;
	int verbose;
	const char *knobs[MAX_KNOBS];
	int nknobs;
	int cgroups;
} opt = {
	.procs = 1, .mib = 64, .pages_to_scan = 4000, .sleep_ms = 0,
	.scans = -1, .timeout = 900, .interval_ms = 50, .window = 5,
	.pages = 20000,
};

static size_t page_size;
static long clk_tck;
static volatile uint64_t floor_sink;	/* keeps read_once_ns()'s loads */
static pid_t ksmd_pids[MAX_KSMD];
static int nr_ksmd;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void result(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void result(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("BENCH %s %s ", opt.label, key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static long read_long(const char *path, long def)
{
	char buf[64];
	long v = def;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return def;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 10);
	}
	close(fd);
	return v;
}

static long ksm_read(const char *knob)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	return read_long(path, 0);
}

/* Write @val to a KSM knob; missing knobs are skipped (not in every kernel). */
static int ksm_write(const char *knob, const char *val)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	while (write(fd, val, strlen(val)) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "ksm_bench: write %s=%s: %s\n", knob,
				val, strerror(errno));
			ret = -1;
			break;
		}
	}
	close(fd);
	return ret;
}

static int ksm_write_long(const char *knob, long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", val);
	return ksm_write(knob, buf);
}

/*
 * run=2 (unmerge everything), the 6.12 defaults, run=0.  Knobs that 6.12
 * lacks go back to their boot values too where the kernel has them
 * (ksm_write() skips a missing file): a workload's -k merge_domain=process
 * must not leave the next workload's processes unable to merge.
 */
static int ksm_reset(void)
{
	static const char *const defaults[][2] = {
		{ "advisor_mode", "none" },
		{ "pages_to_scan", "100" },
		{ "sleep_millisecs", "20" },
		{ "max_page_sharing", "256" },
		{ "merge_across_nodes", "1" },
		{ "use_zero_pages", "0" },
		{ "stable_node_chains_prune_millisecs", "2000" },
		{ "smart_scan", "1" },
		{ "merge_domain", "user" },
		{ "merge_fresh_frames", "1" },
		{ "ksmd_threads", "1" },
		{ "huge_split_min_subpages", "64" },
	};
	unsigned int i;
	int ret = ksm_write("run", "2");

	for (i = 0; i < ARRAY_SIZE(defaults); i++)
		ret |= ksm_write(defaults[i][0], defaults[i][1]);
	ret |= ksm_write("run", "0");
	return ret;
}

static void find_ksmd(void)
{
	struct dirent *de;
	char path[64], comm[32];
	DIR *d = opendir("/proc");
	ssize_t n;
	int fd;

	nr_ksmd = 0;
	if (!d)
		return;
	while ((de = readdir(d)) && nr_ksmd < MAX_KSMD) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.16s/comm", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n >= 4 && !strncmp(comm, "ksmd", 4))
			ksmd_pids[nr_ksmd++] = atoi(de->d_name);
	}
	closedir(d);
}

/* State and utime + stime (ticks) of ksmd thread @i; -1 if it is gone. */
static int ksmd_stat(int i, char *state, unsigned long long *ticks)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", ksmd_pids[i]);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after "pid (comm)": state is field 3, utime 14, stime 15 */
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 state, &ut, &st) != 3)
		return -1;
	*ticks = ut + st;
	return 0;
}

/* utime + stime of every ksmd thread, in milliseconds. */
static double ksmd_cpu_ms(void)
{
	unsigned long long ticks = 0, t;
	char state;
	int i;

	for (i = 0; i < nr_ksmd; i++)
		if (!ksmd_stat(i, &state, &t))
			ticks += t;
	return ticks * 1000.0 / clk_tck;
}

/*
 * Wait until every ksmd thread sleeps (state S or I) in two samples 10 ms
 * apart: after run=0 a batch in progress still runs to its end.  0, or -1
 * when that took longer than -t.
 */
static int ksmd_wait_idle(void)
{
	double t0 = now_ms();
	unsigned long long t;
	int i, quiet = 0;
	char state;

	while (quiet < 2) {
		if (now_ms() - t0 > opt.timeout * 1e3) {
			fprintf(stderr, "ksm_bench: ksmd still busy after run=0\n");
			return -1;
		}
		sleep_ms(10);
		for (i = 0; i < nr_ksmd; i++)
			if (!ksmd_stat(i, &state, &t) && state != 'S' &&
			    state != 'I')
				break;
		quiet = i == nr_ksmd ? quiet + 1 : 0;
	}
	return 0;
}

/* CPU time of the calling thread, in milliseconds. */
static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Bytes held by the KSM slab caches (any cache with "ksm" in its name). */
static long long ksm_slab_caches_bytes(void)
{
	char line[512], name[128];
	long long bytes = 0;
	unsigned long active, num, objsize;
	FILE *f = fopen("/proc/slabinfo", "r");
	int i;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %lu %lu %lu", name, &active, &num,
			   &objsize) != 4)
			continue;
		for (i = 0; name[i]; i++)
			if (name[i] >= 'A' && name[i] <= 'Z')
				name[i] += 'a' - 'A';
		if (strstr(name, "ksm"))
			bytes += (long long)active * objsize;
	}
	fclose(f);
	return bytes;
}

/*
 * Bytes of KSM metadata outside its slab caches, where the kernel reports
 * them (debugfs "ksm/metadata", ours: mapper arrays, unstable table); 0
 * where it does not (stock keeps all of it in its slab caches).
 */
static long long ksm_other_meta_bytes(void)
{
	FILE *f = fopen("/sys/kernel/debug/ksm/metadata", "r");
	long long bytes = 0, n;
	char name[64];

	if (!f)
		return 0;
	while (fscanf(f, "%63s %lld", name, &n) == 2)
		bytes += n;
	fclose(f);
	return bytes;
}

/* Bytes of KSM metadata in all, or -1 without /proc/slabinfo. */
static long long ksm_slab_bytes(void)
{
	long long slab = ksm_slab_caches_bytes();

	return slab < 0 ? slab : slab + ksm_other_meta_bytes();
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* xorshift64*: cheap pseudo-random page content. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void fill_word_pattern(uint64_t *page, uint64_t seed)
{
	size_t w, words = page_size / sizeof(uint64_t);

	for (w = 0; w < words; w++)
		page[w] = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ w;
}

/*
 * Fill the memory of process @proc.  Mix layout, in contiguous ranges so
 * that whole huge pages have one kind of content: [0, 25%) zero,
 * [25%, 65%) identical across processes, [65%, 75%) 32 contents repeated
 * within the process, [75%, 100%) unique.
 */
static void fill(char *mem, size_t pages, unsigned int proc)
{
	uint64_t s = 0x12345678ULL + ((uint64_t)proc << 32);
	size_t p, w, words = page_size / sizeof(uint64_t);

	for (p = 0; p < pages; p++) {
		uint64_t *page = (uint64_t *)(mem + p * page_size);
		size_t pct = p * 100 / pages;

		switch (opt.wl) {
		case WL_ALLDUPS:
			memset(page, 0x5a, page_size);
			break;
		case WL_MAPPERS:
			memset(page, 'c', page_size);
			break;
		case WL_PAIRS:
			fill_word_pattern(page, p);
			break;
		case WL_MIX:
			if (pct < 25) {
				memset(page, 0, page_size);
			} else if (pct < 65) {
				fill_word_pattern(page, p);
			} else if (pct < 75) {
				fill_word_pattern(page, (1ULL << 62) |
						  ((uint64_t)proc << 32) | (p % 32));
			} else {
				for (w = 0; w < words; w++)
					page[w] = rnd(&s);
			}
			break;
		default:
			for (w = 0; w < words; w++)
				page[w] = rnd(&s);
			break;
		}
	}
}

/* cgroup v2 directory of group @i (-g): processes are dealt round-robin. */
static void cgroup_path(char *buf, size_t len, int i, const char *file)
{
	snprintf(buf, len, "/sys/fs/cgroup/ksm-bench-%d%s%s", i,
		 file ? "/" : "", file ? file : "");
}

/* Move the calling process into group @proc % opt.cgroups. */
static int join_cgroup(unsigned int proc)
{
	char path[128], pid[32];
	int fd, ok;

	cgroup_path(path, sizeof(path), proc % opt.cgroups, "cgroup.procs");
	snprintf(pid, sizeof(pid), "%d", getpid());
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, pid, strlen(pid)) == (ssize_t)strlen(pid);
	close(fd);
	return ok ? 0 : -1;
}

static void cgroups_setup(bool create)
{
	char path[128];
	int i;

	for (i = 0; i < opt.cgroups; i++) {
		cgroup_path(path, sizeof(path), i, NULL);
		if (create)
			mkdir(path, 0755);
		else
			rmdir(path);
	}
}

/*
 * The physical floor of one process: read every byte of [@mem, @mem + @len)
 * once through 64-bit loads; returns the time it took, in ns.
 */
static double read_once_ns(const char *mem, size_t len)
{
	const uint64_t *w = (const uint64_t *)mem;
	size_t i, n = len / sizeof(*w);
	struct timespec a, b;
	uint64_t sum = 0;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (i = 0; i < n; i++)
		sum += w[i];
	floor_sink = sum;	/* before the second clock read */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	return (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
}

/*
 * Child: map, fill and mark mergeable, say "ready" on @ready_fd, then hold
 * the memory until @hold_fd reaches EOF (the parent closed it or died).
 * With @go_fd >= 0 (the physical floor), first wait for one byte of @go_fd,
 * read the whole region once and write the time it took (ns, a double) to
 * @floor_fd; EOF on @go_fd skips that.  Each child reads one byte of
 * @go_fd, and the parent writes the next only once the last time came, so
 * the processes read one after the other.
 * mappers: a 'w' read from @hold_fd instead makes the child rewrite its
 * memory ('d'; process 0 leaves its last page 'e') and say "ready" again;
 * it then holds the memory until @hold2_fd reaches EOF.  Each child reads
 * one byte of @hold_fd, so one 'w' per child reaches every child once.
 */
static int run_child(unsigned int proc, int ready_fd, int hold_fd,
		     int hold2_fd, int go_fd, int floor_fd)
{
	size_t len = opt.mib << 20;
	char *raw, *mem, byte;
	double ns;

	/* Before the first madvise: KSM records the cgroup then. */
	if (opt.cgroups && join_cgroup(proc)) {
		perror("ksm_bench: join cgroup");
		return 1;
	}

	raw = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("ksm_bench: mmap");
		return 1;
	}
	/* 2 MiB aligned, so that THP=always can back it with huge pages */
	mem = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	if (madvise(mem, len, MADV_MERGEABLE)) {
		perror("ksm_bench: madvise(MADV_MERGEABLE)");
		return 1;
	}
	fill(mem, len / page_size, proc);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	/* the parent sees EOF if every other child is ready and one died */
	if (opt.wl != WL_MAPPERS)
		close(ready_fd);
	if (go_fd >= 0) {
		if (read(go_fd, &byte, 1) == 1) {
			ns = read_once_ns(mem, len);
			if (write(floor_fd, &ns, sizeof(ns)) != sizeof(ns))
				return 1;
		}
		close(go_fd);
		close(floor_fd);
	}
	if (read(hold_fd, &byte, 1) != 1 || byte != 'w')
		return 0;
	memset(mem, 'd', len);
	if (!proc)
		memset(mem + len - page_size, 'e', page_size);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	while (read(hold2_fd, &byte, 1) > 0)
		;
	return 0;
}

/*
 * Bounded wait for @n "ready" bytes on @fd; returns how many came (fewer
 * after -t seconds without one, or at EOF).
 */
static int wait_ready(int fd, int n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int got;
	char byte;

	for (got = 0; got < n; got++)
		if (poll(&pfd, 1, opt.timeout * 1000) <= 0 ||
		    read(fd, &byte, 1) != 1)
			break;
	return got;
}

/*
 * The physical floor, before ksmd starts: tell one process at a time (a
 * byte on @go_fd) to read its region once, and wait for its time on
 * @floor_fd before telling the next.  Returns the sum of the times over
 * @pages (ns per page), -1 if a process did not answer within -t seconds.
 */
static double measure_floor(int go_fd, int floor_fd, long pages)
{
	struct pollfd pfd = { .fd = floor_fd, .events = POLLIN };
	double ns, total = 0;
	int i;

	for (i = 0; i < opt.procs; i++) {
		if (write(go_fd, "f", 1) != 1 ||
		    poll(&pfd, 1, opt.timeout * 1000) <= 0 ||
		    read(floor_fd, &ns, sizeof(ns)) != sizeof(ns)) {
			fprintf(stderr, "ksm_bench: only %d of %d processes read their memory\n",
				i, opt.procs);
			return -1;
		}
		total += ns;
	}
	return total / pages;
}

/* Times each reader of measure_parallel() reads its part. */
#define PARALLEL_READS	4

/* One reader of measure_parallel(): its part of the memory. */
struct parallel_part {
	const char *mem;
	size_t len;
};

static void *parallel_read(void *arg)
{
	const struct parallel_part *part = arg;
	int i;

	for (i = 0; i < PARALLEL_READS; i++)
		read_once_ns(part->mem, part->len);
	return NULL;
}

/*
 * WL_PARALLEL: what two threads gain over one at reading memory, the work
 * of the physical floor, in this guest: a ceiling for two ksmd threads,
 * whatever the host lends to two vCPUs at once (QEMU's own threads and
 * the host's other work share its cores with them).
 */
static int measure_parallel(void)
{
	size_t len = opt.mib << 20;
	struct parallel_part parts[2] = {
		{ .len = len / 2 }, { .len = len / 2 },
	};
	struct parallel_part whole = { .len = len };
	double t0, one_ms, two_ms;
	pthread_t tid;
	char *mem;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("ksm_bench: mmap");
		return 1;
	}
	memset(mem, 1, len);
	whole.mem = mem;
	parts[0].mem = mem;
	parts[1].mem = mem + len / 2;

	t0 = now_ms();
	parallel_read(&whole);
	one_ms = now_ms() - t0;

	t0 = now_ms();
	if (pthread_create(&tid, NULL, parallel_read, &parts[1])) {
		fprintf(stderr, "ksm_bench: pthread_create failed\n");
		return 1;
	}
	parallel_read(&parts[0]);
	pthread_join(tid, NULL);
	two_ms = now_ms() - t0;

	munmap(mem, len);
	result("one_reader_ms", "%.0f", one_ms);
	result("two_readers_ms", "%.0f", two_ms);
	result("two_over_one", "%.3f", one_ms / two_ms);
	return 0;
}

/* Memory-bound loop: stream over 64 MiB, count bytes in *@counter. */
static int run_streamer(volatile uint64_t *counter, int ready_fd)
{
	size_t len = 64UL << 20, n = len / sizeof(uint64_t), i;
	uint64_t *buf = malloc(len), x = 1;

	if (!buf)
		return 1;
	memset(buf, 1, len);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	for (;;) {
		for (i = 0; i < n; i += 8) {
			x += buf[i];
			buf[i] = x;
			if (!(i & 0xffff))
				*counter += 0x10000 * sizeof(uint64_t);
		}
	}
	return 0;
}

struct sample {
	double t, cpu;
	long sharing, saved, scans, scanned;
};

static void take_sample(struct sample *s, double t0, double cpu0, long scans0)
{
	s->t = now_ms() - t0;
	s->scans = ksm_read("full_scans") - scans0;
	s->sharing = ksm_read("pages_sharing");
	s->saved = s->sharing + ksm_read("ksm_zero_pages");
	s->cpu = ksmd_cpu_ms() - cpu0;
	s->scanned = ksm_read("pages_scanned");
	if (opt.verbose)
		printf("BENCHSAMPLE %s %.0f %ld %ld %.0f %ld\n", opt.label,
		       s->t, s->sharing, s->saved, s->cpu, s->scans);
}

static double mib(long pages)
{
	return pages * (double)page_size / (1 << 20);
}

/*
 * Run ksmd for opt.scans full scans over random pages; @floor_ns: the
 * physical floor per page (<= 0: none).
 */
static int measure_nodups(long pages, long long slab0, double floor_ns)
{
	long scans0 = ksm_read("full_scans"), scanned0 = ksm_read("pages_scanned");
	double cpu0 = ksmd_cpu_ms(), t0 = now_ms();
	long long slab;
	struct sample s;
	long scanned;
	double ns;

	ksm_write("run", "1");
	do {
		sleep_ms(opt.interval_ms);
		take_sample(&s, t0, cpu0, scans0);
	} while (s.scans < opt.scans && s.t < opt.timeout * 1e3);
	scanned = ksm_read("pages_scanned") - scanned0;
	slab = ksm_slab_bytes();
	ksm_write("run", "0");
	result("pages", "%ld", pages);
	result("full_scans", "%ld", s.scans);
	result("timeout", "%d", s.scans < opt.scans);
	result("pages_scanned", "%ld", scanned);
	result("cpu_ms", "%.0f", s.cpu);
	result("elapsed_ms", "%.0f", s.t);
	if (scanned > 0) {
		ns = s.cpu * 1e6 / scanned;
		result("ns_per_page", "%.1f", ns);
		result("pages_per_sec", "%.0f", scanned * 1e3 / s.t);
		if (floor_ns > 0 && ns > 0)
			result("nodup_over_floor", "%.2f", ns / floor_ns);
		else
			result("nodup_over_floor", "-");
	}
	if (slab >= 0 && slab0 >= 0)
		result("meta_bytes_per_page", "%.1f",
		       (double)(slab - slab0) / pages);
	return s.scans < opt.scans;
}

/*
 * rescan_ns_per_page (see the top of the file) from the @n samples @ss of
 * a run that converged at full scan @conv_scan (0: did not).
 */
static void result_rescan(const struct sample *ss, size_t n, int conv_scan,
			  long pages)
{
	size_t j;
	long scanned;

	for (j = 0; conv_scan && j < n; j++)
		if (ss[j].scans >= conv_scan)
			break;
	if (!conv_scan || j == n) {
		result("rescan_ns_per_page", "-");
		return;
	}
	scanned = ss[n - 1].scanned - ss[j].scanned;
	if (scanned < pages / 2 || ss[n - 1].cpu <= ss[j].cpu)
		result("rescan_ns_per_page", "-");
	else
		result("rescan_ns_per_page", "%.1f",
		       (ss[n - 1].cpu - ss[j].cpu) * 1e6 / scanned);
}

/*
 * Run ksmd until the savings did not change over a whole full scan (at
 * least 3 full scans, at most opt.scans).  Converged: the first full scan
 * at whose end the savings were within 0.1% of the final figure; CPU and
 * time to converge: at the first sample that reached it.  @floor_ns: the
 * physical floor per page (<= 0: none).
 */
static int measure_converge(long pages, long long slab0, double floor_ns)
{
	long scans0 = ksm_read("full_scans"), last_scan = 0, final;
	double cpu0 = ksmd_cpu_ms(), t0 = now_ms();
	size_t cap = 1024, n = 0, i;
	struct sample *ss = malloc(cap * sizeof(*ss));
	long *at_end = calloc(opt.scans + 2, sizeof(long));
	int timed_out = 0, conv_scan = 0, k;
	long long slab;

	if (!ss || !at_end)
		return 1;
	ksm_write("run", "1");
	for (;;) {
		sleep_ms(opt.interval_ms);
		if (n == cap) {
			cap *= 2;
			ss = realloc(ss, cap * sizeof(*ss));
			if (!ss)
				return 1;
		}
		take_sample(&ss[n], t0, cpu0, scans0);
		while (last_scan < ss[n].scans && last_scan < opt.scans)
			at_end[++last_scan] = ss[n].saved;
		n++;
		if (last_scan >= 3 && at_end[last_scan] == at_end[last_scan - 1])
			break;
		if (last_scan >= opt.scans)
			break;
		if (ss[n - 1].t > opt.timeout * 1e3) {
			timed_out = 1;
			break;
		}
	}
	slab = ksm_slab_bytes();
	final = ss[n - 1].saved;
	for (k = 1; k <= last_scan; k++)
		if (at_end[k] >= final - final / 1000) {
			conv_scan = k;
			break;
		}
	for (i = 0; i < n; i++)
		if (ss[i].saved >= final - final / 1000)
			break;
	if (i == n)
		i = n - 1;
	result("pages", "%ld", pages);
	result("full_scans", "%ld", ss[n - 1].scans);
	result("timeout", "%d", timed_out);
	result("saved_mib", "%.1f", mib(final));
	result("pages_sharing", "%ld", ss[n - 1].sharing);
	result("pages_shared", "%ld", ksm_read("pages_shared"));
	result("ksm_zero_pages", "%ld", ksm_read("ksm_zero_pages"));
	for (k = 1; k <= last_scan; k++) {
		char key[32];

		snprintf(key, sizeof(key), "saved_mib_scan%d", k);
		result(key, "%.1f", mib(at_end[k]));
	}
	if (final > 0) {
		result("converge_scans", "%d", conv_scan ? conv_scan : -1);
		result("converge_cpu_ms", "%.0f", ss[i].cpu);
		result("converge_ms", "%.0f", ss[i].t);
	} else {
		result("converge_scans", "-");
		result("converge_cpu_ms", "-");
		result("converge_ms", "-");
	}
	/* ksmd CPU per page merged when it converged, over the floor */
	if (final > 0 && floor_ns > 0 && ss[i].cpu > 0 && ss[i].saved > 0)
		result("merge_over_floor", "%.2f",
		       ss[i].cpu * 1e6 / ss[i].saved / floor_ns);
	else
		result("merge_over_floor", "-");
	result("cpu_ms", "%.0f", ss[n - 1].cpu);
	result_rescan(ss, n, conv_scan, pages);
	if (slab >= 0 && slab0 >= 0)
		result("meta_bytes_per_page", "%.1f",
		       (double)(slab - slab0) / pages);
	ksm_write("run", "0");
	free(ss);
	free(at_end);
	return timed_out;
}

static double stream_rate(volatile uint64_t *counter, int secs)
{
	uint64_t c0 = *counter;
	double t0 = now_ms();

	sleep_ms(secs * 1000);
	return (*counter - c0) / ((now_ms() - t0) / 1e3) / (1 << 20);
}

static int measure_corunner(volatile uint64_t *counter)
{
	long scans0 = ksm_read("full_scans");
	double idle, busy, cpu0, t0, cpu;

	idle = stream_rate(counter, opt.window);
	cpu0 = ksmd_cpu_ms();
	t0 = now_ms();
	ksm_write("run", "1");
	busy = stream_rate(counter, opt.window);
	cpu = ksmd_cpu_ms() - cpu0;
	t0 = now_ms() - t0;
	ksm_write("run", "0");
	result("idle_mib_per_sec", "%.1f", idle);
	result("busy_mib_per_sec", "%.1f", busy);
	result("throughput_ratio", "%.3f", idle > 0 ? busy / idle : 0);
	result("ksmd_cpu_pct", "%.0f", cpu * 100 / t0);
	result("full_scans", "%ld", ksm_read("full_scans") - scans0);
	return 0;
}

/* pages_sharing once @n pages of one content have merged. */
static long sharing_of(long n)
{
	long max = ksm_read("max_page_sharing");

	/* a lone page left over when all KSM pages are full stays unmerged */
	if (max < 2)
		max = 256;
	return n - (n + max - 1) / max;
}

/* One step of a workload: what it took, from ksmd's start. */
struct step {
	double ms;
	double cpu_ms;
	long scans;
	bool done;
};

/*
 * Start ksmd, sample until pages_sharing (+ pages_shared with @all_mapped:
 * pages mapped to KSM pages) reached @target after at least @min_scans full
 * scans (@merged) and, with @scanned, until @nr_scans full scans passed,
 * then stop it.  @min_scans keeps counters not yet updated for rewritten
 * pages from passing for a merge.  Returns 1 on timeout.
 */
static int ksmd_run_until(long target, bool all_mapped, long min_scans,
			  struct step *merged, long nr_scans,
			  struct step *scanned)
{
	long scans0 = ksm_read("full_scans"), mapped;
	double cpu0 = ksmd_cpu_ms(), t0 = now_ms();
	struct sample s;

	merged->done = false;
	if (scanned)
		scanned->done = false;
	ksm_write("run", "1");
	for (;;) {
		sleep_ms(opt.interval_ms);
		take_sample(&s, t0, cpu0, scans0);
		mapped = s.sharing;
		if (all_mapped)
			mapped += ksm_read("pages_shared");
		if (!merged->done && mapped >= target && s.scans >= min_scans)
			*merged = (struct step){ s.t, s.cpu, s.scans, true };
		if (scanned && !scanned->done && s.scans >= nr_scans)
			*scanned = (struct step){ s.t, s.cpu, s.scans, true };
		if (merged->done && (!scanned || scanned->done))
			break;
		if (s.t > opt.timeout * 1e3)
			break;
	}
	ksm_write("run", "0");
	return !merged->done || (scanned && !scanned->done);
}

/* NAME_ms, NAME_cpu_ms and NAME_scans of a step ("-" if not reached). */
static void step_result(const char *name, const struct step *st)
{
	static const char *const keys[] = { "ms", "cpu_ms", "scans" };
	double v[] = { st->ms, st->cpu_ms, st->scans };
	char key[64];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		snprintf(key, sizeof(key), "%s_%s", name, keys[i]);
		if (st->done)
			result(key, "%.0f", v[i]);
		else
			result(key, "-");
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Write run=2 and return how long the write took, in ms; -1 if it failed
 * or did not return within -t seconds (SIGALRM interrupts it).
 */
static double ksm_unmerge_timed(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	double t0, ms = -1;
	int fd = open(KSM_DIR "run", O_WRONLY);

	if (fd < 0)
		return -1;
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART */
	alarm(opt.timeout);
	t0 = now_ms();
	if (write(fd, "2", 1) == 1)
		ms = now_ms() - t0;
	else
		perror("ksm_bench: run=2");
	alarm(0);
	close(fd);
	return ms;
}

/*
 * mappers: (a) merge everything, (b) the two full scans after every
 * process rewrote its memory, (c) until it merged again, (d) run=2.  (b)
 * and (c) count from the restart of ksmd after the rewrite.
 */
static int measure_mappers(long pages, int procs, int hold_fd, int ready_fd)
{
	struct step merge, rescan, remerge;
	double cpu0, tcpu0, ms;
	int i, timed_out;

	result("pages", "%ld", pages);
	result("max_page_sharing", "%ld", ksm_read("max_page_sharing"));
	timed_out = ksmd_run_until(sharing_of(pages), false, 0, &merge, 0,
				   NULL);
	step_result("merge", &merge);
	result("merge_ksm_pages", "%ld", ksm_read("pages_shared"));
	if (timed_out || ksmd_wait_idle())
		goto timeout;

	/* The rewrite itself (copy-on-write faults) is not timed. */
	for (i = 0; i < procs; i++)
		if (write(hold_fd, "w", 1) != 1)
			return 1;
	if (wait_ready(ready_fd, procs) < procs) {
		fprintf(stderr, "ksm_bench: not every process rewrote its memory\n");
		goto timeout;
	}
	timed_out = ksmd_run_until(sharing_of(pages - 1), false, 1, &remerge,
				   2, &rescan);
	step_result("rescan", &rescan);
	step_result("remerge", &remerge);
	result("remerge_ksm_pages", "%ld", ksm_read("pages_shared"));
	if (timed_out || ksmd_wait_idle())
		goto timeout;

	/* run=2 unmerges in the writer's context (and maybe in ksmd's) */
	cpu0 = ksmd_cpu_ms();
	tcpu0 = thread_cpu_ms();
	ms = ksm_unmerge_timed();
	if (ms < 0)
		goto timeout;
	result("run2_ms", "%.0f", ms);
	result("run2_ksmd_cpu_ms", "%.0f", ksmd_cpu_ms() - cpu0);
	result("run2_cpu_ms", "%.0f",
	       thread_cpu_ms() - tcpu0 + ksmd_cpu_ms() - cpu0);
	result("pages_sharing_after_run2", "%ld", ksm_read("pages_sharing"));
	/* The whole sequence: what a host that does all of it waits. */
	result("sequence_ms", "%.0f", merge.ms + remerge.ms + ms);
	result("timeout", "0");
	return 0;
timeout:
	result("timeout", "1");
	return 1;
}

static bool node_online(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return !access(path, F_OK);
}

/* VMAs of this process that overlap [@mem, @mem + @len); -1 on error. */
static long count_vmas(char *mem, size_t len)
{
	unsigned long start, end, lo = (uintptr_t)mem, hi = lo + len;
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start < hi &&
		    end > lo)
			n++;
	fclose(f);
	return n;
}

struct frame {
	uint64_t pfn;
	size_t idx;
};

static int frame_cmp(const void *a, const void *b)
{
	const struct frame *x = a, *y = b;

	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Whether the frame @pfn is a KSM page (/proc/kpageflags); -1: unknown. */
static int pfn_is_ksm(int fd, uint64_t pfn)
{
	uint64_t flags;

	if (fd < 0 || pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) !=
	    sizeof(flags))
		return -1;
	return !!(flags & (1ULL << KPF_KSM));
}

/*
 * The KSM pages behind the @n pages at @mem: one address of each in
 * @addrs, and in @grp[i] the index in @addrs of the one page i maps (-1:
 * not a KSM page).  Returns how many, -1 on error.
 */
static long find_ksm_pages(char *mem, size_t n, void **addrs, int *grp)
{
	uint64_t *pm = calloc(n, sizeof(*pm));
	struct frame *fr = calloc(n, sizeof(*fr));
	int fd = open("/proc/self/pagemap", O_RDONLY), kfd;
	size_t i, j, bytes = n * sizeof(*pm);
	long k = -1;
	int ksm;

	if (!pm || !fr || fd < 0)
		goto out;
	if (pread(fd, pm, bytes, (uintptr_t)mem / page_size * sizeof(*pm)) !=
	    (ssize_t)bytes)
		goto out;
	for (i = 0; i < n; i++) {
		if (!(pm[i] >> PM_PRESENT_BIT) || !(pm[i] & PM_PFN_MASK)) {
			fprintf(stderr, "ksm_bench: no PFN in pagemap for page %zu\n",
				i);
			goto out;
		}
		fr[i].pfn = pm[i] & PM_PFN_MASK;
		fr[i].idx = i;
	}
	qsort(fr, n, sizeof(*fr), frame_cmp);
	kfd = open("/proc/kpageflags", O_RDONLY);
	k = 0;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && fr[j].pfn == fr[i].pfn; j++)
			;
		/*
		 * A frame mapped more than once here; kpageflags cannot tell
		 * alone (6.12 sets KPF_KSM on every anonymous page).
		 */
		ksm = pfn_is_ksm(kfd, fr[i].pfn);
		ksm = ksm ? j - i > 1 : 0;
		if (ksm)
			addrs[k] = mem + fr[i].idx * page_size;
		for (; i < j; i++)
			grp[fr[i].idx] = ksm ? k : -1;
		k += ksm;
	}
	if (kfd >= 0)
		close(kfd);
out:
	if (fd >= 0)
		close(fd);
	free(pm);
	free(fr);
	return k;
}

/*
 * Move KSM page i of @k (at @addrs[i]) to @node[i], one move_pages() each,
 * adding the time to *@ms; then check that every page of @grp is on the
 * node of its KSM page.  Returns the pages found elsewhere, -1 on error or
 * timeout (@deadline, now_ms()).
 */
static long move_ksm_pages(char *mem, size_t n, void **addrs, const int *grp,
			   long k, const int *node, double *ms, double deadline)
{
	void **all = malloc(n * sizeof(*all));
	int *status = malloc(n * sizeof(*status));
	long i, r, off = -1;
	double t0;
	int st;

	if (!all || !status)
		goto out;
	for (i = 0; i < k; i++) {
		st = -1;
		t0 = now_ms();
		r = syscall(SYS_move_pages, 0, 1UL, &addrs[i], &node[i], &st,
			    MPOL_MF_MOVE_ALL);
		*ms += now_ms() - t0;
		if (r < 0) {
			perror("ksm_bench: move_pages");
			goto out;
		}
		if (r || st != node[i])
			fprintf(stderr, "ksm_bench: KSM page %ld: status %d, not node %d\n",
				i, st, node[i]);
		if (now_ms() > deadline) {
			fprintf(stderr, "ksm_bench: moving KSM pages timed out\n");
			goto out;
		}
	}
	for (i = 0; i < (long)n; i++)
		all[i] = mem + i * page_size;
	if (syscall(SYS_move_pages, 0, n, all, NULL, status, 0)) {
		perror("ksm_bench: move_pages (query)");
		goto out;
	}
	off = 0;
	for (i = 0; i < (long)n; i++)
		if (grp[i] >= 0 && status[i] != node[grp[i]])
			off++;
out:
	free(all);
	free(status);
	return off;
}

/*
 * vmas: opt.pages pages of one content in as many VMAs of one anon_vma
 * (every other page read-only), merged, then every KSM page moved to the
 * other node and back.
 */
static int measure_vmas(void)
{
	size_t n = opt.pages, len = n * page_size, i;
	int *grp = NULL, *there = NULL, *back = NULL, ret = 1;
	double deadline, ms = 0;
	void **addrs = NULL;
	long vmas, k, off, misplaced = 0;
	struct step merge;
	char *mem;

	if (!node_online(0) || !node_online(1)) {
		result("na", "no_numa");
		return 0;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("ksm_bench: mmap");
		return 1;
	}
	memset(mem, 'v', len);
	if (madvise(mem, len, MADV_MERGEABLE)) {
		perror("ksm_bench: madvise(MADV_MERGEABLE)");
		goto out;
	}
	/* split after the first fault: every piece keeps the one anon_vma */
	for (i = 1; i < n; i += 2)
		if (mprotect(mem + i * page_size, page_size, PROT_READ)) {
			perror("ksm_bench: mprotect");
			goto out;
		}
	vmas = count_vmas(mem, len);
	result("pages", "%zu", n);
	result("vmas", "%ld", vmas);
	if (vmas != (long)n) {
		fprintf(stderr, "ksm_bench: %ld VMAs, not %zu\n", vmas, n);
		goto out;
	}

	if (ksmd_run_until(n, true, 0, &merge, 0, NULL) || ksmd_wait_idle()) {
		step_result("merge", &merge);
		result("timeout", "1");
		goto out;
	}
	step_result("merge", &merge);

	grp = malloc(n * sizeof(*grp));
	addrs = malloc(n * sizeof(*addrs));
	there = malloc(n * sizeof(*there));
	back = malloc(n * sizeof(*back));
	if (!grp || !addrs || !there || !back)
		goto out;
	k = find_ksm_pages(mem, n, addrs, grp);
	if (k <= 0) {
		fprintf(stderr, "ksm_bench: no KSM page found\n");
		goto out;
	}
	result("ksm_pages", "%ld", k);
	/* where each KSM page is now: there is the other node */
	if (syscall(SYS_move_pages, 0, (unsigned long)k, addrs, NULL, back, 0)) {
		perror("ksm_bench: move_pages (query)");
		goto out;
	}
	for (i = 0; i < (size_t)k; i++) {
		if (back[i] < 0) {
			fprintf(stderr, "ksm_bench: KSM page %zu: status %d\n",
				i, back[i]);
			goto out;
		}
		there[i] = back[i] ? 0 : 1;
	}

	deadline = now_ms() + opt.timeout * 1e3;
	off = move_ksm_pages(mem, n, addrs, grp, k, there, &ms, deadline);
	if (off >= 0) {
		result("misplaced_there", "%ld", off);
		misplaced = off;
		off = move_ksm_pages(mem, n, addrs, grp, k, back, &ms,
				     deadline);
	}
	if (off < 0) {
		result("timeout", "1");
		goto out;
	}
	result("misplaced_back", "%ld", off);
	result("moves", "%ld", 2 * k);
	result("move_ms", "%.1f", ms);
	result("move_ms_per_ksm_page", "%.3f", ms / (2 * k));
	result("timeout", "0");
	/* a page left behind: the times are not those of a whole move */
	ret = misplaced + off > 0;
out:
	munmap(mem, len);
	free(grp);
	free(addrs);
	free(there);
	free(back);
	return ret;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-p PROCS] [-m MIB] [-s PAGES_TO_SCAN] [-S SLEEP_MS] [-n SCANS]\n"
		"       [-t SECS] [-i MSECS] [-d SECS] [-N PAGES] [-k KNOB=VAL]\n"
		"       [-g CGROUPS] [-l LABEL] [-v]\n"
		"       nodups|alldups|mix|pairs|corunner|mappers|vmas|parallel|reset\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	int ready[2], hold[2], hold2[2], c, i, ret = 0, got;
	int go[2] = { -1, -1 }, fl[2] = { -1, -1 };
	volatile uint64_t *counter = NULL;
	double t0, floor_ns = -1;
	pid_t streamer = 0;
	long long slab0;
	long pages;

	page_size = sysconf(_SC_PAGESIZE);
	clk_tck = sysconf(_SC_CLK_TCK);
	while ((c = getopt(argc, argv, "p:m:s:S:n:t:i:d:N:k:g:l:v")) != -1) {
		switch (c) {
		case 'p':
			opt.procs = atoi(optarg);
			break;
		case 'm':
			opt.mib = strtoul(optarg, NULL, 0);
			break;
		case 's':
			opt.pages_to_scan = atol(optarg);
			break;
		case 'S':
			opt.sleep_ms = atol(optarg);
			break;
		case 'n':
			opt.scans = atoi(optarg);
			break;
		case 't':
			opt.timeout = atoi(optarg);
			break;
		case 'i':
			opt.interval_ms = atoi(optarg);
			break;
		case 'd':
			opt.window = atoi(optarg);
			break;
		case 'N':
			opt.pages = atol(optarg);
			break;
		case 'k':
			if (opt.nknobs == MAX_KNOBS || !strchr(optarg, '='))
				usage(argv[0]);
			opt.knobs[opt.nknobs++] = optarg;
			break;
		case 'g':
			opt.cgroups = atoi(optarg);
			break;
		case 'l':
			opt.label = optarg;
			break;
		case 'v':
			opt.verbose = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc - 1)
		usage(argv[0]);
	for (i = 0; i <= WL_RESET; i++)
		if (!strcmp(argv[optind], wl_names[i]))
			break;
	if (i > WL_RESET || opt.procs < 1 || opt.mib < 1 || opt.interval_ms < 1 ||
	    opt.pages < 1)
		usage(argv[0]);
	opt.wl = i;
	if (!opt.label)
		opt.label = wl_names[opt.wl];
	if (opt.scans < 0)
		opt.scans = opt.wl == WL_NODUPS ? 2 : 12;

	if (access(KSM_DIR "run", W_OK)) {
		fprintf(stderr, "ksm_bench: no writable " KSM_DIR "run\n");
		return 1;
	}
	if (ksm_reset()) {
		fprintf(stderr, "ksm_bench: KSM reset failed\n");
		return 1;
	}
	if (opt.wl == WL_RESET)
		return 0;
	ksm_write_long("pages_to_scan", opt.pages_to_scan);
	ksm_write_long("sleep_millisecs", opt.sleep_ms);
	for (i = 0; i < opt.nknobs; i++) {
		char knob[64], *eq = strchr(opt.knobs[i], '=');

		snprintf(knob, sizeof(knob), "%.*s", (int)(eq - opt.knobs[i]),
			 opt.knobs[i]);
		if (ksm_write(knob, eq + 1))
			return 1;
	}
	/* after the knobs: a thread count knob may start more ksmd threads */
	find_ksmd();
	if (!nr_ksmd) {
		fprintf(stderr, "ksm_bench: no ksmd thread found\n");
		return 1;
	}
	result("ksmd_threads", "%d", nr_ksmd);

	if (opt.wl == WL_PARALLEL)
		return measure_parallel();
	if (opt.wl == WL_VMAS) {
		ret = measure_vmas();
		ksm_reset();
		return ret;
	}
	if (pipe(ready) || pipe(hold) || pipe(hold2)) {
		perror("ksm_bench: pipe");
		return 1;
	}
	/* the physical floor: go[] to the processes, fl[] their times */
	if ((opt.wl == WL_NODUPS || opt.wl == WL_ALLDUPS || opt.wl == WL_MIX ||
	     opt.wl == WL_PAIRS) && (pipe(go) || pipe(fl))) {
		perror("ksm_bench: pipe");
		return 1;
	}
	if (opt.wl == WL_CORUNNER) {
		counter = mmap(NULL, sizeof(*counter), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (counter == MAP_FAILED) {
			perror("ksm_bench: mmap");
			return 1;
		}
		fflush(stdout);
		streamer = fork();
		if (streamer < 0) {
			perror("ksm_bench: fork");
			return 1;
		}
		if (!streamer) {
			close(ready[0]);
			close(hold[0]);
			close(hold[1]);
			close(hold2[0]);
			close(hold2[1]);
			_exit(run_streamer(counter, ready[1]));
		}
	}
	cgroups_setup(true);
	t0 = now_ms();
	for (i = 0; i < opt.procs; i++) {
		pid_t pid;

		fflush(stdout);	/* children must not inherit buffered lines */
		pid = fork();
		if (pid < 0) {
			perror("ksm_bench: fork");
			return 1;
		}
		if (!pid) {
			close(ready[0]);
			close(hold[1]);
			close(hold2[1]);
			/* no EOF on go[0] while any process holds go[1] */
			if (go[1] >= 0) {
				close(go[1]);
				close(fl[0]);
			}
			_exit(run_child(i, ready[1], hold[0], hold2[0], go[0],
					fl[1]));
		}
	}
	close(ready[1]);
	close(hold[0]);
	close(hold2[0]);
	if (go[1] >= 0) {
		close(go[0]);
		close(fl[1]);
	}

	/* bounded wait for every process to fill its memory */
	got = wait_ready(ready[0], opt.procs + !!streamer);
	if (got < opt.procs + !!streamer) {
		fprintf(stderr, "ksm_bench: only %d of %d processes filled their memory\n",
			got, opt.procs + !!streamer);
		ret = 1;
		goto out;
	}
	pages = opt.procs * (long)((opt.mib << 20) / page_size);
	result("fill_ms", "%.0f", now_ms() - t0);
	result("anon_huge_mib", "%ld", meminfo_kb("AnonHugePages") / 1024);
	if (go[1] >= 0) {
		floor_ns = measure_floor(go[1], fl[0], pages);
		if (floor_ns > 0)
			result("floor_ns_per_page", "%.1f", floor_ns);
		else
			result("floor_ns_per_page", "-");
	}
	slab0 = ksm_slab_bytes();

	switch (opt.wl) {
	case WL_NODUPS:
		ret = measure_nodups(pages, slab0, floor_ns);
		break;
	case WL_ALLDUPS:
	case WL_MIX:
	case WL_PAIRS:
		ret = measure_converge(pages, slab0, floor_ns);
		break;
	case WL_CORUNNER:
		ret = measure_corunner(counter);
		break;
	case WL_MAPPERS:
		ret = measure_mappers(pages, opt.procs, hold[1], ready[0]);
		break;
	default:
		break;
	}
out:
	close(hold[1]);
	close(hold2[1]);
	if (go[1] >= 0) {
		close(go[1]);
		close(fl[0]);
	}
	if (streamer)
		kill(streamer, SIGKILL);
	while (wait(NULL) > 0)
		;
	cgroups_setup(false);
	ksm_reset();
	return ret;
}
