/* Tenants end to end (issue "Tenants"): a server with a tenants file, clients through the stub
 * with VGPU_TOKEN, tests/remote/tenant_prog.c doing the allocating. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TPROG VG_TEST_BIN_DIR "/remote_tenant_prog"
#define SMI VG_BUILD_DIR "/bin/vgpu-smi"
#define MIB (1024ull * 1024)

#define ALICE "VGPU_TOKEN=alice-secret-0001"
#define BOB "VGPU_TOKEN=bob-secret-0002"
#define CAROL "VGPU_TOKEN=carol-secret-0003"

static char tfile[64];

static void write_tenants(const char *text)
{
    if (!tfile[0]) {
        snprintf(tfile, sizeof tfile, "/tmp/vgpu-tenants.XXXXXX");
        int fd = mkstemp(tfile);
        cr_assert(fd >= 0);
        close(fd);
    }
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", tfile);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, tfile), 0);
}

static const char *const base_tenants =
    "# alice is limited, bob is not, carol is limited too\n"
    "[alice]\n"
    "token = alice-secret-0001\n"
    "weight = 3\n"
    "memory = 64M\n"
    "\n"
    "[bob]\n"
    "token = bob-secret-0002\n"
    "\n"
    "[carol]\n"
    "token_sha256 = %s\n"
    "memory = 32M\n";

static void start(const char *text)
{
    write_tenants(text);
    const char *extra[] = {"--tenants", tfile, NULL};
    th_start_server_with(extra, 0);
}

static void start_base(void)
{
    char text[1024];
    /* The digest of carol's token, computed the way the server does (sha256sum). */
    FILE *p = popen("printf %s carol-secret-0003 | sha256sum | cut -c1-64", "r");
    cr_assert_not_null(p);
    char sha[80] = "";
    cr_assert(fgets(sha, sizeof sha, p));
    pclose(p);
    sha[strcspn(sha, "\n")] = 0;
    snprintf(text, sizeof text, base_tenants, sha);
    start(text);
}

static void stop(void)
{
    th_stop_server();
    unlink(tfile);
}

/* Runs tenant_prog with a token; returns its exit status and its stdout in out. */
static int run_as(const char *token_env, const char *const argv[], char *out, size_t out_size)
{
    const char *env[] = {token_env, NULL};
    return th_capture(argv, token_env ? env : NULL, out, out_size);
}

static unsigned long long field(const char *out, const char *name)
{
    const char *at = strstr(out, name);
    cr_assert_not_null(at, "no %s in:\n%s", name, out);
    return strtoull(at + strlen(name), NULL, 10);
}

/* A client that allocated `size`-byte buffers until refused and now holds them. */
struct holder {
    pid_t pid;
    int in, out;
    int got;
};

static struct holder hold(const char *token_env, const char *size)
{
    struct holder h;
    const char *argv[] = {TPROG, "alloc", size, "hold", NULL};
    const char *env[] = {token_env, NULL};
    h.pid = th_spawn_io(argv, &h.in, &h.out, env);
    char line[256];
    cr_assert(th_expect_line(h.out, "GOT ", line, sizeof line, 60), "the holder did not allocate");
    h.got = atoi(line + 4);
    cr_assert(th_expect_line(h.out, "READY", NULL, 0, 60));
    return h;
}

/* Lets a holder go on: returns what it then saw ("FREE f" and "AGAIN rc"). */
static void release(struct holder *h, unsigned long long *free_after, int *again)
{
    char line[256];
    cr_assert_eq(write(h->in, "go\n", 3), 3);
    cr_assert(th_expect_line(h->out, "FREE ", line, sizeof line, 60));
    *free_after = strtoull(line + 5, NULL, 10);
    cr_assert(th_expect_line(h->out, "AGAIN ", line, sizeof line, 60));
    *again = atoi(line + 6);
    close(h->in);
    close(h->out);
    cr_assert_eq(th_wait(h->pid), 0);
}

static void reload_and_wait(const char *text, int nth)
{
    write_tenants(text);
    cr_assert_eq(kill(th_srv.pid, SIGHUP), 0);
    /* The nth reload's log line. */
    for (int i = 0; i < 200; i++) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "grep -c 'tenants reloaded' %s", th_srv.log);
        FILE *p = popen(cmd, "r");
        char buf[32] = "0";
        if (p) {
            if (!fgets(buf, sizeof buf, p))
                buf[0] = 0;
            pclose(p);
        }
        if (atoi(buf) >= nth)
            return;
        usleep(50000);
    }
    cr_assert_fail("reload %d was not logged", nth);
}

Test(tenants, the_limit_is_the_tenants_total_memory, .timeout = 60)
{
    start_base();
    char out[1024];
    const char *info[] = {TPROG, "info", NULL};
    cr_assert_eq(run_as(ALICE, info, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "TOTAL "), 64 * MIB);
    cr_assert_eq(field(out, "FREE "), 64 * MIB);
    cr_assert_eq(run_as(BOB, info, out, sizeof out), 0, "%s", out);
    cr_assert_gt(field(out, "TOTAL "), 64 * MIB, "bob has no limit: he sees the device");
    stop();
}

Test(tenants, allocations_stop_at_the_limit_and_others_go_on, .timeout = 120)
{
    start_base();
    char out[1024];
    const char *alloc8[] = {TPROG, "alloc", "8388608", NULL};
    cr_assert_eq(run_as(ALICE, alloc8, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "GOT "), 8, "64M in 8M buffers");
    cr_assert_eq(field(out, "RESULT "), 2, "the next one is CUDA_ERROR_OUT_OF_MEMORY");
    const char *alloc64[] = {TPROG, "alloc", "67108864", NULL};
    cr_assert_eq(run_as(BOB, alloc64, out, sizeof out), 0, "%s", out);
    cr_assert_gt(field(out, "GOT "), 8, "bob is not held to alice's limit");
    stop();
}

Test(tenants, two_sessions_of_a_tenant_share_its_limit, .timeout = 120)
{
    start_base();
    struct holder a = hold(ALICE, "8388608");
    cr_assert_eq(a.got, 8);
    char out[1024];
    const char *alloc8[] = {TPROG, "alloc", "8388608", NULL};
    cr_assert_eq(run_as(ALICE, alloc8, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "GOT "), 0, "the first session holds all of alice's 64M");
    unsigned long long free_after;
    int again;
    release(&a, &free_after, &again);
    cr_assert_eq(free_after, 0);
    cr_assert(th_wait_sessions(0, 10));
    cr_assert_eq(run_as(ALICE, alloc8, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "GOT "), 8, "the first session's memory came back");
    stop();
}

Test(tenants, module_globals_count, .timeout = 60)
{
    start_base();
    char out[1024];
    const char *mod[] = {TPROG, "module", VG_KERNEL_DIR, NULL};
    cr_assert_eq(run_as(ALICE, mod, out, sizeof out), 0, "%s", out);
    unsigned long long before = field(out, "FREE ");
    unsigned long long after = field(strstr(out, "FREE ") + 5, "FREE ");
    cr_assert_leq(after + MIB, before, "loading a module with a 1 MiB global: %llu -> %llu", before, after);
    cr_assert_eq(field(out, "UNLOADED "), before, "unloading gives it back");
    stop();
}

Test(tenants, a_killed_clients_memory_comes_back, .timeout = 120)
{
    start_base();
    struct holder a = hold(ALICE, "8388608");
    cr_assert_eq(a.got, 8);
    kill(a.pid, SIGKILL);
    th_wait(a.pid);
    close(a.in);
    close(a.out);
    cr_assert(th_wait_sessions(0, 10));
    char out[1024];
    const char *info[] = {TPROG, "info", NULL};
    cr_assert_eq(run_as(ALICE, info, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "FREE "), 64 * MIB, "alice's use is back to 0");
    stop();
}

static void with_alice_limit(char *text, size_t size, const char *alice_memory)
{
    snprintf(text, size,
             "[alice]\ntoken = alice-secret-0001\nmemory = %s\n\n[bob]\ntoken = bob-secret-0002\n", alice_memory);
}

Test(tenants, a_reload_raises_a_limit_for_a_connected_session, .timeout = 120)
{
    char text[512];
    with_alice_limit(text, sizeof text, "64M");
    start(text);
    struct holder a = hold(ALICE, "8388608");
    cr_assert_eq(a.got, 8);
    with_alice_limit(text, sizeof text, "128M");
    reload_and_wait(text, 1);
    unsigned long long free_after;
    int again;
    release(&a, &free_after, &again);
    cr_assert_eq(free_after, 64 * MIB, "the raised limit shows at once");
    cr_assert_eq(again, 0, "and allocations go on");
    stop();
}

Test(tenants, a_reload_lowers_a_limit_and_frees_nothing, .timeout = 120)
{
    char text[512];
    with_alice_limit(text, sizeof text, "64M");
    start(text);
    struct holder a = hold(ALICE, "8388608");
    cr_assert_eq(a.got, 8);
    with_alice_limit(text, sizeof text, "32M");
    reload_and_wait(text, 1);
    unsigned long long free_after;
    int again;
    release(&a, &free_after, &again);
    cr_assert_eq(free_after, 0);
    cr_assert_eq(again, 2, "over the lowered limit: CUDA_ERROR_OUT_OF_MEMORY");
    stop();
}

static void expect_refused(const char *token_env, const char *why)
{
    char out[1024];
    const char *info[] = {TPROG, "info", NULL};
    int err[2];
    cr_assert_eq(pipe(err), 0);
    int saved = dup(2);
    dup2(err[1], 2);
    int rc = run_as(token_env, info, out, sizeof out);
    dup2(saved, 2);
    close(saved);
    close(err[1]);
    char msg[512];
    cr_assert(th_read_line(err[0], msg, sizeof msg, 10));
    close(err[0]);
    cr_assert_eq(rc, 3, "%s", out);
    cr_assert_eq(field(out, "INIT "), 800, "cuInit gives CUDA_ERROR_NOT_PERMITTED");
    cr_assert_not_null(strstr(msg, why), "stderr said: %s", msg);
}

Test(tenants, wrong_missing_and_removed_tokens_are_refused, .timeout = 120)
{
    start_base();
    expect_refused("VGPU_TOKEN=not-a-token-at-all", "tenant token not recognised");
    expect_refused("VGPU_TOKEN=", "no tenant token (set VGPU_TOKEN)");
    cr_assert_not(th_log_contains("not-a-token-at-all"), "the log shows a token");
    cr_assert(th_log_contains("refused: tenant token not recognised"));
    cr_assert(th_log_contains("127.0.0.1"), "the refusal names the client");
    /* carol, by her token's digest; then removed while a session of hers runs. */
    struct holder c = hold(CAROL, "8388608");
    cr_assert_eq(c.got, 4, "carol: 32M in 8M buffers");
    char text[512];
    with_alice_limit(text, sizeof text, "64M");
    reload_and_wait(text, 1);
    expect_refused(CAROL, "tenant token not recognised");
    unsigned long long free_after;
    int again;
    release(&c, &free_after, &again);
    cr_assert_eq(again, 2, "carol's running session keeps her last limit");
    stop();
}

/* gpu-server with a broken tenants file: exit status and its stderr. */
static int server_with_file(const char *text, char *err, size_t err_size)
{
    write_tenants(text);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        execl(VG_BUILD_DIR "/bin/gpu-server", "gpu-server", "--listen", "127.0.0.1:0", "--driver", "emulated",
              "--tenants", tfile, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], err + got, err_size - 1 - got)) > 0)
        got += (size_t)n;
    err[got] = 0;
    close(p[0]);
    return th_wait(pid);
}

Test(tenants, a_file_with_errors_is_refused_with_its_line, .timeout = 60)
{
    char err[4096], want[128];
    cr_assert_eq(server_with_file("[alice]\ntoken = alice-secret-0001\nweight = lots\n", err, sizeof err), 1);
    snprintf(want, sizeof want, "%s:3: [alice] weight must be", tfile);
    cr_assert_not_null(strstr(err, want), "%s", err);
    cr_assert_eq(server_with_file("[alice]\ntoken = alice-secret-0001\ncolour = blue\n", err, sizeof err), 1);
    snprintf(want, sizeof want, "%s:3: [alice] unknown key 'colour'", tfile);
    cr_assert_not_null(strstr(err, want), "%s", err);
    cr_assert_eq(server_with_file("[alice]\nmemory = 1G\n", err, sizeof err), 1);
    snprintf(want, sizeof want, "%s:1: [alice] has no token", tfile);
    cr_assert_not_null(strstr(err, want), "%s", err);
    cr_assert_eq(server_with_file("[a]\ntoken = same-token-1\n[b]\ntoken = same-token-1\n", err, sizeof err), 1);
    cr_assert_not_null(strstr(err, ":3: [b] has the same token as [a]"), "%s", err);
    unlink(tfile);
}

Test(tenants, a_reload_with_errors_keeps_the_old_tenants, .timeout = 60)
{
    start_base();
    write_tenants("[alice]\ntoken = alice-secret-0001\nmemory = many\n");
    cr_assert_eq(kill(th_srv.pid, SIGHUP), 0);
    cr_assert(th_wait_log("tenants not reloaded, the old ones stay", 10));
    cr_assert(th_log_contains(":3: [alice] memory must be a size"));
    char out[1024];
    const char *info[] = {TPROG, "info", NULL};
    cr_assert_eq(run_as(BOB, info, out, sizeof out), 0, "bob is still a tenant: %s", out);
    stop();
}

Test(tenants, no_tenant_reads_another_tenants_freed_bytes, .timeout = 60)
{
    start_base();
    char out[1024];
    const char *fill[] = {TPROG, "fill", "16777216", NULL};
    cr_assert_eq(run_as(ALICE, fill, out, sizeof out), 0, "%s", out);
    const char *peek[] = {TPROG, "peek", "16777216", NULL};
    cr_assert_eq(run_as(BOB, peek, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "CLEAN"), "bob read alice's bytes: %s", out);
    stop();
}

Test(tenants, a_tenant_sees_only_its_devices_renumbered, .timeout = 60)
{
    setenv("VGPU_EMU_DEVICES", "2", 1);
    start("[dave]\ntoken = dave-secret-0004\ndevices = 1\nmemory = 16M\n\n[erin]\ntoken = erin-secret-0005\n");
    char out[1024];
    const char *info[] = {TPROG, "info", NULL};
    cr_assert_eq(run_as("VGPU_TOKEN=dave-secret-0004", info, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "DEVICES "), 1);
    cr_assert_eq(field(out, "UUID15 "), 1, "dave's device 0 is the host's device 1");
    cr_assert_eq(field(out, "TOTAL "), 16 * MIB);
    cr_assert_eq(run_as("VGPU_TOKEN=erin-secret-0005", info, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "DEVICES "), 2);
    cr_assert_eq(field(out, "UUID15 "), 0);
    stop();
}


Test(tenants, vgpu_smi_shows_tenants_sessions_and_memory, .timeout = 120)
{
    start_base();
    struct holder a = hold(ALICE, "8388608");
    char out[65536];
    const char *smi_json[] = {SMI, "--admin", th_srv.admin, "--json", NULL};
    cr_assert_eq(th_capture(smi_json, NULL, out, sizeof out), 0, "%s", out);
    /* The JSON names alice, her limit, her 64M in use and her one session, with its program. */
    cr_assert_not_null(strstr(out, "\"name\":\"alice\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"memory_limit\":67108864"), "%s", out);
    cr_assert_not_null(strstr(out, "\"memory_used\":[\n        67108864"), "%s", out);
    cr_assert_not_null(strstr(out, "\"program\":\"remote_tenant_p\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"weight\":3"), "%s", out);
    const char *smi[] = {SMI, "--admin", th_srv.admin, NULL};
    cr_assert_eq(th_capture(smi, NULL, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "64MiB / 64MiB"), "the table shows alice's use and limit:\n%s", out);
    cr_assert_not_null(strstr(out, "remote_tenant_p"), "%s", out);
    unsigned long long free_after;
    int again;
    release(&a, &free_after, &again);
    stop();
}

Test(tenants, vgpu_smi_reloads_and_ends_sessions, .timeout = 120)
{
    char text[512];
    with_alice_limit(text, sizeof text, "64M");
    start(text);
    struct holder a = hold(ALICE, "8388608");
    with_alice_limit(text, sizeof text, "96M");
    write_tenants(text);
    char out[4096];
    const char *reload[] = {SMI, "--admin", th_srv.admin, "reload", NULL};
    cr_assert_eq(th_capture(reload, NULL, out, sizeof out), 0, "%s", out);
    const char *smi[] = {SMI, "--admin", th_srv.admin, NULL};
    cr_assert_eq(th_capture(smi, NULL, out, sizeof out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "64MiB / 96MiB"), "%s", out);
    const char *end_bad[] = {SMI, "--admin", th_srv.admin, "end", "999", NULL};
    cr_assert_eq(th_capture(end_bad, NULL, out, sizeof out), 1);
    const char *end[] = {SMI, "--admin", th_srv.admin, "end", "1", NULL};
    cr_assert_eq(th_capture(end, NULL, out, sizeof out), 0, "%s", out);
    cr_assert(th_wait_sessions(0, 10), "the session did not end");
    cr_assert(th_wait_log("vgpu-smi: ending session 1", 5));
    close(a.in);
    close(a.out);
    th_wait(a.pid);
    stop();
}

/* A free TCP port on loopback (bound, then released for the server to take). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void http_get(int port, const char *path, char *out, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < size && (r = read(fd, out + got, size - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = 0;
    close(fd);
}

/* The value of the sample `name{labels}` in a Prometheus text body; every line checked. */
static double metric(const char *body, const char *series)
{
    double found = -1;
    const char *line = body;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        if (buf[0] && buf[0] != '#') {
            char *sp = strrchr(buf, ' ');
            cr_assert_not_null(sp, "not a sample line: %s", buf);
            char *end;
            double v = strtod(sp + 1, &end);
            cr_assert(*end == 0 && end != sp + 1, "not a number in: %s", buf);
            *sp = 0;
            cr_assert(strchr(buf, '{') == NULL || buf[strlen(buf) - 1] == '}', "bad labels: %s", buf);
            if (!strcmp(buf, series))
                found = v;
        }
        line = eol ? eol + 1 : NULL;
    }
    return found;
}

Test(tenants, metrics_are_prometheus_text, .timeout = 120)
{
    int port = free_port();
    char metrics_addr[64];
    snprintf(metrics_addr, sizeof metrics_addr, "127.0.0.1:%d", port);
    char text[512];
    with_alice_limit(text, sizeof text, "64M");
    write_tenants(text);
    const char *extra[] = {"--tenants", tfile, "--metrics", metrics_addr, NULL};
    th_start_server_with(extra, 0);
    struct holder a = hold(ALICE, "8388608");
    expect_refused("VGPU_TOKEN=nobody-at-all", "tenant token not recognised");
    static char body[65536];
    http_get(port, "/metrics", body, sizeof body);
    cr_assert_not_null(strstr(body, "HTTP/1.0 200") ? body : strstr(body, "HTTP/1.1 200"), "%.200s", body);
    char *payload = strstr(body, "\r\n\r\n");
    cr_assert_not_null(payload);
    payload += 4;
    cr_assert_eq(metric(payload, "vgpu_tenant_fb_used_bytes{tenant=\"alice\",gpu=\"0\",UUID=\"GPU-76677075-656d-7500-0000-000000000000\"}"),
                 64.0 * MIB, "%s", payload);
    cr_assert_eq(metric(payload, "vgpu_tenant_fb_limit_bytes{tenant=\"alice\"}"), 64.0 * MIB);
    cr_assert_eq(metric(payload, "vgpu_tenant_sessions{tenant=\"alice\"}"), 1);
    cr_assert_eq(metric(payload, "vgpu_tenant_refused_allocations_total{tenant=\"alice\"}"), 1);
    cr_assert_eq(metric(payload, "vgpu_refused_connections_total{reason=\"token\"}"), 1);
    cr_assert_gt(metric(payload, "vgpu_tenant_calls_total{tenant=\"alice\"}"), 8);
    http_get(port, "/other", body, sizeof body);
    cr_assert_not_null(strstr(body, " 404 "), "%.200s", body);
    unsigned long long free_after;
    int again;
    release(&a, &free_after, &again);
    stop();
}

/* 200 clients of 4 tenants allocating, freeing, loading modules, SIGKILLed at random moments:
 * afterwards every tenant uses exactly 0 and the device has all its memory free again. */
Test(tenants, a_storm_of_killed_clients_leaves_every_ledger_at_zero, .timeout = 900)
{
    start("[t0]\ntoken = storm-tenant-0\nmemory = 48M\n[t1]\ntoken = storm-tenant-1\nmemory = 64M\n"
          "[t2]\ntoken = storm-tenant-2\nmemory = 32M\n[t3]\ntoken = storm-tenant-3\n"
          "[observer]\ntoken = storm-observer\n");
    char out[65536];
    const char *info[] = {TPROG, "info", NULL};
    cr_assert_eq(run_as("VGPU_TOKEN=storm-observer", info, out, sizeof out), 0, "%s", out);
    unsigned long long free0 = field(out, "FREE ");
    srand(4242);
    const char *n_env = getenv("VGPU_STORM_CLIENTS");
    int clients = n_env ? atoi(n_env) : 200;
    enum { WAVE = 8 };
    for (int done = 0; done < clients; done += WAVE) {
        pid_t pids[WAVE];
        int outs[WAVE];
        for (int i = 0; i < WAVE; i++) {
            char token[64];
            snprintf(token, sizeof token, "VGPU_TOKEN=storm-tenant-%d", (done + i) % 4);
            const char *argv[] = {TPROG, "churn", VG_KERNEL_DIR, NULL};
            const char *env[] = {token, NULL};
            pids[i] = th_spawn_io(argv, NULL, &outs[i], env);
        }
        usleep((useconds_t)(rand() % 200000));
        for (int i = 0; i < WAVE; i++) {
            kill(pids[i], SIGKILL);
            th_wait(pids[i]);
            close(outs[i]);
        }
    }
    cr_assert(th_wait_sessions(0, 60), "%d session processes remain", th_session_processes());
    const char *smi[] = {SMI, "--admin", th_srv.admin, "--json", NULL};
    cr_assert_eq(th_capture(smi, NULL, out, sizeof out), 0, "%s", out);
    /* Every tenant's memory_used array is [0]. */
    int tenants = 0;
    for (const char *at = out; (at = strstr(at, "\"memory_used\":[")); at++) {
        const char *v = at + strlen("\"memory_used\":[");
        while (*v == ' ' || *v == '\n')
            v++;
        cr_assert_eq(strtoull(v, NULL, 10), 0, "a tenant still uses memory:\n%s", out);
        tenants++;
    }
    cr_assert_eq(tenants, 5);
    /* And they did work before they were killed. */
    unsigned long long calls = 0;
    for (const char *at = out; (at = strstr(at, "\"calls\":")); at++)
        calls += strtoull(at + 8, NULL, 10);
    cr_log_info("the storm's clients made %llu calls", calls);
    cr_assert_gt(calls, (unsigned long long)clients * 10, "the clients hardly ran: %llu calls", calls);
    cr_assert_eq(run_as("VGPU_TOKEN=storm-observer", info, out, sizeof out), 0, "%s", out);
    cr_assert_eq(field(out, "FREE "), free0, "the device's free memory did not come back");
    stop();
}
