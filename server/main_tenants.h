/* gpu-server's main process: the tenants file (read with inih) and who a token belongs to.
 *
 *   [alice]
 *   token  = 8c6f0e1f5a...   ; or token_sha256 = <64 hex digits>, so the file holds no secret
 *   weight = 3               ; share of device time when busy (1-1000, default 1)
 *   limit  = 30              ; optional cap on its share of device time, in percent (1-100)
 *   memory = 8G              ; device memory per device, K/M/G/T suffixes (default: no limit)
 *   devices = 0,1            ; which devices it sees, renumbered from 0 (default: all)
 *
 * Without a file there is one tenant, "default": weight 1, no limits, every device, and any
 * token (or none) is accepted. The tenants are published on the board, where session processes
 * read their tenant's limits at every charge, so a reload reaches them at once. */
#ifndef VG_MAIN_TENANTS_H
#define VG_MAIN_TENANTS_H

#include <stdint.h>

#include "board.h"

struct vg_tenant_def {
    char name[64];
    uint8_t token_sha256[32];
    int has_token;
    unsigned weight;
    unsigned cap_percent;      /* 0: none */
    uint64_t memory;           /* per device; 0: no limit */
    int ndevices;              /* 0: all devices */
    int devices[VG_BOARD_DEVICES];
    int line;                  /* where its section starts, for messages */
};

struct vg_tenants {
    struct vg_tenant_def t[VG_BOARD_TENANTS];
    unsigned n;
    int from_file;
};

/* Reads path. On any error fills err with "PATH:LINE: what is wrong" and returns -1 (out is
 * then unusable). device_count: the server's devices, which `devices` may name. */
int vg_tenants_load(const char *path, int device_count, struct vg_tenants *out, char *err, size_t errlen);

/* The single default tenant. */
void vg_tenants_default(struct vg_tenants *out);

/* The index in ts of the tenant whose token this is, or -1. Compares digests in constant time
 * and looks at every tenant whatever matches. */
int vg_tenants_match(const struct vg_tenants *ts, const char *token);

/* Writes ts to the board's tenant records: a tenant keeps its record (and index) across
 * reloads by name; a tenant no longer in ts is marked removed (its sessions keep running, with
 * its last limits); a new one takes a free record. board_index[i] receives the record of
 * ts->t[i]. Returns 0, or -1 when the board has no free record left. */
int vg_tenants_publish(const struct vg_tenants *ts, struct vg_board *b, int board_index[VG_BOARD_TENANTS]);

#endif
