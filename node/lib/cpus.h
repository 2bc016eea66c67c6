/* node/lib/cpus.h: how many CPUs this node may use (docs/engine.md): the
 * CPUs it may run on (sched_getaffinity), bounded by its cgroup's CPU
 * quota, rounded up (a container limited to 1.5 CPUs gets 2 workers): the
 * default worker count (--threads 0).
 *
 * The parsers take the files' text, so that the unit tests feed them
 * fixture strings; shoal_cpus_quota_under reads a cgroup tree from a root
 * folder (/sys/fs/cgroup, or a test's own). */
#ifndef SHOAL_CPUS_H
#define SHOAL_CPUS_H

#include <stddef.h>

/* cgroup v2 `cpu.max` ("max 100000", "150000 100000"): the quota in whole
 * CPUs, rounded up; 0 for no limit ("max"); -1 when malformed. */
int shoal_cpus_parse_v2_max(const char *cpu_max);

/* cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: the same; quota
 * -1 is no limit (0). */
int shoal_cpus_parse_v1(const char *quota_us, const char *period_us);

/* Which cgroup /proc/self/cgroup's text puts this process in, for the CPU
 * controller: its v2 path ("0::/path") or, when the cpu controller is on
 * a v1 hierarchy ("4:cpu,cpuacct:/path"), that path. 2 or 1 (the
 * version) with the path in path[size], -1 when neither line is there or
 * the path does not fit. v1 wins when both are there: the cpu controller
 * is then on v1, and the v2 tree has no cpu.max. */
int shoal_cpus_cgroup_path(const char *proc_self_cgroup, char *path, size_t size);

/* The CPU quota in whole CPUs (0: none) of the cgroup proc_self_cgroup
 * names, read under root as mounted at /sys/fs/cgroup: v2 from
 * root/PATH/cpu.max, v1 from root/cpu/PATH/ or root/cpu,cpuacct/PATH/
 * (cpu.cfs_quota_us and cpu.cfs_period_us); each ancestor up to root is
 * read too, and the smallest quota wins, since a parent's limit holds
 * for its children (inside a container the path may be the host's while
 * root is the container's own cgroup: missing folders are skipped). A
 * file that is there but malformed is ignored (no limit from it). */
int shoal_cpus_quota_under(const char *root, const char *proc_self_cgroup);

/* sched_getaffinity's count bounded by the quota of /proc/self/cgroup
 * under /sys/fs/cgroup; at least 1. */
int shoal_cpus_available(void);

#endif
