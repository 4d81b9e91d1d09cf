#ifndef ENG_WTYPE_H
#define ENG_WTYPE_H

/* Weight types, numbered as ggml's (model/gguf.h ENG_GGML_*): element types, and block-quantized
 * ones whose rows are whole blocks (quant.h has their layouts). The kernels and the model
 * description (model.h) share these numbers; they live here so that kern/ needs nothing above
 * it. */
enum {
    ENG_WT_F32 = 0, ENG_WT_F16 = 1, ENG_WT_Q4_0 = 2, ENG_WT_Q8_0 = 8, ENG_WT_Q4_K = 12,
    ENG_WT_Q6_K = 14, ENG_WT_BF16 = 30
};

#endif
