// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
/*
 * KSM sysfs ABI (/sys/kernel/mm/ksm) as of Linux 6.12: which files exist
 * with which modes, their boot defaults, the exact input each knob accepts
 * or rejects (and with which errno), and the run/full_scans state machine.
 *
 * Every test starts from an unmerged, stopped KSM, restores every knob it
 * touches and leaves KSM stopped.
 */
/*
 * The 6.12 kselftest harness itself trips these with -Wextra (unused
 * "variant"/"ucontext" parameters, setjmp around fork() in TEST_F).
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wclobbered"

#include "ksm_test_util.h"
#include "../kselftest_harness.h"

#include <dirent.h>

struct ksm_file {
	const char *name;
	mode_t mode;
};

static const struct ksm_file ksm_files[] = {
	{ "run",				0644 },
	{ "pages_to_scan",			0644 },
	{ "sleep_millisecs",			0644 },
	{ "max_page_sharing",			0644 },
	{ "stable_node_chains_prune_millisecs",	0644 },
	{ "use_zero_pages",			0644 },
	{ "smart_scan",				0644 },
	{ "advisor_mode",			0644 },
	{ "advisor_max_cpu",			0644 },
	{ "advisor_min_pages_to_scan",		0644 },
	{ "advisor_max_pages_to_scan",		0644 },
	{ "advisor_target_scan_time",		0644 },
	{ "pages_scanned",			0444 },
	{ "pages_shared",			0444 },
	{ "pages_sharing",			0444 },
	{ "pages_unshared",			0444 },
	{ "pages_volatile",			0444 },
	{ "pages_skipped",			0444 },
	{ "ksm_zero_pages",			0444 },
	{ "general_profit",			0444 },
	{ "full_scans",				0444 },
	{ "stable_node_chains",			0444 },
	{ "stable_node_dups",			0444 },
};
#define NR_KSM_FILES (sizeof(ksm_files) / sizeof(ksm_files[0]))

/* merge_across_nodes exists exactly when the kernel has CONFIG_NUMA. */
static bool kernel_has_numa(void)
{
	return access("/sys/devices/system/node", F_OK) == 0;
}

/* Counters that may legitimately be negative (printed with %ld). */
static bool signed_counter(const char *name)
{
	return !strcmp(name, "general_profit");
}

struct bad_input {
	const char *in;
	int err;	/* positive errno */
};

struct good_input {
	const char *in;
	const char *shown;	/* what the file reads back afterwards */
};

/*
 * Write every bad input and check that it fails with exactly the expected
 * errno while the file keeps reading back @expect.
 */
static void check_rejects(struct __test_metadata *_metadata, const char *knob,
			  const struct bad_input *bad, size_t n)
{
	char before[128], after[128];
	size_t i;

	ASSERT_LT(0, ksm_read_raw(knob, before, sizeof(before)));
	for (i = 0; i < n; i++) {
		int ret = ksm_write(knob, bad[i].in);

		EXPECT_EQ(-bad[i].err, ret)
			TH_LOG("%s <- \"%s\": expected %s, got %s", knob,
			       bad[i].in, strerror(bad[i].err),
			       ret ? strerror(-ret) : "success");
		ASSERT_LT(0, ksm_read_raw(knob, after, sizeof(after)));
		EXPECT_STREQ(before, after)
			TH_LOG("%s changed by rejected input \"%s\"", knob,
			       bad[i].in);
	}
}

static void check_accepts(struct __test_metadata *_metadata, const char *knob,
			  const struct good_input *good, size_t n)
{
	char buf[128];
	size_t i;

	for (i = 0; i < n; i++) {
		int ret = ksm_write(knob, good[i].in);

		EXPECT_EQ(0, ret)
			TH_LOG("%s <- \"%s\" failed: %s", knob, good[i].in,
			       strerror(-ret));
		ASSERT_LT(0, ksm_read_raw(knob, buf, sizeof(buf)));
		EXPECT_STREQ(good[i].shown, buf)
			TH_LOG("%s after writing \"%s\"", knob, good[i].in);
	}
}

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Inputs every kstrtouint()-parsed knob rejects with EINVAL (the 6.12
 * store handlers map every parse error, overflow included, to EINVAL).
 */
static const struct bad_input bad_uint[] = {
	{ "abc", EINVAL },
	{ "-1", EINVAL },
	{ "12abc", EINVAL },
	{ "4294967296", EINVAL },
	{ "99999999999999999999999", EINVAL },
	{ "\n", EINVAL },
	{ " 5", EINVAL },
	{ "5 ", EINVAL },
	{ "5\n\n", EINVAL },
	{ "0x10", EINVAL },
	{ "1.5", EINVAL },
};

static const struct good_input good_uint[] = {
	{ "0", "0\n" },
	{ "4294967295", "4294967295\n" },
	{ "5\n", "5\n" },
	{ "+7", "7\n" },
	{ "010", "10\n" },
	{ "1234", "1234\n" },
};

/* Accepted spellings of kstrtobool(); first character(s) decide. */
static const struct good_input good_bool[] = {
	{ "1", "1\n" }, { "0", "0\n" },
	{ "y", "1\n" }, { "N", "0\n" },
	{ "Y", "1\n" }, { "n", "0\n" },
	{ "on", "1\n" }, { "off", "0\n" },
	{ "ON", "1\n" }, { "OFF", "0\n" },
	{ "true", "1\n" }, { "false", "0\n" },
	{ "yes", "1\n" }, { "no", "0\n" },
	{ "1\n", "1\n" }, { "0\n", "0\n" },
};

static const struct bad_input bad_bool[] = {
	{ "2", EINVAL },
	{ "-1", EINVAL },
	{ "+1", EINVAL },
	{ "x", EINVAL },
	{ "o", EINVAL },
	{ "ox", EINVAL },
	{ " 1", EINVAL },
	{ "\n", EINVAL },
};

static const struct bad_input bad_ulong_einval[] = {
	{ "abc", EINVAL },
	{ "-1", EINVAL },
	{ "18446744073709551616", EINVAL },
	{ "\n", EINVAL },
	{ " 1", EINVAL },
	{ "1 ", EINVAL },
	{ "1.5", EINVAL },
	{ "7x", EINVAL },
};

FIXTURE(ksm_sysfs) {
	struct ksm_saved_knobs saved;
	size_t npages;
	void *region;
};

FIXTURE_SETUP(ksm_sysfs)
{
	const char *why = ksm_skip_reason();

	if (why)
		SKIP(return, "%s", why);
	ksm_save_knobs(&self->saved);
	ASSERT_EQ(0, ksm_reset());
	self->region = NULL;
}

FIXTURE_TEARDOWN(ksm_sysfs)
{
	if (self->region)
		ksm_unmap(self->region, self->npages);
	EXPECT_EQ(0, ksm_restore_knobs(&self->saved));
}

/*
 * Give KSM something to merge: @n identical pages in a mergeable region,
 * then run ksmd from a freshly reset state for two complete passes.
 */
static void make_merged(struct __test_metadata *_metadata,
			FIXTURE_DATA(ksm_sysfs) *self, size_t n)
{
	uint64_t seed = ksm_unique_seed();
	unsigned long seen = 0;
	size_t i;
	int err;

	ASSERT_EQ(0, ksm_reset());
	ASSERT_EQ(0, ksm_fast_scanning());
	self->npages = n;
	self->region = ksm_map(n);
	ASSERT_NE(MAP_FAILED, self->region);
	for (i = 0; i < n; i++)
		ksm_fill_page(ksm_page_at(self->region, i), seed);
	ASSERT_EQ(0, madvise(self->region, n * ksm_page_size(), MADV_MERGEABLE));
	err = ksm_run_passes(2, NULL, &seen);
	ASSERT_EQ(0, err)
		TH_LOG("ksmd did not complete 2 full scans in %ds (full_scans=%lu): %s",
		       KSM_SCAN_TIMEOUT_SEC, seen, strerror(-err));
	ASSERT_EQ(1UL, ksm_get("pages_shared"));
	ASSERT_EQ(n - 1, ksm_get("pages_sharing"));
}

/*
 * Boot defaults.  Reads only: no reset first, because the reset itself
 * changes "run".  Valid as long as every earlier user of KSM in this boot
 * restored what it changed (all ksm_*_test binaries do).
 */
TEST(defaults)
{
	static const struct { const char *name, *val; } defs[] = {
		{ "run",				"0\n" },
		{ "pages_to_scan",			"100\n" },
		{ "sleep_millisecs",			"20\n" },
		{ "max_page_sharing",			"256\n" },
		{ "stable_node_chains_prune_millisecs",	"2000\n" },
		{ "use_zero_pages",			"0\n" },
		{ "smart_scan",				"1\n" },
		{ "advisor_mode",			"[none] scan-time\n" },
		{ "advisor_max_cpu",			"70\n" },
		{ "advisor_min_pages_to_scan",		"500\n" },
		{ "advisor_max_pages_to_scan",		"30000\n" },
		{ "advisor_target_scan_time",		"200\n" },
	};
	const char *why = ksm_skip_reason();
	char buf[128];
	size_t i;

	if (why)
		SKIP(return, "%s", why);
	for (i = 0; i < N_(defs); i++) {
		ASSERT_LT(0, ksm_read_raw(defs[i].name, buf, sizeof(buf)))
			TH_LOG("cannot read %s", defs[i].name);
		EXPECT_STREQ(defs[i].val, buf)
			TH_LOG("default of %s", defs[i].name);
	}
	if (kernel_has_numa()) {
		ASSERT_LT(0, ksm_read_raw("merge_across_nodes", buf, sizeof(buf)));
		EXPECT_STREQ("1\n", buf);
	}
}

/* Every 6.12 file exists, is a regular file, and has exactly its mode. */
TEST_F(ksm_sysfs, files_and_modes)
{
	char path[256];
	struct stat st;
	struct dirent *de;
	size_t i;
	DIR *d;

	for (i = 0; i < NR_KSM_FILES; i++) {
		ksm_path(path, sizeof(path), ksm_files[i].name);
		ASSERT_EQ(0, stat(path, &st))
			TH_LOG("%s missing: %s", path, strerror(errno));
		EXPECT_TRUE(S_ISREG(st.st_mode)) TH_LOG("%s not a file", path);
		EXPECT_EQ(ksm_files[i].mode, st.st_mode & 07777)
			TH_LOG("%s has mode %o, want %o", path,
			       st.st_mode & 07777, ksm_files[i].mode);
		EXPECT_EQ(0U, st.st_uid);
	}

	ksm_path(path, sizeof(path), "merge_across_nodes");
	if (kernel_has_numa()) {
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("NUMA kernel lacks %s", path);
		EXPECT_EQ(0644U, st.st_mode & 07777);
	} else {
		EXPECT_NE(0, stat(path, &st)) TH_LOG("%s without CONFIG_NUMA", path);
	}

	/* Report (but tolerate) files this test does not know about. */
	d = opendir(KSM_DIR);
	ASSERT_NE(NULL, d);
	while ((de = readdir(d))) {
		bool known = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			     !strcmp(de->d_name, "merge_across_nodes");

		for (i = 0; !known && i < NR_KSM_FILES; i++)
			known = !strcmp(de->d_name, ksm_files[i].name);
		if (!known)
			TH_LOG("note: extra file %s/%s", KSM_DIR, de->d_name);
	}
	closedir(d);
}

/* Each file reads as exactly one line: a decimal number and a newline. */
TEST_F(ksm_sysfs, read_format)
{
	char buf[128];
	size_t i;

	for (i = 0; i < NR_KSM_FILES; i++) {
		const char *name = ksm_files[i].name;
		ssize_t n;
		long v;

		n = ksm_read_raw(name, buf, sizeof(buf));
		ASSERT_LT(0, n) TH_LOG("read %s", name);
		if (!strcmp(name, "advisor_mode")) {
			EXPECT_STREQ("[none] scan-time\n", buf);
			continue;
		}
		ASSERT_EQ(0, ksm_parse_long(buf, &v))
			TH_LOG("%s reads \"%s\", not <number>\\n", name, buf);
		if (!signed_counter(name))
			EXPECT_LE(0L, v) TH_LOG("%s negative", name);
	}
	if (kernel_has_numa()) {
		ASSERT_LT(0, ksm_read_raw("merge_across_nodes", buf, sizeof(buf)));
		EXPECT_TRUE(!strcmp(buf, "0\n") || !strcmp(buf, "1\n"));
	}
}

/* Counters are 0444: even root cannot open them for writing (EACCES). */
TEST_F(ksm_sysfs, counters_read_only)
{
	char path[256], before[64], after[64];
	size_t i;
	int fd;

	for (i = 0; i < NR_KSM_FILES; i++) {
		if (ksm_files[i].mode != 0444)
			continue;
		ksm_path(path, sizeof(path), ksm_files[i].name);
		ASSERT_LT(0, ksm_read_file(path, before, sizeof(before)));

		errno = 0;
		fd = open(path, O_WRONLY);
		EXPECT_EQ(-1, fd) TH_LOG("%s opened for writing", path);
		EXPECT_EQ(EACCES, errno) TH_LOG("%s: %s", path, strerror(errno));
		if (fd >= 0) {
			EXPECT_EQ(-1, write(fd, "0", 1));
			close(fd);
		}
		errno = 0;
		fd = open(path, O_RDWR);
		EXPECT_EQ(-1, fd) TH_LOG("%s opened read-write", path);
		EXPECT_EQ(EACCES, errno);
		if (fd >= 0)
			close(fd);

		/* Nothing that counts changes while KSM is idle. */
		if (strcmp(ksm_files[i].name, "pages_scanned")) {
			ASSERT_LT(0, ksm_read_file(path, after, sizeof(after)));
			EXPECT_STREQ(before, after) TH_LOG("%s", path);
		}
	}
}

/* After run=2 nothing is merged, tracked or counted as profit. */
TEST_F(ksm_sysfs, idle_counters_after_unmerge)
{
	static const char *const zero[] = {
		"pages_shared", "pages_sharing", "pages_unshared",
		"pages_volatile", "ksm_zero_pages", "general_profit",
		"full_scans", "stable_node_chains", "stable_node_dups",
	};
	char buf[64];
	size_t i;

	ASSERT_LT(0, ksm_read_raw("run", buf, sizeof(buf)));
	ASSERT_STREQ("2\n", buf);
	for (i = 0; i < N_(zero); i++) {
		ASSERT_LT(0, ksm_read_raw(zero[i], buf, sizeof(buf)));
		EXPECT_STREQ("0\n", buf) TH_LOG("%s after run=2", zero[i]);
	}
}

TEST_F(ksm_sysfs, run_values)
{
	static const struct good_input good[] = {
		{ "0", "0\n" }, { "1", "1\n" }, { "2", "2\n" },
		{ "1\n", "1\n" }, { "+0", "0\n" }, { "00", "0\n" },
		{ "2", "2\n" },
	};
	static const struct bad_input bad[] = {
		{ "3", EINVAL },
		{ "4294967295", EINVAL },
		{ "4294967296", EINVAL },
		{ "-1", EINVAL },
		{ "one", EINVAL },
		{ "1x", EINVAL },
		{ " 1", EINVAL },
		{ "\n", EINVAL },
	};

	check_accepts(_metadata, "run", good, N_(good));
	check_rejects(_metadata, "run", bad, N_(bad));
}

TEST_F(ksm_sysfs, uint_knobs)
{
	static const char *const knobs[] = {
		"sleep_millisecs", "pages_to_scan",
		"stable_node_chains_prune_millisecs",
	};
	size_t i;

	ASSERT_EQ(0, ksm_write("advisor_mode", "none"));
	for (i = 0; i < N_(knobs); i++) {
		check_accepts(_metadata, knobs[i], good_uint, N_(good_uint));
		check_rejects(_metadata, knobs[i], bad_uint, N_(bad_uint));
	}
}

TEST_F(ksm_sysfs, bool_knobs)
{
	static const char *const knobs[] = { "use_zero_pages", "smart_scan" };
	size_t i;

	for (i = 0; i < N_(knobs); i++) {
		check_accepts(_metadata, knobs[i], good_bool, N_(good_bool));
		check_rejects(_metadata, knobs[i], bad_bool, N_(bad_bool));
	}
}

/* kstrtoint() errors are passed through: overflow is ERANGE here. */
TEST_F(ksm_sysfs, max_page_sharing_values)
{
	static const struct good_input good[] = {
		{ "2", "2\n" }, { "3", "3\n" }, { "1024", "1024\n" },
		{ "2147483647", "2147483647\n" }, { "+64\n", "64\n" },
		{ "256", "256\n" },
	};
	static const struct bad_input bad[] = {
		{ "1", EINVAL },
		{ "0", EINVAL },
		{ "-1", EINVAL },
		{ "-2147483648", EINVAL },
		{ "2147483648", ERANGE },
		{ "99999999999999999999", ERANGE },
		{ "abc", EINVAL },
		{ "\n", EINVAL },
		{ "3.0", EINVAL },
	};

	check_accepts(_metadata, "max_page_sharing", good, N_(good));
	check_rejects(_metadata, "max_page_sharing", bad, N_(bad));
}

/* kstrtoul() errors are passed through: overflow is ERANGE here. */
TEST_F(ksm_sysfs, merge_across_nodes_values)
{
	static const struct good_input good[] = {
		{ "0", "0\n" }, { "1", "1\n" }, { "0\n", "0\n" },
		{ "+1", "1\n" },
	};
	static const struct bad_input bad[] = {
		{ "2", EINVAL },
		{ "4294967296", EINVAL },
		{ "-1", EINVAL },
		{ "18446744073709551616", ERANGE },
		{ "yes", EINVAL },
		{ "\n", EINVAL },
	};

	if (!kernel_has_numa())
		SKIP(return, "no CONFIG_NUMA: no merge_across_nodes");
	check_accepts(_metadata, "merge_across_nodes", good, N_(good));
	check_rejects(_metadata, "merge_across_nodes", bad, N_(bad));
}

TEST_F(ksm_sysfs, advisor_numeric_knobs)
{
	static const char *const knobs[] = {
		"advisor_max_cpu", "advisor_min_pages_to_scan",
		"advisor_max_pages_to_scan", "advisor_target_scan_time",
	};
	static const struct good_input good[] = {
		{ "1", "1\n" }, { "100", "100\n" }, { "42\n", "42\n" },
		{ "+9", "9\n" }, { "50", "50\n" },
	};
	static const struct good_input good_pages[] = {
		{ "4294967296", "4294967296\n" },
		{ "18446744073709551615", "18446744073709551615\n" },
	};
	static const struct good_input zero[] = { { "0", "0\n" } };
	static const struct bad_input zero_bad[] = { { "0", EINVAL } };
	size_t i;

	for (i = 0; i < N_(knobs); i++) {
		check_accepts(_metadata, knobs[i], good, N_(good));
		check_rejects(_metadata, knobs[i], bad_ulong_einval,
			      N_(bad_ulong_einval));
	}
	/* Page counts are unsigned long and have no upper bound. */
	check_accepts(_metadata, "advisor_min_pages_to_scan", good_pages,
		      N_(good_pages));
	check_accepts(_metadata, "advisor_max_pages_to_scan", good_pages,
		      N_(good_pages));
	/* 0 is fine everywhere except for the target scan time. */
	check_accepts(_metadata, "advisor_max_cpu", zero, 1);
	check_accepts(_metadata, "advisor_min_pages_to_scan", zero, 1);
	check_accepts(_metadata, "advisor_max_pages_to_scan", zero, 1);
	check_rejects(_metadata, "advisor_target_scan_time", zero_bad, 1);
}

/*
 * advisor_mode: "none" / "scan-time" (one trailing newline allowed).
 * Changing the mode resets pages_to_scan (to advisor_min_pages_to_scan,
 * resp. 100); re-selecting the current mode does not; pages_to_scan
 * cannot be written while scan-time is active.
 */
TEST_F(ksm_sysfs, advisor_mode)
{
	static const struct bad_input bad[] = {
		{ "foo", EINVAL },
		{ "None", EINVAL },
		{ "scan_time", EINVAL },
		{ "scan", EINVAL },
		{ "scan-time ", EINVAL },
		{ " none", EINVAL },
		{ "[none]", EINVAL },
		{ "none\n\n", EINVAL },
		{ "\n", EINVAL },
	};
	char buf[64];
	int ret;

	ASSERT_EQ(0, ksm_write("advisor_mode", "none"));
	ASSERT_EQ(0, ksm_write("pages_to_scan", "1234"));
	ASSERT_EQ(0, ksm_write("advisor_min_pages_to_scan", "777"));

	/* Same mode again: nothing reset. */
	ASSERT_EQ(0, ksm_write("advisor_mode", "none\n"));
	EXPECT_EQ(1234UL, ksm_get("pages_to_scan"));

	check_rejects(_metadata, "advisor_mode", bad, N_(bad));

	ASSERT_EQ(0, ksm_write("advisor_mode", "scan-time"));
	ASSERT_LT(0, ksm_read_raw("advisor_mode", buf, sizeof(buf)));
	EXPECT_STREQ("none [scan-time]\n", buf);
	EXPECT_EQ(777UL, ksm_get("pages_to_scan"));

	/* Any pages_to_scan write is refused, valid or not. */
	ret = ksm_write("pages_to_scan", "100");
	EXPECT_EQ(-EINVAL, ret) TH_LOG("pages_to_scan writable in scan-time mode");
	ret = ksm_write("pages_to_scan", "junk");
	EXPECT_EQ(-EINVAL, ret);
	EXPECT_EQ(777UL, ksm_get("pages_to_scan"));

	check_rejects(_metadata, "advisor_mode", bad, N_(bad));

	/* Re-selecting scan-time does not pick up a new minimum. */
	ASSERT_EQ(0, ksm_write("advisor_min_pages_to_scan", "888"));
	ASSERT_EQ(0, ksm_write("advisor_mode", "scan-time\n"));
	EXPECT_EQ(777UL, ksm_get("pages_to_scan"));

	ASSERT_EQ(0, ksm_write("advisor_mode", "none"));
	ASSERT_LT(0, ksm_read_raw("advisor_mode", buf, sizeof(buf)));
	EXPECT_STREQ("[none] scan-time\n", buf);
	EXPECT_EQ(100UL, ksm_get("pages_to_scan"));
	EXPECT_EQ(0, ksm_write("pages_to_scan", "321"));
	EXPECT_EQ(321UL, ksm_get("pages_to_scan"));

	ASSERT_EQ(0, ksm_write("advisor_mode", "scan-time"));
	EXPECT_EQ(888UL, ksm_get("pages_to_scan"));
	ASSERT_EQ(0, ksm_write("advisor_mode", "none"));
}

/*
 * max_page_sharing and merge_across_nodes can only change while no KSM
 * page exists (EBUSY otherwise); writing the current value always works.
 */
TEST_F_TIMEOUT(ksm_sysfs, busy_while_merged, 300)
{
	unsigned long mps;
	char cur[16], other[16];
	int ret;

	make_merged(_metadata, self, 4);

	ASSERT_EQ(0, ksm_read_ul("max_page_sharing", &mps));
	ret = ksm_write_ul("max_page_sharing", mps + 1);
	EXPECT_EQ(-EBUSY, ret) TH_LOG("max_page_sharing: %s", strerror(-ret));
	EXPECT_EQ(mps, ksm_get("max_page_sharing"));
	EXPECT_EQ(0, ksm_write_ul("max_page_sharing", mps));
	/* Range is checked before the busy state. */
	EXPECT_EQ(-EINVAL, ksm_write("max_page_sharing", "1"));

	if (kernel_has_numa()) {
		unsigned long man;

		ASSERT_EQ(0, ksm_read_ul("merge_across_nodes", &man));
		snprintf(cur, sizeof(cur), "%lu", man);
		snprintf(other, sizeof(other), "%lu", man ? 0UL : 1UL);
		ret = ksm_write("merge_across_nodes", other);
		EXPECT_EQ(-EBUSY, ret)
			TH_LOG("merge_across_nodes: %s", strerror(-ret));
		EXPECT_EQ(man, ksm_get("merge_across_nodes"));
		EXPECT_EQ(0, ksm_write("merge_across_nodes", cur));
		EXPECT_EQ(-EINVAL, ksm_write("merge_across_nodes", "2"));
	}

	/* Stopping is not enough: the pages stay merged. */
	EXPECT_EQ(1UL, ksm_get("pages_shared"));
	ret = ksm_write_ul("max_page_sharing", mps + 1);
	EXPECT_EQ(-EBUSY, ret);

	/* Once unmerged, both can change. */
	ASSERT_EQ(0, ksm_write("run", "2"));
	EXPECT_EQ(0, ksm_write_ul("max_page_sharing", mps + 1));
	EXPECT_EQ(mps + 1, ksm_get("max_page_sharing"));
	EXPECT_EQ(0, ksm_write_ul("max_page_sharing", mps));
	if (kernel_has_numa()) {
		EXPECT_EQ(0, ksm_write("merge_across_nodes", other));
		EXPECT_EQ(0, ksm_write("merge_across_nodes", cur));
	}
}

/*
 * full_scans counts completed passes; run=0 keeps it, run=2 resets it to
 * 0 (only on an actual change of run).  pages_scanned is never reset.
 */
TEST_F_TIMEOUT(ksm_sysfs, full_scans_and_run_states, 300)
{
	unsigned long scans, scanned_before, scanned;

	scanned_before = ksm_get("pages_scanned");
	ASSERT_NE(~0UL, scanned_before);
	ASSERT_EQ(0UL, ksm_get("full_scans"));

	make_merged(_metadata, self, 4);

	ASSERT_EQ(0UL, ksm_get("run"));
	scans = ksm_get("full_scans");
	EXPECT_LE(2UL, scans);
	scanned = ksm_get("pages_scanned");
	/* At least 4 pages in each of the 2 passes. */
	EXPECT_LE(scanned_before + 8, scanned);

	/* Stopped: nothing moves, and run=0 again is a no-op. */
	ASSERT_EQ(0, ksm_write("run", "0"));
	EXPECT_EQ(scans, ksm_get("full_scans"));
	EXPECT_EQ(scanned, ksm_get("pages_scanned"));
	EXPECT_EQ(1UL, ksm_get("pages_shared"));
	EXPECT_EQ(3UL, ksm_get("pages_sharing"));

	ASSERT_EQ(0, ksm_write("run", "2"));
	EXPECT_EQ(2UL, ksm_get("run"));
	EXPECT_EQ(0UL, ksm_get("full_scans"));
	EXPECT_EQ(scanned, ksm_get("pages_scanned"));
	EXPECT_EQ(0UL, ksm_get("pages_shared"));
	EXPECT_EQ(0UL, ksm_get("pages_sharing"));
}

TEST_HARNESS_MAIN
