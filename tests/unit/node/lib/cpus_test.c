/* tests/unit/node/lib/cpus_test.c: node/lib/cpus.c on fixture texts and
 * on a cgroup tree of the test's own in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"

static void test_v2_cpu_max(void **state)
{
    (void)state;
    assert_int_equal(shoal_cpus_parse_v2_max("max 100000\n"), 0);
    assert_int_equal(shoal_cpus_parse_v2_max("max"), 0);
    assert_int_equal(shoal_cpus_parse_v2_max("max\n"), 0);
    assert_int_equal(shoal_cpus_parse_v2_max("150000 100000\n"), 2);
    assert_int_equal(shoal_cpus_parse_v2_max("100000 100000"), 1);
    assert_int_equal(shoal_cpus_parse_v2_max("200000 100000\n"), 2);
    assert_int_equal(shoal_cpus_parse_v2_max("200001 100000\n"), 3);
    assert_int_equal(shoal_cpus_parse_v2_max("50000 100000\n"), 1);
    assert_int_equal(shoal_cpus_parse_v2_max("1 1000000\n"), 1);
    assert_int_equal(shoal_cpus_parse_v2_max("400000 50000"), 8);
    /* malformed */
    assert_int_equal(shoal_cpus_parse_v2_max(""), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("150000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("150000 0\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("0 100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("-5 100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("150000 100000 7\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("1.5 100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("maximal 100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("max x\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("99999999999999999999 100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v2_max("150000 100000\n\n"), -1);
}

static void test_v1_quota(void **state)
{
    (void)state;
    assert_int_equal(shoal_cpus_parse_v1("-1\n", "100000\n"), 0);
    assert_int_equal(shoal_cpus_parse_v1("150000\n", "100000\n"), 2);
    assert_int_equal(shoal_cpus_parse_v1("300000\n", "100000\n"), 3);
    assert_int_equal(shoal_cpus_parse_v1("20000\n", "100000\n"), 1);
    /* malformed */
    assert_int_equal(shoal_cpus_parse_v1("", "100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v1("150000\n", ""), -1);
    assert_int_equal(shoal_cpus_parse_v1("150000\n", "0\n"), -1);
    assert_int_equal(shoal_cpus_parse_v1("-2\n", "100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v1("-1x\n", "100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v1("0\n", "100000\n"), -1);
    assert_int_equal(shoal_cpus_parse_v1("abc\n", "100000\n"), -1);
}

static void test_cgroup_path(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(shoal_cpus_cgroup_path("0::/system.slice/shoal.service\n", path, sizeof path), 2);
    assert_string_equal(path, "/system.slice/shoal.service");
    assert_int_equal(shoal_cpus_cgroup_path("0::/\n", path, sizeof path), 2);
    assert_string_equal(path, "/");
    /* v1: the line whose controllers name cpu (not cpuset), wherever it is. */
    const char *v1 = "12:cpuset:/other\n"
                     "11:memory:/docker/abc\n"
                     "4:cpu,cpuacct:/docker/abc\n"
                     "1:name=systemd:/docker/abc\n"
                     "0::/system.slice/containerd.service\n";
    assert_int_equal(shoal_cpus_cgroup_path(v1, path, sizeof path), 1);
    assert_string_equal(path, "/docker/abc");
    assert_int_equal(shoal_cpus_cgroup_path("3:cpuacct,cpu:/a:b", path, sizeof path), 1);
    assert_string_equal(path, "/a:b");
    /* neither, or malformed */
    assert_int_equal(shoal_cpus_cgroup_path("", path, sizeof path), -1);
    assert_int_equal(shoal_cpus_cgroup_path("12:cpuset:/x\n", path, sizeof path), -1);
    assert_int_equal(shoal_cpus_cgroup_path("garbage\n", path, sizeof path), -1);
    assert_int_equal(shoal_cpus_cgroup_path("0::relative\n", path, sizeof path), -1);
    assert_int_equal(shoal_cpus_cgroup_path("0::\n", path, sizeof path), -1);
    char tiny[4];
    assert_int_equal(shoal_cpus_cgroup_path("0::/toolong\n", tiny, sizeof tiny), -1);
}

/* ---- a cgroup tree of the test's own ----------------------------------- */

static char root[PATH_MAX];

static void make_folder(const char *relative)
{
    char folder[PATH_MAX * 2];
    snprintf(folder, sizeof folder, "%s/%s", root, relative);
    char *slash = folder + strlen(root);
    while ((slash = strchr(slash + 1, '/')) != NULL) {
        *slash = '\0';
        mkdir(folder, 0700);
        *slash = '/';
    }
    assert_true(mkdir(folder, 0700) == 0 || access(folder, F_OK) == 0);
}

static void write_file(const char *relative, const char *text)
{
    char file[PATH_MAX * 2];
    snprintf(file, sizeof file, "%s/%s", root, relative);
    FILE *out = fopen(file, "w");
    assert_non_null(out);
    assert_int_equal(fputs(text, out) >= 0, 1);
    assert_int_equal(fclose(out), 0);
}

static int setup_root(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(root, sizeof root, "%s/shoal-cpus-XXXXXX", tmp);
    return mkdtemp(root) != NULL ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    return system(command) == 0 ? 0 : -1;
}

static void test_v2_tree(void **state)
{
    (void)state;
    make_folder("a/b/c");
    /* No files anywhere: no limit. */
    assert_int_equal(shoal_cpus_quota_under(root, "0::/a/b/c\n"), 0);
    write_file("a/b/c/cpu.max", "max 100000\n");
    assert_int_equal(shoal_cpus_quota_under(root, "0::/a/b/c\n"), 0);
    /* A parent's limit holds for its children. */
    write_file("a/cpu.max", "250000 100000\n");
    assert_int_equal(shoal_cpus_quota_under(root, "0::/a/b/c\n"), 3);
    write_file("a/b/cpu.max", "150000 100000\n");
    assert_int_equal(shoal_cpus_quota_under(root, "0::/a/b/c\n"), 2);
    /* A malformed file says nothing; the others still count. */
    write_file("a/b/cpu.max", "junk\n");
    assert_int_equal(shoal_cpus_quota_under(root, "0::/a/b/c\n"), 3);
    /* Inside a container: the host's path, the container's root. */
    write_file("cpu.max", "100000 100000\n");
    assert_int_equal(shoal_cpus_quota_under(root, "0::/kubepods/pod1/x\n"), 1);
    assert_int_equal(shoal_cpus_quota_under(root, "0::/\n"), 1);
    assert_int_equal(shoal_cpus_quota_under(root, "garbage\n"), 0);
}

static void test_v1_tree(void **state)
{
    (void)state;
    make_folder("v1/cpu,cpuacct/docker/abc");
    char v1_root[PATH_MAX + 8];
    snprintf(v1_root, sizeof v1_root, "%s/v1", root);
    const char *self = "4:cpu,cpuacct:/docker/abc\n0::/\n";
    assert_int_equal(shoal_cpus_quota_under(v1_root, self), 0);
    write_file("v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    write_file("v1/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    assert_int_equal(shoal_cpus_quota_under(v1_root, self), 0);
    write_file("v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
    assert_int_equal(shoal_cpus_quota_under(v1_root, self), 2);
    /* Only the quota there, no period: no limit from that folder. */
    make_folder("v1/cpu/docker/abc");
    write_file("v1/cpu/docker/abc/cpu.cfs_quota_us", "50000\n");
    assert_int_equal(shoal_cpus_quota_under(v1_root, self), 2);
    write_file("v1/cpu/docker/abc/cpu.cfs_period_us", "100000\n");
    assert_int_equal(shoal_cpus_quota_under(v1_root, self), 1);
}

static void test_available(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    int cpus = shoal_cpus_available();
    assert_true(cpus >= 1);
    assert_true(cpus <= CPU_COUNT(&set));
    /* One CPU allowed: whatever the quota, one. */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &set)) {
            CPU_SET(i, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    assert_int_equal(shoal_cpus_available(), 1);
    assert_int_equal(sched_setaffinity(0, sizeof set, &set), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_cpu_max),
        cmocka_unit_test(test_v1_quota),
        cmocka_unit_test(test_cgroup_path),
        cmocka_unit_test(test_v2_tree),
        cmocka_unit_test(test_v1_tree),
        cmocka_unit_test(test_available),
    };
    return cmocka_run_group_tests(tests, setup_root, remove_root);
}
