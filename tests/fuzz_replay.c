/* Runs a libFuzzer target over files without libFuzzer (or clang), so ctest replays the committed
 * corpus (seeds and past crashes) in every build, the sanitizer one included.
 * Usage: fuzz_replay FILE|DIR...  Fails when a target check aborts or no input was found. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

#include "test_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    size_t n;
    char *text = test_read_file(path, &n);
    uint8_t *data = malloc(n ? n : 1);  /* exactly n bytes: no NUL after them to hide an overread */
    ASSERT(data != NULL);
    memcpy(data, text, n);
    free(text);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 1;
}

static int replay(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_replay: cannot stat %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path);
    DIR *d = opendir(path);
    ASSERT(d != NULL);
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        ASSERT(snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub);
        count += replay(sub);
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv) {
    int count = 0;
    for (int i = 1; i < argc; i++) count += replay(argv[i]);
    printf("fuzz_replay: %d inputs\n", count);
    return count > 0 ? 0 : 1;
}
