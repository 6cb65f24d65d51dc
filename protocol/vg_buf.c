#include "vg_buf.h"

#include <stdlib.h>
#include <string.h>

void vg_rd_init(struct vg_rd *rd, const uint8_t *p, uint64_t len)
{
    rd->p = p;
    rd->len = len;
    rd->pos = 0;
    rd->short_read = 0;
}

const uint8_t *vg_rd_take(struct vg_rd *rd, uint64_t n)
{
    if (n > rd->len - rd->pos) {
        rd->short_read = 1;
        return NULL;
    }
    const uint8_t *p = rd->p + rd->pos;
    rd->pos += n;
    return p;
}

int vg_rd_copy(struct vg_rd *rd, void *dst, uint64_t n)
{
    const uint8_t *p = vg_rd_take(rd, n);
    if (!p)
        return -1;
    if (n)
        memcpy(dst, p, (size_t)n);
    return 0;
}

int vg_rd_u64(struct vg_rd *rd, uint64_t *v)
{
    return vg_rd_copy(rd, v, sizeof *v);
}

int vg_rd_done(const struct vg_rd *rd)
{
    return !rd->short_read && rd->pos == rd->len;
}

void vg_wbuf_init(struct vg_wbuf *b)
{
    memset(b, 0, sizeof *b);
}

void *vg_wbuf_grow(struct vg_wbuf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    void *at = b->p + b->len;
    memset(at, 0, n);
    b->len += n;
    return at;
}

void vg_wbuf_put(struct vg_wbuf *b, const void *data, size_t n)
{
    void *at = vg_wbuf_grow(b, n);
    if (at && n)
        memcpy(at, data, n);
}

void vg_wbuf_u64(struct vg_wbuf *b, uint64_t v)
{
    vg_wbuf_put(b, &v, sizeof v);
}

void vg_wbuf_free(struct vg_wbuf *b)
{
    free(b->p);
    vg_wbuf_init(b);
}
