/* vgpu-bench share: how gpu-server divides a device between tenants, measured.
 *
 * For each scenario it starts a gpu-server on the emulated GPU with a generated tenants file and
 * runs one client process per tenant (this program again, as share-client, through the stub),
 * each keeping the device busy with kernels of one known cost. Shares are computed from the
 * clients' completed work (each completion covers the kernel's cost before it) and, beside
 * them, from the server's own accounting (vgpu-smi's status, sampled every second). */
#include "bench.h"
#include "shares.h"

#include <dlfcn.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cuda.h>

#define MAX_TENANTS 8
#define MAX_EVENTS 200000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the client (share-client) ---------------------------------------------------------- */

struct api {
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuCtxCreate)(CUcontext *, CUctxCreateParams *, unsigned, CUdevice);
    CUresult (*cuModuleLoad)(CUmodule *, const char *);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    CUresult (*cuEventCreate)(CUevent *, unsigned);
    CUresult (*cuEventRecord)(CUevent, CUstream);
    CUresult (*cuEventSynchronize)(CUevent);
    CUresult (*cuCtxSynchronize)(void);
};

#define CK(call)                                                                                   \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            fprintf(stderr, "share-client: %s failed: %d\n", #call, (int)r_);                     \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int load_api(struct api *a)
{
    void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "share-client: %s\n", dlerror());
        return -1;
    }
#define SYM(f, name) (*(void **)&a->f = dlsym(dl, name))
    if (!SYM(cuInit, "cuInit") || !SYM(cuDeviceGet, "cuDeviceGet") || !SYM(cuCtxCreate, "cuCtxCreate_v4") ||
        !SYM(cuModuleLoad, "cuModuleLoad") || !SYM(cuModuleGetFunction, "cuModuleGetFunction") ||
        !SYM(cuMemAlloc, "cuMemAlloc_v2") || !SYM(cuLaunchKernel, "cuLaunchKernel") ||
        !SYM(cuEventCreate, "cuEventCreate") || !SYM(cuEventRecord, "cuEventRecord") ||
        !SYM(cuEventSynchronize, "cuEventSynchronize") || !SYM(cuCtxSynchronize, "cuCtxSynchronize")) {
        fprintf(stderr, "share-client: the driver lacks a function it needs\n");
        return -1;
    }
#undef SYM
    return 0;
}

/* share-client heavy ITERS RUN_MS STOP_MS | light PERIOD_MS RUN_MS. Prints READY, waits for a line
 * on stdin, then "K <ns>" at each kernel completion (heavy) or "L <ns>" per
 * tiny kernel's latency (light), then END. Heavy clients keep four kernels in flight. */
int bench_share_client(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int heavy = !strcmp(argv[1], "heavy");
    long a1 = atol(argv[2]), run_ms = atol(argv[3]), stop_ms = argc > 4 ? atol(argv[4]) : 0;
    struct api a;
    if (load_api(&a) != 0)
        return 1;
    CUdevice dev;
    CUcontext ctx;
    CUmodule m;
    CUfunction burn, tiny;
    CUdeviceptr out;
    CK(a.cuInit(0));
    CK(a.cuDeviceGet(&dev, 0));
    CK(a.cuCtxCreate(&ctx, NULL, 0, dev));
    CK(a.cuModuleLoad(&m, SHARE_PTX));
    CK(a.cuModuleGetFunction(&burn, m, "burn"));
    CK(a.cuModuleGetFunction(&tiny, m, "tiny"));
    CK(a.cuMemAlloc(&out, 4096));
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("READY\n");
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)run_ms * 1000000u;
    if (stop_ms > 0 && (uint64_t)stop_ms * 1000000u < end - t0)
        end = t0 + (uint64_t)stop_ms * 1000000u;
    if (heavy) {
        int iters = (int)a1;
        void *args[] = {&out, &iters};
        /* Four kernels kept in flight, as an application queues work. */
        enum { DEPTH = 4 };
        CUevent ev[DEPTH];
        for (int k = 0; k < DEPTH; k++)
            CK(a.cuEventCreate(&ev[k], 0));
        unsigned k = 0;
        for (; now_ns() < end; k++) {
            CK(a.cuLaunchKernel(burn, 2, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
            CK(a.cuEventRecord(ev[k % DEPTH], NULL));
            if (k >= DEPTH - 1) {
                CK(a.cuEventSynchronize(ev[(k - DEPTH + 1) % DEPTH]));
                printf("K %llu\n", (unsigned long long)now_ns());
            }
        }
        /* The last ones, as each completes. */
        for (unsigned j = k >= DEPTH - 1 ? k - DEPTH + 1 : 0; j < k; j++) {
            CK(a.cuEventSynchronize(ev[j % DEPTH]));
            printf("K %llu\n", (unsigned long long)now_ns());
        }
    } else {
        void *args[] = {&out};
        while (now_ns() < end) {
            uint64_t s = now_ns();
            CK(a.cuLaunchKernel(tiny, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
            CK(a.cuCtxSynchronize());
            printf("L %llu\n", (unsigned long long)(now_ns() - s));
            uint64_t next = s + (uint64_t)a1 * 1000000u, now = now_ns();
            if (next > now)
                nanosleep(&(struct timespec){0, (long)(next - now)}, NULL);
        }
    }
    printf("END\n");
    return 0;
}

/* ---- the parent -------------------------------------------------------------------------- */

struct scenario {
    const char *name;
    const char *about;
    int n;
    unsigned weight[MAX_TENANTS];
    unsigned cap[MAX_TENANTS];     /* percent, 0: none */
    int stops;                     /* tenant that stops at half time, -1: none */
    int light;                     /* tenant that runs tiny kernels (latency), -1: none */
};

static const struct scenario scenarios[] = {
    {"3:1", "weights 3 and 1", 2, {3, 1}, {0}, -1, -1},
    {"1:1:1:1", "four equal tenants", 4, {1, 1, 1, 1}, {0}, -1, -1},
    {"1:2:4:8", "weights 1, 2, 4, 8", 4, {1, 2, 4, 8}, {0}, -1, -1},
    {"3:1-cap", "weights 3 and 1, the second capped at 10%", 2, {3, 1}, {0, 10}, -1, -1},
    {"3:1-idle", "weights 3 and 1, the second stops halfway", 2, {3, 1}, {0}, 1, -1},
    {"latency", "two heavy tenants and a light one (tiny kernel every 20 ms)", 3, {1, 1, 1}, {0}, -1, 2},
};

struct client {
    pid_t pid;
    int in, out;
    char buf[256];
    size_t len;
    int ended;
    uint64_t *done;                /* completion times */
    size_t ndone;
    uint64_t *lat;
    size_t nlat;
};

struct run {
    const struct scenario *sc;
    int seconds;
    double kernel_ms;
    int iters;
    struct client c[MAX_TENANTS];
    uint64_t t0;
    double server_s[64][MAX_TENANTS]; /* device time per tenant at t0 + k seconds (server) */
    int nsamples;
};

static pid_t spawn_client(const char *self, const char *build, const char *server, const char *token,
                          char *const argv[], int *in, int *out)
{
    int pin[2], pout[2];
    if (pipe(pin) != 0 || pipe(pout) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[1]);
        close(pout[0]);
        char lib[PATH_MAX + 8];
        snprintf(lib, sizeof lib, "%s/lib", build);
        setenv("LD_LIBRARY_PATH", lib, 1);
        setenv("VGPU_SERVER", server, 1);
        if (token)
            setenv("VGPU_TOKEN", token, 1);
        execv(self, argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    *in = pin[1];
    *out = pout[0];
    return pid;
}

/* Reads what the clients printed; returns 0 when every one has ended (or died). */
static int pump(struct client *c, int n, int timeout_ms)
{
    struct pollfd p[MAX_TENANTS];
    int live = 0;
    for (int i = 0; i < n; i++) {
        p[i].fd = c[i].ended ? -1 : c[i].out;
        p[i].events = POLLIN;
        live += !c[i].ended;
    }
    if (!live)
        return 0;
    if (poll(p, (nfds_t)n, timeout_ms) <= 0)
        return 1;
    for (int i = 0; i < n; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t r = read(c[i].out, c[i].buf + c[i].len, sizeof c[i].buf - 1 - c[i].len);
        if (r <= 0) {
            c[i].ended = 1;
            continue;
        }
        c[i].len += (size_t)r;
        c[i].buf[c[i].len] = 0;
        char *line = c[i].buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            if (line[0] == 'K' && c[i].ndone < MAX_EVENTS)
                c[i].done[c[i].ndone++] = strtoull(line + 2, NULL, 10);
            else if (line[0] == 'L' && c[i].nlat < MAX_EVENTS)
                c[i].lat[c[i].nlat++] = strtoull(line + 2, NULL, 10);
            else if (!strcmp(line, "END"))
                c[i].ended = 1;
            line = nl + 1;
        }
        c[i].len = strlen(line);
        memmove(c[i].buf, line, c[i].len + 1);
    }
    return 1;
}

/* Device time per tenant from the server's admin endpoint (vgpu-smi's status). */
static int server_times(const char *admin_path, int n, double *out)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(admin_path) >= sizeof sun.sun_path)
        return -1;
    memcpy(sun.sun_path, admin_path, strlen(admin_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || write(fd, "status\n", 7) != 7) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = 0;
    struct json_object *st = json_tokener_parse(buf), *tens;
    if (!st || !json_object_object_get_ex(st, "tenants", &tens)) {
        json_object_put(st);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(tens); i++) {
        struct json_object *t = json_object_array_get_idx(tens, i), *name, *dt;
        int k;
        if (json_object_object_get_ex(t, "name", &name) && json_object_object_get_ex(t, "device_time_s", &dt) &&
            sscanf(json_object_get_string(name), "t%d", &k) == 1 && k >= 0 && k < n)
            out[k] = json_object_get_double(dt);
    }
    json_object_put(st);
    return 0;
}

/* Runs one scenario (or, with sc->n == 1 and no tenants file, the solo calibration). */
static int run_scenario(struct run *R, const char *self, const char *build, char *err, size_t errlen)
{
    const struct scenario *sc = R->sc;
    char dir[] = "/tmp/vgpu-share.XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    char tfile[PATH_MAX], admin[PATH_MAX], admin_arg[PATH_MAX + 8];
    snprintf(tfile, sizeof tfile, "%s/tenants.ini", dir);
    snprintf(admin, sizeof admin, "%s/admin.sock", dir);
    snprintf(admin_arg, sizeof admin_arg, "unix:%s", admin);
    FILE *f = fopen(tfile, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tfile, strerror(errno));
        rmdir(dir);
        return -1;
    }
    for (int i = 0; i < sc->n; i++) {
        fprintf(f, "[t%d]\ntoken = share-tenant-%d-token\nweight = %u\n", i, i, sc->weight[i]);
        if (sc->cap[i])
            fprintf(f, "limit = %u\n", sc->cap[i]);
    }
    fclose(f);
    const char *extra[] = {"--admin", admin_arg, "--tenants", tfile, NULL};
    struct bench_server srv;
    int rc = -1;
    if (bench_server_start(&srv, build, extra, -1, err, errlen) != 0)
        goto out_files;
    long run_ms = (long)(R->seconds + 1) * 1000;
    for (int i = 0; i < sc->n; i++) {
        struct client *c = &R->c[i];
        memset(c, 0, sizeof *c);
        c->done = malloc(MAX_EVENTS * sizeof *c->done);
        c->lat = malloc(MAX_EVENTS * sizeof *c->lat);
        char token[64], a1[32], a2[32], a3[32];
        snprintf(token, sizeof token, "share-tenant-%d-token", i);
        int light = i == sc->light;
        snprintf(a1, sizeof a1, "%d", light ? 20 : R->iters);
        snprintf(a2, sizeof a2, "%ld", run_ms);
        snprintf(a3, sizeof a3, "%ld", i == sc->stops ? run_ms / 2 : 0);
        char *argv[] = {(char *)self, "share-client", light ? "light" : "heavy", a1, a2, a3, NULL};
        c->pid = spawn_client(self, build, srv.addr, token, argv, &c->in, &c->out);
        if (c->pid < 0 || !c->done || !c->lat) {
            snprintf(err, errlen, "cannot start a client");
            goto out_clients;
        }
    }
    /* All clients ready, then all at once. */
    for (int i = 0; i < sc->n; i++) {
        char line[64] = "";
        size_t got = 0;
        while (got < sizeof line - 1 && !strchr(line, '\n')) {
            struct pollfd p = {.fd = R->c[i].out, .events = POLLIN};
            if (poll(&p, 1, 30000) <= 0 || read(R->c[i].out, line + got, 1) != 1)
                break;
            got++;
        }
        if (strncmp(line, "READY", 5) != 0) {
            snprintf(err, errlen, "client %d did not start (is the stub built? see the server log %s)", i, srv.log_file);
            goto out_clients;
        }
    }
    R->t0 = now_ns();
    for (int i = 0; i < sc->n; i++)
        if (write(R->c[i].in, "GO\n", 3) != 3) {
            snprintf(err, errlen, "client %d is gone", i);
            goto out_clients;
        }
    R->nsamples = 0;
    uint64_t next_sample = R->t0;
    uint64_t limit = R->t0 + (uint64_t)(run_ms + 30000) * 1000000u;
    while (pump(R->c, sc->n, 20)) {
        uint64_t now = now_ns();
        if (now >= next_sample && R->nsamples < 64) {
            server_times(admin, sc->n, R->server_s[R->nsamples]);
            R->nsamples++;
            next_sample += 1000000000u;
        }
        if (now > limit) {
            snprintf(err, errlen, "clients did not finish in time");
            goto out_clients;
        }
    }
    rc = 0;
out_clients:
    for (int i = 0; i < sc->n; i++) {
        if (R->c[i].pid > 0) {
            if (rc != 0)
                kill(R->c[i].pid, SIGKILL);
            waitpid(R->c[i].pid, NULL, 0);
            close(R->c[i].in);
            close(R->c[i].out);
        }
    }
    bench_server_stop(&srv);
out_files:
    unlink(tfile);
    unlink(admin);
    rmdir(dir);
    return rc;
}

/* Device time (ns) tenant i's completions put in [a, b): each completion covers the kernel's
 * cost before it. */
static double busy_in(const struct client *c, uint64_t cost, uint64_t a, uint64_t b)
{
    double sum = 0;
    for (size_t k = 0; k < c->ndone; k++) {
        uint64_t e = c->done[k], s = e > cost ? e - cost : 0;
        uint64_t lo = s > a ? s : a, hi = e < b ? e : b;
        if (hi > lo)
            sum += (double)(hi - lo);
    }
    return sum;
}

/* Entitled shares of the tenants in `active`: weights, with caps. */
static void entitled(const struct scenario *sc, const int *active, double *out)
{
    vg_entitled_shares(sc->n, active, sc->weight, sc->cap, out);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const struct run *R, double solo_per_s, double solo_busy, int json, int first)
{
    const struct scenario *sc = R->sc;
    uint64_t cost = (uint64_t)(R->kernel_ms * 1e6);
    int S = R->seconds;
    double share[MAX_TENANTS][64];
    double worst[MAX_TENANTS] = {0}, whole[MAX_TENANTS] = {0}, whole_ent[MAX_TENANTS] = {0}, srv_whole[MAX_TENANTS] = {0};
    double total_all = 0, srv_total_all = 0;
    /* Window w covers [t0 + w s, t0 + (w + 1) s); the first second is warm-up and not counted. */
    for (int w = 1; w <= S && w < 64; w++) {
        uint64_t a = R->t0 + (uint64_t)w * 1000000000u, b = a + 1000000000u;
        double busy[MAX_TENANTS], total = 0;
        int active[MAX_TENANTS];
        for (int i = 0; i < sc->n; i++) {
            busy[i] = i == sc->light ? 0 : busy_in(&R->c[i], cost, a, b);
            total += busy[i];
            active[i] = busy[i] > 0;
        }
        double e[MAX_TENANTS];
        entitled(sc, active, e);
        double srv_total = 0, sd[MAX_TENANTS] = {0};
        if (w + 1 < R->nsamples)
            for (int i = 0; i < sc->n; i++) {
                sd[i] = R->server_s[w + 1][i] - R->server_s[w][i];
                srv_total += sd[i];
            }
        for (int i = 0; i < sc->n; i++) {
            share[i][w] = total ? busy[i] / total : 0;
            if (i != sc->light && fabs(share[i][w] - e[i]) > worst[i])
                worst[i] = fabs(share[i][w] - e[i]);
            whole[i] += busy[i];
            whole_ent[i] += e[i] * total;
            srv_whole[i] += sd[i];
        }
        total_all += total;
        srv_total_all += srv_total;
    }
    size_t kernels = 0;
    for (int i = 0; i < sc->n; i++)
        if (i != sc->light)
            for (size_t k = 0; k < R->c[i].ndone; k++)
                kernels += R->c[i].done[k] >= R->t0 + 1000000000u && R->c[i].done[k] < R->t0 + (uint64_t)(S + 1) * 1000000000u;
    double per_s = (double)kernels / S;
    /* How busy the device was (the server's device time over real time): the throughput measure
     * that does not depend on how fast each kernel happened to run. */
    double busy = -1;
    if (R->nsamples > S + 1) {
        double dt = 0;
        for (int i = 0; i < sc->n; i++)
            dt += R->server_s[S + 1][i] - R->server_s[1][i];
        busy = dt / S;
    }
    /* Idle tenant: how long the device sat idle after it stopped. */
    double takeup_ms = -1;
    if (sc->stops >= 0 && R->c[sc->stops].ndone) {
        uint64_t last = R->c[sc->stops].done[R->c[sc->stops].ndone - 1], first = UINT64_MAX;
        for (int i = 0; i < sc->n; i++)
            for (size_t k = 0; i != sc->stops && k < R->c[i].ndone; k++)
                if (R->c[i].done[k] > last + cost / 2 && R->c[i].done[k] < first)
                    first = R->c[i].done[k];
        if (first != UINT64_MAX)
            takeup_ms = first > last + cost ? (double)(first - last - cost) / 1e6 : 0;
    }
    double p50 = -1, p99 = -1;
    if (sc->light >= 0 && R->c[sc->light].nlat) {
        struct client *lc = (struct client *)&R->c[sc->light];
        qsort(lc->lat, lc->nlat, sizeof *lc->lat, cmp_u64);
        p50 = (double)lc->lat[lc->nlat / 2] / 1e6;
        p99 = (double)lc->lat[(lc->nlat * 99) / 100 < lc->nlat ? (lc->nlat * 99) / 100 : lc->nlat - 1] / 1e6;
    }
    if (json) {
        printf("%s    {\"scenario\": \"%s\", \"kernel_ms\": %.2f, \"seconds\": %d, \"kernels_per_s\": %.2f, "
               "\"alone_per_s\": %.2f, \"device_busy\": %.4f, \"alone_busy\": %.4f", first ? "" : ",\n", sc->name,
               R->kernel_ms, S, per_s, solo_per_s, busy, solo_busy);
        if (takeup_ms >= 0)
            printf(", \"takeup_ms\": %.2f", takeup_ms);
        if (p50 >= 0)
            printf(", \"light_p50_ms\": %.3f, \"light_p99_ms\": %.3f", p50, p99);
        printf(", \"tenants\": [");
        for (int i = 0; i < sc->n; i++) {
            printf("%s{\"tenant\": \"t%d\", \"weight\": %u, \"cap\": %u, \"entitled\": %.4f, \"achieved\": %.4f, "
                   "\"server\": %.4f, \"worst_window_pp\": %.2f, \"windows\": [", i ? ", " : "", i, sc->weight[i],
                   sc->cap[i], total_all ? whole_ent[i] / total_all : 0, total_all ? whole[i] / total_all : 0,
                   srv_total_all ? srv_whole[i] / srv_total_all : 0, 100 * worst[i]);
            for (int w = 1; w <= S && w < 64; w++)
                printf("%s%.4f", w > 1 ? ", " : "", share[i][w]);
            printf("]}");
        }
        printf("]}");
        return;
    }
    printf("\n%s: %s; kernels of %.1f ms, %d s measured after 1 s of warm-up\n", sc->name, sc->about, R->kernel_ms, S);
    printf("  %-6s %6s %5s %9s %9s %9s %12s  achieved in each 1 s window\n", "tenant", "weight", "cap", "entitled",
           "achieved", "(server)", "worst window");
    for (int i = 0; i < sc->n; i++) {
        char cap[16];
        snprintf(cap, sizeof cap, sc->cap[i] ? "%u%%" : "-", sc->cap[i]);
        if (i == sc->light) {
            printf("  %-6s %6u %5s  light: tiny kernel every 20 ms, latency p50 %.2f ms, p99 %.2f ms\n", "t2",
                   sc->weight[i], cap, p50, p99);
            continue;
        }
        printf("  t%-5d %6u %5s %8.1f%% %8.1f%% %8.1f%% %9.2f pp ", i, sc->weight[i], cap,
               100 * (total_all ? whole_ent[i] / total_all : 0), 100 * (total_all ? whole[i] / total_all : 0),
               100 * (srv_total_all ? srv_whole[i] / srv_total_all : 0), 100 * worst[i]);
        for (int w = 1; w <= S && w < 64; w++)
            printf(" %.1f", 100 * share[i][w]);
        printf("\n");
    }
    printf("  device busy %.1f%% (server), %.3f of one tenant alone (%.1f%%); %.1f kernels/s (alone %.1f/s)",
           100 * busy, solo_busy > 0 ? busy / solo_busy : 0, 100 * solo_busy, per_s, solo_per_s);
    if (takeup_ms >= 0)
        printf("; device idle %.1f ms after t1 stopped", takeup_ms);
    printf("\n");
}

static void free_run(struct run *R)
{
    for (int i = 0; i < MAX_TENANTS; i++) {
        free(R->c[i].done);
        free(R->c[i].lat);
        R->c[i].done = NULL;
        R->c[i].lat = NULL;
    }
}

static void share_usage(FILE *f)
{
    fprintf(f,
            "usage: vgpu-bench share [--scenario NAME] [--seconds S] [--kernel-ms LIST] [--json]\n"
            "\n"
            "Starts gpu-server on the emulated GPU with generated tenants and runs one client per tenant,\n"
            "each keeping the device busy with kernels of one cost. Prints, per tenant, the entitled\n"
            "share, the achieved share in every 1 s window and over the run (from the clients' completed\n"
            "work, and from the server's accounting beside it), the worst window's error in percentage\n"
            "points, the throughput against one tenant alone, the device's idle time after a tenant stops,\n"
            "and a light tenant's small-kernel latency (p50/p99) while heavy tenants saturate.\n"
            "\n"
            "  --scenario NAME  one of: 3:1, 1:1:1:1, 1:2:4:8, 3:1-cap, 3:1-idle, latency (default: all)\n"
            "  --seconds S      measured seconds per scenario, after 1 s of warm-up (default 10)\n"
            "  --kernel-ms LIST kernel lengths, comma-separated (default 10; e.g. 1,10,100)\n"
            "  --json           machine-readable output\n"
            "\n"
            "Kernels are compiled before their first launch (VGPU_EMU_JIT=always unless VGPU_EMU_JIT is\n"
            "set), so that a kernel's length does not change mid-run when the JIT takes it over.\n");
}

int bench_share(int argc, char **argv, const char *self, const char *build)
{
    const char *only = NULL, *lengths = "10";
    int seconds = 10, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--scenario") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernel-ms") && i + 1 < argc)
            lengths = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            share_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vgpu-bench share: unknown argument '%s'\n", argv[i]);
            share_usage(stderr);
            return 2;
        }
    }
    if (seconds < 2 || seconds > 60) {
        fprintf(stderr, "vgpu-bench share: --seconds takes 2 to 60\n");
        return 2;
    }
    int found = !only;
    for (size_t k = 0; only && k < sizeof scenarios / sizeof scenarios[0]; k++)
        found |= !strcmp(only, scenarios[k].name);
    if (!found) {
        fprintf(stderr, "vgpu-bench share: no scenario '%s' (see --help)\n", only);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The servers this starts inherit it: calibrated kernel lengths hold for the whole run. */
    setenv("VGPU_EMU_JIT", "always", 0);
    char list[256];
    snprintf(list, sizeof list, "%s", lengths);
    int status = 0, first = 1;
    if (json)
        printf("{\"share\": [\n");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double kernel_ms = atof(tok);
        if (kernel_ms <= 0 || kernel_ms > 1000) {
            fprintf(stderr, "vgpu-bench share: kernel length %s ms is not in (0, 1000]\n", tok);
            return 2;
        }
        /* Calibrate: one tenant alone, a guess of iterations; then scale to the length wanted and
         * measure how many kernels one tenant alone completes per second. */
        static const struct scenario solo = {"solo", "one tenant alone", 1, {1}, {0}, -1, -1};
        struct run R = {.sc = &solo, .seconds = 2, .kernel_ms = kernel_ms, .iters = 20000};
        char err[PATH_MAX + 256];
        double per_kernel_ns = 0, solo_per_s = 0, solo_busy = -1;
        /* Up to four passes: a short guess is bound by launch overhead, not by the kernel's
         * iterations, so one linear rescale can undershoot; stop within 10% of the length. */
        for (int pass = 0; pass < 4; pass++) {
            if (run_scenario(&R, self, build, err, sizeof err) != 0) {
                fprintf(stderr, "vgpu-bench share: calibration: %s\n", err);
                free_run(&R);
                return 1;
            }
            size_t n = 0;
            uint64_t a = R.t0 + 1000000000u, b = R.t0 + 3000000000u;
            for (size_t k = 0; k < R.c[0].ndone; k++)
                n += R.c[0].done[k] >= a && R.c[0].done[k] < b;
            if (R.nsamples > 3)
                solo_busy = (R.server_s[3][0] - R.server_s[1][0]) / 2;
            free_run(&R);
            if (n < 2) {
                R.iters = R.iters / 8 > 1 ? R.iters / 8 : 1; /* far too long: shorten and retry */
                pass--;
                if (R.iters == 1)
                    return 1;
                continue;
            }
            per_kernel_ns = 2e9 / (double)n;
            solo_per_s = (double)n / 2;
            double scale = kernel_ms * 1e6 / per_kernel_ns;
            if (pass == 3 || (scale > 0.9 && scale < 1.1))
                break;
            R.iters = (int)(R.iters * scale) > 1 ? (int)(R.iters * scale) : 1;
        }
        if (!json)
            fprintf(stderr, "vgpu-bench share: kernels of %.2f ms (%d iterations), one tenant alone %.1f/s\n",
                    per_kernel_ns / 1e6, R.iters, solo_per_s);
        for (size_t k = 0; k < sizeof scenarios / sizeof scenarios[0]; k++) {
            if (only && strcmp(only, scenarios[k].name))
                continue;
            struct run S = {.sc = &scenarios[k], .seconds = seconds, .kernel_ms = per_kernel_ns / 1e6, .iters = R.iters};
            if (run_scenario(&S, self, build, err, sizeof err) != 0) {
                fprintf(stderr, "vgpu-bench share: %s: %s\n", scenarios[k].name, err);
                status = 1;
            } else {
                report(&S, solo_per_s, solo_busy, json, first);
                first = 0;
            }
            free_run(&S);
        }
    }
    if (json)
        printf("\n]}\n");
    return status;
}
