#include "sched.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Tags are in weighted nanoseconds scaled by 2^10, so that a weight of up to 1000 still moves
 * a tag by at least one unit per microsecond of device time. */
#define TAG_SCALE 1024u
/* A waiter re-checks at least this often (a wake-up it missed costs at most this). */
#define WAIT_MS 5

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Shared (not process-private) futex: the board is mapped by several processes. */
static void futex_wait(uint32_t *addr, uint32_t seen, uint64_t timeout_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u), .tv_nsec = (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, addr, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wake_all(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void wake(struct vg_board_device *d)
{
    __atomic_fetch_add(&d->wake, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&d->wake);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Lifts *p to at least v. */
static void atomic_max(uint64_t *p, uint64_t v)
{
    uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
    }
}

/* Device time as tag units for tenant t: divided by its weight (read now: reloads apply). */
static uint64_t scaled(struct vg_board *b, uint32_t t, uint64_t ns)
{
    uint32_t weight = __atomic_load_n(&b->tenants[t].weight, __ATOMIC_ACQUIRE);
    return ns * TAG_SCALE / (weight ? weight : 1);
}

/* 1 when tenant t has work in flight on the device or a session waiting for it, or had within
 * VG_SCHED_IDLE_GRACE_NS: it is busy. */
static int tenant_active(struct vg_board *b, uint32_t t, int dev)
{
    return __atomic_load_n(&b->tenants[t].inflight[dev], __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&b->tenants[t].waiting[dev], __ATOMIC_ACQUIRE);
}

static int tenant_busy(struct vg_board *b, uint32_t t, int dev)
{
    if (tenant_active(b, t, dev))
        return 1;
    uint64_t since = __atomic_load_n(&b->tenants[t].idle_since[dev], __ATOMIC_ACQUIRE);
    return since && now_ns() - since < VG_SCHED_IDLE_GRACE_NS;
}

/* Notes that tenant t may just have become idle on the device. */
static void note_idle(struct vg_board *b, uint32_t t, int dev)
{
    if (!tenant_active(b, t, dev))
        __atomic_store_n(&b->tenants[t].idle_since[dev], now_ns(), __ATOMIC_RELEASE);
}

/* The virtual time an idle tenant t enters at. While another tenant is busy, or was within
 * VG_SCHED_PERIOD_END_NS, it is the device's virtual time (the largest start tag so far). Once
 * no other tenant has been busy for that long, a busy period has ended, and SFQ moves the
 * virtual time on to the largest finish tag: otherwise a tenant that ran alone (its finish tag
 * ahead of its last start) would come back owing the time it used while nobody else wanted the
 * device, and the next tenant to arrive would run alone until that debt was paid. The wait is
 * what keeps a busy period from "ending" whenever every client is briefly off the CPU: each end
 * forgives the tenants ahead, which pulls weighted shares toward equal ones. Called only on an
 * idle tenant's entry, so the walk over the tenants is rare. */
static uint64_t entry_vtime(struct vg_board *b, uint32_t t, int dev)
{
    struct vg_board_device *d = &b->devices[dev];
    uint64_t now = now_ns();
    for (uint32_t k = 0; k < VG_BOARD_TENANTS; k++) {
        if (k == t)
            continue;
        /* Busy within the period implies busy within the shorter grace: one clock read serves. */
        uint64_t since = __atomic_load_n(&b->tenants[k].idle_since[dev], __ATOMIC_ACQUIRE);
        if (tenant_active(b, k, dev) || (since && now - since < VG_SCHED_PERIOD_END_NS))
            return __atomic_load_n(&d->vtime, __ATOMIC_ACQUIRE);
    }
    uint64_t end = 0;
    for (uint32_t k = 0; k < VG_BOARD_TENANTS; k++)
        end = max_u64(end, __atomic_load_n(&b->tenants[k].vft[dev], __ATOMIC_ACQUIRE));
    atomic_max(&d->vtime, end);
    return __atomic_load_n(&d->vtime, __ATOMIC_ACQUIRE);
}

/* Tenant t's start tag now: its finish tag; if it is idle, no earlier than the virtual time it
 * enters at, so that it banks no credit. A busy tenant keeps its own tag: lifting it to the
 * virtual time whenever its next burst arrives while another tenant's runs would give every
 * busy tenant the same share. */
static uint64_t start_tag(struct vg_board *b, uint32_t t, int dev)
{
    uint64_t vft = __atomic_load_n(&b->tenants[t].vft[dev], __ATOMIC_ACQUIRE);
    if (tenant_busy(b, t, dev))
        return vft;
    return max_u64(vft, entry_vtime(b, t, dev));
}

/* Session `slot` of tenant t starts or stops waiting for the device (its waiter bit and its
 * tenant's count). A tenant that becomes busy by waiting enters at the present: its tag is
 * lifted to the virtual time it enters at, as start_tag would have. */
static void set_waiting(struct vg_board *b, int slot, uint32_t t, int dev, int on)
{
    uint64_t *w = vg_board_waiters(b, dev), bit = 1ull << (slot % 64);
    if (on) {
        if (!tenant_busy(b, t, dev))
            atomic_max(&b->tenants[t].vft[dev], entry_vtime(b, t, dev));
        __atomic_fetch_add(&b->tenants[t].waiting[dev], 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_or(&w[slot / 64], bit, __ATOMIC_SEQ_CST);
    } else {
        __atomic_fetch_and(&w[slot / 64], ~bit, __ATOMIC_SEQ_CST);
        __atomic_fetch_sub(&b->tenants[t].waiting[dev], 1, __ATOMIC_SEQ_CST);
        note_idle(b, t, dev);
    }
}

/* 1 when another session waits for the device ahead of `slot`: one of another tenant with a
 * smaller start tag than tag (or an equal one and a lower slot, so that ties have one winner),
 * or one of the same tenant while slot is not waiting yet (an owner going on yields to its
 * tenant's waiting sessions; among those, the lower slot goes first). */
static int someone_before(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t tag, int waiting)
{
    uint64_t *w = vg_board_waiters(b, dev);
    for (uint32_t k = 0; k < b->waiters_words; k++) {
        uint64_t bits = __atomic_load_n(&w[k], __ATOMIC_SEQ_CST);
        while (bits) {
            int i = (int)(k * 64 + (uint32_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (i == slot || (uint32_t)i >= b->nslots)
                continue;
            uint32_t ot = b->slots[i].tenant % VG_BOARD_TENANTS;
            if (ot == t) {
                if (!waiting || i < slot)
                    return 1;
                continue;
            }
            uint64_t otag = start_tag(b, ot, dev);
            if (otag < tag || (otag == tag && i < slot))
                return 1;
        }
    }
    return 0;
}

/* The cap lets tenant t start now (or says until when it does not); *capped: it has one. */
static int cap_allows(struct vg_board *b, uint32_t t, int dev, uint64_t now, uint64_t *until, int *capped)
{
    *capped = __atomic_load_n(&b->tenants[t].cap_percent, __ATOMIC_ACQUIRE) != 0;
    if (!*capped)
        return 1;
    uint64_t ready = __atomic_load_n(&b->tenants[t].ready_at[dev], __ATOMIC_ACQUIRE);
    *until = ready;
    return now >= ready;
}

/* Takes the device for slot if it may: it owns it with room for one more burst (one only for a
 * capped tenant, whose budget is charged when a burst completes), or it is free. */
static int try_take(struct vg_board *b, int slot, int dev, int capped)
{
    uint32_t me = (uint32_t)slot + 1;
    uint32_t *owner = &b->devices[dev].owner;
    uint32_t *mine = &b->slots[slot].inflight[dev];
    uint32_t cur = __atomic_load_n(owner, __ATOMIC_ACQUIRE);
    if (cur == me) {
        if (__atomic_load_n(mine, __ATOMIC_ACQUIRE) >= (capped ? 1u : VG_SCHED_INFLIGHT))
            return 0;
        __atomic_fetch_add(mine, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    uint32_t free_dev = 0;
    if (cur != 0 || !__atomic_compare_exchange_n(owner, &free_dev, me, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        return 0;
    __atomic_fetch_add(mine, 1, __ATOMIC_SEQ_CST);
    return 1;
}

uint64_t vg_sched_acquire(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t estimate_ns)
{
    t %= VG_BOARD_TENANTS;
    struct vg_board_device *d = &b->devices[dev];
    int waiting = 0;
    uint64_t tag;
    for (;;) {
        uint32_t seen = __atomic_load_n(&d->wake, __ATOMIC_SEQ_CST);
        uint64_t now = now_ns(), until = 0;
        int capped = 0;
        tag = start_tag(b, t, dev);
        if (!cap_allows(b, t, dev, now, &until, &capped)) {
            /* Held back by its cap: not a waiter others must let go first. */
            if (waiting) {
                set_waiting(b, slot, t, dev, 0);
                waiting = 0;
                wake(d);
            }
            futex_wait(&d->wake, seen, until - now < (uint64_t)WAIT_MS * 1000000u ? until - now
                                                                                   : (uint64_t)WAIT_MS * 1000000u);
            continue;
        }
        if (!someone_before(b, slot, t, dev, tag, waiting) && try_take(b, slot, dev, capped))
            break;
        if (!waiting) {
            /* Seen by the others' someone_before from now on. */
            set_waiting(b, slot, t, dev, 1);
            waiting = 1;
            continue; /* look again before sleeping: the device may have come free meanwhile */
        }
        futex_wait(&d->wake, seen, (uint64_t)WAIT_MS * 1000000u);
    }
    /* In flight before it stops waiting: the tenant stays busy throughout. */
    __atomic_fetch_add(&b->tenants[t].inflight[dev], 1, __ATOMIC_SEQ_CST);
    if (waiting) {
        set_waiting(b, slot, t, dev, 0);
        wake(d); /* others re-check: the order among them may have changed */
    }
    /* This tenant's start: it may not fall behind the present (no banked credit), and its tag
     * moves on by what the burst is expected to cost now, so that a second burst it starts
     * before the first completes is ordered after it (vg_sched_charge corrects the guess). */
    atomic_max(&b->tenants[t].vft[dev], tag);
    atomic_max(&d->vtime, tag);
    __atomic_fetch_add(&b->tenants[t].vft[dev], scaled(b, t, estimate_ns), __ATOMIC_SEQ_CST);
    return tag;
}

void vg_sched_charge(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t cost_ns, uint64_t estimate_ns)
{
    t %= VG_BOARD_TENANTS;
    struct vg_board_tenant *bt = &b->tenants[t];
    /* The tag moves by the cost, less what the start already moved it by. */
    uint64_t cost = scaled(b, t, cost_ns), est = scaled(b, t, estimate_ns);
    if (cost >= est)
        __atomic_fetch_add(&bt->vft[dev], cost - est, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_sub(&bt->vft[dev], est - cost, __ATOMIC_SEQ_CST);
    uint32_t cap = __atomic_load_n(&bt->cap_percent, __ATOMIC_ACQUIRE);
    if (cap) {
        /* GCRA: the budget refills at cap% of real time; an idle tenant starts with a little. */
        uint64_t now = now_ns(), cur = __atomic_load_n(&bt->ready_at[dev], __ATOMIC_RELAXED), next;
        do {
            uint64_t base = max_u64(cur, now > VG_SCHED_CAP_BURST_NS ? now - VG_SCHED_CAP_BURST_NS : 0);
            next = base + cost_ns * 100u / cap;
        } while (!__atomic_compare_exchange_n(&bt->ready_at[dev], &cur, next, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    }
    __atomic_fetch_add(&b->slots[slot].busy_ns[dev], cost_ns, __ATOMIC_RELAXED);
}

void vg_sched_release(struct vg_board *b, int slot, uint32_t t, int dev, uint64_t cost_ns, uint64_t estimate_ns)
{
    struct vg_board_device *d = &b->devices[dev];
    vg_sched_charge(b, slot, t, dev, cost_ns, estimate_ns);
    __atomic_fetch_sub(&b->tenants[t % VG_BOARD_TENANTS].inflight[dev], 1, __ATOMIC_SEQ_CST);
    note_idle(b, t % VG_BOARD_TENANTS, dev);
    if (__atomic_sub_fetch(&b->slots[slot].inflight[dev], 1, __ATOMIC_SEQ_CST) == 0) {
        uint32_t me = (uint32_t)slot + 1;
        __atomic_compare_exchange_n(&d->owner, &me, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }
    wake(d);
}

void vg_sched_forget_slot(struct vg_board *b, int slot)
{
    uint32_t me = (uint32_t)slot + 1;
    for (int dev = 0; dev < VG_BOARD_DEVICES; dev++) {
        struct vg_board_device *d = &b->devices[dev];
        uint64_t *w = vg_board_waiters(b, dev), bit = 1ull << (slot % 64);
        int was_waiting = (__atomic_fetch_and(&w[slot / 64], ~bit, __ATOMIC_SEQ_CST) & bit) != 0;
        if (was_waiting) {
            uint32_t *tw = &b->tenants[b->slots[slot].tenant % VG_BOARD_TENANTS].waiting[dev];
            uint32_t cw = __atomic_load_n(tw, __ATOMIC_RELAXED);
            while (cw && !__atomic_compare_exchange_n(tw, &cw, cw - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
            }
        }
        /* Its bursts in flight are its tenant's no more. */
        uint32_t had = __atomic_exchange_n(&b->slots[slot].inflight[dev], 0, __ATOMIC_SEQ_CST);
        uint32_t *tin = &b->tenants[b->slots[slot].tenant % VG_BOARD_TENANTS].inflight[dev];
        uint32_t cur_in = __atomic_load_n(tin, __ATOMIC_RELAXED);
        while (had && !__atomic_compare_exchange_n(tin, &cur_in, cur_in > had ? cur_in - had : 0, 0, __ATOMIC_SEQ_CST,
                                                   __ATOMIC_RELAXED)) {
        }
        uint32_t cur = me;
        if (__atomic_compare_exchange_n(&d->owner, &cur, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED) || was_waiting)
            wake(d);
    }
}
