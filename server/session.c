/* vg_sess: the handle table, the device memory a session may touch, its memory accounting and
 * its lifetime. What each call does is in the generated handlers (cuapi_server.c) and in
 * dispatch.c for the calls written by hand. */
#include "session_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "log.h"

/* Every call starts from here, so only what a reader may look at is reset (the string is
 * empty; outs_inline is read only below n_outs). */
void vg_result_init(struct vg_result *r)
{
    r->result = 0;
    r->outs = r->outs_inline;
    r->n_outs = 0;
    r->str[0] = 0;
    r->bulk = NULL;
    r->bulk_len = r->bulk_cap = 0;
    memset(&r->copy, 0, sizeof r->copy);
}

void vg_result_clear(struct vg_result *r)
{
    if (r->outs != r->outs_inline)
        free(r->outs);
    free(r->bulk);
    vg_result_init(r);
}

void sess_out(struct vg_result *r, uint64_t v)
{
    if (r->outs == r->outs_inline && r->n_outs < sizeof r->outs_inline / sizeof r->outs_inline[0])
        r->outs[r->n_outs++] = v;
}

uint8_t *vg_reply_bulk(struct vg_result *r, uint64_t bytes)
{
    if (bytes == 0)
        return r->bulk ? r->bulk : (uint8_t *)r->outs_inline; /* nothing will be written */
    uint8_t *buf = malloc((size_t)bytes);
    if (!buf)
        return NULL;
    free(r->bulk);
    r->bulk = buf;
    r->bulk_cap = bytes;
    r->bulk_len = bytes;
    return buf;
}

int vg_out_room(const struct vg_result *r, const struct vg_sess *s, uint64_t bytes)
{
    (void)r;
    return bytes <= s->max_bulk ? 0 : -1;
}

/* ---- scratch memory ------------------------------------------------------------------------ */

void vg_tmp_init(struct vg_tmp *t)
{
    t->n = 0;
    t->more = NULL;
    t->nmore = t->capmore = 0;
}

void *vg_tmp_zalloc(struct vg_tmp *t, size_t bytes)
{
    if (bytes == 0)
        return NULL;
    void *p = calloc(1, bytes);
    if (!p)
        return NULL;
    if (t->n < sizeof t->blocks / sizeof t->blocks[0]) {
        t->blocks[t->n++] = p;
        return p;
    }
    if (t->nmore == t->capmore) {
        unsigned cap = t->capmore ? t->capmore * 2 : 16;
        void **m = realloc(t->more, cap * sizeof *m);
        if (!m) {
            free(p);
            return NULL;
        }
        t->more = m;
        t->capmore = cap;
    }
    t->more[t->nmore++] = p;
    return p;
}

void vg_tmp_free(struct vg_tmp *t)
{
    for (unsigned i = 0; i < t->n; i++)
        free(t->blocks[i]);
    for (unsigned i = 0; i < t->nmore; i++)
        free(t->more[i]);
    free(t->more);
    vg_tmp_init(t);
}

/* ---- bulk reader ----------------------------------------------------------------------------- */

void *vg_rd_dup(struct vg_rd *rd, struct vg_tmp *t, uint64_t n)
{
    if (n == 0)
        return NULL;
    const uint8_t *p = vg_rd_take(rd, n);
    if (!p)
        return NULL;
    void *d = vg_tmp_zalloc(t, (size_t)n);
    if (d)
        memcpy(d, p, (size_t)n);
    return d;
}

CUresult vg_stream_bulk_array(struct vg_sess *s, const struct vg_in *in, unsigned stream_arg, CUstream *st,
                              uint64_t n, uint64_t max, size_t esize, struct vg_tmp *t, void **out)
{
    *out = NULL;
    int slot;
    if (stream_arg >= in->nargs || sess_harg(s, in->args[stream_arg], H_STREAM, 0, (void **)st, &slot) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_HANDLE;
    if (n == 0 || n > max || in->bulk_len != n * esize)
        return CUDA_ERROR_INVALID_VALUE;
    *out = vg_tmp_zalloc(t, (size_t)n * esize);
    if (!*out)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(*out, in->bulk, (size_t)n * esize);
    return CUDA_SUCCESS;
}

CUresult vg_rd_failed(const struct vg_rd *rd)
{
    return rd->short_read ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_OUT_OF_MEMORY;
}

/* ---- sessions ---------------------------------------------------------------------------------- */

struct vg_sess *vg_sess_new(const struct vg_drv *drv, uint64_t id, const char *peer, uint64_t max_bulk)
{
    struct vg_sess *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->drv = drv;
    s->max_bulk = max_bulk;
    s->id = id;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    return s;
}

int vg_sess_device(const struct vg_sess *s)
{
    return s->device;
}

/* ---- handle table ---------------------------------------------------------------------- */

uint64_t sess_hid(const struct vg_sess *s, uint32_t slot)
{
    const struct handle *e = &s->h[slot];
    if (vg_handle_kinds[e->type].identity)
        return (uint64_t)(uintptr_t)e->real;
    return ((uint64_t)e->type << 56) | ((uint64_t)(e->gen & 0xffffff) << 32) | (uint64_t)(slot + 1);
}

#define HIDX_DELETED 0xffffffffu

static uint32_t hidx_hash(int type, const void *real)
{
    uint64_t k = (uint64_t)(uintptr_t)real ^ ((uint64_t)type << 58);
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

/* Looks up (type, real): the slot, else -1; *free_pos gets where it would go. */
static int hidx_find(const struct vg_sess *s, int type, const void *real, uint32_t *free_pos)
{
    if (!s->hidx_cap)
        return -1;
    uint32_t mask = s->hidx_cap - 1, i = hidx_hash(type, real) & mask, tomb = UINT32_MAX;
    for (uint32_t n = 0; n < s->hidx_cap; n++, i = (i + 1) & mask) {
        uint32_t v = s->hidx[i];
        if (v == 0) {
            if (free_pos)
                *free_pos = tomb != UINT32_MAX ? tomb : i;
            return -1;
        }
        if (v == HIDX_DELETED) {
            if (tomb == UINT32_MAX)
                tomb = i;
            continue;
        }
        const struct handle *e = &s->h[v - 1];
        if (e->real == real && e->type == type)
            return (int)(v - 1);
    }
    if (free_pos)
        *free_pos = tomb;
    return -1;
}

static int hidx_grow(struct vg_sess *s)
{
    uint32_t cap = s->hidx_cap ? s->hidx_cap * 2 : 256;
    uint32_t *n = calloc(cap, sizeof *n);
    if (!n)
        return -1;
    uint32_t *old = s->hidx, oldcap = s->hidx_cap;
    s->hidx = n;
    s->hidx_cap = cap;
    s->hidx_used = 0;
    for (uint32_t i = 0; i < oldcap; i++) {
        uint32_t v = old[i];
        if (v && v != HIDX_DELETED) {
            uint32_t pos = 0;
            hidx_find(s, s->h[v - 1].type, s->h[v - 1].real, &pos);
            s->hidx[pos] = v;
            s->hidx_used++;
        }
    }
    free(old);
    return 0;
}

/* Indexes slot; -1 on ENOMEM. A second object with the same (type, real) is not indexed (the
 * driver reused an address while the session still held the first: the older one wins until
 * it goes). */
static int hidx_add(struct vg_sess *s, uint32_t slot)
{
    if ((s->hidx_used + 1) * 4 >= s->hidx_cap * 3 && hidx_grow(s) < 0)
        return -1;
    uint32_t pos = 0;
    if (hidx_find(s, s->h[slot].type, s->h[slot].real, &pos) >= 0)
        return 0;
    if (s->hidx[pos] == 0)
        s->hidx_used++;
    s->hidx[pos] = slot + 1;
    return 0;
}

static void hidx_del(struct vg_sess *s, uint32_t slot)
{
    if (!s->hidx_cap)
        return;
    uint32_t mask = s->hidx_cap - 1, i = hidx_hash(s->h[slot].type, s->h[slot].real) & mask;
    for (uint32_t n = 0; n < s->hidx_cap; n++, i = (i + 1) & mask) {
        if (s->hidx[i] == 0)
            return;
        if (s->hidx[i] == slot + 1) {
            s->hidx[i] = HIDX_DELETED;
            return;
        }
    }
}

int sess_hnew(struct vg_sess *s, int type, void *real, uint32_t ctx)
{
    uint32_t slot;
    if (s->free_head) {
        slot = s->free_head - 1;
        s->free_head = s->h[slot].ctx;
    } else {
        if (s->nh >= SESS_MAX_HANDLES)
            return -1;
        if (s->nh == s->caph) {
            uint32_t cap = s->caph ? s->caph * 2 : 64;
            struct handle *n = realloc(s->h, cap * sizeof *n);
            if (!n)
                return -1;
            s->h = n;
            s->caph = cap;
        }
        slot = s->nh++;
        s->h[slot].gen = 0;
    }
    struct handle *e = &s->h[slot];
    uint32_t gen = e->gen + 1;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->type = (uint8_t)type;
    e->live = 1;
    e->real = real;
    e->ctx = ctx;
    e->refs = 1;
    e->nparams = -1;
    if (hidx_add(s, slot) < 0) {
        e->live = 0;
        e->ctx = s->free_head;
        s->free_head = slot + 1;
        return -1;
    }
    return (int)slot;
}

void sess_hfree(struct vg_sess *s, uint32_t slot)
{
    struct handle *e = &s->h[slot];
    if (!e->live)
        return;
    hidx_del(s, slot);
    if (e->charged)
        sess_mem_refund(s, e->charge_dev, e->charged);
    free(e->param_off);
    free(e->param_size);
    free(e->extra);
    uint32_t gen = e->gen;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->ctx = s->free_head;
    s->free_head = slot + 1;
}

int sess_hget(const struct vg_sess *s, uint64_t id, int type)
{
    if (type <= H_NONE || type >= H_TYPES)
        return -1;
    if (vg_handle_kinds[type].identity)
        return id ? hidx_find(s, type, (void *)(uintptr_t)id, NULL) : -1;
    uint32_t slot1 = (uint32_t)id;
    if ((int)(id >> 56) != type || slot1 == 0 || slot1 > s->nh)
        return -1;
    const struct handle *e = &s->h[slot1 - 1];
    if (!e->live || e->type != type || (e->gen & 0xffffff) != ((id >> 32) & 0xffffff))
        return -1;
    return (int)(slot1 - 1);
}

int sess_hfind_real(const struct vg_sess *s, int type, const void *real)
{
    return hidx_find(s, type, real, NULL);
}

void sess_set_parent(struct vg_sess *s, uint32_t child, int parent)
{
    s->h[child].parent = parent >= 0 ? (uint32_t)parent + 1 : 0;
    s->h[child].parent_gen = parent >= 0 ? s->h[parent].gen : 0;
}

CUresult sess_harg(struct vg_sess *s, uint64_t v, int type, int nullable, void **real, int *slot)
{
    *slot = -1;
    *real = NULL;
    CUresult bad = type == H_CTX ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE;
    if (type == H_STREAM && v <= 2) {
        *real = (void *)(uintptr_t)v; /* 0, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD */
        return CUDA_SUCCESS;
    }
    if (v == 0)
        return nullable ? CUDA_SUCCESS : bad;
    int i = sess_hget(s, v, type);
    if (i < 0 && type == H_FUNC)
        i = sess_hget(s, v, H_KERN); /* a CUkernel goes where a CUfunction does */
    if (i < 0)
        return bad;
    *slot = i;
    *real = s->h[i].real;
    return CUDA_SUCCESS;
}

CUresult sess_harg_array(struct vg_sess *s, struct vg_rd *rd, int type, size_t n, struct vg_tmp *t, void **out)
{
    *out = NULL;
    if (n == 0)
        return CUDA_SUCCESS;
    const uint8_t *ids = vg_rd_take(rd, (uint64_t)n * 8);
    if (!ids)
        return CUDA_ERROR_INVALID_VALUE;
    void **reals = vg_tmp_zalloc(t, n * sizeof *reals);
    if (!reals)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t k = 0; k < n; k++) {
        uint64_t v;
        int slot;
        memcpy(&v, ids + 8 * k, 8);
        CUresult rc = sess_harg(s, v, type, 0, &reals[k], &slot);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    *out = reals;
    return CUDA_SUCCESS;
}

uint64_t sess_hout_new(struct vg_sess *s, int type, void *real, uint64_t charged, int charge_dev)
{
    int i = sess_hnew(s, type, real, s->cur_ctx);
    if (i < 0)
        return 0;
    s->h[i].owned = 1;
    s->h[i].charged = charged;
    s->h[i].charge_dev = charge_dev;
    return sess_hid(s, (uint32_t)i);
}

/* The slot among in_slots (or their ancestors) whose kind may be a parent of `type`, else -1. */
static int find_parent(const struct vg_sess *s, int type, const int *in_slots, int n_in)
{
    uint32_t mask = vg_handle_kinds[type].parents;
    if (!mask)
        return -1;
    for (int k = 0; k < n_in; k++)
        if (in_slots[k] >= 0 && (mask & (1u << s->h[in_slots[k]].type)))
            return in_slots[k];
    for (int k = 0; k < n_in; k++) {
        int p = in_slots[k];
        for (int depth = 0; p >= 0 && depth < 16; depth++) {
            const struct handle *e = &s->h[p];
            if (!e->parent)
                break;
            p = (int)e->parent - 1;
            if (!s->h[p].live || s->h[p].gen != e->parent_gen)
                break;
            if (mask & (1u << s->h[p].type))
                return p;
        }
    }
    return -1;
}

uint64_t sess_hout_get(struct vg_sess *s, int type, void *real, const int *in_slots, int n_in)
{
    if (!real)
        return 0;
    int i = sess_hfind_real(s, type, real);
    if (i >= 0)
        return sess_hid(s, (uint32_t)i);
    if (type == H_CTX)
        return 0; /* contexts come from the session's own calls only */
    i = sess_hnew(s, type, real, s->cur_ctx);
    if (i < 0)
        return 0;
    sess_set_parent(s, (uint32_t)i, find_parent(s, type, in_slots, n_in));
    return sess_hid(s, (uint32_t)i);
}

uint64_t sess_hout_retain(struct vg_sess *s, int type, void *real, const int *in_slots, int n_in)
{
    int i = sess_hfind_real(s, type, real);
    if (i >= 0) {
        s->h[i].refs++;
        return sess_hid(s, (uint32_t)i);
    }
    uint64_t id = sess_hout_get(s, type, real, in_slots, n_in);
    if (id) {
        i = sess_hfind_real(s, type, real);
        s->h[i].owned = 1; /* the reference is the session's to release */
    }
    return id;
}

void sess_free_with_descendants(struct vg_sess *s, uint32_t slot)
{
    int was_ctx = s->h[slot].type == H_CTX;
    if (was_ctx)
        sess_drop_ctx_children(s, slot + 1);
    sess_hfree(s, slot);
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t k = 0; k < s->nh; k++) {
            uint32_t p = s->h[k].parent;
            if (s->h[k].live && p && (!s->h[p - 1].live || s->h[p - 1].gen != s->h[k].parent_gen)) {
                if (s->h[k].type == H_CTX)
                    sess_drop_ctx_children(s, k + 1);
                sess_hfree(s, k);
                changed = 1;
            }
        }
    }
}

void sess_hdestroyed(struct vg_sess *s, int slot)
{
    if (slot < 0)
        return;
    if (s->h[slot].refs > 1) {
        s->h[slot].refs--;
        return;
    }
    sess_free_with_descendants(s, (uint32_t)slot);
}

void sess_hdrop_real(struct vg_sess *s, int type, void *real)
{
    vg_handle_destroy_real(s->drv, type, real);
}

CUresult sess_new_handle_out(struct vg_sess *s, struct vg_result *res, int type, void *real, uint32_t ctx1)
{
    int i = sess_hnew(s, type, real, ctx1);
    if (i < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    sess_out(res, sess_hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

/* ---- device memory ranges ------------------------------------------------------------ */

/* The index of the last range whose base is <= p, else -1. */
static int range_floor(const struct vg_sess *s, uint64_t p)
{
    uint32_t lo = 0, hi = s->nr;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)lo - 1;
}

int sess_range_at(const struct vg_sess *s, uint64_t p)
{
    int i = range_floor(s, p);
    if (i >= 0 && p - s->r[i].base < s->r[i].size)
        return i;
    return -1;
}

int sess_dev_ok(const struct vg_sess *s, uint64_t p, vg_u128 len)
{
    int i = range_floor(s, p);
    if (i < 0)
        return 0;
    const struct range *r = &s->r[i];
    uint64_t off = p - r->base;
    return off <= r->size && len <= (vg_u128)(r->size - off);
}

int sess_range_add(struct vg_sess *s, const struct range *r)
{
    if (s->nr >= SESS_MAX_RANGES || r->size == 0 || r->base + r->size < r->base)
        return -1;
    int i = range_floor(s, r->base);
    if (i >= 0 && r->base - s->r[i].base < s->r[i].size)
        return -1;
    if ((uint32_t)(i + 1) < s->nr && s->r[i + 1].base < r->base + r->size)
        return -1;
    if (s->nr == s->capr) {
        uint32_t cap = s->capr ? s->capr * 2 : 64;
        struct range *n = realloc(s->r, cap * sizeof *n);
        if (!n)
            return -1;
        s->r = n;
        s->capr = cap;
    }
    memmove(&s->r[i + 2], &s->r[i + 1], (s->nr - (uint32_t)(i + 1)) * sizeof *s->r);
    s->r[i + 1] = *r;
    s->nr++;
    if (r->kind == R_ALLOC)
        __atomic_fetch_add(&s->owned_allocs, 1, __ATOMIC_RELAXED);
    return 0;
}

unsigned vg_sess_owned_allocations(const struct vg_sess *s)
{
    return __atomic_load_n(&s->owned_allocs, __ATOMIC_RELAXED);
}

void sess_range_del(struct vg_sess *s, uint32_t i)
{
    if (s->r[i].kind == R_ALLOC)
        __atomic_fetch_sub(&s->owned_allocs, 1, __ATOMIC_RELAXED);
    if (s->r[i].charged)
        sess_mem_refund(s, s->r[i].charge_dev, s->r[i].charged);
    memmove(&s->r[i], &s->r[i + 1], (s->nr - i - 1) * sizeof *s->r);
    s->nr--;
}

int sess_alloc_find(const struct vg_sess *s, uint64_t p)
{
    int i = range_floor(s, p);
    if (i >= 0 && s->r[i].base == p && s->r[i].kind == R_ALLOC)
        return i;
    return -1;
}

CUresult sess_alloc_add(struct vg_sess *s, CUdeviceptr p, uint64_t bytes, int charge_dev)
{
    /* A zero-byte allocation still has an address the client may free. */
    struct range r = {.base = p, .size = bytes ? bytes : 1, .ctx = s->cur_ctx, .kind = R_ALLOC,
                      .charge_dev = charge_dev, .charged = bytes};
    return sess_range_add(s, &r) < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

void sess_alloc_freed(struct vg_sess *s, int i)
{
    sess_range_del(s, (uint32_t)i);
}

CUresult sess_global_add(struct vg_sess *s, CUdeviceptr p, vg_u128 size)
{
    if (size == 0 || sess_dev_ok(s, p, size))
        return CUDA_SUCCESS;
    if (size > UINT64_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    struct range r = {.base = p, .size = (uint64_t)size, .ctx = s->cur_ctx, .kind = R_GLOBAL};
    return sess_range_add(s, &r) < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

int sess_hint_only(const struct vg_sess *s, uint64_t p, vg_u128 len)
{
    int i = sess_range_at(s, p);
    return i >= 0 && s->r[i].hint_only && (vg_u128)p + len <= (vg_u128)s->r[i].base + s->r[i].size;
}

void vg_driver_free(struct vg_sess *s, CUdeviceptr p)
{
    if (s->drv->cuMemFree)
        s->drv->cuMemFree(p);
}

/* ---- accounting --------------------------------------------------------------------------- */

void vg_sess_set_acct(struct vg_sess *s, const struct vg_sess_acct *acct)
{
    s->acct = *acct;
}

CUresult sess_mem_charge(struct vg_sess *s, int device, uint64_t bytes)
{
    if (device < 0 || device >= SESS_MAX_DEVICES)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes)
        return CUDA_SUCCESS;
    uint64_t used = s->mem_used[device];
    if (bytes > UINT64_MAX - used)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (s->acct.charge && !s->acct.charge(s->acct.arg, device, bytes))
        return CUDA_ERROR_OUT_OF_MEMORY;
    s->mem_used[device] = used + bytes;
    return CUDA_SUCCESS;
}

void sess_mem_refund(struct vg_sess *s, int device, uint64_t bytes)
{
    if (device < 0 || device >= SESS_MAX_DEVICES || !bytes)
        return;
    if (bytes > s->mem_used[device]) {
        vg_error("session %llu: refund of %llu bytes on device %d exceeds its charge of %llu",
                 (unsigned long long)s->id, (unsigned long long)bytes, device,
                 (unsigned long long)s->mem_used[device]);
        bytes = s->mem_used[device];
    }
    s->mem_used[device] -= bytes;
    if (s->acct.refund && bytes)
        s->acct.refund(s->acct.arg, device, bytes);
}

void sess_mem_view(struct vg_sess *s, int device, size_t *free_bytes, size_t *total_bytes)
{
    if (s->acct.view)
        s->acct.view(s->acct.arg, device, free_bytes, total_bytes);
}

uint64_t vg_sess_mem_charged(const struct vg_sess *s, int device)
{
    return device >= 0 && device < SESS_MAX_DEVICES ? s->mem_used[device] : 0;
}

int sess_cur_device(const struct vg_sess *s)
{
    return s->cur_ctx ? s->h[s->cur_ctx - 1].device : 0;
}

/* ---- contexts ------------------------------------------------------------------------------ */

void sess_drop_ctx_children(struct vg_sess *s, uint32_t ctx1)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].ctx == ctx1 && i + 1 != ctx1)
            sess_hfree(s, i);
    for (uint32_t i = 0; i < s->nr;)
        if (s->r[i].ctx == ctx1)
            sess_range_del(s, i);
        else
            i++;
    for (uint32_t i = 0; i < s->nva;)
        if (s->va[i].ctx == ctx1)
            s->va[i] = s->va[--s->nva];
        else
            i++;
}

/* Destroys, with driver calls, the objects of context slot ctx1 (or of every context when ctx1
 * is 0), leaving the contexts themselves. The context must be current. Kinds go in the list's
 * order (graph executables before graphs, streams before modules, ...); memory last: mappings,
 * then allocations, then reservations and the physical memory handles. */
void sess_destroy_children(struct vg_sess *s, uint32_t ctx1)
{
    const struct vg_drv *d = s->drv;
    for (int type = H_NONE + 1; type < H_TYPES; type++) {
        if (type == H_CTX || type == H_MEMH)
            continue;
        for (uint32_t i = 0; i < s->nh; i++) {
            struct handle *e = &s->h[i];
            if (!e->live || e->type != type || (ctx1 && e->ctx != ctx1))
                continue;
            if (e->owned)
                for (uint32_t r = 0; r < e->refs; r++)
                    vg_handle_destroy_real(d, type, e->real);
            sess_hfree(s, i);
        }
    }
    for (uint32_t i = 0; i < s->nr;) {
        struct range *r = &s->r[i];
        if (ctx1 && r->ctx != ctx1) {
            i++;
            continue;
        }
        if (r->kind == R_ALLOC && d->cuMemFree)
            d->cuMemFree(r->base);
        else if (r->kind == R_MAPPED && d->cuMemUnmap)
            d->cuMemUnmap(r->base, r->size);
        sess_range_del(s, i);
    }
    for (uint32_t i = 0; i < s->nva;) {
        if (ctx1 && s->va[i].ctx != ctx1) {
            i++;
            continue;
        }
        if (d->cuMemAddressFree)
            d->cuMemAddressFree(s->va[i].base, s->va[i].size);
        s->va[i] = s->va[--s->nva];
    }
    for (uint32_t i = 0; i < s->nh; i++) {
        struct handle *e = &s->h[i];
        if (!e->live || e->type != H_MEMH || (ctx1 && e->ctx != ctx1))
            continue;
        if (e->owned)
            for (uint32_t r = 0; r < e->refs; r++)
                vg_handle_destroy_real(d, H_MEMH, e->real);
        sess_hfree(s, i);
    }
}

void sess_leave_ctx(struct vg_sess *s)
{
    s->drv->cuCtxSetCurrent(NULL);
    s->cur_ctx = 0;
}

CUresult sess_set_ctx(struct vg_sess *s, uint32_t ctx1)
{
    CUcontext c = ctx1 ? s->h[ctx1 - 1].real : NULL;
    if (ctx1)
        s->device = s->h[ctx1 - 1].device;
    s->cur_ctx = ctx1;
    return s->drv->cuCtxSetCurrent(c);
}

/* Loads the parameter layout of function slot fi with cuFuncGetParamInfo. */
CUresult sess_load_layout(struct vg_sess *s, int fi, CUfunction f)
{
    struct handle *e = &s->h[fi];
    if (e->nparams >= 0)
        return CUDA_SUCCESS;
    if (!s->drv->cuFuncGetParamInfo)
        return CUDA_ERROR_NOT_SUPPORTED;
    uint32_t *off = malloc(SESS_MAX_PARAMS * sizeof *off), *sz = malloc(SESS_MAX_PARAMS * sizeof *sz);
    if (!off || !sz) {
        free(off);
        free(sz);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    int n = 0;
    uint32_t bytes = 0;
    for (; n < SESS_MAX_PARAMS; n++) {
        size_t o = 0, z = 0;
        if (s->drv->cuFuncGetParamInfo(f, (size_t)n, &o, &z) != CUDA_SUCCESS)
            break;
        if (o > 65536 || z > 65536) {
            free(off);
            free(sz);
            return CUDA_ERROR_INVALID_VALUE;
        }
        off[n] = (uint32_t)o;
        sz[n] = (uint32_t)z;
        if (o + z > bytes)
            bytes = (uint32_t)(o + z);
    }
    e->param_off = off;
    e->param_size = sz;
    e->nparams = n;
    e->param_bytes = bytes;
    return CUDA_SUCCESS;
}

int vg_sess_work_target(const struct vg_sess *s, const Vgpu__Call *c, CUcontext *ctx, CUstream *stream, int *device)
{
    /* Which argument names the stream comes from the list (work=, vg_work_stream[]); calls
     * without one run on the legacy stream. */
    if (c->call >= VG_CALL_COUNT || !vg_work_kind[c->call] || !c->ctx)
        return -1; /* not device work, or no context: the call fails by itself */
    int a = vg_work_stream[c->call];
    uint64_t stream_arg = (uint64_t)(uintptr_t)CU_STREAM_LEGACY;
    if (a >= 0) {
        if ((size_t)a >= c->n_args)
            return -1;
        stream_arg = c->args[a];
    }
    int ci = sess_hget(s, c->ctx, H_CTX);
    int slot;
    if (ci < 0 || sess_harg((struct vg_sess *)s, stream_arg, H_STREAM, 0, (void **)stream, &slot) != CUDA_SUCCESS)
        return -1;
    /* Work on a capturing stream goes into a graph, not to the device (and an event the
     * scheduler recorded there would end the capture). */
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
    if (*stream && *stream != CU_STREAM_LEGACY && s->drv->cuStreamIsCapturing &&
        s->drv->cuStreamIsCapturing(*stream, &cs) == CUDA_SUCCESS &&
        cs != CU_STREAM_CAPTURE_STATUS_NONE)
        return -1;
    *ctx = s->h[ci].real;
    *device = s->h[ci].device;
    return 0;
}

int vg_sess_work_is_kernel(unsigned call)
{
    return call < VG_CALL_COUNT && vg_work_kind[call] == VG_WORK_KERNEL;
}

/* The context slot of handle ctx (0: none) in *ctx1, made current. */
static CUresult use_ctx(struct vg_sess *s, uint64_t ctx, uint32_t *ctx1)
{
    *ctx1 = 0;
    if (ctx) {
        int i = sess_hget(s, ctx, H_CTX);
        if (i < 0)
            return CUDA_ERROR_INVALID_CONTEXT;
        *ctx1 = (uint32_t)i + 1;
    }
    /* The driver keeps a current context per thread and this worker serves many sessions. */
    return sess_set_ctx(s, *ctx1);
}

CUresult vg_sess_use_ctx(struct vg_sess *s, uint64_t ctx)
{
    uint32_t ctx1;
    return use_ctx(s, ctx, &ctx1);
}

void vg_sess_execute(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                     int no_reply, struct vg_result *res)
{
    uint32_t ctx1 = 0;
    CUresult rc;
    if (c->call >= VG_CALL_COUNT) {
        rc = CUDA_ERROR_NOT_SUPPORTED;
        goto done;
    }
    rc = use_ctx(s, c->ctx, &ctx1);
    if (rc == CUDA_SUCCESS)
        rc = vg_sess_run(s, c, bulk, bulk_len, res, ctx1);
done:
    res->result = rc;
    if (rc != CUDA_SUCCESS && vg_log_enabled(VG_LOG_DEBUG))
        vg_debug("session %llu (%s): %s failed with CUresult %d", (unsigned long long)s->id,
                 s->peer, vg_call_name(c->call), (int)rc);
    /* An error nobody will read now is reported at the next synchronizing call. */
    int kind = vg_call_kind(c->call);
    if (no_reply && rc != CUDA_SUCCESS && s->deferred == CUDA_SUCCESS)
        s->deferred = rc;
    if (kind == VG_SYNCING && rc == CUDA_SUCCESS && s->deferred != CUDA_SUCCESS) {
        res->result = s->deferred;
        s->deferred = CUDA_SUCCESS;
    }
}

void vg_sess_copy_done(struct vg_sess *s, struct vg_result *res, CUresult rc, int no_reply)
{
    if (rc == CUDA_SUCCESS)
        return;
    if (no_reply) {
        if (s->deferred == CUDA_SUCCESS)
            s->deferred = rc;
    } else if (res->result == CUDA_SUCCESS) {
        res->result = rc;
    }
}

void vg_sess_destroy_all(struct vg_sess *s)
{
    if (s->destroyed)
        return;
    s->destroyed = 1;
    const struct vg_drv *d = s->drv;
    unsigned long freed = 0;
    for (uint32_t i = 0; i < s->nr; i++)
        freed += s->r[i].kind == R_ALLOC;
    /* Per context: make it current, destroy its objects; then the context itself. Contexts made
     * from green contexts are destroyed with them (they are not the session's to destroy). */
    for (uint32_t i = 0; i < s->nh; i++) {
        struct handle *e = &s->h[i];
        if (!e->live || e->type != H_CTX)
            continue;
        if (sess_set_ctx(s, i + 1) == CUDA_SUCCESS && d->cuCtxSynchronize)
            d->cuCtxSynchronize();
        sess_destroy_children(s, i + 1);
        d->cuCtxSetCurrent(NULL);
        s->cur_ctx = 0;
        if (d->cuCtxDestroy && e->owned)
            d->cuCtxDestroy(e->real); /* "primary" contexts are the session's own too */
        sess_hfree(s, i);
    }
    /* Libraries, green contexts and what no context holds. */
    sess_destroy_children(s, 0);
    d->cuCtxSetCurrent(NULL);
    vg_info("session %llu (%s) ended: released %lu allocations", (unsigned long long)s->id, s->peer,
            freed);
}

void vg_sess_free(struct vg_sess *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nh; i++) {
        free(s->h[i].param_off);
        free(s->h[i].param_size);
        free(s->h[i].extra);
    }
    free(s->h);
    free(s->hidx);
    free(s->r);
    free(s->va);
    free(s);
}
