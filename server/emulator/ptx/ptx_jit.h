/* ptx_jit: the JIT engine (ptx_jit.c, ptx_jit_cg.c). Private to server/emulator/ptx.
 *
 * What it compiles. The interpreter's decoded code (ptx_xinsn), function by function, into
 * native functions that take the place of run_group: given a lane group of a warp, run it from
 * its pc until the group must go back to the scheduler. Registers stay in the warp's register
 * file, laid out as the interpreter lays them out, and every instruction does what its handler
 * does, over 32-lane vectors; so control passes freely between compiled code and the
 * interpreter. An instruction the JIT does not compile is run by a call to its interpreter
 * handler; a pc the compiled function cannot start at (not a block leader) is interpreted;
 * a kernel it cannot compile at all is interpreted.
 *
 * Where code lives. Compiled code is kept for the process in LLVM's ORC JIT (in libvgpu-jit.so,
 * loaded on first use: ptx_jit_plugin.h), one object per kernel, found again by a key made of
 * the PTX text's hash, the kernel's name, the host CPU and this build's layouts; each object is
 * also written to the disk cache ($VGPU_EMU_JIT_CACHE, else $XDG_CACHE_HOME/vgpu/jit, else
 * ~/.cache/vgpu/jit; "off" disables it), so a later process loads it instead of compiling.
 *
 * When. By default a kernel is interpreted until it has run enough to repay compiling it (see
 * PTX_JIT_TIER_LANES); blocks launched after that run its compiled code. */
#ifndef VG_PTX_JIT_H
#define VG_PTX_JIT_H

#include "ptx_exec.h"

/* Helpers the compiled code calls (through this table, so that objects hold no addresses and
 * can be cached on disk). */
typedef struct ptx_jit_rt {
    uint8_t *(*global_range)(exec_ctx *c, uint64_t lo, uint64_t len);
    void (*row_f32[5])(float *out, const float *in, int ftz); /* ex2, lg2, sin, cos, tanh */
    void (*gather[2])(void *r, const uint8_t *base, const uint32_t *off);  /* 4, 8 bytes */
    void (*scatter[2])(uint8_t *base, const uint32_t *off, const void *v, uint32_t mask);
    /* The same for one 8-lane chunk (offsets are signed 32-bit, values 4 or 8 bytes). */
    void (*scatter8[2])(uint8_t *base, const uint32_t *off, const void *v, uint32_t mask);
    /* Readable zeros for loads whose result is not used. */
    uint8_t zeros[64] __attribute__((aligned(64)));
} ptx_jit_rt;

/* Filled once, with the element movers of the fast-handler variant in use. */
extern ptx_jit_rt ptx_jit_runtime;

/* A compiled function: returns RUN_SCHED/BARRIER/YIELD, RUN_NOT_HERE (interpret on from g->pc
 * now: it was not a block leader, or an access needs the interpreter), or a negative
 * ptx_status. c->icount holds the instructions it ran. */
typedef int (*ptx_jit_fn)(exec_ctx *c, ptx_group *g, uint32_t other_min, uint8_t *R,
                          const ptx_xinsn *xcode, const ptx_jit_rt *rt);

/* A kernel's compiled code: one entry per module function (NULL: interpret it). */
typedef struct ptx_jit_kernel {
    uint64_t key[2];
    size_t nfuncs;
    ptx_jit_fn *fn;
    double compile_ms;        /* time spent compiling (or loading from the disk cache) */
    int from_disk;
} ptx_jit_kernel;

/* The kernel's compiled code, compiled or loaded now if need be (thread-safe), or NULL when the
 * JIT is not built in or cannot compile it (the reason is logged at debug level). */
const ptx_jit_kernel *ptx_jit_kernel_get(const ptx_kernel *k);
/* The kernel's compiled code if it has been compiled already, else NULL. */
const ptx_jit_kernel *ptx_jit_kernel_ready(const ptx_kernel *k);
/* Tiered compilation: adds the lane-instructions the interpreter just ran for k; once k has run
 * PTX_JIT_TIER_LANES of them it is compiled (by the first caller that finds the JIT idle; the
 * others go on interpreting) and its code returned. NULL until then. */
const ptx_jit_kernel *ptx_jit_kernel_work(const ptx_kernel *k, uint64_t lanes);

/* What compiling costs (loading LLVM, some 30 ms of CPU once per process; then from the disk
 * cache well under 1 ms, cold 20 to 200 ms, about 40 for a typical kernel) is repaid only by
 * kernels that run long enough: about 20 ms of interpretation. */
#define PTX_JIT_TIER_LANES (64ull << 20)

/* VGPU_EMU_JIT: "0" interpreter only; "always" compile every kernel at its first launch (the
 * test suite and the benchmark use it); anything else, the default when the JIT is built, tiered
 * compilation. */
enum { PTX_JIT_OFF = 0, PTX_JIT_TIERED = 1, PTX_JIT_ALWAYS = 2 };
int ptx_jit_mode(void);
int ptx_jit_built(void);

/* Code generation (ptx_jit_cg.c, in the plugin): builds the LLVM functions of a kernel into a
 * module. Opaque LLVM types as void pointers so that this header needs no LLVM. Returns 0, or -1
 * with why. */
int ptx_jit_cg_kernel(void *llvm_ctx, void *llvm_module, const ptx_kernel *k, const char *prefix,
                      char *why, size_t whylen);

#endif
