#include "kern.h"

#include <stdlib.h>
#include <string.h>

#include "base/lanes_log.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

static int cpu_has(const char *what) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(what, "sse") == 0) return __builtin_cpu_supports("sse4.1");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (strcmp(what, "avx2") == 0) return avx2;
    if (strcmp(what, "avx2-vnni") == 0)
        return avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    return 0;
#elif defined(__aarch64__)
    if (strcmp(what, "neon-dot") == 0) return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    return strcmp(what, "neon") == 0;
#else
    (void)what;
    return 0;
#endif
}

/* Every table of every build, best first after the two references (eng_kern_best's order). */
static const struct {
    const char *name;
    const eng_kern_ops_t *(*get)(void);
} all_tables[] = {
    {"scalar", eng__kern_scalar}, {"scalar-unfused", eng__kern_scalar_unfused},
    {"avx2-vnni", eng__kern_avx2_vnni}, {"avx2", eng__kern_avx2}, {"neon-dot", eng__kern_neon_dot},
    {"neon", eng__kern_neon}, {"sse", eng__kern_sse},
};
enum { N_TABLES = sizeof all_tables / sizeof *all_tables, N_REFERENCES = 2 };

const char *eng_kern_name_at(int i) { return i >= 0 && i < N_TABLES ? all_tables[i].name : NULL; }

const eng_kern_ops_t *eng_kern_by_name(const char *name) {
    for (int i = 0; i < N_TABLES; i++) {
        if (strcmp(name, all_tables[i].name) != 0) continue;
        const eng_kern_ops_t *ops = all_tables[i].get();
        return ops && (i < N_REFERENCES || cpu_has(name)) ? ops : NULL;
    }
    return NULL;
}

const eng_kern_ops_t *eng_kern_best(void) {
    static const eng_kern_ops_t *chosen;
    if (chosen) return chosen;
    const char *forced = getenv("LANES_SIMD");
    const eng_kern_ops_t *ops = NULL;
    if (forced && *forced) {
        ops = eng_kern_by_name(forced);
        if (!ops) LANES_LOG(LANES_LOG_WARN, "kern: LANES_SIMD=%s not available here", forced);
    }
    for (int i = N_REFERENCES; !ops && i < N_TABLES; i++)
        ops = eng_kern_by_name(all_tables[i].name);
    if (!ops) ops = eng__kern_scalar();
    chosen = ops;
    return ops;
}
