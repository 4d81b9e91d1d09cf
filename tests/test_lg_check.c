/* lanes-loadgen end to end against tests/lg_fake_server: --check catches one corrupted token, a clean
 * run passes with exact token accounting, and refused connections, a vanishing server and bad flags
 * each give a clear message (and no table header) and a non-zero exit; open loop, --duration, CSV
 * and plot work; --temp is --temperature. */
#include <netinet/in.h>
#include <sys/socket.h>

#include "lg_test_util.h"

static const char *bin;
static char tmp[256];

static void path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmp, name); }

static int start_fake(const char *extra_flag, const char *extra_val) {
    static int n_started;
    char srv[4096], log[512], name[32];
    snprintf(srv, sizeof srv, "%s/tests/lg_fake_server", bin);
    snprintf(name, sizeof name, "server%d.log", n_started++);   /* fresh: no stale port line */
    path(log, sizeof log, name);
    char *argv[] = {srv, "--port", "0", (char *)extra_flag, (char *)extra_val, NULL};
    if (!extra_flag) argv[3] = NULL;
    int port = lg_test_start_server(argv, log);
    ASSERT_GT(port, 0);
    return port;
}

/* A port with nothing listening: bind an ephemeral one, then close it. */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

int main(void) {
    bin = getenv("LANES_BIN");
    if (!bin) bin = ".";
    snprintf(tmp, sizeof tmp, "/tmp/lg_check_XXXXXX");
    ASSERT(mkdtemp(tmp) != NULL);
    char out[512], json[512], prompts[512], port_s[16];
    path(out, sizeof out, "out.txt");
    path(json, sizeof json, "out.json");
    path(prompts, sizeof prompts, "prompts.txt");
    FILE *f = fopen(prompts, "w");
    fputs("Once upon a time\n\nThe cat sat on the \"mat\"\r\nA \\ backslash and a tab\there\n", f);
    fclose(f);                                   /* three prompts: the baseline is requests 0..2 */

    /* Bad flags: usage and exit 2. */
    const char *bad1[] = {"--streams", "0", NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, bad1), 2);
    ASSERT(lg_test_contains(out, "usage:"));
    const char *bad2[] = {"--bogus", NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, bad2), 2);
    const char *bad3[] = {"--mode", "open", NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, bad3), 2);

    /* Connection refused. */
    snprintf(port_s, sizeof port_s, "%d", dead_port());
    const char *refused[] = {"--port", port_s, "--streams", "1", NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, refused), 1);
    ASSERT(lg_test_contains(out, "connection refused"));
    ASSERT(!lg_test_contains(out, "ttft_p50"));  /* no table header before the error */

    /* A clean --check run: exit 0, every point complete, tokens equal the server's count. */
    snprintf(port_s, sizeof port_s, "%d", start_fake(NULL, NULL));
    const char *clean[] = {"--port", port_s, "--streams", "1,4", "--requests", "3", "--max-tokens", "8",
                           "--prompts", prompts, "--check", "--json", json, NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, clean), 0);
    ASSERT(lg_test_contains(out, "check passed"));
    ASSERT(lg_test_contains(out, "ttft_p50"));
    cJSON *j = lg_test_json(json, 2);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "points")) {
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "complete")));
        ASSERT_EQ(lg_test_num(p, "requests_ok"), lg_test_num(p, "streams") * 3);
        ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "requests_ok") * 8);
        ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "server_tokens"));
        ASSERT_EQ(lg_test_num(p, "check_mismatches"), 0);
        ASSERT(lg_test_num(p, "itl_ms_p50") > 0);
    }
    cJSON_Delete(j);

    /* Open loop and --duration on the same server; CSV and plot outputs. */
    char csv[512], plot[512];
    path(csv, sizeof csv, "out.csv");
    path(plot, sizeof plot, "out.svg");
    const char *open_loop[] = {"--port", port_s, "--streams", "2,8", "--mode", "open", "--rate", "500",
                               "--requests", "4", "--max-tokens", "5", "--seed", "9", "--json", json,
                               "--csv", csv, "--plot", plot, "--no-progress", NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, open_loop), 0);
    j = lg_test_json(json, 2);
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "points")) {
        ASSERT_EQ(lg_test_num(p, "requests_ok"), lg_test_num(p, "streams") * 4);
        ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "server_tokens"));
        ASSERT_EQ(lg_test_num(p, "rate"), 500);
    }
    cJSON_Delete(j);
    char *c = lg_test_slurp(csv);
    ASSERT(c != NULL);
    int lines = 0;
    for (char *q = c; *q; q++) lines += *q == '\n';
    ASSERT_EQ(lines, 3);                          /* header and two points */
    ASSERT(strncmp(c, "complete,streams,rate,", 22) == 0);
    free(c);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        char *svg = lg_test_slurp(plot);
        ASSERT(svg != NULL && strstr(svg, "<svg") != NULL);
        free(svg);
    } else {
        ASSERT(lg_test_contains(out, "gnuplot is not installed"));
    }
    const char *duration[] = {"--port", port_s, "--streams", "3", "--duration", "0.3", "--max-tokens", "4",
                              "--temp", "0.25", "--json", json, NULL};  /* lanes-run's spelling too */
    ASSERT_EQ(lg_test_loadgen(bin, out, duration), 0);
    j = lg_test_json(json, 1);
    ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"),
                                            "temperature")->valuedouble == 0.25);
    p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "points"), 0);
    ASSERT(lg_test_num(p, "requests_ok") >= 3);
    ASSERT(lg_test_num(p, "elapsed_s") >= 0.3);
    ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "requests_ok") * 4);
    ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "server_tokens"));
    cJSON_Delete(j);
    lg_test_stop_server();

    /* The fake server alters token 2 of generate request 5 (the 3rd of the sweep). */
    snprintf(port_s, sizeof port_s, "%d", start_fake("--corrupt", "5"));
    ASSERT_EQ(lg_test_loadgen(bin, out, clean), 1);
    ASSERT(lg_test_contains(out, "mismatch at streams=1 stream 0 request 2 prompt 2 token 2"));
    ASSERT(lg_test_contains(out, "check FAILED: 1 streams differ"));
    lg_test_stop_server();

    /* The server vanishes at its 7th request: the first point is reported, the run fails. */
    snprintf(port_s, sizeof port_s, "%d", start_fake("--die-after", "6"));
    const char *vanish[] = {"--port", port_s, "--streams", "2,4", "--requests", "3", "--max-tokens", "8",
                            "--json", json, NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, vanish), 1);
    ASSERT(lg_test_contains(out, "server closed the connection"));
    ASSERT(lg_test_contains(out, "after 1 of 2 points completed"));
    j = lg_test_json(json, 2);
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(j, "points");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pts, 0), "complete")));
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pts, 1), "complete")));
    cJSON_Delete(j);
    lg_test_stop_server();                       /* reaps it: it is gone already */

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return 0;
}
