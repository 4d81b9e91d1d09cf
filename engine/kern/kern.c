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

const eng_kern_ops_t *eng_kern_by_name(const char *name) {
    if (strcmp(name, "scalar") == 0) return eng__kern_scalar();
    if (strcmp(name, "scalar-unfused") == 0) return eng__kern_scalar_unfused();
    const eng_kern_ops_t *ops = NULL;
    if (strcmp(name, "sse") == 0) ops = eng__kern_sse();
    else if (strcmp(name, "avx2") == 0) ops = eng__kern_avx2();
    else if (strcmp(name, "avx2-vnni") == 0) ops = eng__kern_avx2_vnni();
    else if (strcmp(name, "neon") == 0) ops = eng__kern_neon();
    else if (strcmp(name, "neon-dot") == 0) ops = eng__kern_neon_dot();
    return ops && cpu_has(name) ? ops : NULL;
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
    static const char *order[] = {"avx2-vnni", "avx2", "neon-dot", "neon", "sse"};
    for (size_t i = 0; !ops && i < sizeof order / sizeof *order; i++) ops = eng_kern_by_name(order[i]);
    if (!ops) ops = eng__kern_scalar();
    chosen = ops;
    return ops;
}
