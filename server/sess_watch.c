#include "sess_watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

struct sess_watch {
    const uint64_t *busy_since;
    unsigned heartbeat_ms, kernel_timeout_ms;
    struct sess_watch_hooks hooks;
};

uint64_t vg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void sess_watch_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *watch_main(void *arg)
{
    struct sess_watch *w = arg;
    unsigned period_ms = 100;
    if (w->heartbeat_ms && w->heartbeat_ms / 2 < period_ms)
        period_ms = w->heartbeat_ms / 2 ? w->heartbeat_ms / 2 : 1;
    sigset_t stops;
    stop_signals(&stops);
    for (;;) {
        struct timespec ts = {.tv_sec = period_ms / 1000, .tv_nsec = (long)(period_ms % 1000) * 1000000};
        int sig = sigtimedwait(&stops, NULL, &ts);
        if (sig > 0)
            w->hooks.stop(w->hooks.arg, sig); /* does not return */
        uint64_t now = vg_now_ns();
        uint64_t busy = __atomic_load_n(w->busy_since, __ATOMIC_ACQUIRE);
        if (busy) {
            if (w->hooks.peer_gone(w->hooks.arg))
                return NULL; /* peer_gone ended the process */
            uint64_t last = w->hooks.last_write_ns(w->hooks.arg);
            uint64_t quiet_since = last > busy ? last : busy;
            if (w->heartbeat_ms && now - quiet_since >= (uint64_t)w->heartbeat_ms * 1000000u)
                w->hooks.heartbeat(w->hooks.arg);
        } else if (w->hooks.idle_check) {
            w->hooks.idle_check(w->hooks.arg);
        }
        if (w->kernel_timeout_ms) {
            uint64_t since = w->hooks.running_since(w->hooks.arg);
            if (since && now > since && now - since > (uint64_t)w->kernel_timeout_ms * 1000000u)
                w->hooks.kernel_timeout(w->hooks.arg); /* does not return */
        }
    }
    return NULL;
}

int sess_watch_start(const uint64_t *busy_since_ns, unsigned heartbeat_ms, unsigned kernel_timeout_ms,
                     const struct sess_watch_hooks *hooks)
{
    static struct sess_watch w; /* one per session process, for its whole life */
    w.busy_since = busy_since_ns;
    w.heartbeat_ms = heartbeat_ms;
    w.kernel_timeout_ms = kernel_timeout_ms;
    w.hooks = *hooks;
    pthread_t thread;
    if (pthread_create(&thread, NULL, watch_main, &w) != 0)
        return -1;
    pthread_detach(thread);
    return 0;
}
