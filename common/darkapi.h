/* darkapi: cuGetExportTable's tables (common/darkapi.c) and the HMAC-MD2 they need.
 *
 * HMAC-MD2 is exposed only so that tests can check it against RFC 1319's vectors; nothing else
 * should use MD2. */
#ifndef VG_DARKAPI_H
#define VG_DARKAPI_H

#include <stddef.h>
#include <stdint.h>

/* MD2 (RFC 1319): 16-byte blocks, 48-byte state, 16-byte checksum. */
struct vg_md2 {
    uint8_t state[48];
    uint8_t checksum[16];
    uint8_t block[16];
    unsigned used; /* bytes in block, 0..15 */
};

void vg_md2_init(struct vg_md2 *md);
void vg_md2_update(struct vg_md2 *md, const void *data, size_t len);
void vg_md2_final(struct vg_md2 *md, uint8_t digest[16]);

/* HMAC (RFC 2104) with MD2 and a 16-byte key (MD2's block size, so the key is used as is). */
struct vg_hmac_md2 {
    struct vg_md2 inner;
    uint8_t key[16];
};

void vg_hmac_md2_init(struct vg_hmac_md2 *mac, const uint8_t key[16]);
void vg_hmac_md2_update(struct vg_hmac_md2 *mac, const void *data, size_t len);
void vg_hmac_md2_final(struct vg_hmac_md2 *mac, uint8_t digest[16]);

#endif
