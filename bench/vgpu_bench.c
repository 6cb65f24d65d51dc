/* vgpu-bench: remoting overhead, measured. Runs the same driver-API measurements in-process on
 * the emulated GPU and through gpu-server over each transport (TCP; shared memory beside a Unix
 * socket), measures this machine's floors in the same run (raw ping-pongs, a raw TCP transfer,
 * memcpy), and prints every figure beside its floor with their ratio. Every figure printed was
 * measured in this run. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A child that sends nothing for this long is presumed hung and killed. */
#define BENCH_CHILD_SILENCE_S 300
/* Room for two paths and some words: error messages name the files involved. */
#define BENCH_ERR_LEN (2 * PATH_MAX + 128)

/* The measured modes: in-process on the emulated driver, and remote over each transport. */
enum mode { M_INPROC, M_TCP, M_SHM, M_SHM_1CORE, M_COUNT };
static const char *const mode_name[M_COUNT] = {"inproc", "tcp", "shm", "shm-1core"};

struct mode_result {
    int ran, ok;
    char error[BENCH_ERR_LEN];
    char lib[PATH_MAX];
    char device[256];
    char where[300];           /* what served it */
    double null_call_us;
    double h2d[BENCH_COPY_SIZES], d2h[BENCH_COPY_SIZES];
    double h2d_pinned[BENCH_COPY_SIZES], d2h_pinned[BENCH_COPY_SIZES];
    int have_h2d[BENCH_COPY_SIZES], have_d2h[BENCH_COPY_SIZES];
    int have_h2d_pinned[BENCH_COPY_SIZES], have_d2h_pinned[BENCH_COPY_SIZES];
    double launch_per_s;
    int have_null, have_launch;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vgpu-bench [--json] [--quick] [--iters N] [--transport LIST]\n"
            "       vgpu-bench share [--scenario NAME] [--seconds S] [--kernel-ms LIST] [--json]\n"
            "                  (how gpu-server shares a device between tenants: share --help)\n"
            "\n"
            "Measures, in-process on the emulated GPU and through gpu-server over each transport:\n"
            "  null call      cuCtxSynchronize with nothing queued (microseconds per call)\n"
            "  HtoD, DtoH     cuMemcpyHtoD/DtoH bandwidth from pageable memory, 4 KiB to 64 MiB, and\n"
            "                 from pinned memory (cuMemAllocHost), 256 KiB to 64 MiB (GB/s)\n"
            "  launch rate    N empty-kernel launches then one synchronize (launches/s)\n"
            "and this machine's floors in the same run: 64-byte TCP and Unix-socket ping-pongs, a\n"
            "shared-page ping-pong (futex waits; spinning), a 64 MiB TCP transfer, memcpy. Each figure\n"
            "is printed with its ratio to its floor (medians of repetitions). Over shared memory the\n"
            "null call is also measured with client and server on one core (spinning must not starve\n"
            "the peer).\n"
            "\n"
            "  --transport LIST  comma-separated: inproc, tcp, shm (default: all three)\n"
            "  --local-driver DIR  the in-process mode loads DIR/libcuda.so.1 (a real driver's\n"
            "                    directory, to compare remoting with the native driver) instead\n"
            "                    of <build>/lib/emulated\n"
            "  --json            machine-readable output\n"
            "  --quick           fewer iterations (for CI)\n"
            "  --iters N         null calls and launches per repetition (default 2000; --quick 200)\n"
            "  --help            this text\n"
            "\n"
            "Remote modes use VGPU_SERVER when set (host:port is TCP, unix:PATH shared memory, tls://host:port\n"
            "TLS, shown in the tcp column; only that transport is measured), else start\n"
            "  <build>/bin/gpu-server --listen 127.0.0.1:0 --listen unix:TMP/gpu.sock --driver emulated\n"
            "and stop it at the end. Exit status is non-zero when a mode fails.\n");
}

static size_t copy_size(int i) { return BENCH_COPY_MIN << (2 * i); }

static int copy_index(size_t size)
{
    for (int i = 0; i < BENCH_COPY_SIZES; i++)
        if (copy_size(i) == size)
            return i;
    return -1;
}

/* ---- machine ---- */

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(buf, len, "%s", colon);
            }
            break;
        }
    }
    fclose(f);
}

/* The 1-minute load average: how busy the machine was with other work when the run began. */
static double load_average(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---- children ---- */

static void parse_copy(double *v, int *have, const char *arg)
{
    size_t size;
    double x;
    int idx;
    if (sscanf(arg, "%zu %lf", &size, &x) == 2 && (idx = copy_index(size)) >= 0) {
        v[idx] = x;
        have[idx] = 1;
    }
}

static void parse_line(struct mode_result *res, char *line)
{
    line[strcspn(line, "\n")] = '\0';
    char *arg = strchr(line, ' ');
    if (!arg)
        return;
    *arg++ = '\0';
    if (strcmp(line, "lib") == 0)
        snprintf(res->lib, sizeof res->lib, "%s", arg);
    else if (strcmp(line, "device") == 0)
        snprintf(res->device, sizeof res->device, "%s", arg);
    else if (strcmp(line, "error") == 0) {
        size_t used = strlen(res->error);
        snprintf(res->error + used, sizeof res->error - used, "%s%s", used ? "; " : "", arg);
    } else if (strcmp(line, "null_call_us") == 0)
        res->have_null = sscanf(arg, "%lf", &res->null_call_us) == 1;
    else if (strcmp(line, "launch_per_s") == 0)
        res->have_launch = sscanf(arg, "%lf", &res->launch_per_s) == 1;
    else if (strcmp(line, "h2d_gbps") == 0)
        parse_copy(res->h2d, res->have_h2d, arg);
    else if (strcmp(line, "d2h_gbps") == 0)
        parse_copy(res->d2h, res->have_d2h, arg);
    else if (strcmp(line, "h2d_pinned_gbps") == 0)
        parse_copy(res->h2d_pinned, res->have_h2d_pinned, arg);
    else if (strcmp(line, "d2h_pinned_gbps") == 0)
        parse_copy(res->d2h_pinned, res->have_d2h_pinned, arg);
}

/* Runs `self --mode MODE ...` with LD_LIBRARY_PATH=libdir (and VGPU_SERVER=server when given),
 * pinned to cpu (>= 0), reading its result lines into res. The child's own stdout/stderr stay
 * ours (driver logs). */
static void run_mode(const char *self, const char *mode, const char *libdir, const char *server, int cpu,
                     const char *child_args[], struct mode_result *res)
{
    res->ran = 1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(res->error, sizeof res->error, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->error, sizeof res->error, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        int wfd = dup(fds[1]);   /* dup'd descriptors do not inherit O_CLOEXEC */
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", wfd);
        setenv("LD_LIBRARY_PATH", libdir, 1);
        if (server)
            setenv("VGPU_SERVER", server, 1);
        else
            unsetenv("VGPU_SERVER");
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        const char *argv[16];
        int argc = 0;
        argv[argc++] = self;
        argv[argc++] = "--mode";
        argv[argc++] = mode;
        argv[argc++] = "--result-fd";
        argv[argc++] = fdarg;
        for (int i = 0; child_args[i] && argc < 15; i++)
            argv[argc++] = child_args[i];
        argv[argc] = NULL;
        execv(self, (char *const *)argv);
        dprintf(wfd, "error exec %s: %s\n", self, strerror(errno));
        _exit(127);
    }
    close(fds[1]);

    FILE *in = fdopen(fds[0], "r");
    if (!in) {
        close(fds[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(res->error, sizeof res->error, "fdopen: %s", strerror(errno));
        return;
    }
    char line[PATH_MAX + 64];
    int hung = 0;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, BENCH_CHILD_SILENCE_S * 1000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            hung = 1;
            break;
        }
        if (!fgets(line, sizeof line, in))
            break;
        parse_line(res, line);
    }
    fclose(in);
    if (hung)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (hung) {
        snprintf(res->error, sizeof res->error, "%s mode sent nothing for %d s; killed", mode,
                 BENCH_CHILD_SILENCE_S);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (!res->error[0]) {
            if (WIFSIGNALED(status))
                snprintf(res->error, sizeof res->error, "%s mode died of signal %d", mode,
                         WTERMSIG(status));
            else
                snprintf(res->error, sizeof res->error, "%s mode exited with status %d", mode,
                         WEXITSTATUS(status));
        }
    } else if (!res->error[0]) {
        res->ok = 1;
    }
}

/* ---- the table ---- */

/* Floors a figure is compared with. */
enum floor_id { F_NONE, F_TCP_PP, F_FUTEX_PP, F_FUTEX_1CORE, F_TCP_XFER, F_MEMCPY, F_INPROC };
static const char *const floor_name[] = {"", "tcp ping-pong", "futex ping-pong", "futex ping-pong, one core",
                                         "tcp transfer", "memcpy", "in-process"};

struct row {
    char label[48];
    char metric[24];           /* JSON name */
    const char *unit;
    size_t bytes;              /* copy size, 0 for the others */
    double v[M_COUNT];
    int have[M_COUNT];
    enum floor_id floor[M_COUNT];  /* per remote column */
    int higher_better;
    const char *target;        /* the targets for this row, for the reader */
};

static double floor_value(const struct bench_floors *f, enum floor_id id, const struct row *r)
{
    switch (id) {
    case F_TCP_PP: return f->tcp_pp_us;
    case F_FUTEX_PP: return f->futex_pp_us;
    case F_FUTEX_1CORE: return f->futex_pp_1core_us;
    case F_TCP_XFER: return f->tcp_xfer_gbps;
    case F_MEMCPY: return f->memcpy_gbps;
    case F_INPROC: return r->have[M_INPROC] ? r->v[M_INPROC] : -1;
    default: return -1;
    }
}

/* The ratio of column m to its floor, or a negative number when there is none. */
static double row_ratio(const struct bench_floors *f, const struct row *r, int m)
{
    double fl = floor_value(f, r->floor[m], r);
    if (!r->have[m] || fl <= 0)
        return -1;
    return r->v[m] / fl;
}

static void size_label(char *buf, size_t len, size_t bytes)
{
    if (bytes >= (1u << 20))
        snprintf(buf, len, "%zu MiB", bytes >> 20);
    else
        snprintf(buf, len, "%zu KiB", bytes >> 10);
}

static int collect_rows(const struct mode_result *res, struct row *rows)
{
    int n = 0;
    struct row *r = &rows[n++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "null call (cuCtxSynchronize)");
    snprintf(r->metric, sizeof r->metric, "null_call");
    r->unit = "us";
    for (int m = 0; m < M_SHM_1CORE; m++) {
        r->have[m] = res[m].have_null;
        r->v[m] = res[m].null_call_us;
    }
    r->floor[M_TCP] = F_TCP_PP;
    r->floor[M_SHM] = F_FUTEX_PP;
    r->target = "tcp <= 1.5, shm <= 3 (and < 0.1 of tcp's)";

    r = &rows[n++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "null call, one core");
    snprintf(r->metric, sizeof r->metric, "null_call_one_core");
    r->unit = "us";
    r->have[M_SHM] = res[M_SHM_1CORE].have_null;
    r->v[M_SHM] = res[M_SHM_1CORE].null_call_us;
    r->floor[M_SHM] = F_FUTEX_1CORE;
    r->target = "client and server share a core: spinning must not starve the peer";

    for (int pinned = 0; pinned < 2; pinned++)
        for (int dir = 0; dir < 2; dir++)
            for (int i = 0; i < BENCH_COPY_SIZES; i++) {
                if (pinned && copy_size(i) < BENCH_PINNED_MIN)
                    continue;
                r = &rows[n++];
                memset(r, 0, sizeof *r);
                char sz[32];
                size_label(sz, sizeof sz, copy_size(i));
                snprintf(r->label, sizeof r->label, "%s %s%s", dir ? "DtoH" : "HtoD", sz, pinned ? " pinned" : "");
                snprintf(r->metric, sizeof r->metric, "%s%s", dir ? "dtoh" : "htod", pinned ? "_pinned" : "");
                r->unit = "GB/s";
                r->bytes = copy_size(i);
                r->higher_better = 1;
                for (int m = 0; m < M_SHM_1CORE; m++) {
                    const struct mode_result *x = &res[m];
                    r->have[m] = pinned ? (dir ? x->have_d2h_pinned[i] : x->have_h2d_pinned[i])
                                        : (dir ? x->have_d2h[i] : x->have_h2d[i]);
                    r->v[m] = pinned ? (dir ? x->d2h_pinned[i] : x->h2d_pinned[i]) : (dir ? x->d2h[i] : x->h2d[i]);
                }
                /* The floors are 64 MiB transfers: only that size is compared with them. */
                if (copy_size(i) == BENCH_COPY_MAX) {
                    r->floor[M_TCP] = F_TCP_XFER;
                    r->floor[M_SHM] = F_MEMCPY;
                    r->target = pinned ? "tcp >= 0.8, shm >= 0.6" : "tcp >= 0.8, shm >= 0.4";
                }
            }

    r = &rows[n++];
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "empty-kernel launches");
    snprintf(r->metric, sizeof r->metric, "launch_rate");
    r->unit = "launches/s";
    r->higher_better = 1;
    for (int m = 0; m < M_SHM_1CORE; m++) {
        r->have[m] = res[m].have_launch;
        r->v[m] = res[m].launch_per_s;
    }
    r->floor[M_TCP] = F_INPROC;
    r->floor[M_SHM] = F_INPROC;
    r->target = "tcp >= 0.5, shm >= 0.7";
    return n;
}

#define MAX_ROWS (3 + 4 * BENCH_COPY_SIZES)

static void fmt_value(char *buf, size_t len, int have, double v)
{
    if (have)
        snprintf(buf, len, "%.4g", v);
    else
        snprintf(buf, len, "-");
}

static void print_floor(const char *what, double v, const char *unit)
{
    if (v > 0)
        printf("  %-44s %10.4g %s\n", what, v, unit);
    else
        printf("  %-44s %10s\n", what, "-");
}

static void print_table(const char *cpu, long cores, double load, const struct bench_opts *o,
                        const struct mode_result *res, const struct bench_floors *f)
{
    printf("vgpu-bench: %s, %ld cores, load average %.2f at the start; median of %u repetitions, "
           "%u calls/launches each\n", cpu, cores, load, o->reps, o->calls);
    for (int m = 0; m < M_COUNT; m++)
        if (res[m].ran)
            printf("  %-10s %s%s%s\n", mode_name[m], res[m].where, res[m].device[0] ? ", device " : "",
                   res[m].device);
    printf("\nfloors, measured in this run:\n");
    print_floor("TCP loopback ping-pong, 64 B", f->tcp_pp_us, "us");
    print_floor("Unix socket ping-pong, 64 B", f->unix_pp_us, "us");
    print_floor("shared-page ping-pong, futex waits", f->futex_pp_us, "us");
    print_floor("shared-page ping-pong, spinning (a core each)", f->spin_pp_us, "us");
    print_floor("shared-page ping-pong, futex waits, one core", f->futex_pp_1core_us, "us");
    print_floor("TCP loopback transfer, 64 MiB", f->tcp_xfer_gbps, "GB/s");
    print_floor("memcpy, 64 MiB", f->memcpy_gbps, "GB/s");

    printf("\n%-30s %-10s %11s %11s %11s %9s %9s  %s\n", "measurement", "unit", "in-process", "tcp", "shm",
           "tcp/floor", "shm/floor", "floors; targets");
    struct row rows[MAX_ROWS];
    int n = collect_rows(res, rows);
    for (int i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        char v[3][32], ratio[2][32];
        fmt_value(v[0], sizeof v[0], r->have[M_INPROC], r->v[M_INPROC]);
        fmt_value(v[1], sizeof v[1], r->have[M_TCP], r->v[M_TCP]);
        fmt_value(v[2], sizeof v[2], r->have[M_SHM], r->v[M_SHM]);
        for (int k = 0; k < 2; k++) {
            double x = row_ratio(f, r, k ? M_SHM : M_TCP);
            fmt_value(ratio[k], sizeof ratio[k], x >= 0, x);
        }
        char notes[200] = "";
        if (r->floor[M_TCP] || r->floor[M_SHM]) {
            if (r->floor[M_TCP] == r->floor[M_SHM] || !r->floor[M_TCP])
                snprintf(notes, sizeof notes, "%s; %s", floor_name[r->floor[M_SHM]], r->target);
            else
                snprintf(notes, sizeof notes, "%s, %s; %s", floor_name[r->floor[M_TCP]], floor_name[r->floor[M_SHM]],
                         r->target);
        }
        printf("%-30s %-10s %11s %11s %11s %9s %9s  %s\n", r->label, r->unit, v[0], v[1], v[2], ratio[0], ratio[1],
               notes);
    }
    if (res[M_SHM].have_null && res[M_TCP].have_null && res[M_TCP].null_call_us > 0)
        printf("\nshm null call / tcp null call: %.3g (target < 0.1)\n",
               res[M_SHM].null_call_us / res[M_TCP].null_call_us);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_number(double v, int have)
{
    if (have)
        printf("%.6g", v);
    else
        printf("null");
}

static void print_json(const char *cpu, long cores, double load, const struct bench_opts *o,
                       const struct mode_result *res, const struct bench_floors *f)
{
    printf("{\n  \"machine\": {\"cpu\": ");
    json_string(stdout, cpu);
    printf(", \"cores\": %ld, \"load_average\": %.2f},\n", cores, load);
    printf("  \"repetitions\": %u, \"calls\": %u, \"launches\": %u, \"copy_budget_bytes\": %zu,\n", o->reps,
           o->calls, o->launches, o->copy_budget);
    const struct { const char *name; double v; } fl[] = {
        {"tcp_ping_pong_us", f->tcp_pp_us},         {"unix_ping_pong_us", f->unix_pp_us},
        {"futex_ping_pong_us", f->futex_pp_us},     {"spin_ping_pong_us", f->spin_pp_us},
        {"futex_ping_pong_one_core_us", f->futex_pp_1core_us},
        {"tcp_transfer_gbps", f->tcp_xfer_gbps},    {"memcpy_gbps", f->memcpy_gbps},
    };
    printf("  \"floors\": {");
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        printf("%s\"%s\": ", i ? ", " : "", fl[i].name);
        json_number(fl[i].v, fl[i].v > 0);
    }
    printf("},\n  \"modes\": {\n");
    int first = 1;
    for (int m = 0; m < M_COUNT; m++) {
        if (!res[m].ran)
            continue;
        printf("%s    \"%s\": {\"ok\": %s, \"library\": ", first ? "" : ",\n", mode_name[m], res[m].ok ? "true" : "false");
        json_string(stdout, res[m].lib);
        printf(", \"device\": ");
        json_string(stdout, res[m].device);
        printf(", \"where\": ");
        json_string(stdout, res[m].where);
        printf(", \"error\": ");
        if (res[m].error[0])
            json_string(stdout, res[m].error);
        else
            printf("null");
        printf("}");
        first = 0;
    }
    printf("\n  },\n  \"results\": [\n");
    struct row rows[MAX_ROWS];
    int n = collect_rows(res, rows);
    for (int i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        printf("    {\"metric\": \"%s\", \"unit\": \"%s\"", r->metric, r->unit);
        if (r->bytes)
            printf(", \"bytes\": %zu", r->bytes);
        printf(", \"inproc\": ");
        json_number(r->v[M_INPROC], r->have[M_INPROC]);
        printf(", \"tcp\": ");
        json_number(r->v[M_TCP], r->have[M_TCP]);
        printf(", \"shm\": ");
        json_number(r->v[M_SHM], r->have[M_SHM]);
        for (int k = 0; k < 2; k++) {
            int m = k ? M_SHM : M_TCP;
            double x = row_ratio(f, r, m);
            printf(", \"%s_floor\": ", mode_name[m]);
            if (r->floor[m])
                json_string(stdout, floor_name[r->floor[m]]);
            else
                printf("null");
            printf(", \"%s_ratio\": ", mode_name[m]);
            json_number(x, x >= 0);
        }
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
}

/* ---- main ---- */

/* --transport LIST into want[]: 0 or -1 on a bad list. */
static int parse_transports(const char *list, int want[M_COUNT])
{
    memset(want, 0, M_COUNT * sizeof *want);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "inproc") == 0)
            want[M_INPROC] = 1;
        else if (strcmp(t, "tcp") == 0)
            want[M_TCP] = 1;
        else if (strcmp(t, "shm") == 0)
            want[M_SHM] = want[M_SHM_1CORE] = 1;
        else if (strcmp(t, "all") == 0)
            want[M_INPROC] = want[M_TCP] = want[M_SHM] = want[M_SHM_1CORE] = 1;
        else
            return -1;
    }
    return 0;
}

/* Checks that a mode ran the library it should have (the stub for remote modes). */
static void check_lib(struct mode_result *r, const char *dir, const char *what)
{
    if (r->ok && r->lib[0] && strncmp(r->lib, dir, strlen(dir)) != 0) {
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "%s mode loaded %s, not %s in %s", what, r->lib,
                 strcmp(what, "in-process") == 0 ? "the in-process driver" : "the stub", dir);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "share-client"))
        return bench_share_client(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "share")) {
        char build[PATH_MAX], self[PATH_MAX];
        ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
        if (sn <= 0 || bench_build_dir(build, sizeof build) != 0) {
            fprintf(stderr, "vgpu-bench: cannot find my own executable in /proc/self/exe\n");
            return 1;
        }
        self[sn] = '\0';
        return bench_share(argc - 1, argv + 1, self, build);
    }
    int json = 0, quick = 0, result_fd = -1, only_null = 0;
    long iters = 0;
    const char *mode = NULL, *local_driver = NULL;
    int want[M_COUNT];
    parse_transports("all", want);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            char *end;
            iters = strtol(argv[++i], &end, 10);
            if (*end || iters < 1 || iters > 100000000) {
                fprintf(stderr, "vgpu-bench: --iters wants a count from 1 to 100000000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--local-driver") == 0 && i + 1 < argc) {
            local_driver = argv[++i];
        } else if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc) {
            if (parse_transports(argv[++i], want) != 0) {
                fprintf(stderr, "vgpu-bench: --transport wants a list of inproc, tcp, shm\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            mode = argv[++i];
        } else if (strcmp(argv[i], "--result-fd") == 0 && i + 1 < argc) {
            result_fd = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only-null") == 0) {
            only_null = 1;
        } else {
            fprintf(stderr, "vgpu-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    struct bench_opts opts = {
        .calls = quick ? 200 : 2000,
        .launches = quick ? 200 : 2000,
        .copy_budget = quick ? (size_t)8 << 20 : (size_t)64 << 20,
        .reps = quick ? 3 : 7,
        .only_null = only_null,
    };
    if (iters) {
        opts.calls = (unsigned)iters;
        opts.launches = (unsigned)iters;
    }

    if (mode) {
        if (result_fd < 0) {
            fprintf(stderr, "vgpu-bench: --mode and --result-fd are internal\n");
            return 2;
        }
        return bench_child_run(&opts, result_fd);
    }

    signal(SIGPIPE, SIG_IGN);
    char build[PATH_MAX], self[PATH_MAX], emu_dir[PATH_MAX + 32], stub_dir[PATH_MAX + 32];
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sn <= 0 || bench_build_dir(build, sizeof build) != 0) {
        fprintf(stderr, "vgpu-bench: cannot find my own executable in /proc/self/exe\n");
        return 1;
    }
    self[sn] = '\0';
    if (local_driver)
        snprintf(emu_dir, sizeof emu_dir, "%s", local_driver);
    else
        snprintf(emu_dir, sizeof emu_dir, "%s/lib/emulated", build);
    snprintf(stub_dir, sizeof stub_dir, "%s/lib", build);

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double load = load_average();

    const char *child_args[6] = {0}, *child_null_args[8] = {0};
    int na = 0;
    char iters_arg[24];
    if (quick)
        child_args[na++] = "--quick";
    if (iters) {
        snprintf(iters_arg, sizeof iters_arg, "%ld", iters);
        child_args[na++] = "--iters";
        child_args[na++] = iters_arg;
    }
    memcpy(child_null_args, child_args, sizeof child_args);
    child_null_args[na] = "--only-null";

    /* With VGPU_SERVER set, only its transport is measured remotely, against it. */
    const char *env_server = getenv("VGPU_SERVER");
    if (env_server && *env_server) {
        int is_unix = strncmp(env_server, "unix:", 5) == 0;
        want[M_TCP] = want[M_TCP] && !is_unix;
        want[M_SHM] = want[M_SHM] && is_unix;
        want[M_SHM_1CORE] = 0;
    }

    struct mode_result res[M_COUNT];
    memset(res, 0, sizeof res);
    struct bench_floors floors;
    if (!json)
        fprintf(stderr, "vgpu-bench: measuring the floors ...\n");
    bench_floors_run(&opts, &floors);

    if (want[M_INPROC]) {
        if (!json)
            fprintf(stderr, "vgpu-bench: measuring in-process (%s) ...\n", emu_dir);
        snprintf(res[M_INPROC].where, sizeof res[M_INPROC].where, "the emulated driver in-process");
        run_mode(self, "inproc", emu_dir, NULL, -1, child_args, &res[M_INPROC]);
        check_lib(&res[M_INPROC], emu_dir, "in-process");
    }

    struct bench_server srv = {0}, srv1 = {0};
    char err[BENCH_ERR_LEN - 64] = "";
    int need_server = !(env_server && *env_server) && (want[M_TCP] || want[M_SHM]);
    int have_server = 0;
    if (need_server) {
        have_server = bench_server_start(&srv, build, NULL, -1, err, sizeof err) == 0;
        if (!have_server)
            for (int m = M_TCP; m <= M_SHM; m++)
                if (want[m]) {
                    res[m].ran = 1;
                    snprintf(res[m].error, sizeof res[m].error, "could not start gpu-server: %s", err);
                }
    }
    for (int m = M_TCP; m <= M_SHM; m++) {
        if (!want[m] || (need_server && !have_server))
            continue;
        const char *addr = env_server && *env_server ? env_server : m == M_TCP ? srv.addr : srv.unix_addr;
        snprintf(res[m].where, sizeof res[m].where, "gpu-server at %s%s", addr,
                 env_server && *env_server ? " (VGPU_SERVER)" : " (--driver emulated, started by vgpu-bench)");
        if (!json)
            fprintf(stderr, "vgpu-bench: measuring %s (%s) ...\n", mode_name[m], res[m].where);
        run_mode(self, mode_name[m], stub_dir, addr, -1, child_args, &res[m]);
        check_lib(&res[m], stub_dir, "remote");
    }
    if (have_server && (!res[M_TCP].ok || !res[M_SHM].ok))
        bench_log_tail(srv.log_file, stderr);
    bench_server_stop(&srv);

    /* The null call again with client and server on one core: a waiting side that spins must
     * not keep the other from running. */
    if (want[M_SHM_1CORE]) {
        if (bench_server_start(&srv1, build, NULL, 0, err, sizeof err) == 0) {
            snprintf(res[M_SHM_1CORE].where, sizeof res[M_SHM_1CORE].where,
                     "gpu-server at %s, it and the client pinned to cpu 0", srv1.unix_addr);
            if (!json)
                fprintf(stderr, "vgpu-bench: measuring %s (%s) ...\n", mode_name[M_SHM_1CORE],
                        res[M_SHM_1CORE].where);
            run_mode(self, mode_name[M_SHM_1CORE], stub_dir, srv1.unix_addr, 0, child_null_args, &res[M_SHM_1CORE]);
            check_lib(&res[M_SHM_1CORE], stub_dir, "remote");
            if (!res[M_SHM_1CORE].ok)
                bench_log_tail(srv1.log_file, stderr);
            bench_server_stop(&srv1);
        } else {
            res[M_SHM_1CORE].ran = 1;
            snprintf(res[M_SHM_1CORE].error, sizeof res[M_SHM_1CORE].error, "could not start gpu-server: %s", err);
        }
    }

    if (json)
        print_json(cpu, cores, load, &opts, res, &floors);
    else
        print_table(cpu, cores, load, &opts, res, &floors);
    int ok = 1;
    for (int m = 0; m < M_COUNT; m++) {
        if (res[m].ran && !res[m].ok) {
            fprintf(stderr, "vgpu-bench: %s mode failed: %s\n", mode_name[m], res[m].error[0] ? res[m].error : "unknown");
            ok = 0;
        }
    }
    return ok ? 0 : 1;
}
