#ifndef LANES_SYS_H
#define LANES_SYS_H

#include <stddef.h>
#include <stdint.h>

/* What the machine lets this process use, as a container sees it, and safe file opening. */

/* CPUs this process may run on: its affinity mask (sched_getaffinity, any mask size), lowered to
 * the cgroup CPU quota when one is set. At least 1. */
int lanes_sys_cpus(void);

/* Bytes this process can still allocate: MemAvailable from /proc/meminfo, lowered to what the
 * process's memory cgroup has left under its limit. UINT64_MAX when nothing says. */
uint64_t lanes_sys_mem_avail(void);

/* The CPU quota of the cgroup mount/path and its ancestors up to mount (the lowest applies): v2
 * cpu.max "QUOTA PERIOD" or "max PERIOD", v1 cpu.cfs_quota_us / cpu.cfs_period_us (-1 = none), in
 * whole CPUs rounded up (at least 1); 0 when no level sets one. path is as /proc/self/cgroup gives
 * it ("/" or "/a/b"); levels that do not exist under mount (another cgroup namespace) are skipped,
 * so mount itself is always read. */
int lanes_sys_cgroup_cpus(const char *mount, const char *path);

/* What the cgroup mount/path and its ancestors have left under their memory limits (the lowest
 * applies): the limit (v2 memory.max, v1 memory.limit_in_bytes) less the usage (memory.current,
 * memory.usage_in_bytes) that is not reclaimable page cache (memory.stat inactive_file, v1
 * total_inactive_file). UINT64_MAX when no level sets a limit. */
uint64_t lanes_sys_cgroup_mem(const char *mount, const char *path);

/* MemAvailable of a meminfo file in bytes, or UINT64_MAX when it has none. */
uint64_t lanes_sys_meminfo_avail(const char *meminfo_path);

#endif
