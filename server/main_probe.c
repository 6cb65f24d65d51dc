#include "main_probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"
#include "log.h"

static void probe_child(int wfd, const char *which, const char *exe_dir)
{
    static struct vg_probe pr;
    struct vg_drv drv;
    /* The driver's own chatter at start-up would come ahead of the server's first line, which
     * says what was found; its warnings and errors still show. */
    const char *lv = getenv("VGPU_LOG");
    if (lv && (!strcmp(lv, "info") || !strcmp(lv, "debug")))
        setenv("VGPU_LOG", "warn", 1);
    if (vg_drv_open(&drv, which, exe_dir) != 0)
        _exit(1);
    snprintf(pr.path, sizeof pr.path, "%s", drv.path);
    snprintf(pr.kind, sizeof pr.kind, "%s", drv.kind);
    snprintf(pr.desc, sizeof pr.desc, "%s", drv.desc);
    pr.device_count = drv.device_count < VG_PROBE_MAX_DEVICES ? drv.device_count : VG_PROBE_MAX_DEVICES;
    for (int i = 0; i < pr.device_count; i++) {
        struct vg_device_facts *f = &pr.dev[i];
        CUdevice dev = i;
        if (drv.cuDeviceGet)
            drv.cuDeviceGet(&dev, i);
        if (drv.cuDeviceGetName)
            drv.cuDeviceGetName(f->name, sizeof f->name - 1, dev);
        /* Reports quote it (JSON, Prometheus labels): keep it printable and quote-free. */
        for (char *c = f->name; *c; c++)
            if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                *c = '_';
        size_t total = 0;
        if (drv.cuDeviceTotalMem && drv.cuDeviceTotalMem(&total, dev) == CUDA_SUCCESS)
            f->total_mem = total;
        CUuuid u;
        if (drv.cuDeviceGetUuid && drv.cuDeviceGetUuid(&u, dev) == CUDA_SUCCESS)
            memcpy(f->uuid, u.bytes, sizeof f->uuid);
    }
    const char *p = (const char *)&pr;
    size_t left = sizeof pr;
    while (left) {
        ssize_t n = write(wfd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1);
        p += n;
        left -= (size_t)n;
    }
    _exit(0);
}

int vg_probe_driver(const char *which, const char *exe_dir, struct vg_probe *out)
{
    int fds[2];
    if (pipe(fds) != 0) {
        vg_error("cannot probe the driver: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        vg_error("cannot probe the driver: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        probe_child(fds[1], which, exe_dir);
    }
    close(fds[1]);
    size_t got = 0;
    char *p = (char *)out;
    while (got < sizeof *out) {
        ssize_t n = read(fds[0], p + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof *out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    out->path[sizeof out->path - 1] = 0;
    out->kind[sizeof out->kind - 1] = 0;
    out->desc[sizeof out->desc - 1] = 0;
    for (int i = 0; i < VG_PROBE_MAX_DEVICES; i++)
        out->dev[i].name[sizeof out->dev[i].name - 1] = 0;
    return out->device_count > 0 ? 0 : -1;
}
