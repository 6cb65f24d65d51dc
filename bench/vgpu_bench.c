/* vgpu-bench: remoting overhead, measured. Runs the same driver-API measurements in-process on
 * the emulated GPU and remotely through gpu-server (started here unless VGPU_SERVER names one),
 * and prints both with their ratio. Every figure printed was measured in this run. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
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

struct mode_result {
    int ok;
    char error[BENCH_ERR_LEN];
    char lib[PATH_MAX];
    char device[256];
    double null_call_us;
    double h2d[BENCH_COPY_SIZES], d2h[BENCH_COPY_SIZES];
    int have_h2d[BENCH_COPY_SIZES], have_d2h[BENCH_COPY_SIZES];
    double launch_per_s;
    int have_null, have_launch;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vgpu-bench [--json] [--quick] [--iters N] [--local-driver DIR]\n"
            "       vgpu-bench share [--scenario NAME] [--seconds S] [--kernel-ms LIST] [--json]\n"
            "                  (how gpu-server shares a device between tenants: share --help)\n"
            "\n"
            "Measures, in-process on the emulated GPU and remotely through gpu-server:\n"
            "  null call      cuCtxSynchronize with nothing queued (microseconds per call)\n"
            "  HtoD, DtoH     cuMemcpyHtoD/DtoH bandwidth, 4 KiB to 64 MiB (GB/s)\n"
            "  launch rate    N empty-kernel launches then one synchronize (launches/s)\n"
            "and prints both figures and their remote/in-process ratio (medians of repetitions).\n"
            "\n"
            "  --json      machine-readable output\n"
            "  --quick     fewer iterations (for CI)\n"
            "  --iters N   null calls and launches per repetition (default 2000; --quick 200)\n"
            "  --local-driver DIR  the in-process mode loads DIR/libcuda.so.1 (a real driver's\n"
            "              directory, to compare remoting with the native driver) instead of\n"
            "              <build>/lib/emulated\n"
            "  --help      this text\n"
            "\n"
            "Remote mode uses VGPU_SERVER when set, else starts\n"
            "  <build>/bin/gpu-server --listen 127.0.0.1:0 --port-file TMP --driver emulated\n"
            "and stops it at the end. Exit status is non-zero when either mode fails.\n");
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

/* <build> is the directory above the one holding this executable (DESIGN.md: build/bin/). */
/* ---- children ---- */

static void parse_line(struct mode_result *res, char *line)
{
    line[strcspn(line, "\n")] = '\0';
    char *arg = strchr(line, ' ');
    if (!arg)
        return;
    *arg++ = '\0';
    if (strcmp(line, "lib") == 0) {
        snprintf(res->lib, sizeof res->lib, "%s", arg);
    } else if (strcmp(line, "device") == 0) {
        snprintf(res->device, sizeof res->device, "%s", arg);
    } else if (strcmp(line, "error") == 0) {
        size_t used = strlen(res->error);
        snprintf(res->error + used, sizeof res->error - used, "%s%s", used ? "; " : "", arg);
    } else if (strcmp(line, "null_call_us") == 0) {
        res->have_null = sscanf(arg, "%lf", &res->null_call_us) == 1;
    } else if (strcmp(line, "launch_per_s") == 0) {
        res->have_launch = sscanf(arg, "%lf", &res->launch_per_s) == 1;
    } else if (strcmp(line, "h2d_gbps") == 0 || strcmp(line, "d2h_gbps") == 0) {
        size_t size;
        double v;
        int idx;
        if (sscanf(arg, "%zu %lf", &size, &v) == 2 && (idx = copy_index(size)) >= 0) {
            if (line[0] == 'h') {
                res->h2d[idx] = v;
                res->have_h2d[idx] = 1;
            } else {
                res->d2h[idx] = v;
                res->have_d2h[idx] = 1;
            }
        }
    }
}

/* Runs `self --mode MODE ...` with LD_LIBRARY_PATH=libdir (and VGPU_SERVER=server when given),
 * reading its result lines into res. The child's own stdout/stderr stay ours (driver logs). */
static void run_mode(const char *self, const char *mode, const char *libdir, const char *server,
                     const char *child_args[], struct mode_result *res)
{
    memset(res, 0, sizeof *res);
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

/* ---- server ---- */

/* ---- output ---- */

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

struct row {
    char metric[32];
    const char *unit;
    size_t bytes;   /* copy size, 0 for the others */
    int have_local, have_remote;
    double local, remote;
};

static int collect_rows(const struct mode_result *l, const struct mode_result *r, struct row *rows)
{
    int n = 0;
    rows[n] = (struct row){"null_call", "us", 0, l->have_null, r->have_null, l->null_call_us, r->null_call_us};
    n++;
    for (int dir = 0; dir < 2; dir++)
        for (int i = 0; i < BENCH_COPY_SIZES; i++, n++) {
            rows[n] = (struct row){"", "GB/s", copy_size(i),
                                   dir ? l->have_d2h[i] : l->have_h2d[i], dir ? r->have_d2h[i] : r->have_h2d[i],
                                   dir ? l->d2h[i] : l->h2d[i], dir ? r->d2h[i] : r->h2d[i]};
            snprintf(rows[n].metric, sizeof rows[n].metric, "%s", dir ? "dtoh" : "htod");
        }
    rows[n] = (struct row){"launch_rate", "launches/s", 0, l->have_launch, r->have_launch, l->launch_per_s,
                           r->launch_per_s};
    n++;
    return n;
}

static void size_label(char *buf, size_t len, size_t bytes)
{
    if (bytes >= (1u << 20))
        snprintf(buf, len, "%zu MiB", bytes >> 20);
    else
        snprintf(buf, len, "%zu KiB", bytes >> 10);
}

static void print_table(const char *cpu, long cores, const struct bench_opts *o, const struct mode_result *l,
                        const struct mode_result *r, const char *server_desc)
{
    printf("vgpu-bench: %s, %ld cores; median of %u repetitions, %u calls/launches each\n", cpu, cores,
           o->reps, o->calls);
    printf("  in-process: %s%s%s\n", l->lib[0] ? l->lib : "(no library)", l->device[0] ? ", device " : "",
           l->device);
    printf("  remote:     %s%s%s\n", server_desc, r->device[0] ? ", device " : "", r->device);
    printf("\n%-30s %-11s %14s %14s %10s\n", "measurement", "unit", "in-process", "remote", "remote/in");
    struct row rows[2 + 2 * BENCH_COPY_SIZES];
    int n = collect_rows(l, r, rows);
    for (int i = 0; i < n; i++) {
        char name[64], sz[32], lv[32] = "-", rv[32] = "-", ratio[32] = "-";
        if (rows[i].bytes) {
            size_label(sz, sizeof sz, rows[i].bytes);
            snprintf(name, sizeof name, "%s %s", strcmp(rows[i].metric, "htod") == 0 ? "HtoD" : "DtoH", sz);
        } else {
            snprintf(name, sizeof name, "%s",
                     strcmp(rows[i].metric, "null_call") == 0 ? "null call (cuCtxSynchronize)" : "empty-kernel launches");
        }
        if (rows[i].have_local)
            snprintf(lv, sizeof lv, "%.4g", rows[i].local);
        if (rows[i].have_remote)
            snprintf(rv, sizeof rv, "%.4g", rows[i].remote);
        if (rows[i].have_local && rows[i].have_remote && rows[i].local > 0)
            snprintf(ratio, sizeof ratio, "%.3g", rows[i].remote / rows[i].local);
        printf("%-30s %-11s %14s %14s %10s\n", name, rows[i].unit, lv, rv, ratio);
    }
}

static void print_json(const char *cpu, long cores, const struct bench_opts *o, const struct mode_result *l,
                       const struct mode_result *r, const char *server_desc)
{
    printf("{\n  \"machine\": {\"cpu\": ");
    json_string(stdout, cpu);
    printf(", \"cores\": %ld},\n", cores);
    printf("  \"repetitions\": %u, \"calls\": %u, \"launches\": %u, \"copy_budget_bytes\": %zu,\n", o->reps,
           o->calls, o->launches, o->copy_budget);
    const struct mode_result *modes[2] = {l, r};
    for (int m = 0; m < 2; m++) {
        printf("  \"%s\": {\"ok\": %s, \"library\": ", m ? "remote" : "local", modes[m]->ok ? "true" : "false");
        json_string(stdout, modes[m]->lib);
        printf(", \"device\": ");
        json_string(stdout, modes[m]->device);
        if (m) {
            printf(", \"server\": ");
            json_string(stdout, server_desc);
        }
        printf(", \"error\": ");
        if (modes[m]->error[0])
            json_string(stdout, modes[m]->error);
        else
            printf("null");
        printf("},\n");
    }
    printf("  \"results\": [\n");
    struct row rows[2 + 2 * BENCH_COPY_SIZES];
    int n = collect_rows(l, r, rows);
    for (int i = 0; i < n; i++) {
        printf("    {\"metric\": \"%s\", \"unit\": \"%s\"", rows[i].metric, rows[i].unit);
        if (rows[i].bytes)
            printf(", \"bytes\": %zu", rows[i].bytes);
        if (rows[i].have_local)
            printf(", \"local\": %.6g", rows[i].local);
        else
            printf(", \"local\": null");
        if (rows[i].have_remote)
            printf(", \"remote\": %.6g", rows[i].remote);
        else
            printf(", \"remote\": null");
        if (rows[i].have_local && rows[i].have_remote && rows[i].local > 0)
            printf(", \"ratio\": %.6g}", rows[i].remote / rows[i].local);
        else
            printf(", \"ratio\": null}");
        printf("%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
}

/* ---- main ---- */

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
    int json = 0, quick = 0, result_fd = -1;
    long iters = 0;
    const char *mode = NULL, *local_driver = NULL;
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
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            mode = argv[++i];
        } else if (strcmp(argv[i], "--result-fd") == 0 && i + 1 < argc) {
            result_fd = atoi(argv[++i]);
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
    };
    if (iters) {
        opts.calls = (unsigned)iters;
        opts.launches = (unsigned)iters;
    }

    if (mode) {
        if ((strcmp(mode, "local") != 0 && strcmp(mode, "remote") != 0) || result_fd < 0) {
            fprintf(stderr, "vgpu-bench: --mode local|remote and --result-fd are internal\n");
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

    const char *child_args[6] = {0};
    int na = 0;
    char iters_arg[24];
    if (quick)
        child_args[na++] = "--quick";
    if (iters) {
        snprintf(iters_arg, sizeof iters_arg, "%ld", iters);
        child_args[na++] = "--iters";
        child_args[na++] = iters_arg;
    }

    struct mode_result local, remote;
    if (!json)
        fprintf(stderr, "vgpu-bench: measuring in-process (%s) ...\n", emu_dir);
    run_mode(self, "local", emu_dir, NULL, child_args, &local);

    struct bench_server srv = {0};
    char server_desc[256];
    const char *env_server = getenv("VGPU_SERVER");
    memset(&remote, 0, sizeof remote);
    if (env_server && *env_server) {
        snprintf(server_desc, sizeof server_desc, "VGPU_SERVER=%s", env_server);
    } else {
        char err[BENCH_ERR_LEN - 64];
        if (bench_server_start(&srv, build, NULL, err, sizeof err) != 0) {
            snprintf(remote.error, sizeof remote.error, "could not start gpu-server: %s", err);
            snprintf(server_desc, sizeof server_desc, "(gpu-server not started)");
        } else {
            snprintf(server_desc, sizeof server_desc, "gpu-server --driver emulated at %s (started by vgpu-bench)",
                     srv.addr);
        }
    }
    if (!remote.error[0]) {
        if (!json)
            fprintf(stderr, "vgpu-bench: measuring remote (%s) ...\n", server_desc);
        run_mode(self, "remote", stub_dir, env_server && *env_server ? env_server : srv.addr, child_args,
                 &remote);
        /* Honesty check: the remote child must have run the stub, not some other libcuda. */
        if (remote.ok && remote.lib[0] && strncmp(remote.lib, stub_dir, strlen(stub_dir)) != 0) {
            remote.ok = 0;
            snprintf(remote.error, sizeof remote.error, "remote mode loaded %s, not the stub in %s", remote.lib,
                     stub_dir);
        }
    }
    if (local.ok && local.lib[0] && strncmp(local.lib, emu_dir, strlen(emu_dir)) != 0) {
        local.ok = 0;
        snprintf(local.error, sizeof local.error, "in-process mode loaded %s, not the driver in %s",
                 local.lib, emu_dir);
    }
    if (srv.pid > 0 && !remote.ok)
        bench_log_tail(srv.log_file, stderr);
    bench_server_stop(&srv);

    if (json)
        print_json(cpu, cores, &opts, &local, &remote, server_desc);
    else
        print_table(cpu, cores, &opts, &local, &remote, server_desc);
    if (!local.ok)
        fprintf(stderr, "vgpu-bench: in-process mode failed: %s\n", local.error[0] ? local.error : "unknown");
    if (!remote.ok)
        fprintf(stderr, "vgpu-bench: remote mode failed: %s\n", remote.error[0] ? remote.error : "unknown");
    return local.ok && remote.ok ? 0 : 1;
}
