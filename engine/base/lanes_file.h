#ifndef LANES_FILE_H
#define LANES_FILE_H

#include <stddef.h>

/* Reads the whole regular file at path. On LANES_OK *out is a new buffer (the caller frees it) of
 * *size bytes (size may be NULL) and a NUL after them, so text parses in place. Anything but a
 * regular file is refused before it is read (open does not block on a FIFO), as is a file of more
 * than max bytes. Errors, each logged as one line "WHAT PATH: reason": LANES_EIO (cannot open or
 * read, not a regular file, changed size while read), LANES_ETOOLONG (over max), LANES_ENOMEM. */
int lanes_read_file(const char *what, const char *path, size_t max, char **out, size_t *size);

/* Opens path for reading, requiring a regular file: O_NONBLOCK, so a FIFO or a device is refused
 * instead of blocking in open(). On failure logs one line "WHAT PATH: reason" and returns
 * LANES_EIO (cannot open or stat) or LANES_EINVAL (not a regular file); on success *fd (the caller
 * closes it) and *size are set. */
int lanes_open_file(const char *what, const char *path, int *fd, size_t *size);

#endif
