/* GGUF models: the model description from general.architecture and the <arch>.* keys, tensors
 * mapped by role. */
#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model_int.h"

int eng__model_load_gguf(const char *path, eng_model_t **out) {
    (void)out;
    LANES_LOG(LANES_LOG_ERROR, "model %s: GGUF models are not supported yet", path);
    return LANES_EMODEL;
}
