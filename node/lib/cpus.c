/* node/lib/cpus.c: how many CPUs this node may use (cpus.h). */
#include "cpus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* cgroup files are a line or a few; /proc/self/cgroup a line per v1
 * hierarchy. Longer text is not what we know how to read. */
#define CPUS_FILE_MAX 4096

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Digits only (no sign, no blanks), at most 18 of them: the value, or -1. */
static int64_t parse_count(const char **text)
{
    const char *p = *text;
    int64_t value = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (++digits > 18)
            return -1;
        value = value * 10 + (*p - '0');
        p++;
    }
    if (digits == 0)
        return -1;
    *text = p;
    return value;
}

/* Nothing but blanks and one optional newline left. */
static bool at_end(const char *p)
{
    p = skip_blanks(p);
    if (*p == '\n')
        p++;
    return *p == '\0';
}

static int whole_cpus(int64_t quota, int64_t period)
{
    if (quota <= 0 || period <= 0)
        return -1;
    int64_t cpus = (quota + period - 1) / period;
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

int shoal_cpus_parse_v2_max(const char *cpu_max)
{
    const char *p = skip_blanks(cpu_max);
    bool unlimited = strncmp(p, "max", 3) == 0;
    int64_t quota = 0;
    if (unlimited)
        p += 3;
    else if ((quota = parse_count(&p)) < 0)
        return -1;
    if (unlimited && at_end(p))
        return 0;
    if (*p != ' ' && *p != '\t')
        return -1;
    p = skip_blanks(p);
    int64_t period = parse_count(&p);
    if (period <= 0 || !at_end(p))
        return -1;
    return unlimited ? 0 : whole_cpus(quota, period);
}

int shoal_cpus_parse_v1(const char *quota_us, const char *period_us)
{
    const char *q = skip_blanks(quota_us);
    const char *p = skip_blanks(period_us);
    int64_t period = parse_count(&p);
    if (period <= 0 || !at_end(p))
        return -1;
    if (strncmp(q, "-1", 2) == 0 && at_end(q + 2))
        return 0;
    int64_t quota = parse_count(&q);
    if (quota < 0 || !at_end(q))
        return -1;
    return whole_cpus(quota, period);
}

/* Whether the comma-separated controller list names "cpu" itself. */
static bool lists_cpu(const char *list, size_t length)
{
    const char *end = list + length;
    while (list < end) {
        const char *comma = memchr(list, ',', (size_t)(end - list));
        size_t item = (size_t)((comma != NULL ? comma : end) - list);
        if (item == 3 && memcmp(list, "cpu", 3) == 0)
            return true;
        list += item + 1;
    }
    return false;
}

static bool copy_path(const char *from, size_t length, char *path, size_t size)
{
    if (length == 0 || length >= size || from[0] != '/')
        return false;
    memcpy(path, from, length);
    path[length] = '\0';
    return true;
}

int shoal_cpus_cgroup_path(const char *proc_self_cgroup, char *path, size_t size)
{
    int version = -1;
    const char *line = proc_self_cgroup;
    while (*line != '\0') {
        const char *newline = strchr(line, '\n');
        const char *end = newline != NULL ? newline : line + strlen(line);
        /* id:controllers:path (the path may hold colons itself) */
        const char *first = memchr(line, ':', (size_t)(end - line));
        const char *second = first != NULL ? memchr(first + 1, ':', (size_t)(end - first - 1)) : NULL;
        if (second != NULL) {
            const char *controllers = first + 1;
            size_t controllers_length = (size_t)(second - controllers);
            const char *from = second + 1;
            size_t length = (size_t)(end - from);
            bool v2 = first - line == 1 && line[0] == '0' && controllers_length == 0;
            if (lists_cpu(controllers, controllers_length)) {
                return copy_path(from, length, path, size) ? 1 : -1;
            }
            if (v2 && copy_path(from, length, path, size))
                version = 2;
        }
        line = newline != NULL ? newline + 1 : end;
    }
    return version;
}

/* The file's text in buffer, or false when it cannot be read. */
static bool read_text(const char *file, char *buffer, size_t size)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t used = 0;
    bool ok = true;
    for (;;) {
        ssize_t got = read(fd, buffer + used, size - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ok = false;
            break;
        }
        if (got == 0)
            break;
        used += (size_t)got;
        if (used == size - 1) {
            ok = false; /* longer than any file we read */
            break;
        }
    }
    buffer[used] = '\0';
    if (close(fd) != 0)
        ok = false;
    return ok;
}

/* The quota (0: none) set in one cgroup folder, 0 when it has no files. */
static int folder_quota(int version, const char *folder)
{
    char file[PATH_MAX], text[CPUS_FILE_MAX], period[CPUS_FILE_MAX];
    if (version == 2) {
        if (snprintf(file, sizeof file, "%s/cpu.max", folder) >= (int)sizeof file || !read_text(file, text, sizeof text))
            return 0;
        int cpus = shoal_cpus_parse_v2_max(text);
        return cpus > 0 ? cpus : 0;
    }
    if (snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", folder) >= (int)sizeof file ||
        !read_text(file, text, sizeof text))
        return 0;
    if (snprintf(file, sizeof file, "%s/cpu.cfs_period_us", folder) >= (int)sizeof file ||
        !read_text(file, period, sizeof period))
        return 0;
    int cpus = shoal_cpus_parse_v1(text, period);
    return cpus > 0 ? cpus : 0;
}

static int smaller_quota(int a, int b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* The smallest quota from base/path up through each ancestor to base. */
static int quota_along(int version, const char *base, const char *path)
{
    char folder[PATH_MAX];
    if (snprintf(folder, sizeof folder, "%s%s", base, path) >= (int)sizeof folder)
        return 0;
    size_t base_length = strlen(base);
    int quota = 0;
    for (;;) {
        quota = smaller_quota(quota, folder_quota(version, folder));
        char *slash = strrchr(folder + base_length, '/');
        if (slash == NULL)
            break;
        *slash = '\0'; /* "/a/b" -> "/a" -> "" (base itself) */
    }
    return quota;
}

int shoal_cpus_quota_under(const char *root, const char *proc_self_cgroup)
{
    char path[PATH_MAX];
    int version = shoal_cpus_cgroup_path(proc_self_cgroup, path, sizeof path);
    if (version < 0)
        return 0;
    if (strcmp(path, "/") == 0)
        path[0] = '\0';
    if (version == 2)
        return quota_along(2, root, path);
    int quota = 0;
    static const char *const hierarchies[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    for (size_t i = 0; i < sizeof hierarchies / sizeof *hierarchies; i++) {
        char base[PATH_MAX];
        if (snprintf(base, sizeof base, "%s/%s", root, hierarchies[i]) >= (int)sizeof base)
            continue;
        quota = smaller_quota(quota, quota_along(1, base, path));
    }
    return quota;
}

int shoal_cpus_available(void)
{
    int cpus = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = online > 0 && online < INT_MAX ? (int)online : 1;
    }
    char text[CPUS_FILE_MAX];
    if (read_text("/proc/self/cgroup", text, sizeof text)) {
        int quota = shoal_cpus_quota_under("/sys/fs/cgroup", text);
        if (quota > 0 && quota < cpus)
            cpus = quota;
    }
    return cpus;
}
