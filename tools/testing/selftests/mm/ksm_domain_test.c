// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * Merge domains: KSM must not let one process learn what another holds.
 *
 * The attack (ksm_attack): a victim holds pages whose content derives from
 * a secret. An attacker holds a copy of each (candidates) and as many
 * unique pages (controls), interleaved at random, each in a VMA of its
 * own. After ksmd has had several full scans, the attacker asks four
 * oracles which of its pages were merged, i.e. which contents the victim
 * holds:
 *
 *  - timing: cycles of one store to the page (a merged page takes a
 *    copy-on-write fault);
 *  - pagemap: the "exclusively mapped" bit of /proc/self/pagemap;
 *  - smaps: the KSM: field of the page's VMA in /proc/self/smaps;
 *  - ksm_merging_pages: /proc/self/ksm_merging_pages of small probe
 *    processes holding one candidate or control page each.
 *
 * Each oracle is a classifier with a threshold chosen on a random half of
 * the pages and scored on the other half. With merge_domain=global (6.12)
 * every oracle must see the leak (accuracy >= 0.95), which proves the test
 * can see one; with the attacker in another domain (by uid, cgroup,
 * process, or a victim that made itself a private domain with prctl)
 * every accuracy must be within 0.05 of 0.5. Pages of the victim's own
 * domain still merge: a sibling holding the same pages merges all of
 * them, and the victim's own duplicates merge; the savings are printed.
 *
 * The API tests (ksm_domain_api) cover the knobs, prctl(PR_KSM_DOMAIN)
 * with its errors, inheritance through fork and exec, the fresh domain
 * of a setuid exec, fresh frames and the debugfs tables.
 */
/*
 * The 6.12 kselftest harness itself trips these with -Wextra (unused
 * "variant"/"ucontext" parameters, setjmp around fork() in TEST_F).
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"

#include "ksm_test_util.h"
#include "../kselftest_harness.h"

#include <grp.h>
#include <math.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_ATTACKER	CG_ROOT "/ksm-domain-attacker"
#define DEBUGFS		"/sys/kernel/debug"
#define DOMAINS_FILE	DEBUGFS "/ksm/domains"
#define MMS_FILE	DEBUGFS "/ksm/mms"
#define SUID_COPY	"/tmp/ksm_domain_test.suid"
#define NOBODY		65534

/*
 * Candidates (and as many controls) in the attacker's main region: 2048
 * scored pages put one standard deviation of a coin-flip accuracy at 0.011,
 * so the 0.05 bound is 4.5 of them.
 */
#define NR_SECRET	2048
/* Pairs of identical pages inside the victim: same-domain savings. */
#define NR_SELF_PAIRS	32
/* One-page probe processes for the ksm_merging_pages oracle. */
#define NR_PROBES	64
#define NR_PAGES	(2 * NR_SECRET)
/* Secret pages of the victim: the probes' candidates are the last ones. */
#define NR_VICTIM	(NR_SECRET + NR_PROBES / 2)

/* Full scans the attacker waits for (the first may be a partial one). */
#define ATTACK_PASSES	4
/* The fixed wait of the variant that does not look at full_scans. */
#define FIXED_WAIT_SEC	6

/* Domain key kinds, as PR_KSM_DOMAIN_GET reports them. */
#define KIND_SHIFT	60
#define KIND_USER	1ULL
#define KIND_PRIVATE	4ULL
#define KIND_TAG	5ULL

enum oracle {
	ORACLE_TIMING,
	ORACLE_PAGEMAP,
	ORACLE_SMAPS,
	ORACLE_MERGING_PAGES,
	NR_ORACLES,
};

static const char *const oracle_names[NR_ORACLES] = {
	"timing (cycles of one store)",
	"pagemap exclusive bit",
	"smaps KSM:",
	"ksm_merging_pages",
};

/* What the attacker measured, in memory shared with the test. */
struct attack_result {
	int error;			/* errno of the attacker's setup */
	char where[64];			/* what failed */
	unsigned char candidate[NR_PAGES];
	double score[NR_ORACLES - 1][NR_PAGES];
	unsigned char probe_candidate[NR_PROBES];
	double probe_score[NR_PROBES];
};

/* A pipe a child writes one byte to when ready. */
struct sync_pipe {
	int fd[2];
};

static int sync_init(struct sync_pipe *p)
{
	return pipe(p->fd);
}

static void sync_signal(struct sync_pipe *p, char c)
{
	if (write(p->fd[1], &c, 1) != 1)
		_exit(90);
}

static char sync_wait(struct sync_pipe *p)
{
	char c = 0;

	if (read(p->fd[0], &c, 1) != 1)
		return 0;
	return c;
}

static void sync_close(struct sync_pipe *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
}

static uint64_t domain_get(void)
{
	uint64_t key = ~0ULL;

	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_GET, &key, 0, 0))
		return ~0ULL;
	return key;
}

static const char *kind_name(uint64_t key)
{
	static const char *const names[] = {
		"global", "user", "cgroup", "process", "private", "tag",
	};
	uint64_t kind = key >> KIND_SHIFT;

	return kind < 6 ? names[kind] : "?";
}

/* The debugfs spelling of a domain key. */
static void domain_name(uint64_t key, char *buf, size_t len)
{
	if (!key)
		snprintf(buf, len, "global");
	else
		snprintf(buf, len, "%s:%llu", kind_name(key),
			 (unsigned long long)(key & ((1ULL << KIND_SHIFT) - 1)));
}

static int debugfs_ready(void)
{
	if (!access(DOMAINS_FILE, R_OK))
		return 0;
	if (mount("debugfs", DEBUGFS, "debugfs", 0, NULL) && errno != EBUSY)
		return -errno;
	return access(DOMAINS_FILE, R_OK) ? -errno : 0;
}

/* The row of @domain in the debugfs domains table; -ENOENT if none. */
static int domain_row(const char *domain, unsigned long *members,
		      unsigned long *shared, unsigned long *sharing)
{
	char line[256], name[64];
	int ret = -ENOENT;
	FILE *f;

	f = fopen(DOMAINS_FILE, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu %lu %lu", name, members, shared,
			   sharing) == 4 && !strcmp(name, domain)) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static void log_file(struct __test_metadata *_metadata, const char *path)
{
	char buf[4096];

	if (ksm_read_file(path, buf, sizeof(buf)) > 0)
		TH_LOG("%s:\n%s", path, buf);
}

/* ------------------------------------------------------------------ */
/* Scoring                                                            */
/* ------------------------------------------------------------------ */

struct sample {
	double score;
	bool positive;
};

static int sample_cmp(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	return (x->score > y->score) - (x->score < y->score);
}

/*
 * Accuracy on @test of the best rule "positive iff score > t" or "positive
 * iff score <= t" found on @train (both sets balanced).
 */
static double classify(struct sample *train, size_t ntrain,
		       const struct sample *test, size_t ntest)
{
	size_t i, pos_total = 0, pos_below = 0, right, best = 0;
	double best_t = -1e300;
	bool best_above = true;

	qsort(train, ntrain, sizeof(*train), sample_cmp);
	for (i = 0; i < ntrain; i++)
		pos_total += train[i].positive;
	/* Threshold below everything, then after each distinct score. */
	for (i = 0; i <= ntrain; i++) {
		double t;

		if (i && i < ntrain && train[i].score == train[i - 1].score) {
			pos_below += train[i - 1].positive;
			continue;
		}
		if (i)
			pos_below += train[i - 1].positive;
		t = i ? train[i - 1].score : -1e300;
		/* above t: positives above + negatives at or below */
		right = (pos_total - pos_below) + (i - pos_below);
		if (right > best) {
			best = right;
			best_t = t;
			best_above = true;
		}
		if (ntrain - right > best) {
			best = ntrain - right;
			best_t = t;
			best_above = false;
		}
	}
	right = 0;
	for (i = 0; i < ntest; i++) {
		bool said = best_above ? test[i].score > best_t :
					 test[i].score <= best_t;

		right += said == test[i].positive;
	}
	return ntest ? (double)right / ntest : 0.5;
}

/*
 * Split @n scored pages at random into halves balanced by class, choose on
 * one, score on the other.
 */
static double oracle_accuracy(const double *score, const unsigned char *positive,
			      size_t n, unsigned int seed)
{
	struct sample *train, *test;
	size_t i, ntrain = 0, ntest = 0, seen[2] = { 0, 0 };
	size_t *order;
	double acc;

	train = calloc(n, sizeof(*train));
	test = calloc(n, sizeof(*test));
	order = calloc(n, sizeof(*order));
	if (!train || !test || !order)
		return -1;
	for (i = 0; i < n; i++)
		order[i] = i;
	srand(seed);
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++) {
		size_t k = order[i];
		struct sample s = { score[k], positive[k] };

		if (seen[s.positive]++ % 2)
			test[ntest++] = s;
		else
			train[ntrain++] = s;
	}
	acc = classify(train, ntrain, test, ntest);
	free(train);
	free(test);
	free(order);
	return acc;
}

/* ------------------------------------------------------------------ */
/* Victim, sibling, attacker                                          */
/* ------------------------------------------------------------------ */

static uint64_t secret_seed(uint64_t secret, unsigned int i)
{
	return ksm_mix(secret ^ ((uint64_t)i << 32));
}

/*
 * Map @n pages holding the secret-derived contents (plus, with @self_pairs,
 * NR_SELF_PAIRS pairs of pages identical to each other) and make them
 * mergeable. Returns NULL on failure.
 */
static char *map_secret(uint64_t secret, size_t n, bool self_pairs)
{
	size_t total = n + (self_pairs ? 2 * NR_SELF_PAIRS : 0), i;
	char *p = ksm_map(total);

	if (p == MAP_FAILED)
		return NULL;
	for (i = 0; i < n; i++)
		ksm_fill_page(ksm_page_at(p, i), secret_seed(secret, i));
	for (i = 0; self_pairs && i < 2 * NR_SELF_PAIRS; i++)
		ksm_fill_page(ksm_page_at(p, n + i),
			      secret_seed(~secret, (unsigned int)i / 2));
	if (madvise(p, total * ksm_page_size(), MADV_MERGEABLE))
		return NULL;
	return p;
}

enum isolation {
	ISO_NONE,	/* global: everybody shares */
	ISO_USER,	/* the attacker runs as another uid */
	ISO_CGROUP,	/* the attacker runs in another cgroup */
	ISO_PROCESS,	/* every process alone */
	ISO_PRCTL,	/* global, but the victim narrows itself */
};

/*
 * The victim: optionally narrows itself, maps its pages, forks the
 * sibling (same pages, same domain unless domains are per process),
 * reports its domain key and waits to be killed.
 */
static void victim_main(uint64_t secret, enum isolation iso,
			struct sync_pipe *ready, uint64_t *shared_key,
			pid_t *shared_sibling)
{
	pid_t sibling;

	if (iso == ISO_PRCTL &&
	    prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
		_exit(80);
	/* Forked before mapping: it must not inherit the victim's pages. */
	sibling = fork();
	if (sibling < 0)
		_exit(82);
	if (!sibling) {
		if (!map_secret(secret, NR_VICTIM, false))
			_exit(83);
		sync_signal(ready, 's');
		for (;;)
			pause();
	}
	*shared_sibling = sibling;
	if (!map_secret(secret, NR_VICTIM, true))
		_exit(81);
	*shared_key = domain_get();
	sync_signal(ready, 'v');
	for (;;)
		pause();
}

/* Cycles (or nanoseconds) of one store that may fault. */
static inline uint64_t timed_store(char *p)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int lo, hi, lo2, hi2;

	asm volatile("mfence; lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi));
	__atomic_fetch_xor(p, 1, __ATOMIC_RELAXED);
	asm volatile("mfence; lfence; rdtsc; lfence" : "=a"(lo2), "=d"(hi2));
	return (((uint64_t)hi2 << 32) | lo2) - (((uint64_t)hi << 32) | lo);
#else
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC_RAW, &a);
	__atomic_fetch_xor(p, 1, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_MONOTONIC_RAW, &b);
	return (b.tv_sec - a.tv_sec) * 1000000000ULL + b.tv_nsec - a.tv_nsec;
#endif
}

static void fail(struct attack_result *r, const char *where)
{
	r->error = errno ? errno : EIO;
	snprintf(r->where, sizeof(r->where), "%s", where);
	_exit(1);
}

/* KSM: kB of every VMA in /proc/self/smaps that starts at one of @pages. */
static void read_smaps_ksm(char **pages, size_t n, double *out)
{
	unsigned long start, end, kb;
	char line[512];
	long cur = -1;
	size_t i;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			cur = -1;
			for (i = 0; i < n; i++)
				if ((uintptr_t)pages[i] == start)
					cur = (long)i;
			continue;
		}
		if (cur >= 0 && sscanf(line, "KSM: %lu kB", &kb) == 1)
			out[cur] = kb;
	}
	fclose(f);
}

/*
 * A probe process: one page, candidate or control; once told to, reports
 * its ksm_merging_pages through @out and exits.
 */
static void probe_main(uint64_t seed, struct sync_pipe *ready,
		       struct sync_pipe *go, double *out)
{
	char *p = ksm_map(1);

	if (p == MAP_FAILED)
		_exit(70);
	ksm_fill_page(p, seed);
	if (madvise(p, ksm_page_size(), MADV_MERGEABLE))
		_exit(71);
	sync_signal(ready, 'p');
	if (sync_wait(go) != 'g')
		_exit(72);
	*out = (double)ksm_read_merging_pages(0);
	_exit(0);
}

static void attacker_isolate(enum isolation iso, struct attack_result *r)
{
	if (iso == ISO_USER) {
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			fail(r, "setresuid(nobody)");
	} else if (iso == ISO_CGROUP) {
		if (ksm_join_cgroup(CG_ATTACKER))
			fail(r, "join attacker cgroup");
	}
}

/*
 * The attacker: builds its pages and probes, says it is ready, waits for
 * the go, then measures. Contents of the victim's pages come from @secret
 * (the attacker guesses them: the test gives it the right guesses).
 */
static void attacker_main(uint64_t secret, enum isolation iso,
			  struct attack_result *r, struct sync_pipe *ready,
			  struct sync_pipe *go)
{
	struct sync_pipe probe_ready, probe_go;
	char *pages[NR_PAGES];
	size_t i, nprobe = 0;
	uint64_t unique = ksm_unique_seed();

	attacker_isolate(iso, r);
	if (sync_init(&probe_ready) || sync_init(&probe_go))
		fail(r, "pipe");
	/* Random interleaving of candidates and controls. */
	for (i = 0; i < NR_PAGES; i++)
		r->candidate[i] = i < NR_SECRET;
	srand((unsigned int)unique);
	for (i = NR_PAGES - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		unsigned char t = r->candidate[i];

		r->candidate[i] = r->candidate[j];
		r->candidate[j] = t;
	}
	/* Probes first: they must not inherit the main region. */
	for (nprobe = 0; nprobe < NR_PROBES; nprobe++) {
		bool cand = nprobe % 2;
		pid_t pid;

		r->probe_candidate[nprobe] = cand;
		pid = fork();
		if (pid < 0)
			fail(r, "fork probe");
		if (!pid)
			probe_main(cand ? secret_seed(secret, NR_SECRET + nprobe / 2) :
				   ksm_mix(~unique + nprobe), &probe_ready,
				   &probe_go, &r->probe_score[nprobe]);
	}
	for (i = 0; i < NR_PAGES; i++) {
		static unsigned int next_secret;

		pages[i] = ksm_map(1);
		if (pages[i] == MAP_FAILED)
			fail(r, "mmap");
		ksm_fill_page(pages[i], r->candidate[i] ?
			      secret_seed(secret, next_secret++) :
			      ksm_mix(unique + i));
		if (madvise(pages[i], ksm_page_size(), MADV_MERGEABLE))
			fail(r, "madvise");
	}
	for (i = 0; i < NR_PROBES; i++)
		if (sync_wait(&probe_ready) != 'p')
			fail(r, "probe setup");
	sync_signal(ready, 'a');
	if (sync_wait(go) != 'g')
		fail(r, "waiting for the go");

	/* The /proc oracles first: looking changes nothing. */
	for (i = 0; i < NR_PAGES; i++)
		r->score[ORACLE_PAGEMAP][i] = ksm_page_exclusive(pages[i]) == 0;
	read_smaps_ksm(pages, NR_PAGES, r->score[ORACLE_SMAPS]);
	for (i = 0; i < NR_PROBES; i++)
		sync_signal(&probe_go, 'g');
	while (wait(NULL) > 0)
		;
	/* Then one timed store per page, in random order. */
	for (i = 0; i < NR_PAGES; i++) {
		size_t k = ((size_t)i * 997 + (unique & 1023)) % NR_PAGES;

		r->score[ORACLE_TIMING][k] = (double)timed_store(pages[k]);
	}
	_exit(0);
}

FIXTURE(ksm_attack) {
	struct ksm_saved_knobs saved;
	pid_t victim, attacker;
	bool made_cgroup;
};

FIXTURE_VARIANT(ksm_attack) {
	const char *mode;		/* merge_domain */
	enum isolation iso;
	bool fixed_wait;		/* do not watch full_scans */
	bool expect_leak;
};

FIXTURE_VARIANT_ADD(ksm_attack, global) {
	.mode = "global", .iso = ISO_NONE, .expect_leak = true,
};

FIXTURE_VARIANT_ADD(ksm_attack, user) {
	.mode = "user", .iso = ISO_USER,
};

FIXTURE_VARIANT_ADD(ksm_attack, user_fixed_wait) {
	.mode = "user", .iso = ISO_USER, .fixed_wait = true,
};

FIXTURE_VARIANT_ADD(ksm_attack, cgroup) {
	.mode = "cgroup", .iso = ISO_CGROUP,
};

FIXTURE_VARIANT_ADD(ksm_attack, process) {
	.mode = "process", .iso = ISO_PROCESS,
};

FIXTURE_VARIANT_ADD(ksm_attack, prctl_private) {
	.mode = "global", .iso = ISO_PRCTL,
};

/*
 * Both fixtures: skip without merge domains, save the knobs, reset KSM and
 * scan fast with merge_domain=@mode, fresh frames and no zero-page merging.
 * Returns false when the test was skipped.
 */
static bool domain_setup(struct __test_metadata *_metadata,
			 struct ksm_saved_knobs *saved, const char *mode)
{
	const char *why = ksm_skip_reason();

	if (why)
		SKIP(return false, "%s", why);
	if (!ksm_file_exists("merge_domain"))
		SKIP(return false, "no merge_domain: not our KSM");
	ksm_save_knobs(saved);
	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	ASSERT_EQ(0, ksm_write("use_zero_pages", "0"));
	ASSERT_EQ(0, ksm_write("merge_domain", mode));
	ASSERT_EQ(0, ksm_write("merge_fresh_frames", "1"));
	return true;
}

FIXTURE_SETUP(ksm_attack)
{
	self->victim = 0;
	self->attacker = 0;
	self->made_cgroup = false;
	if (!domain_setup(_metadata, &self->saved, variant->mode))
		return;
	ASSERT_EQ(0, debugfs_ready());
	if (variant->iso == ISO_CGROUP) {
		if (mkdir(CG_ATTACKER, 0755) && errno != EEXIST)
			SKIP(return, "no cgroup v2 at " CG_ROOT);
		self->made_cgroup = true;
	}
}

FIXTURE_TEARDOWN(ksm_attack)
{
	if (self->victim > 0)
		kill(-self->victim, SIGKILL);
	if (self->victim > 0)
		kill(self->victim, SIGKILL);
	if (self->attacker > 0)
		kill(self->attacker, SIGKILL);
	while (wait(NULL) > 0)
		;
	if (self->made_cgroup && rmdir(CG_ATTACKER))
		TH_LOG("rmdir %s: %s", CG_ATTACKER, strerror(errno));
	EXPECT_EQ(0, ksm_reset());
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/* Let ksmd run until @passes more full scans, watching or not. */
static int let_ksmd_run(bool fixed_wait, unsigned int passes)
{
	unsigned long base, cur;
	double deadline;
	int err;

	if (!fixed_wait)
		return ksm_run_passes(passes, NULL, NULL);
	/*
	 * The attacker's view: it cannot know when scans happen, so it just
	 * waits. The test still makes sure enough of them did.
	 */
	err = ksm_read_ul("full_scans", &base);
	if (!err)
		err = ksm_write("run", "1");
	if (err)
		return err;
	sleep(FIXED_WAIT_SEC);
	deadline = ksm_now() + KSM_SCAN_TIMEOUT_SEC;
	while (!(err = ksm_read_ul("full_scans", &cur)) && cur < base + passes) {
		if (ksm_now() > deadline) {
			err = -ETIMEDOUT;
			break;
		}
		usleep(10000);
	}
	if (ksm_write("run", "0") && !err)
		err = -EIO;
	return err;
}

TEST_F_TIMEOUT(ksm_attack, oracles, 600)
{
	uint64_t secret = ksm_unique_seed(), victim_key = 0;
	struct sync_pipe vready, aready, ago;
	struct attack_result *r;
	unsigned long members = 0, shared = 0, sharing = 0;
	long sibling_merged, victim_merged;
	double acc[NR_ORACLES];
	pid_t sibling = 0;
	double t0 = ksm_now();
	char vname[64];
	void *mem;
	int i, status;

	mem = mmap(NULL, sizeof(*r) + 2 * sizeof(uint64_t),
		   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	r = mem;
	ASSERT_EQ(0, sync_init(&vready));
	ASSERT_EQ(0, sync_init(&aready));
	ASSERT_EQ(0, sync_init(&ago));

	self->victim = fork();
	ASSERT_LE(0, self->victim);
	if (!self->victim) {
		setpgid(0, 0);
		victim_main(secret, variant->iso, &vready,
			    (uint64_t *)(r + 1), (pid_t *)((uint64_t *)(r + 1) + 1));
	}
	ASSERT_EQ('v' + 's', sync_wait(&vready) + sync_wait(&vready))
		TH_LOG("victim or sibling setup failed");
	victim_key = *(uint64_t *)(r + 1);
	sibling = *(pid_t *)((uint64_t *)(r + 1) + 1);

	self->attacker = fork();
	ASSERT_LE(0, self->attacker);
	if (!self->attacker)
		attacker_main(secret, variant->iso, r, &aready, &ago);
	ASSERT_EQ('a', sync_wait(&aready))
		TH_LOG("attacker setup failed at %s: %s", r->where,
		       strerror(r->error));

	TH_LOG("set up in %.1fs; ksmd runs", ksm_now() - t0);
	ASSERT_EQ(0, let_ksmd_run(variant->fixed_wait, ATTACK_PASSES))
		TH_LOG("ksmd did not complete %d full scans within %ds",
		       ATTACK_PASSES, KSM_SCAN_TIMEOUT_SEC);

	/* Same-domain savings, before the attacker writes anything. */
	domain_name(victim_key, vname, sizeof(vname));
	victim_merged = ksm_read_merging_pages(self->victim);
	sibling_merged = ksm_read_merging_pages(sibling);
	log_file(_metadata, DOMAINS_FILE);
	ASSERT_EQ(0, domain_row(vname, &members, &shared, &sharing))
		TH_LOG("no row for the victim's domain %s", vname);
	TH_LOG("merge_domain=%s: victim domain %s: %lu members, %lu KSM pages",
	       variant->mode, vname, members, shared);
	TH_LOG("same-domain savings: %lu pages sharing (%lu KiB saved); victim merges %ld pages, sibling %ld",
	       sharing, sharing * (ksm_page_size() / 1024), victim_merged,
	       sibling_merged);
	/* The victim's own duplicates merge in every mode. */
	EXPECT_LE(NR_SELF_PAIRS * 2, victim_merged);
	if (variant->iso == ISO_PROCESS) {
		EXPECT_EQ(0, sibling_merged);
		EXPECT_EQ(1, members);
	} else {
		EXPECT_EQ(NR_VICTIM, sibling_merged);
		EXPECT_LE(2, members);
	}

	sync_signal(&ago, 'g');
	ASSERT_EQ(self->attacker, waitpid(self->attacker, &status, 0));
	self->attacker = 0;
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("attacker failed at %s: %s", r->where, strerror(r->error));

	TH_LOG("probed after %.1fs", ksm_now() - t0);
	for (i = 0; i < ORACLE_MERGING_PAGES; i++)
		acc[i] = oracle_accuracy(r->score[i], r->candidate, NR_PAGES,
					 (unsigned int)secret + i);
	acc[ORACLE_MERGING_PAGES] = oracle_accuracy(r->probe_score,
						    r->probe_candidate,
						    NR_PROBES,
						    (unsigned int)secret);
	for (i = 0; i < NR_ORACLES; i++) {
		TH_LOG("merge_domain=%s %s: oracle %s: accuracy %.3f",
		       variant->mode, variant->fixed_wait ? "(fixed wait)" : "",
		       oracle_names[i], acc[i]);
		/* A leak is seen, or nothing better than a coin flip. */
		EXPECT_TRUE(variant->expect_leak ? acc[i] >= 0.95 :
			    fabs(acc[i] - 0.5) <= 0.05)
			TH_LOG("%s: accuracy %.3f", oracle_names[i], acc[i]);
	}
	munmap(mem, sizeof(*r) + 2 * sizeof(uint64_t));
}

/* ------------------------------------------------------------------ */
/* The interface                                                      */
/* ------------------------------------------------------------------ */

FIXTURE(ksm_domain_api) {
	struct ksm_saved_knobs saved;
};

FIXTURE_SETUP(ksm_domain_api)
{
	domain_setup(_metadata, &self->saved, "user");
}

FIXTURE_TEARDOWN(ksm_domain_api)
{
	EXPECT_EQ(0, ksm_reset());
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/* Run @fn in a child; its exit status (0: all good) or -1. */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST_F(ksm_domain_api, knobs)
{
	char buf[128];

	ASSERT_LT(0, ksm_read_raw("merge_domain", buf, sizeof(buf)));
	EXPECT_STREQ("global [user] cgroup process\n", buf);
	EXPECT_EQ(1, ksm_get("merge_fresh_frames"));

	EXPECT_EQ(0, ksm_write("merge_domain", "process"));
	ASSERT_LT(0, ksm_read_raw("merge_domain", buf, sizeof(buf)));
	EXPECT_STREQ("global user cgroup [process]\n", buf);
	EXPECT_EQ(0, ksm_write("merge_domain", "cgroup\n"));
	EXPECT_EQ(0, ksm_write("merge_domain", "global"));
	EXPECT_EQ(-EINVAL, ksm_write("merge_domain", "users"));
	EXPECT_EQ(-EINVAL, ksm_write("merge_domain", "\n"));
	EXPECT_EQ(-EINVAL, ksm_write("merge_domain", "private"));
	EXPECT_EQ(0, ksm_write("merge_domain", "user"));

	EXPECT_EQ(0, ksm_write("merge_fresh_frames", "0"));
	EXPECT_EQ(0, ksm_get("merge_fresh_frames"));
	EXPECT_EQ(-EINVAL, ksm_write("merge_fresh_frames", "2"));
	EXPECT_EQ(0, ksm_write("merge_fresh_frames", "1"));
}

/* merge_domain cannot change while KSM pages exist. */
TEST_F_TIMEOUT(ksm_domain_api, knob_busy_while_merged, 120)
{
	char *p = ksm_map(8);
	size_t i;

	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 8; i++)
		ksm_fill_page(ksm_page_at(p, i), 42);
	ASSERT_EQ(0, madvise(p, 8 * ksm_page_size(), MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_run_passes(3, NULL, NULL));
	ASSERT_EQ(1, ksm_get("pages_shared"));
	EXPECT_EQ(-EBUSY, ksm_write("merge_domain", "global"));
	ASSERT_EQ(0, ksm_reset());
	EXPECT_EQ(0, ksm_write("merge_domain", "global"));
	EXPECT_EQ(0, ksm_write("merge_domain", "user"));
	ksm_unmap(p, 8);
}

static int prctl_errors_as_nobody(void *unused)
{
	if (setresuid(NOBODY, NOBODY, NOBODY))
		return 10;
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN, 5, 0, 0) != -1 ||
	    errno != EPERM)
		return 11;
	/* Narrowing needs no privilege. */
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
		return 12;
	if (domain_get() >> KIND_SHIFT != KIND_PRIVATE)
		return 13;
	return 0;
}

TEST_F(ksm_domain_api, prctl_errors)
{
	uint64_t key;

	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, 3, 0, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 1, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_GET, &key, 1, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_GET, &key, 0, 1));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_GET, 1, 0, 0));
	EXPECT_EQ(EFAULT, errno);
	/* A key of a kind the knob forms cannot be joined. */
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN,
			    (KIND_USER << KIND_SHIFT) | 5, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN, ~0UL, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, in_child(prctl_errors_as_nobody, NULL));
}

static int join_and_leave(void *unused)
{
	if (domain_get() != KIND_USER << KIND_SHIFT)
		return 20;	/* root, merge_domain=user */
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN, 5, 0, 0))
		return 21;
	if (domain_get() != ((KIND_TAG << KIND_SHIFT) | 5))
		return 22;
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_JOIN, 0, 0, 0))
		return 23;
	if (domain_get() != KIND_USER << KIND_SHIFT)
		return 24;
	return 0;
}

TEST_F(ksm_domain_api, join_by_tag)
{
	EXPECT_EQ(0, in_child(join_and_leave, NULL));
}

/* Run @path --print-domain; its domain key, or ~0 on failure. */
static uint64_t exec_print_domain(const char *path)
{
	uint64_t key = ~0ULL;
	int fd[2], status;
	char buf[64] = "", *end;
	pid_t pid;

	if (pipe(fd))
		return ~0ULL;
	pid = fork();
	if (pid < 0)
		return ~0ULL;
	if (!pid) {
		dup2(fd[1], 1);
		execl(path, path, "--print-domain", NULL);
		_exit(127);
	}
	close(fd[1]);
	if (read(fd[0], buf, sizeof(buf) - 1) <= 0)
		buf[0] = '\0';
	close(fd[0]);
	waitpid(pid, &status, 0);
	key = strtoull(buf, &end, 16);
	return end != buf && *end == '\n' ? key : ~0ULL;
}

static int inherit_fork_exec(void *unused)
{
	uint64_t mine, child;
	int fd[2], status;
	pid_t pid;

	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
		return 30;
	mine = domain_get();
	if (mine >> KIND_SHIFT != KIND_PRIVATE)
		return 31;
	/* A second PRIVATE makes yet another domain. */
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0) ||
	    domain_get() == mine)
		return 32;
	mine = domain_get();
	if (pipe(fd))
		return 33;
	pid = fork();
	if (!pid) {
		child = domain_get();
		_exit(write(fd[1], &child, sizeof(child)) != sizeof(child));
	}
	if (read(fd[0], &child, sizeof(child)) != sizeof(child) || child != mine)
		return 34;
	waitpid(pid, &status, 0);
	if (exec_print_domain("/proc/self/exe") != mine)
		return 35;
	return 0;
}

TEST_F_TIMEOUT(ksm_domain_api, inherited_by_fork_and_exec, 60)
{
	EXPECT_EQ(0, in_child(inherit_fork_exec, NULL));
}

/* A setuid-root copy of this test, for the secure exec test. */
static int make_suid_copy(void)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	in = open("/proc/self/exe", O_RDONLY);
	if (in < 0)
		return -errno;
	out = open(SUID_COPY, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	if (out < 0) {
		close(in);
		return -errno;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			n = -1;
	close(in);
	if (close(out) || n < 0 || chown(SUID_COPY, 0, 0) ||
	    chmod(SUID_COPY, 04755))
		return -EIO;
	return 0;
}

static int secure_exec(void *unused)
{
	uint64_t mine, plain, privileged;

	if (setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return 40;
	/* Not registered with KSM at all: still a private domain. */
	privileged = exec_print_domain(SUID_COPY);
	if (privileged >> KIND_SHIFT != KIND_PRIVATE)
		return 45;
	if (prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
		return 41;
	mine = domain_get();
	plain = exec_print_domain("/proc/self/exe");
	privileged = exec_print_domain(SUID_COPY);
	if (plain != mine)
		return 42;	/* an ordinary exec keeps the domain */
	if (privileged == ~0ULL)
		return 43;
	if (privileged == mine || privileged >> KIND_SHIFT != KIND_PRIVATE)
		return 44;	/* setuid: a domain of its own */
	return 0;
}

TEST_F_TIMEOUT(ksm_domain_api, setuid_exec_gets_fresh_domain, 60)
{
	int ret;

	ret = make_suid_copy();
	if (ret)
		SKIP(return, "cannot make a setuid copy in /tmp: %s",
		     strerror(-ret));
	EXPECT_EQ(0, in_child(secure_exec, NULL));
	unlink(SUID_COPY);
}

/*
 * Fresh frames: the KSM page of two merged pages is a third frame; with
 * the knob off, it is one of the two.
 */
static void merge_two(struct __test_metadata *_metadata, bool fresh)
{
	uint64_t pfn[2], merged[2];
	char *p = ksm_map(2);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, ksm_write("merge_fresh_frames", fresh ? "1" : "0"));
	ksm_fill_page(p, 7);
	ksm_fill_page(p + ksm_page_size(), 7);
	ASSERT_EQ(0, ksm_pfn(p, &pfn[0]));
	ASSERT_EQ(0, ksm_pfn(p + ksm_page_size(), &pfn[1]));
	ASSERT_EQ(0, madvise(p, 2 * ksm_page_size(), MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_run_passes(3, NULL, NULL));
	ASSERT_EQ(1, ksm_get("pages_shared"));
	ASSERT_EQ(0, ksm_pfn(p, &merged[0]));
	ASSERT_EQ(0, ksm_pfn(p + ksm_page_size(), &merged[1]));
	EXPECT_EQ(merged[0], merged[1]);
	/* A third frame with fresh frames, else one of the two. */
	EXPECT_EQ(fresh, merged[0] != pfn[0] && merged[0] != pfn[1]);
	EXPECT_TRUE(ksm_page_matches(p, 7));
	EXPECT_TRUE(ksm_page_matches(p + ksm_page_size(), 7));
	ksm_unmap(p, 2);
	ASSERT_EQ(0, ksm_reset());
}

TEST_F_TIMEOUT(ksm_domain_api, fresh_frames, 120)
{
	merge_two(_metadata, true);
	merge_two(_metadata, false);
}

/* Two processes, one page each, same content: merged or not. */
static void merged_between_two(struct __test_metadata *_metadata,
			       bool second_private, long *sharing)
{
	struct sync_pipe ready;
	pid_t pid[2];
	int i;

	*sharing = -1;
	ASSERT_EQ(0, sync_init(&ready));
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (!pid[i]) {
			if (i && second_private &&
			    prctl(PR_KSM_DOMAIN, PR_KSM_DOMAIN_PRIVATE, 0, 0, 0))
				_exit(1);
			if (!map_secret(99, 4, false))
				_exit(2);
			sync_signal(&ready, 'r');
			for (;;)
				pause();
		}
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ('r', sync_wait(&ready));
	ASSERT_EQ(0, ksm_run_passes(3, NULL, NULL));
	*sharing = (long)ksm_get("pages_sharing");
	if (!access(MMS_FILE, R_OK))
		log_file(_metadata, MMS_FILE);
	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		waitpid(pid[i], NULL, 0);
	}
	sync_close(&ready);
	ASSERT_EQ(0, ksm_reset());
}

TEST_F_TIMEOUT(ksm_domain_api, modes_and_private, 300)
{
	static const struct {
		const char *mode;
		bool second_private;
		long sharing;
	} cases[] = {
		{ "user", false, 4 },
		{ "user", true, 0 },
		{ "process", false, 0 },
		{ "cgroup", false, 4 },
		{ "global", false, 4 },
		{ "global", true, 0 },
	};
	long sharing;
	size_t i;

	ASSERT_EQ(0, debugfs_ready());
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		bool narrowed = cases[i].second_private;

		ASSERT_EQ(0, ksm_write("merge_domain", cases[i].mode));
		merged_between_two(_metadata, narrowed, &sharing);
		EXPECT_EQ(cases[i].sharing, sharing)
			TH_LOG("merge_domain=%s, one process private: %d",
			       cases[i].mode, narrowed);
	}
}

/* The debugfs tables list our processes and domains. */
TEST_F_TIMEOUT(ksm_domain_api, debugfs_tables, 120)
{
	unsigned long members, shared, sharing;
	char buf[4096], line[64], *p;
	uint64_t key;

	ASSERT_EQ(0, debugfs_ready());
	p = ksm_map(4);
	ASSERT_NE(MAP_FAILED, p);
	ksm_fill_page(p, 5);
	ksm_fill_page(p + ksm_page_size(), 5);
	ASSERT_EQ(0, madvise(p, 4 * ksm_page_size(), MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_run_passes(3, NULL, NULL));
	key = domain_get();
	domain_name(key, line, sizeof(line));
	EXPECT_STREQ("user:0", line);
	ASSERT_EQ(0, domain_row(line, &members, &shared, &sharing));
	EXPECT_LE(1, members);
	EXPECT_EQ(1, shared);
	EXPECT_EQ(1, sharing);
	ASSERT_LT(0, ksm_read_file(MMS_FILE, buf, sizeof(buf)));
	snprintf(line, sizeof(line), "\n%d user:0\n", getpid());
	EXPECT_NE(NULL, strstr(buf, line)) TH_LOG("%s", buf);
	ksm_unmap(p, 4);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--print-domain")) {
		printf("%llx\n", (unsigned long long)domain_get());
		return 0;
	}
	return test_harness_run(argc, argv);
}
