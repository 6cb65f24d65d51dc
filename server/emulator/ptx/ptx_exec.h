/* ptx_exec: runs one thread block of a decoded kernel (ptx_exec.c). Private to
 * server/emulator/ptx; ptx_launch.c spreads a grid's blocks over worker threads and owns one
 * ptx_block per worker, reused for every block that worker runs. */
#ifndef VG_PTX_EXEC_H
#define VG_PTX_EXEC_H

#include "ptx_ir.h"

#include <stdint.h>

typedef struct ptx_group {
    uint32_t pc;
    uint32_t mask;
} ptx_group;

/* One warp: its register file (register-major, 32 lanes per register, so an instruction's inner
 * loop walks contiguous memory) and its divergent lane groups. */
typedef struct ptx_warp {
    uint64_t *regs;
    ptx_group groups[32];
    int ngroups;
    int at_barrier;
    int done;
    uint32_t index;                 /* warp index within the block */
    uint32_t tid[3][32];            /* %tid per lane */
    uint8_t depth[32];              /* call depth per lane */
    uint8_t carry[32];              /* CC.CF per lane (add.cc/addc and friends) */
    uint32_t retpc[PTX_MAX_CALL_DEPTH][32];
    /* The barrier the warp waits at, and the thread count it expects (0: every thread). */
    unsigned bar_id, bar_count;
    /* A bar.red waiting for the barrier's release: where its result goes. */
    int red_pending;
    int red_mode;
    uint32_t red_mask;
    uint64_t *red_row;
    /* Last global range that translate() accepted: [cache_lo, cache_hi) -> cache_host. */
    uint64_t cache_lo, cache_hi;
    uint8_t *cache_host;
} ptx_warp;

typedef struct ptx_block {
    /* Set once per launch. */
    const ptx_kernel *kernel;
    const ptx_module *module;
    const ptx_memory *memory;
    const uint8_t *params;
    size_t param_bytes;
    unsigned grid[3], block[3];
    unsigned nthreads, nwarps;
    size_t shared_bytes;            /* static + dynamic */
    size_t dyn_shared_base;
    int worker_id;
    /* Storage owned by the block (allocated by ptx_launch.c). */
    ptx_warp *warps;
    uint64_t *regs;                 /* nwarps * nregs_total * 32 */
    uint8_t *shared;
    uint8_t *local;                 /* nthreads * local_bytes */
    /* Per block. */
    unsigned ctaid[3];
    unsigned bar_arrived[PTX_NUM_BARRIERS]; /* threads counted by bar.arrive, per barrier */
    uint64_t red_popc;              /* bar.red accumulators of the current barrier */
    int red_and, red_or;
    uint64_t max_lane_instructions; /* 0: no limit (ptx_launch.max_lane_instructions) */
    /* Results. */
    uint64_t lane_instructions;
    int status;
    char msg[256];
} ptx_block;

/* Runs the block whose ctaid is set in b. Returns PTX_OK or an error status with b->msg set. */
int ptx_exec_block(ptx_block *b);

uint16_t ptx_f32_to_f16(float f);
float ptx_f16_to_f32(uint16_t h);
uint16_t ptx_f32_to_bf16(float f);
float ptx_bf16_to_f32(uint16_t h);

#endif
