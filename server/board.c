#include "board.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct vg_board *vg_board_create(uint32_t nslots, uint64_t buffered_cap)
{
    if (nslots == 0 || nslots > (1u << 16)) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = sizeof(struct vg_board) + (size_t)nslots * sizeof(struct vg_board_slot);
    struct vg_board *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    memset(b, 0, size);
    b->magic = VG_BOARD_MAGIC;
    b->version = VG_BOARD_VERSION;
    b->nslots = nslots;
    b->size = size;
    b->buffered_cap = buffered_cap;
    return b;
}

int vg_board_slot_claim(struct vg_board *b, uint64_t session_id)
{
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct vg_board_slot *s = &b->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != 0)
            continue;
        memset((char *)s + sizeof s->pid, 0, sizeof *s - sizeof s->pid);
        s->session_id = session_id;
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
    /* Its writer is gone: what it held is no longer counted anywhere. */
    __atomic_store_n(&s->buffered, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
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
