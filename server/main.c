/* gpu-server: serves CUDA driver calls from vgpu stubs over TCP. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "frame.h"
#include "log.h"
#include "net.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gpu-server [options]\n"
            "  --listen HOST:PORT   address to listen on (default 0.0.0.0:7300; port 0 = any free port)\n"
            "  --port-file PATH     write the bound port to PATH once listening\n"
            "  --driver WHICH       auto (default: the system libcuda.so.1 if it has a device, else the\n"
            "                       emulated GPU), emulated, or the path of a libcuda.so.1\n"
            "  --max-frame BYTES    largest frame accepted (default %llu, at most 2G; suffixes K, M, G)\n"
            "  --help               this text\n"
            "Environment: VGPU_LOG=error|warn|info|debug\n",
            (unsigned long long)VG_FRAME_DEFAULT_MAX);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_listen(const char *arg, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || (size_t)(colon - arg) >= host_size)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = 0;
    /* [::1]:port */
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (host[n - 1] != ']')
            return -1;
        memmove(host, host + 1, n - 2);
        host[n - 2] = 0;
    }
    *port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    vg_log_set_component("gpu-server");
    signal(SIGPIPE, SIG_IGN);
    char host[256] = "0.0.0.0";
    struct vg_net_config cfg = {.listen_host = host, .listen_port = 7300, .max_frame = VG_FRAME_DEFAULT_MAX};
    const char *driver = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int takes = !strcmp(a, "--listen") || !strcmp(a, "--port-file") || !strcmp(a, "--driver") ||
                    !strcmp(a, "--max-frame");
        if (!takes) {
            fprintf(stderr, "gpu-server: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "gpu-server: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--listen")) {
            if (parse_listen(val, host, sizeof host, &cfg.listen_port) < 0) {
                fprintf(stderr, "gpu-server: --listen '%s': expected HOST:PORT with PORT 0-65535\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--port-file")) {
            cfg.port_file = val;
        } else if (!strcmp(a, "--driver")) {
            driver = val;
        } else if (parse_size(val, &cfg.max_frame) < 0 || cfg.max_frame < VG_FRAME_MIN_MAX ||
                   cfg.max_frame > VG_FRAME_MAX_MAX) {
            fprintf(stderr, "gpu-server: --max-frame '%s': expected a size between 64K and 2G\n", val);
            return 2;
        }
    }

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "gpu-server: cannot find its own path: %s\n", strerror(errno));
        return 1;
    }
    exe[n] = 0;
    char *exe_dir = dirname(exe);

    struct vg_drv drv;
    if (vg_drv_open(&drv, driver, exe_dir) != 0) {
        vg_error("no usable CUDA driver (--driver %s)", driver);
        return 1;
    }
    vg_info("%d device(s)", drv.device_count);
    int status = vg_net_run(&cfg, &drv);
    /* The driver stays loaded: its atexit handlers and threads may still refer to it. */
    return status;
}
