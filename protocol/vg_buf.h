/* Byte buffers of the wire's bulk: a reader over a received bulk (segment by segment, every
 * length checked) and a growable writer for bulk being built. Shared by the stub and gpu-server
 * (the generated code and the marshalling of structures, client/marshal.c and server/marshal.c). */
#ifndef VG_BUF_H
#define VG_BUF_H

#include <stddef.h>
#include <stdint.h>

struct vg_rd {
    const uint8_t *p;
    uint64_t len, pos;
    int short_read;       /* a segment asked for more bytes than were sent */
};

void vg_rd_init(struct vg_rd *rd, const uint8_t *p, uint64_t len);
/* The next n bytes, in place (no copy; unaligned); NULL when fewer remain. */
const uint8_t *vg_rd_take(struct vg_rd *rd, uint64_t n);
/* Copies the next n bytes to dst; -1 when fewer remain. */
int vg_rd_copy(struct vg_rd *rd, void *dst, uint64_t n);
/* The next 8 bytes as a little-endian uint64; -1 when fewer remain. */
int vg_rd_u64(struct vg_rd *rd, uint64_t *v);
/* True when every byte was consumed and no read fell short. */
int vg_rd_done(const struct vg_rd *rd);

struct vg_wbuf {
    uint8_t *p;
    size_t len, cap;
    int failed;           /* an append could not allocate: the buffer is incomplete */
};

void vg_wbuf_init(struct vg_wbuf *b);
void vg_wbuf_put(struct vg_wbuf *b, const void *data, size_t n);
void vg_wbuf_u64(struct vg_wbuf *b, uint64_t v);
/* Room for n more bytes at the end, appended (zeroed); NULL on ENOMEM. */
void *vg_wbuf_grow(struct vg_wbuf *b, size_t n);
void vg_wbuf_free(struct vg_wbuf *b);

#endif
