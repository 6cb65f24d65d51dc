/* ptx_exec: runs one thread block of a decoded kernel (ptx_exec.c). Private to
 * server/emulator/ptx; ptx_launch.c spreads a grid's blocks over worker threads and owns one
 * ptx_block per worker, reused for every block that worker runs.
 *
 * Register file. A warp's registers are rows of 32 lanes in one byte array laid out per kernel:
 * each function reachable from the kernel owns a range (ptx_kernel.xbase), and inside it each
 * register has a fixed byte offset (ptx_func.xroff): 64-bit types take a row of 32 x 8 bytes,
 * every narrower type a row of 32 x 4 bytes (8- and 16-bit values zero- or sign-extended to 32
 * bits, as ld/cvt leave them), and a predicate one 32-bit word, bit l for lane l. Rows start on
 * 64-byte boundaries. Immediates that fast handlers read are constant rows in the same range,
 * filled once when a worker sets up its register file, so that a handler sees every source
 * operand as a row.
 *
 * Decoded code. Each instruction of ptx_module.code has a ptx_xinsn at the same index
 * (ptx_module.xcode) holding the handler chosen for it at load time (ptx_xbuild.c) and its
 * operands as byte offsets from the running function's register range. A handler runs the
 * instruction for the lanes in `mask` and leaves other lanes' registers untouched. */
#ifndef VG_PTX_EXEC_H
#define VG_PTX_EXEC_H

#include "ptx_ir.h"

#include <stdint.h>

typedef struct ptx_group {
    uint32_t pc;
    uint32_t mask;
} ptx_group;

/* One warp: its register file and its divergent lane groups. */
typedef struct ptx_warp {
    uint8_t *regs;                  /* ptx_kernel.xbytes bytes, 64-byte aligned */
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
    /* A bar.red waiting for the barrier's release: the destination register (byte offset in
     * regs and its row kind) and the lanes it is written for. */
    int red_pending;
    int red_mode;
    uint32_t red_mask;
    size_t red_off;
    int red_kind;
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
    const struct ptx_jit_kernel *jit;  /* compiled code to run, or NULL: interpret */
    const uint32_t *envreg;         /* %envreg0..31 (ptx_launch.envreg) */
    /* Storage owned by the block (allocated by ptx_launch.c). */
    ptx_warp *warps;
    uint8_t *regs;                  /* nwarps * kernel->xbytes, 64-byte aligned */
    uint8_t *shared;
    uint8_t *local;                 /* nthreads * local_bytes */
    /* Per block. */
    unsigned ctaid[3];
    unsigned bar_arrived[PTX_NUM_BARRIERS]; /* threads counted by bar.arrive, per barrier */
    uint64_t red_popc;              /* bar.red accumulators of the current barrier */
    int red_and, red_or;
    uint64_t max_lane_instructions; /* 0: no limit (ptx_launch.max_lane_instructions) */
    int finished;                   /* cooperative grids (ptx_launch.c): the block has ended */
    /* Results. */
    uint64_t lane_instructions;
    int status;
    char msg[256];
} ptx_block;

/* What a warp runs with: set by the scheduler for each stretch of one lane group. */
typedef struct exec_ctx {
    ptx_block *b;
    ptx_warp *w;
    const ptx_kernel *k;
    const ptx_module *m;
    const ptx_func *f;        /* function of the running code */
    uint8_t *R;               /* its register range in the warp's file */
    size_t frame;             /* its frame offset in local space */
    ptx_group *g;             /* the running group (its mask is the lanes running) */
    uint64_t icount;          /* instructions run in this stretch (lane count: x popcount) */
    uint32_t slice;           /* leader arrivals left in this stretch (both engines count it) */
    uint32_t jump;            /* X_JUMP: where to go */
} exec_ctx;

typedef struct ptx_xinsn ptx_xinsn;

/* A handler runs one instruction for the lanes in mask (never empty). It returns X_NEXT, X_JUMP
 * (c->jump holds the next pc, the whole group goes there), X_SCHED (the group's state was
 * changed: the scheduler picks what runs next), X_BARRIER, or a negative ptx_status with
 * b->msg set. */
typedef int (*ptx_xfn)(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
enum { X_NEXT = 0, X_JUMP = 1, X_SCHED = 2, X_BARRIER = 3 };

struct ptx_xinsn {
    ptx_xfn fn;
    uint16_t xop;             /* the fast handler's id (ptx_xops.h), or XOP_NONE */
    uint8_t leader;           /* starts a block: a function entry, a branch target, or after a
                               * branch, call, return, exit, trap or barrier */
    int32_t guard;            /* byte offset of the guard predicate, or -1 */
    uint32_t guard_xor;       /* ~0 when the guard is negated */
    int32_t d, a, b, c, e;    /* operand rows: byte offsets from the function's range */
    int32_t f, g;             /* more rows: the 3rd and 4th element of a vector ld/st */
    uint32_t aux;             /* handler-specific */
    int64_t imm;              /* handler-specific (address offset, branch target...) */
    const ptx_insn *in;       /* the instruction, for slow paths and messages */
};

#define XOP_NONE 0xffff

/* What running a lane group returns to the warp scheduler (run_group, and JIT code). */
enum { RUN_SCHED = 0, RUN_BARRIER = 1, RUN_YIELD = 2, RUN_NOT_HERE = 3, RUN_LEADER = 4 };

/* A warp gives the others of its block a turn after this many arrivals at block leaders (jumps
 * and fall-throughs into a leader) even without a barrier, so that warps spinning on a flag
 * another warp sets (volatile shared memory) make progress as on a GPU, where warps interleave.
 * Both engines count the same way, so they interleave warps identically. A group also goes back
 * to the scheduler when it arrives at or past another group's pc (always a leader). */
#define PTX_WARP_SLICE 1024

/* Row kinds of a register (ptx_func.xkind). */
enum { XK_32 = 0, XK_64 = 1, XK_PRED = 2 };

/* Runs the block whose ctaid is set in b. Returns PTX_OK or an error status with b->msg set. */
int ptx_exec_block(ptx_block *b);
/* The same in steps, for cooperative grids whose blocks take turns on a worker: begin sets the
 * block up at its entry; each round gives every warp one turn (up to a barrier, the end, or its
 * time slice) and releases the barriers that are complete. A round returns 1 when the block
 * is done, 0 when it is not, or an error status with b->msg set. */
void ptx_exec_block_begin(ptx_block *b);
int ptx_exec_block_round(ptx_block *b);

/* Fills the constant rows of one warp's register file (once per allocation). */
void ptx_exec_init_regs(const ptx_kernel *k, uint8_t *regs);

/* Builds m->xcode and the register layouts (ptx_xbuild.c). Returns PTX_OK or PTX_ERR_NOMEM. */
int ptx_xbuild(ptx_module *m);
void ptx_xbuild_free(ptx_module *m);

/* Handlers that ptx_xbuild.c assigns and ptx_exec.c implements. */
int ptx_x_generic(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_bra(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_bra_always(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_call(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_ret(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_exit(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_trap(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_bar(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_nop(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
/* wmma.load / store / mma (ptx_wmma.c). */
int ptx_x_wmma(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
/* Lane l's effective address of an [addr] operand of in, and the state space it is in. */
uint64_t ptx_exec_lane_addr(exec_ctx *c, const ptx_insn *in, const ptx_operand *o, int l, int *space);
/* Textures and surfaces: tex / tld4, suld / sust, txq / suq, lane by lane through ptx_memory. */
int ptx_x_tex(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_surf(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);
int ptx_x_texquery(exec_ctx *c, const ptx_xinsn *x, uint32_t mask);

/* Failure with a message naming the kernel, line and block; returns status. */
int ptx_exec_fail(exec_ctx *c, const ptx_insn *in, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Host pointer for one lane's access of len bytes at addr in space sp, or NULL. */
uint8_t *ptx_exec_lane_ptr(exec_ctx *c, int sp, uint64_t addr, size_t len, int lane);
/* Global/const/generic range translate with the warp's cache: the host pointer of
 * [lo, lo + len) when it lies in one allocation, else NULL. */
uint8_t *ptx_exec_global_range(exec_ctx *c, uint64_t lo, uint64_t len);

uint64_t ptx_exec_sreg(exec_ctx *c, int sr, int lane);

uint16_t ptx_f32_to_f16(float f);
float ptx_f16_to_f32(uint16_t h);
uint16_t ptx_f32_to_bf16(float f);
float ptx_bf16_to_f32(uint16_t h);

#endif
