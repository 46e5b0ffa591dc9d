// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_stat - show what Kernel Samepage Merging saves, at a glance.
 *
 *   ksm_stat                   global counters, then one row per process
 *                              that takes part (has mergeable memory or
 *                              pages KSM knows of), sorted by profit
 *   ksm_stat --watch [SECS]    the same, reprinted every SECS seconds
 *                              (default 1)
 *   ksm_stat --table           one line of global figures per interval
 *                              (--watch 1 unless given)
 *   ksm_stat --count N         with --watch: stop after N updates
 *   ksm_stat --cgroups         also one row per cgroup (v2) whose processes
 *                              take part, from the KSM lines of its
 *                              memory.stat (hierarchical: a parent's row
 *                              holds its children's)
 *   ksm_stat --csv FILE        also append "time,pages_sharing,saved_mib"
 *                              to FILE, once, or when the watch starts and
 *                              at every update (time in seconds since the
 *                              epoch), for plotting
 *
 * Short options: -w [SECS] (the argument must be attached: -w5), -t,
 * -n N, -c FILE, -g.  Everything comes from /sys/kernel/mm/ksm and
 * /proc/PID/ksm_stat; the DOMAIN column from /sys/kernel/debug/ksm/mms
 * (a header line, then "PID DOMAIN" rows) where the kernel has that file,
 * "-" elsewhere.
 */
#define _GNU_SOURCE		/* nftw() */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KSM_DIR "/sys/kernel/mm/ksm/"
#define KSM_MMS "/sys/kernel/debug/ksm/mms"
#define CGROUP_DIR "/sys/fs/cgroup"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct proc_saving {
	int pid;
	char comm[32];
	char domain[32];
	long rmap_items;
	long zero_pages;
	long merging_pages;
	long profit;
	int merge_any;		/* 1 yes, 0 no, -1 not reported */
	int mergeable;		/* has mergeable memory: 1 yes, 0 no/unknown */
};

struct mm_domain {
	int pid;
	char domain[32];
};

/* The KSM lines of one cgroup's memory.stat, in bytes. */
struct cgroup_saving {
	long merging;
	long zero;
	long tracked;
	long profit;
};

static struct mm_domain *domains;
static size_t nr_domains;
static int show_cgroup_rows;

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static long ksm_counter(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	return read_long(path);
}

static double mib(long pages)
{
	return pages * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

/* What KSM saves: duplicates mapped to a KSM page, and KSM zero pages. */
static double saved_mib(void)
{
	long zero = ksm_counter("ksm_zero_pages");

	return mib(ksm_counter("pages_sharing") + (zero > 0 ? zero : 0));
}

/* utime + stime of the ksmd thread, in clock ticks; -1 if not found. */
static long ksmd_ticks(void)
{
	static int ksmd_pid;
	char path[300], buf[512], *p;
	unsigned long utime, stime;
	struct dirent *d;
	FILE *f;
	DIR *dir;

	if (!ksmd_pid) {
		dir = opendir("/proc");
		if (!dir)
			return -1;
		while ((d = readdir(dir))) {
			if (!isdigit(d->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			if (fgets(buf, sizeof(buf), f) && !strcmp(buf, "ksmd\n"))
				ksmd_pid = atoi(d->d_name);
			fclose(f);
			if (ksmd_pid)
				break;
		}
		closedir(dir);
		if (!ksmd_pid)
			return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", ksmd_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p)
		return -1;
	p = strrchr(buf, ')');
	/* Fields after the comm: state is 3rd; utime, stime are 14th, 15th. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &utime, &stime) != 2)
		return -1;
	return utime + stime;
}

/*
 * Reread the DOMAIN of each mm from KSM_MMS.  Without the file (older
 * kernel, debugfs not mounted, not root) every process shows "-".
 */
static void load_domains(void)
{
	char line[256], domain[32];
	size_t cap = nr_domains;
	FILE *f;
	int pid;

	nr_domains = 0;
	f = fopen(KSM_MMS, "r");
	if (!f)
		return;
	/* The first line is a header. */
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%d %31s", &pid, domain) != 2)
			continue;
		if (nr_domains == cap) {
			cap = cap ? 2 * cap : 64;
			domains = realloc(domains, cap * sizeof(*domains));
			if (!domains) {
				perror("ksm_stat");
				exit(1);
			}
		}
		domains[nr_domains].pid = pid;
		snprintf(domains[nr_domains].domain,
			 sizeof(domains[nr_domains].domain), "%s", domain);
		nr_domains++;
	}
	fclose(f);
}

static const char *domain_of(int pid)
{
	size_t i;

	for (i = 0; i < nr_domains; i++)
		if (domains[i].pid == pid)
			return domains[i].domain;
	return "-";
}

/* Lines are "key value" or, for the yes/no ones, "key: value". */
static int read_proc_saving(int pid, struct proc_saving *ps)
{
	char path[64], line[128], key[64], value[32];
	FILE *f;

	memset(ps, 0, sizeof(*ps));
	ps->pid = pid;
	ps->merge_any = -1;
	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63[^: ]%*[: ]%31s", key, value) != 2)
			continue;
		if (!strcmp(key, "ksm_rmap_items"))
			ps->rmap_items = atol(value);
		else if (!strcmp(key, "ksm_zero_pages"))
			ps->zero_pages = atol(value);
		else if (!strcmp(key, "ksm_merging_pages"))
			ps->merging_pages = atol(value);
		else if (!strcmp(key, "ksm_process_profit"))
			ps->profit = atol(value);
		else if (!strcmp(key, "ksm_merge_any"))
			ps->merge_any = !strcmp(value, "yes");
		else if (!strcmp(key, "ksm_mergeable"))
			ps->mergeable = !strcmp(value, "yes");
	}
	fclose(f);

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(ps->comm, sizeof(ps->comm), f))
			ps->comm[strcspn(ps->comm, "\n")] = '\0';
		fclose(f);
	}
	snprintf(ps->domain, sizeof(ps->domain), "%s", domain_of(pid));
	return 0;
}

static int by_profit(const void *a, const void *b)
{
	const struct proc_saving *x = a, *y = b;

	if (x->profit != y->profit)
		return x->profit < y->profit ? 1 : -1;
	return x->pid - y->pid;
}

static void show_processes(void)
{
	struct proc_saving *list = NULL, ps;
	size_t nr = 0, cap = 0, i;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir)
		return;
	load_domains();
	while ((d = readdir(dir))) {
		if (!isdigit(d->d_name[0]) || read_proc_saving(atoi(d->d_name), &ps))
			continue;
		if (!ps.rmap_items && !ps.zero_pages && !ps.merging_pages &&
		    !ps.mergeable && ps.merge_any != 1)
			continue;
		if (nr == cap) {
			cap = cap ? 2 * cap : 64;
			list = realloc(list, cap * sizeof(*list));
			if (!list) {
				perror("ksm_stat");
				exit(1);
			}
		}
		list[nr++] = ps;
	}
	closedir(dir);

	qsort(list, nr, sizeof(*list), by_profit);
	printf("%7s %-16s %-12s %9s %9s %9s %4s %10s\n", "PID", "COMM",
	       "DOMAIN", "MERGING", "ZERO", "TRACKED", "ANY", "PROFIT_MiB");
	for (i = 0; i < nr; i++)
		printf("%7d %-16s %-12s %9ld %9ld %9ld %4s %10.1f\n",
		       list[i].pid, list[i].comm, list[i].domain,
		       list[i].merging_pages, list[i].zero_pages,
		       list[i].rmap_items,
		       list[i].merge_any < 0 ? "-" :
		       list[i].merge_any ? "yes" : "no",
		       list[i].profit / 1048576.0);
	if (!nr)
		printf("(no process has mergeable memory)\n");
	free(list);
}

static void show_global(void)
{
	static const char * const names[] = {
		"run", "pages_shared", "pages_sharing", "pages_unshared",
		"pages_volatile", "ksm_zero_pages", "full_scans",
		"general_profit",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		printf("%-16s %ld\n", names[i], ksm_counter(names[i]));
	printf("%-16s %.1f\n", "saved_MiB", saved_mib());
}

/* 0 if @dir's memory.stat has all four KSM lines, -1 if not. */
static int read_cgroup_saving(const char *dir, struct cgroup_saving *cs)
{
	char path[4096], key[64];
	int found = 0;
	long value;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &value) == 2) {
		if (!strcmp(key, "ksm_merging"))
			cs->merging = value, found |= 1;
		else if (!strcmp(key, "ksm_zero"))
			cs->zero = value, found |= 2;
		else if (!strcmp(key, "ksm_tracked"))
			cs->tracked = value, found |= 4;
		else if (!strcmp(key, "ksm_profit"))
			cs->profit = value, found |= 8;
	}
	fclose(f);
	return found == 15 ? 0 : -1;
}

static int nr_cgroup_rows;

static int show_cgroup(const char *path, const struct stat *sb, int type,
		       struct FTW *ftw)
{
	const char *name = path + strlen(CGROUP_DIR);
	long page = sysconf(_SC_PAGESIZE);
	struct cgroup_saving cs;

	(void)sb;
	(void)ftw;
	if (type != FTW_D || read_cgroup_saving(path, &cs))
		return 0;
	if (!cs.merging && !cs.zero && !cs.tracked)
		return 0;
	printf("%-32s %9ld %9ld %9ld %10.1f\n", *name ? name : "/",
	       cs.merging / page, cs.zero / page, cs.tracked / page,
	       cs.profit / 1048576.0);
	nr_cgroup_rows++;
	return 0;
}

static void show_cgroups(void)
{
	printf("%-32s %9s %9s %9s %10s\n", "CGROUP", "MERGING", "ZERO",
	       "TRACKED", "PROFIT_MiB");
	nr_cgroup_rows = 0;
	nftw(CGROUP_DIR, show_cgroup, 16, FTW_PHYS);
	if (!nr_cgroup_rows)
		printf("(no cgroup with KSM figures in %s/*/memory.stat)\n",
		       CGROUP_DIR);
}

static void show_view(void)
{
	show_global();
	printf("\n");
	show_processes();
	if (show_cgroup_rows) {
		printf("\n");
		show_cgroups();
	}
}

/* Append one sample; a new (empty) file gets the header first. */
static int append_csv(const char *path)
{
	struct timespec now;
	FILE *f = fopen(path, "a");

	if (!f) {
		fprintf(stderr, "ksm_stat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (ftell(f) == 0)
		fprintf(f, "time,pages_sharing,saved_mib\n");
	clock_gettime(CLOCK_REALTIME, &now);
	fprintf(f, "%ld.%03ld,%ld,%.2f\n", (long)now.tv_sec,
		now.tv_nsec / 1000000, ksm_counter("pages_sharing"),
		saved_mib());
	if (fclose(f)) {
		fprintf(stderr, "ksm_stat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void print_table_header(void)
{
	printf("%6s %12s %13s %9s %10s %8s\n", "TIME_S", "PAGES_SHARED",
	       "PAGES_SHARING", "SAVED_MiB", "FULL_SCANS", "KSMD_CPU%");
}

static int watch(unsigned int secs, long count, int table, const char *csv)
{
	long hz = sysconf(_SC_CLK_TCK), ticks = ksmd_ticks(), now;
	int clear = !table && isatty(STDOUT_FILENO);
	struct timespec t0, t;
	long n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The series starts where the watch starts. */
	if (csv && append_csv(csv))
		return 1;
	if (table)
		print_table_header();
	for (n = 0; count < 0 || n < count; n++) {
		sleep(secs);
		now = ksmd_ticks();
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (csv && append_csv(csv))
			return 1;
		if (table) {
			printf("%6ld %12ld %13ld %9.1f %10ld %8.1f\n",
			       (long)(t.tv_sec - t0.tv_sec),
			       ksm_counter("pages_shared"),
			       ksm_counter("pages_sharing"), saved_mib(),
			       ksm_counter("full_scans"),
			       now < 0 ? 0.0 : 100.0 * (now - ticks) / hz / secs);
		} else {
			if (clear)
				printf("\033[H\033[J");
			else if (n)
				printf("\n");
			printf("ksm_stat: every %us, %lds\n\n", secs,
			       (long)(t.tv_sec - t0.tv_sec));
			show_view();
		}
		fflush(stdout);
		ticks = now;
	}
	return 0;
}

static void print_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [--watch [SECS]] [--table] [--count N] [--csv FILE] [--cgroups]\n"
		"  -w, --watch[=SECS]  reprint every SECS seconds (default 1)\n"
		"  -t, --table         one line of global figures per update (implies --watch)\n"
		"  -n, --count N       with --watch: stop after N updates\n"
		"  -c, --csv FILE      append time,pages_sharing,saved_mib to FILE\n"
		"  -g, --cgroups       also one row per cgroup with KSM figures\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "watch", optional_argument, NULL, 'w' },
		{ "table", no_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "csv", required_argument, NULL, 'c' },
		{ "cgroups", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int secs = 0;
	const char *csv = NULL;
	int opt, table = 0;
	long count = -1;

	while ((opt = getopt_long(argc, argv, "w::tn:c:gh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			/* "--watch 5": take a following number as SECS. */
			if (!optarg && optind < argc && isdigit(argv[optind][0]))
				optarg = argv[optind++];
			secs = optarg ? atoi(optarg) : 1;
			if (!secs)
				secs = 1;
			break;
		case 't':
			table = 1;
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'c':
			csv = optarg;
			break;
		case 'g':
			show_cgroup_rows = 1;
			break;
		case 'h':
			print_usage(stdout, argv[0]);
			return 0;
		default:
			print_usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		print_usage(stderr, argv[0]);
		return 2;
	}
	if (access(KSM_DIR "run", R_OK)) {
		fprintf(stderr, "ksm_stat: %s: %s\n", KSM_DIR, strerror(errno));
		return 1;
	}
	if (table && !secs)
		secs = 1;
	if (secs)
		return watch(secs, count, table, csv);
	if (csv && append_csv(csv))
		return 1;
	show_view();
	return 0;
}
