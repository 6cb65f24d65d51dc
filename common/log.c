#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Written once by the first caller of level(); racing first callers compute the same value. */
static int log_level = -1;
static const char *log_component = "vgpu";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int level(void)
{
    int lv = __atomic_load_n(&log_level, __ATOMIC_RELAXED);
    if (lv >= 0)
        return lv;
    lv = VG_LOG_WARN;
    const char *env = getenv("VGPU_LOG");
    if (env) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(env, level_names[i]) == 0)
                lv = i;
    }
    __atomic_store_n(&log_level, lv, __ATOMIC_RELAXED);
    return lv;
}

void vg_log_set_component(const char *component)
{
    __atomic_store_n(&log_component, component, __ATOMIC_RELAXED);
}

int vg_log_enabled(int lv)
{
    return lv <= level();
}

static void vg_vlog(int lv, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "vgpu[%s %d] %s: ",
                     __atomic_load_n(&log_component, __ATOMIC_RELAXED), (int)getpid(),
                     level_names[lv < 0 ? 0 : lv > 3 ? 3 : lv]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void vg_log(int lv, const char *fmt, ...)
{
    if (lv > level())
        return;
    va_list ap;
    va_start(ap, fmt);
    vg_vlog(lv, fmt, ap);
    va_end(ap);
}

void vg_log_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_vlog(VG_LOG_INFO, fmt, ap);
    va_end(ap);
}

int vg_unsupported(const char *name, int *once)
{
    if (!__atomic_exchange_n(once, 1, __ATOMIC_RELAXED))
        vg_warn("%s is not supported; returning CUDA_ERROR_NOT_SUPPORTED", name);
    return 801; /* CUDA_ERROR_NOT_SUPPORTED */
}
