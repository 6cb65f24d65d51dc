/* ptx_jit_plugin: the interface of libvgpu-jit.so, the part of the JIT that uses LLVM
 * (ptx_jit_llvm.c, ptx_jit_cg.c). Private to server/emulator/ptx.
 *
 * LLVM is a large library (loading it costs tens of milliseconds); the emulated driver does not
 * link it but dlopens this plugin the first time a kernel is to be compiled (ptx_jit.c), so that
 * programs and gpu-server sessions that never compile a kernel never load it. The plugin reads
 * the interpreter's structures directly: it must come from the same build, which the layout
 * signature checks. */
#ifndef VG_PTX_JIT_PLUGIN_H
#define VG_PTX_JIT_PLUGIN_H

#include "ptx_jit.h"

#include <stddef.h>

#define PTX_JIT_PLUGIN_VERSION 1
#define PTX_JIT_PLUGIN_SYMBOL "vgpu_jit_plugin"

/* A hash of the layouts compiled code and the plugin rely on. */
static inline uint64_t ptx_jit_layout_signature(void)
{
    const size_t lay[] = {
        sizeof(exec_ctx), offsetof(exec_ctx, w), offsetof(exec_ctx, b), offsetof(exec_ctx, icount),
        offsetof(exec_ctx, slice), offsetof(ptx_jit_rt, zeros),
        offsetof(exec_ctx, jump), sizeof(ptx_block), offsetof(ptx_block, shared),
        offsetof(ptx_block, shared_bytes), offsetof(ptx_block, params), offsetof(ptx_block, block),
        offsetof(ptx_block, ctaid), offsetof(ptx_block, grid), sizeof(ptx_warp), offsetof(ptx_warp, tid),
        offsetof(ptx_warp, index), offsetof(ptx_warp, cache_lo), offsetof(ptx_warp, cache_hi),
        offsetof(ptx_warp, cache_host), sizeof(ptx_group), sizeof(ptx_xinsn), offsetof(ptx_xinsn, fn),
        offsetof(ptx_xinsn, xop), sizeof(ptx_jit_rt), sizeof(ptx_insn), sizeof(ptx_func),
        sizeof(struct ptx_kernel), sizeof(struct ptx_module), XOP_NONE, PTX_WARP_SLICE,
    };
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)lay;
    for (size_t i = 0; i < sizeof(lay); i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

typedef struct ptx_jit_plugin {
    int version;
    uint64_t layout;          /* ptx_jit_layout_signature() of the plugin's build */
    /* Sets LLVM up for this CPU. *host_id identifies what compiled code depends on beyond the
     * PTX: CPU, LLVM version, code format. Returns 0, or -1 with why. */
    int (*init)(uint64_t *host_id, char *why, size_t whylen);
    /* Compiles the functions of k reachable from it, named PREFIX_f<function index>, to an
     * object file in memory: *obj (malloc'd, the caller frees it), *len. Returns 0 or -1. */
    int (*compile)(const ptx_kernel *k, const char *prefix, void **obj, size_t *len, char *why,
                   size_t whylen);
    /* Loads an object (copied) into the process and fills fn[function index] for k's functions.
     * Returns 0 or -1 (the object was refused; names under its prefix may stay taken). */
    int (*load)(const ptx_kernel *k, const char *prefix, const void *obj, size_t len, ptx_jit_fn *fn,
                char *why, size_t whylen);
} ptx_jit_plugin;

typedef const ptx_jit_plugin *(*ptx_jit_plugin_entry)(void);

#endif
