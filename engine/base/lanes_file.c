#include "lanes_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lanes_err.h"
#include "lanes_log.h"

int lanes_open_file(const char *what, const char *path, int *fd_out, size_t *size) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: cannot open: %s", what, path, strerror(errno));
        return LANES_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: cannot stat: %s", what, path, strerror(errno));
        close(fd);
        return LANES_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: not a regular file", what, path);
        close(fd);
        return LANES_EINVAL;
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return LANES_OK;
}

int lanes_read_file(const char *what, const char *path, size_t max, char **out, size_t *size) {
    char *buf = NULL;
    size_t n, got = 0;
    int fd, rc = lanes_open_file(what, path, &fd, &n);
    if (rc < 0) return LANES_EIO;
    rc = LANES_EIO;
    if (n > max) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: %zu bytes, more than the %zu allowed", what, path, n, max);
        rc = LANES_ETOOLONG;
        goto fail;
    }
    if ((buf = malloc(n + 1)) == NULL) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: no memory for %zu bytes", what, path, n);
        rc = LANES_ENOMEM;
        goto fail;
    }
    /* One byte more than fstat said, to notice a file that grew since. */
    while (got <= n) {
        ssize_t r = read(fd, buf + got, n + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            LANES_LOG(LANES_LOG_ERROR, "%s %s: read failed: %s", what, path, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got != n) {
        LANES_LOG(LANES_LOG_ERROR, "%s %s: changed size while read (%zu bytes, then %s)", what,
                  path, n, got < n ? "fewer" : "more");
        goto fail;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    if (size) *size = n;
    return LANES_OK;
fail:
    free(buf);
    close(fd);
    return rc;
}
