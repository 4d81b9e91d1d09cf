#ifndef LANES_ERR_H
#define LANES_ERR_H

/* One table gives every error code its number, name and message. 0 is success; errors are negative.
 * The numbers never change: they appear in logs and in protocol replies (by name). */
#define LANES_ERR_MAP(X)                                                                          \
    X(ENOMEM, -1, "out of memory")                                                                \
    X(EINVAL, -2, "invalid argument")                                                             \
    X(EAGAIN, -3, "need more input")                                                              \
    X(EBUSY, -4, "at capacity")                                                                   \
    X(EPROTO, -5, "bad request")                                                                  \
    X(EIO, -6, "i/o error")                                                                       \
    X(EMODEL, -7, "bad model file")                                                               \
    X(ETOK, -8, "bad tokenizer file")                                                             \
    X(ERANGE, -9, "value out of range")                                                           \
    X(ECANCELED, -10, "cancelled")                                                                \
    X(ETOOLONG, -11, "too long")                                                                  \
    X(EEXIST, -12, "already exists")                                                              \
    X(ENOENT, -13, "not found")                                                                   \
    X(ECLOSED, -14, "closed")

#define LANES_X_ENUM(name, val, msg) LANES_##name = (val),
typedef enum { LANES_OK = 0, LANES_ERR_MAP(LANES_X_ENUM) } lanes_err_t;
#undef LANES_X_ENUM

const char *lanes_strerror(int err);   /* "at capacity": for logs */
const char *lanes_err_name(int err);   /* "EBUSY": for protocol replies */

#endif
