#include "lanes_err.h"

const char *lanes_strerror(int err) {
#define LANES_X_MSG(name, val, msg) case LANES_##name: return msg;
    switch (err) {
    case LANES_OK: return "ok";
    LANES_ERR_MAP(LANES_X_MSG)
    }
#undef LANES_X_MSG
    return "unknown error";
}

const char *lanes_err_name(int err) {
#define LANES_X_NAME(name, val, msg) case LANES_##name: return #name;
    switch (err) {
    case LANES_OK: return "OK";
    LANES_ERR_MAP(LANES_X_NAME)
    }
#undef LANES_X_NAME
    return "EUNKNOWN";
}
