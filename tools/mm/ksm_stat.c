// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_stat - show what Kernel Samepage Merging saves, at a glance.
 *
 *   ksm_stat            global counters, then one line per process that
 *                       takes part, sorted by profit
 *   ksm_stat -w [SECS]  repeat every SECS seconds (default 1) as a table
 *                       of global figures, one line per interval
 *   ksm_stat -n COUNT   with -w: stop after COUNT lines
 *
 * Everything comes from /sys/kernel/mm/ksm and /proc/PID/ksm_stat.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KSM_DIR "/sys/kernel/mm/ksm/"

struct proc_saving {
	int pid;
	char comm[32];
	long rmap_items;
	long zero_pages;
	long merging_pages;
	long profit;
};

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

static int read_proc_saving(int pid, struct proc_saving *ps)
{
	char path[64], key[64];
	long value;
	FILE *f;

	memset(ps, 0, sizeof(*ps));
	ps->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &value) == 2) {
		if (!strcmp(key, "ksm_rmap_items"))
			ps->rmap_items = value;
		else if (!strcmp(key, "ksm_zero_pages"))
			ps->zero_pages = value;
		else if (!strcmp(key, "ksm_merging_pages"))
			ps->merging_pages = value;
		else if (!strcmp(key, "ksm_process_profit"))
			ps->profit = value;
	}
	fclose(f);

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(ps->comm, sizeof(ps->comm), f))
			ps->comm[strcspn(ps->comm, "\n")] = '\0';
		fclose(f);
	}
	return 0;
}

static int by_profit(const void *a, const void *b)
{
	const struct proc_saving *x = a, *y = b;

	return (y->profit > x->profit) - (y->profit < x->profit);
}

static double mib(long pages)
{
	return pages * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void show_processes(void)
{
	struct proc_saving *list = NULL, ps;
	size_t nr = 0, cap = 0, i;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (!isdigit(d->d_name[0]) || read_proc_saving(atoi(d->d_name), &ps))
			continue;
		if (!ps.rmap_items && !ps.zero_pages && !ps.merging_pages)
			continue;
		if (nr == cap) {
			cap = cap ? 2 * cap : 64;
			list = realloc(list, cap * sizeof(*list));
			if (!list)
				exit(1);
		}
		list[nr++] = ps;
	}
	closedir(dir);

	qsort(list, nr, sizeof(*list), by_profit);
	printf("%7s %-16s %10s %10s %10s %12s\n", "PID", "COMM", "MERGING",
	       "ZERO", "TRACKED", "PROFIT_MiB");
	for (i = 0; i < nr; i++)
		printf("%7d %-16s %10ld %10ld %10ld %12.1f\n", list[i].pid,
		       list[i].comm, list[i].merging_pages, list[i].zero_pages,
		       list[i].rmap_items, list[i].profit / 1048576.0);
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

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		printf("%-16s %ld\n", names[i], ksm_counter(names[i]));
	printf("%-16s %.1f\n", "saved_MiB",
	       mib(ksm_counter("pages_sharing") + ksm_counter("ksm_zero_pages")));
}

static void watch(unsigned int secs, long count)
{
	long hz = sysconf(_SC_CLK_TCK), ticks = ksmd_ticks(), now;
	struct timespec t0, t;
	long line;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("%6s %12s %13s %9s %10s %8s\n", "TIME_S", "PAGES_SHARED",
	       "PAGES_SHARING", "SAVED_MiB", "FULL_SCANS", "KSMD_CPU%");
	for (line = 0; count < 0 || line < count; line++) {
		sleep(secs);
		now = ksmd_ticks();
		clock_gettime(CLOCK_MONOTONIC, &t);
		printf("%6ld %12ld %13ld %9.1f %10ld %8.1f\n",
		       (long)(t.tv_sec - t0.tv_sec), ksm_counter("pages_shared"),
		       ksm_counter("pages_sharing"),
		       mib(ksm_counter("pages_sharing") +
			   ksm_counter("ksm_zero_pages")),
		       ksm_counter("full_scans"),
		       now < 0 ? 0.0 : 100.0 * (now - ticks) / hz / secs);
		fflush(stdout);
		ticks = now;
	}
}

int main(int argc, char **argv)
{
	unsigned int secs = 0;
	long count = -1;
	int opt;

	while ((opt = getopt(argc, argv, "w::n:h")) != -1) {
		switch (opt) {
		case 'w':
			secs = optarg ? atoi(optarg) : 1;
			if (!secs)
				secs = 1;
			break;
		case 'n':
			count = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-w [SECS]] [-n COUNT]\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (access(KSM_DIR "run", R_OK)) {
		fprintf(stderr, "ksm_stat: %s: %s\n", KSM_DIR, strerror(errno));
		return 1;
	}
	if (secs) {
		watch(secs, count);
		return 0;
	}
	show_global();
	printf("\n");
	show_processes();
	return 0;
}
