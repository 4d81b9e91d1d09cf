#include "lanes_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lanes_err.h"
#include "lanes_log.h"

/* Reads a small (pseudo-)file into buf, NUL-terminated; returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    return (ssize_t)n;
}

/* An unsigned decimal at the start of s (spaces first are fine); 0 if there is none. */
static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    while (*s == ' ') s++;
    if (*s < '0' || *s > '9') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) return 0;
    *out = v;
    return 1;
}

/* The file dir/name as one unsigned number (limits, usage counters); 0 if unreadable. */
static int read_u64(const char *dir, const char *name, uint64_t *out) {
    char path[PATH_MAX], buf[64];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    return read_small(path, buf, sizeof buf) > 0 && parse_u64(buf, out);
}

/* The value of "key N" lines (meminfo, memory.stat); 0 if absent. */
static int find_key(const char *text, const char *key, uint64_t *out) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == ':'))
            return parse_u64(p + kl + 1, out);
    return 0;
}

/* ---- cgroups -------------------------------------------------------------------------------- */

/* One cgroup level: 1 and *out when it sets a limit, else 0. */
typedef int (*level_fn)(const char *dir, uint64_t *out);

static int cpu_level(const char *dir, uint64_t *out) {
    char path[PATH_MAX], buf[128];
    uint64_t quota = 0, period = 0;
    if (snprintf(path, sizeof path, "%s/cpu.max", dir) < (int)sizeof path &&
        read_small(path, buf, sizeof buf) > 0) {                        /* v2: "max 100000" */
        char *sp = strchr(buf, ' ');
        if (!parse_u64(buf, &quota) || sp == NULL || !parse_u64(sp, &period)) return 0;
    } else if (!read_u64(dir, "cpu.cfs_quota_us", &quota) ||           /* v1: -1 is none */
               !read_u64(dir, "cpu.cfs_period_us", &period)) {
        return 0;
    }
    if (period == 0 || quota == 0) return 0;
    *out = (quota + period - 1) / period;
    return 1;
}

static int mem_level(const char *dir, uint64_t *out) {
    char path[PATH_MAX], buf[8192];
    uint64_t limit, usage = 0, cache = 0;
    const char *stat_key;
    if (snprintf(path, sizeof path, "%s/memory.max", dir) < (int)sizeof path &&
        read_small(path, buf, sizeof buf) > 0) {                        /* v2: "max" or bytes */
        if (!parse_u64(buf, &limit)) return 0;
        read_u64(dir, "memory.current", &usage);
        stat_key = "inactive_file";
    } else {
        /* v1 says "no limit" with the page counter's maximum, about 2^63 rounded to pages. */
        if (!read_u64(dir, "memory.limit_in_bytes", &limit) || limit >= (uint64_t)1 << 62) return 0;
        read_u64(dir, "memory.usage_in_bytes", &usage);
        stat_key = "total_inactive_file";
    }
    /* Page cache not recently used (the mapped model file, old logs) is reclaimed before an OOM
     * kill, so it counts as free. */
    if (snprintf(path, sizeof path, "%s/memory.stat", dir) < (int)sizeof path &&
        read_small(path, buf, sizeof buf) > 0)
        find_key(buf, stat_key, &cache);
    uint64_t held = usage > cache ? usage - cache : 0;
    *out = limit > held ? limit - held : 0;
    return 1;
}

/* The lowest limit over mount/path and its ancestors up to mount; UINT64_MAX when none. */
static uint64_t walk_levels(const char *mount, const char *path, level_fn fn) {
    char rel[PATH_MAX], dir[PATH_MAX];
    uint64_t best = UINT64_MAX, v;
    if (snprintf(rel, sizeof rel, "%s", path) >= (int)sizeof rel) rel[0] = 0;
    for (;;) {
        const char *sep = rel[0] == '/' || rel[0] == 0 ? "" : "/";
        if (snprintf(dir, sizeof dir, "%s%s%s", mount, sep, rel) < (int)sizeof dir &&
            fn(dir, &v) && v < best)
            best = v;
        char *slash = strrchr(rel, '/');
        if (rel[0] == 0 || (slash == rel && rel[1] == 0)) break;
        if (slash) *slash = 0;
        else rel[0] = 0;
    }
    return best;
}

int lanes_sys_cgroup_cpus(const char *mount, const char *path) {
    uint64_t n = walk_levels(mount, path, cpu_level);
    return n == UINT64_MAX ? 0 : n > INT_MAX ? INT_MAX : n < 1 ? 1 : (int)n;
}

uint64_t lanes_sys_cgroup_mem(const char *mount, const char *path) {
    return walk_levels(mount, path, mem_level);
}

/* The lowest limit fn finds in this process's cgroups for controller ("cpu", "memory"): the v2
 * unified hierarchy and the v1 one of that controller, at their usual mount points. */
static uint64_t own_cgroups(const char *controller, level_fn fn) {
    char buf[8192], mount[64];
    uint64_t best = UINT64_MAX;
    if (read_small("/proc/self/cgroup", buf, sizeof buf) <= 0) return best;
    size_t cl = strlen(controller);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* "ID:CONTROLLERS:PATH"; v2 is "0::PATH" */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL) continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (ctrls[0] == 0) {
            snprintf(mount, sizeof mount, "/sys/fs/cgroup");
        } else {
            int has = 0;
            for (const char *p = ctrls; p && !has; p = strchr(p, ','), p = p ? p + 1 : NULL)
                has = strncmp(p, controller, cl) == 0 && (p[cl] == ',' || p[cl] == 0);
            if (!has) continue;
            snprintf(mount, sizeof mount, "/sys/fs/cgroup/%s", controller);
        }
        uint64_t v = walk_levels(mount, path, fn);
        if (v < best) best = v;
    }
    return best;
}

/* ---- CPUs and memory ------------------------------------------------------------------------ */

static int affinity_cpus(void) {
    /* The mask may be larger than cpu_set_t's 1024 CPUs: grow it while the kernel says EINVAL. */
    for (int n = 1024; n <= 1 << 20; n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (set == NULL) break;
        size_t sz = CPU_ALLOC_SIZE(n);
        if (sched_getaffinity(0, sz, set) == 0) {
            int count = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            return count;
        }
        CPU_FREE(set);
        if (errno != EINVAL) break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 1;
}

int lanes_sys_cpus(void) {
    int n = affinity_cpus();
    uint64_t q = own_cgroups("cpu", cpu_level);
    if (q != UINT64_MAX && q < (uint64_t)n) n = (int)q;
    return n < 1 ? 1 : n;
}

uint64_t lanes_sys_meminfo_avail(const char *meminfo_path) {
    char buf[8192];
    uint64_t kb;
    if (read_small(meminfo_path, buf, sizeof buf) <= 0 || !find_key(buf, "MemAvailable", &kb) ||
        kb > UINT64_MAX / 1024)
        return UINT64_MAX;
    return kb * 1024;
}

uint64_t lanes_sys_mem_avail(void) {
    uint64_t avail = lanes_sys_meminfo_avail("/proc/meminfo");
    uint64_t cg = own_cgroups("memory", mem_level);
    return cg < avail ? cg : avail;
}
