#include "board.h"

#include "sched.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct vg_board *vg_board_create(uint32_t nslots, uint64_t buffered_cap)
{
    if (nslots == 0 || nslots > (1u << 16)) {
        errno = EINVAL;
        return NULL;
    }
    uint32_t words = (nslots + 63) / 64;
    size_t waiters_off = sizeof(struct vg_board) + (size_t)nslots * sizeof(struct vg_board_slot);
    size_t size = waiters_off + (size_t)VG_BOARD_DEVICES * words * sizeof(uint64_t);
    struct vg_board *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    memset(b, 0, size);
    b->waiters_off = waiters_off;
    b->waiters_words = words;
    b->magic = VG_BOARD_MAGIC;
    b->version = VG_BOARD_VERSION;
    b->nslots = nslots;
    b->size = size;
    b->buffered_cap = buffered_cap;
    return b;
}

int vg_board_slot_claim(struct vg_board *b, uint64_t session_id, uint32_t tenant)
{
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct vg_board_slot *s = &b->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != 0)
            continue;
        memset((char *)s + sizeof s->pid, 0, sizeof *s - sizeof s->pid);
        s->session_id = session_id;
        s->tenant = tenant;
        /* -1 marks it taken until the fork tells the pid. */
        __atomic_store_n(&s->pid, -1, __ATOMIC_RELEASE);
        return (int)i;
    }
    return -1;
}

void vg_board_slot_own(struct vg_board *b, int slot, pid_t pid)
{
    __atomic_store_n(&b->slots[slot].pid, (int32_t)pid, __ATOMIC_RELEASE);
}

void vg_board_slot_release(struct vg_board *b, int slot)
{
    struct vg_board_slot *s = &b->slots[slot];
    /* Its writer is gone: what it held is no longer counted anywhere, exactly once (the slot is
     * reused only after this). */
    __atomic_store_n(&s->buffered, 0, __ATOMIC_SEQ_CST);
    vg_sched_forget_slot(b, slot);
    for (int d = 0; d < VG_BOARD_DEVICES; d++) {
        __atomic_store_n(&s->mem[d], 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->busy_ns[d], 0, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

uint64_t vg_board_tenant_mem(const struct vg_board *b, uint32_t tenant, int dev)
{
    uint64_t used = 0;
    if (dev < 0 || dev >= VG_BOARD_DEVICES)
        return 0;
    for (uint32_t i = 0; i < b->nslots; i++) {
        const struct vg_board_slot *s = &b->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != 0 && s->tenant == tenant)
            used += __atomic_load_n(&s->mem[dev], __ATOMIC_SEQ_CST);
    }
    return used;
}

int vg_board_mem_charge(struct vg_board *b, int slot, int dev, uint64_t bytes)
{
    if (dev < 0 || dev >= VG_BOARD_DEVICES)
        return 0;
    struct vg_board_slot *s = &b->slots[slot];
    const struct vg_board_tenant *t = &b->tenants[s->tenant % VG_BOARD_TENANTS];
    /* Add first, then read the sum (both sequentially consistent): of two sessions of a tenant
     * racing for the last bytes, at least one sees the other's charge. */
    __atomic_fetch_add(&s->mem[dev], bytes, __ATOMIC_SEQ_CST);
    uint64_t limit = __atomic_load_n(&t->mem_limit, __ATOMIC_ACQUIRE);
    if (!limit || vg_board_tenant_mem(b, s->tenant, dev) <= limit)
        return 1;
    __atomic_fetch_sub(&s->mem[dev], bytes, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&s->refused_allocs, 1, __ATOMIC_RELAXED);
    return 0;
}

void vg_board_mem_refund(struct vg_board *b, int slot, int dev, uint64_t bytes)
{
    if (dev < 0 || dev >= VG_BOARD_DEVICES)
        return;
    __atomic_fetch_sub(&b->slots[slot].mem[dev], bytes, __ATOMIC_SEQ_CST);
}

uint64_t vg_board_buffered_total(const struct vg_board *b)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < b->nslots; i++)
        total += __atomic_load_n(&b->slots[i].buffered, __ATOMIC_SEQ_CST);
    return total;
}

int vg_board_buffer_acquire(struct vg_board *b, int slot, uint64_t bytes)
{
    uint64_t *mine = &b->slots[slot].buffered;
    __atomic_fetch_add(mine, bytes, __ATOMIC_SEQ_CST);
    if (vg_board_buffered_total(b) <= b->buffered_cap)
        return 1;
    __atomic_fetch_sub(mine, bytes, __ATOMIC_SEQ_CST);
    return 0;
}

void vg_board_buffer_release(struct vg_board *b, int slot, uint64_t bytes)
{
    __atomic_fetch_sub(&b->slots[slot].buffered, bytes, __ATOMIC_SEQ_CST);
}
