/* lanes_read_file: the whole file with its length and a NUL after it, embedded NULs kept; the
 * size limit exact; a missing file, a directory and a FIFO refused at once (a FIFO must not block
 * in open or read), each with one error line naming the file. */
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lanes_file.h"
#include "base/lanes_err.h"
#include "test_util.h"

static char dir[] = "/tmp/lanes-file-XXXXXX";

static int read_rc(const char *path, size_t max) {
    char *buf = (char *)"untouched";
    size_t size = 12345;
    int rc = lanes_read_file("test", path, max, &buf, &size);
    if (rc == LANES_OK) {
        free(buf);
    } else { /* nothing handed out */
        ASSERT_STR_EQ(buf, "untouched");
        ASSERT_EQ(size, 12345);
    }
    return rc;
}

int main(void) {
    alarm(20);   /* a blocking open or read fails the test instead of hanging it */
    ASSERT(mkdtemp(dir) != NULL);
    char path[256], fifo[256], missing[256];
    snprintf(path, sizeof path, "%s/f", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);

    static const char data[] = "ab\0cd\n";   /* an embedded NUL: the length, not strlen, counts */
    test_write_file(path, data, sizeof data - 1);
    char *buf = NULL;
    size_t size = 0;
    ASSERT_EQ(lanes_read_file("test", path, 100, &buf, &size), LANES_OK);
    ASSERT_EQ(size, sizeof data - 1);
    ASSERT(memcmp(buf, data, size) == 0 && buf[size] == '\0');
    free(buf);
    ASSERT_EQ(read_rc(path, sizeof data - 1), LANES_OK);              /* exactly max */
    ASSERT_EQ(read_rc(path, sizeof data - 2), LANES_ETOOLONG);        /* one byte over */

    test_write_file(path, "", 0);
    ASSERT_EQ(lanes_read_file("test", path, 0, &buf, NULL), LANES_OK);   /* size may be NULL */
    ASSERT(buf[0] == '\0');
    free(buf);

    ASSERT_EQ(read_rc(missing, 100), LANES_EIO);
    ASSERT_EQ(read_rc(dir, 1 << 30), LANES_EIO);
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    ASSERT_EQ(read_rc(fifo, 1 << 30), LANES_EIO);   /* no writer: a blocking open would hang */
    ASSERT_EQ(read_rc("/dev/zero", 1 << 30), LANES_EIO);   /* never ends */

    unlink(fifo), unlink(path), rmdir(dir);
    printf("lanes_file: ok\n");
    return 0;
}
