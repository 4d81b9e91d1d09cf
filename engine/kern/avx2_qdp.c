/* avx2_q.c's gemm_q for the "avx2-vnni" table: the same kernels built with AVX512-VNNI/VL too,
 * so Q8_0's many-column blocks take vpdpbusd (KQ_DP; see avx2_q.c). Empty off x86. */
#define KQ_DP 1
#include "avx2_q.c"
