/* gpu-server: serves CUDA driver calls from vgpu stubs. This is the main process: it reads the
 * command line, probes the driver in a child, and runs the listener (main_listen.c), which forks a
 * session process per client. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "log.h"
#include "main_listen.h"
#include "main_probe.h"
#include "main_tenants.h"
#include "size.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpu-server [options]\n"
            "  --listen ADDR          where to listen; repeatable. HOST:PORT (TCP; port 0 = any free\n"
            "                         port) or unix:PATH. Default 0.0.0.0:7300\n"
            "  --port-file PATH       write the first TCP listener's bound port to PATH\n"
            "  --driver WHICH         auto (default: the system libcuda.so.1 if it has a device, else\n"
            "                         the emulated GPU), emulated, or the path of a libcuda.so.1\n"
            "  --tenants FILE         tenants: tokens, weights, memory limits, devices (INI; see\n"
            "                         server/README.md). SIGHUP re-reads it. Default: one tenant,\n"
            "                         no limits, any token\n"
            "  --admin ADDR           vgpu-smi's endpoint: HOST:PORT or unix:PATH, or none (default\n"
            "                         127.0.0.1:7301). No token: reaching it makes you an operator\n"
            "  --metrics ADDR         serve Prometheus text at http://ADDR/metrics (default: off)\n"
            "  --max-frame BYTES      largest frame accepted (default %llu, at most 2G; suffixes K, M, G)\n"
            "  --scheduler on|off     share each device's time between tenants by weight, measuring\n"
            "                         every kernel and copy (default on); off: sessions' work goes to\n"
            "                         the driver as it comes (no shares, no device time, no caps)\n"
            "  --kernel-timeout SECS  end a session whose launched work makes no progress for SECS\n"
            "                         (the client gets CUDA_ERROR_LAUNCH_TIMEOUT); default: none\n"
            "  --handshake-timeout SECS  time a new connection has to send its Hello (default 10)\n"
            "  --read-timeout SECS    time without a byte inside a started frame, or stuck writing a\n"
            "                         reply, before the session is dropped (default 30)\n"
            "  --max-buffered BYTES   server-wide cap on bytes held for partial frames and for shared-\n"
            "                         memory clients' pinned memory (default: a quarter of memory,\n"
            "                         1G-16G); above it, growing frames pause, pinned memory stays\n"
            "                         the client's own\n"
            "  --max-sessions N       session processes at once (default 256)\n"
            "  --max-client-conns N   connections per client address or Unix uid (default 64)\n"
            "  --help                 this text\n"
            "Each accepted client gets a session process of its own; SIGTERM to one ends that session,\n"
            "to gpu-server ends them all. Environment: VGPU_LOG=error|warn|info|debug\n",
            (unsigned long long)VG_FRAME_DEFAULT_MAX);
}

static int parse_listen(const char *arg, struct vg_listen_addr *la)
{
    memset(la, 0, sizeof *la);
    if (strncmp(arg, "unix:", 5) == 0) {
        if (!arg[5] || strlen(arg + 5) >= sizeof la->path)
            return -1;
        la->kind = VG_LISTEN_UNIX;
        snprintf(la->path, sizeof la->path, "%s", arg + 5);
        return 0;
    }
    la->kind = VG_LISTEN_TCP;
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof la->host)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    memcpy(la->host, arg, (size_t)(colon - arg));
    la->host[colon - arg] = 0;
    /* [::1]:port */
    if (la->host[0] == '[') {
        size_t n = strlen(la->host);
        if (la->host[n - 1] != ']')
            return -1;
        memmove(la->host, la->host + 1, n - 2);
        la->host[n - 2] = 0;
    }
    la->port = (int)p;
    return 0;
}

/* Seconds, fractions allowed ("0.5"), as milliseconds; 0 < value <= a day. */
static int parse_seconds(const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 86400)
        return -1;
    *ms = (unsigned)(v * 1000 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

static int parse_count(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    vg_log_set_component("gpu-server");
    signal(SIGPIPE, SIG_IGN);
    static struct vg_config cfg = {
        .driver = "auto",
        .admin = "127.0.0.1:7301",
        .scheduler = 1,
        .max_frame = VG_FRAME_DEFAULT_MAX,
        .handshake_timeout_ms = 10000,
        .read_timeout_ms = 30000,
        .max_sessions = 256,
        .max_client_conns = 64,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        static const char *const takes_value[] = {
            "--listen", "--port-file", "--driver", "--tenants", "--admin", "--metrics", "--scheduler", "--max-frame", "--kernel-timeout", "--handshake-timeout",
            "--read-timeout", "--max-buffered", "--max-sessions", "--max-client-conns"};
        int known = 0;
        for (size_t k = 0; k < sizeof takes_value / sizeof takes_value[0]; k++)
            known |= strcmp(a, takes_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "gpu-server: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "gpu-server: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        const char *bad = NULL;
        if (!strcmp(a, "--listen")) {
            if (cfg.n_listen == VG_MAX_LISTEN)
                bad = "at most 8 listeners";
            else if (strncmp(val, "tls://", 6) == 0)
                bad = "TLS is not available in this build yet";
            else if (parse_listen(val, &cfg.listen[cfg.n_listen]) < 0)
                bad = "expected HOST:PORT (PORT 0-65535) or unix:PATH";
            else
                cfg.n_listen++;
        } else if (!strcmp(a, "--port-file")) {
            cfg.port_file = val;
        } else if (!strcmp(a, "--driver")) {
            cfg.driver = val;
        } else if (!strcmp(a, "--tenants")) {
            cfg.tenants_path = val;
        } else if (!strcmp(a, "--admin")) {
            cfg.admin = strcmp(val, "none") ? val : NULL;
            cfg.admin_explicit = 1;
        } else if (!strcmp(a, "--metrics")) {
            cfg.metrics = val;
        } else if (!strcmp(a, "--scheduler")) {
            if (!strcmp(val, "on") || !strcmp(val, "off"))
                cfg.scheduler = !strcmp(val, "on");
            else
                bad = "expected on or off";
        } else if (!strcmp(a, "--max-frame")) {
            if (vg_parse_size(val, &cfg.max_frame) < 0 || cfg.max_frame < VG_FRAME_MIN_MAX ||
                cfg.max_frame > VG_FRAME_MAX_MAX)
                bad = "expected a size between 64K and 2G";
        } else if (!strcmp(a, "--kernel-timeout")) {
            if (parse_seconds(val, &cfg.kernel_timeout_ms) < 0)
                bad = "expected seconds (> 0, at most 86400)";
        } else if (!strcmp(a, "--handshake-timeout")) {
            if (parse_seconds(val, &cfg.handshake_timeout_ms) < 0)
                bad = "expected seconds (> 0, at most 86400)";
        } else if (!strcmp(a, "--read-timeout")) {
            if (parse_seconds(val, &cfg.read_timeout_ms) < 0)
                bad = "expected seconds (> 0, at most 86400)";
        } else if (!strcmp(a, "--max-buffered")) {
            if (vg_parse_size(val, &cfg.max_buffered) < 0 || cfg.max_buffered < ((uint64_t)1 << 20))
                bad = "expected a size of at least 1M";
        } else if (!strcmp(a, "--max-sessions")) {
            if (parse_count(val, 1, 65536, &cfg.max_sessions) < 0)
                bad = "expected a number from 1 to 65536";
        } else if (!strcmp(a, "--max-client-conns")) {
            if (parse_count(val, 1, 1000000, &cfg.max_client_conns) < 0)
                bad = "expected a number from 1 to 1000000";
        }
        if (bad) {
            fprintf(stderr, "gpu-server: %s '%s': %s\n", a, val, bad);
            return 2;
        }
    }
    if (!cfg.max_buffered) {
        /* A quarter of the machine's memory, within [1G, 16G]. */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        uint64_t quarter = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 4 : 0;
        cfg.max_buffered = quarter < ((uint64_t)1 << 30) ? (uint64_t)1 << 30
                         : quarter > ((uint64_t)16 << 30) ? (uint64_t)16 << 30 : quarter;
    }
    if (cfg.n_listen == 0) {
        parse_listen("0.0.0.0:7300", &cfg.listen[0]);
        cfg.n_listen = 1;
    }

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "gpu-server: cannot find its own path: %s\n", strerror(errno));
        return 1;
    }
    exe[n] = 0;
    snprintf(cfg.exe_dir, sizeof cfg.exe_dir, "%s", dirname(exe));

    static struct vg_probe probe;
    if (vg_probe_driver(cfg.driver, cfg.exe_dir, &probe) != 0) {
        vg_error("no usable CUDA driver (--driver %s)", cfg.driver);
        return 1;
    }
    static struct vg_tenants tenants;
    char err[512];
    if (!cfg.tenants_path) {
        vg_tenants_default(&tenants);
    } else if (vg_tenants_load(cfg.tenants_path, probe.device_count, &tenants, err, sizeof err) != 0) {
        vg_error("tenants file: %s", err);
        return 1;
    }
    /* The first line says what serves the calls and who may use it. */
    if (cfg.tenants_path)
        vg_log_always("driver: %s; tenants: %u from %s", probe.desc, tenants.n, cfg.tenants_path);
    else
        vg_log_always("driver: %s; tenants: none given (--tenants): one default tenant, weight 1, "
                      "no limits, any token", probe.desc);
    vg_info("%d device(s); each client gets a session process of its own", probe.device_count);
    return vg_main_run(&cfg, &probe, &tenants);
}
