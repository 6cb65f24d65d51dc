#include "main_children.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

int vg_children_spawn(struct vg_children *cs, struct vg_sess_start *st, const char *addr,
                      const char **why)
{
    if (cs->n == cs->cap) {
        unsigned cap = cs->cap ? cs->cap * 2 : 16;
        struct vg_child *n = realloc(cs->c, cap * sizeof *n);
        if (!n) {
            *why = "out of memory";
            return -1;
        }
        cs->c = n;
        cs->cap = cap;
    }
    int slot = vg_board_slot_claim(cs->board, st->session_id, st->tenant);
    if (slot < 0) {
        *why = "every session slot is taken";
        return -1;
    }
    st->slot = slot;
    /* Signals stay blocked across the fork: until the child has reset the handlers the main
     * process installed (libuv's write to the main loop's signal pipe), none may run there. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        vg_sess_proc_main(st);
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        vg_board_slot_release(cs->board, slot);
        *why = strerror(err);
        return -1;
    }
    vg_board_slot_own(cs->board, slot, pid);
    struct vg_child *c = &cs->c[cs->n++];
    memset(c, 0, sizeof *c);
    c->pid = pid;
    c->session_id = st->session_id;
    c->slot = slot;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    snprintf(c->peer, sizeof c->peer, "%s", st->peer);
    c->since = time(NULL);
    c->tenant = st->tenant;
    return 0;
}

struct vg_child *vg_children_last(struct vg_children *cs)
{
    return cs->n ? &cs->c[cs->n - 1] : NULL;
}

int vg_children_of_tenant(const struct vg_children *cs, uint32_t t)
{
    for (unsigned i = 0; i < cs->n; i++)
        if (cs->c[i].tenant == t)
            return 1;
    return 0;
}

/* Everything that follows a session's end, in one place. */
static void child_reaped(struct vg_children *cs, unsigned i, int status)
{
    struct vg_child *c = &cs->c[i];
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        int level = code == VG_SESS_EXIT_DISCONNECTED ? VG_LOG_INFO : VG_LOG_WARN;
        vg_log(level, "session %llu (%s) ended: %s", (unsigned long long)c->session_id, c->peer,
               vg_sess_exit_name(code));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        vg_log(sig == SIGTERM || sig == SIGKILL ? VG_LOG_INFO : VG_LOG_WARN,
               "session %llu (%s) ended by signal %d (%s)", (unsigned long long)c->session_id, c->peer,
               sig, strsignal(sig));
    }
    /* The counters outlive the session: they are the tenant's. */
    uint32_t t = c->tenant;
    const struct vg_board_slot *bs = &cs->board->slots[c->slot];
    if (t < VG_BOARD_TENANTS) {
        struct vg_tenant_totals *e = &cs->ended[t];
        e->calls += __atomic_load_n(&bs->calls, __ATOMIC_RELAXED);
        e->bytes_to_device += __atomic_load_n(&bs->bytes_to_device, __ATOMIC_RELAXED);
        e->bytes_from_device += __atomic_load_n(&bs->bytes_from_device, __ATOMIC_RELAXED);
        e->refused_allocs += __atomic_load_n(&bs->refused_allocs, __ATOMIC_RELAXED);
        for (int d = 0; d < VG_BOARD_DEVICES; d++)
            e->busy_ns[d] += __atomic_load_n(&bs->busy_ns[d], __ATOMIC_RELAXED);
        e->sessions_ended++;
    }
    vg_board_slot_release(cs->board, c->slot);
    cs->c[i] = cs->c[--cs->n];
    /* A removed tenant's record is freed with its last session. */
    if (t < VG_BOARD_TENANTS && cs->board->tenants[t].state == VG_TENANT_REMOVED && !vg_children_of_tenant(cs, t))
        vg_children_free_tenant(cs, t);
}

int vg_children_reap(struct vg_children *cs)
{
    int reaped = 0;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            break;
        for (unsigned i = 0; i < cs->n; i++) {
            if (cs->c[i].pid == pid) {
                child_reaped(cs, i, status);
                reaped++;
                break;
            }
        }
    }
    return reaped;
}

unsigned vg_children_from(const struct vg_children *cs, const char *addr)
{
    unsigned n = 0;
    for (unsigned i = 0; i < cs->n; i++)
        n += strcmp(cs->c[i].addr, addr) == 0;
    return n;
}

void vg_children_free_tenant(struct vg_children *cs, uint32_t t)
{
    memset(&cs->ended[t], 0, sizeof cs->ended[t]); /* the record's next tenant starts from 0 */
    __atomic_store_n(&cs->board->tenants[t].state, VG_TENANT_FREE, __ATOMIC_RELEASE);
}

void vg_children_totals(const struct vg_children *cs, uint32_t t, struct vg_tenant_totals *out)
{
    *out = cs->ended[t];
    for (unsigned i = 0; i < cs->n; i++) {
        if (cs->c[i].tenant != t)
            continue;
        const struct vg_board_slot *bs = &cs->board->slots[cs->c[i].slot];
        out->calls += __atomic_load_n(&bs->calls, __ATOMIC_RELAXED);
        out->bytes_to_device += __atomic_load_n(&bs->bytes_to_device, __ATOMIC_RELAXED);
        out->bytes_from_device += __atomic_load_n(&bs->bytes_from_device, __ATOMIC_RELAXED);
        out->refused_allocs += __atomic_load_n(&bs->refused_allocs, __ATOMIC_RELAXED);
        for (int d = 0; d < VG_BOARD_DEVICES; d++)
            out->busy_ns[d] += __atomic_load_n(&bs->busy_ns[d], __ATOMIC_RELAXED);
    }
}

void vg_children_signal(const struct vg_children *cs, int sig)
{
    for (unsigned i = 0; i < cs->n; i++)
        kill(cs->c[i].pid, sig);
}
