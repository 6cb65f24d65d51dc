/* ptx: parse PTX text once into a compact pre-decoded module and run its kernels on the CPU.
 *
 * This is the emulated GPU's interpreter. It knows nothing of the CUDA API: the emulated driver
 * (server/emulator) owns device memory, contexts and streams and calls in here to parse modules
 * and run grids. Device memory is reached only through ptx_memory.translate, so every access a
 * kernel makes is bounds-checked against the allocation it falls in.
 *
 * Thread-safety: a parsed module is read-only after ptx_module_bind_global() and may be launched
 * from several threads at once.
 *
 * Execution model: a launch runs its blocks on the calling thread plus helpers from a lazily
 * created process-wide pool (ptx_launch.workers in all). A block's warps run cooperatively on
 * one thread, taking turns at barriers and every few thousand instructions; the 32 lanes of a
 * warp execute each decoded instruction together (SIMT, reconverging at the lowest pc). Calls to
 * .func are supported, direct or through a function pointer (C++ virtual calls), but not
 * recursion (the launch is refused, or fails when it happens through a pointer). Device printf (vprintf) goes to
 * ptx_memory.print (stdout without one); a failed device assert stops the launch with
 * PTX_ERR_ASSERT, trap with PTX_ERR_TRAP.
 *
 * Well-formed PTX that the interpreter cannot run (an unknown opcode or modifier, sm_80+ wmma
 * forms, an unknown special register...) does not fail the module: the parser
 * records it in the function that holds it, and only kernels that can reach that function are
 * refused (ptx_kernel_unsupported, PTX_ERR_UNSUPPORTED at launch). Malformed PTX (syntax errors,
 * undefined names, wrong operand counts) fails the parse. */
#ifndef VG_PTX_H
#define VG_PTX_H

#include <stddef.h>
#include <stdint.h>

/* Generic addressing. A generic address in [PTX_SHARED_WINDOW, +PTX_WINDOW_SIZE) is a
 * shared-memory address of the running block, one in [PTX_LOCAL_WINDOW, +PTX_WINDOW_SIZE) a
 * local-memory address of the running thread (cvta.shared / cvta.local produce them); every other
 * address is global and goes through ptx_memory.translate. The driver must not place device
 * memory in these windows. */
#define PTX_SHARED_WINDOW 0xFFFF100000000000ull
#define PTX_LOCAL_WINDOW 0xFFFF200000000000ull
#define PTX_WINDOW_SIZE 0x100000000ull
/* Function addresses (mov.u64 %rd, func; vtables and other initializers): function i of a
 * module is PTX_FUNC_WINDOW + 16 i, a code address that is not memory (loads and stores there
 * are illegal addresses); an indirect call to anything else fails the launch. */
#define PTX_FUNC_WINDOW 0xFFFF300000000000ull

typedef struct ptx_module ptx_module;
typedef struct ptx_kernel ptx_kernel;

enum ptx_status {
    PTX_OK = 0,
    PTX_ERR_PARSE = -1,           /* malformed or unsupported PTX (err names the line) */
    PTX_ERR_NOMEM = -2,
    PTX_ERR_ILLEGAL_ADDRESS = -3, /* a kernel touched memory outside every live allocation */
    PTX_ERR_LAUNCH = -4,          /* bad launch configuration (block too large, shared too big) */
    PTX_ERR_TRAP = -5,            /* trap / brkpt executed */
    PTX_ERR_MISALIGNED = -6,      /* misaligned access */
    PTX_ERR_ASSERT = -7,          /* a device-side assert failed (__assertfail) */
    PTX_ERR_UNSUPPORTED = -8,     /* the kernel reaches an instruction the emulator cannot run */
    PTX_ERR_BUDGET = -9,          /* ran past ptx_launch.max_lane_instructions */
};

/* Parses text[0..len) (need not be NUL-terminated). On success *out owns the module (free with
 * ptx_module_free). On failure returns PTX_ERR_PARSE or PTX_ERR_NOMEM, leaves *out NULL and
 * writes "line N: reason" into err (always NUL-terminated when errlen > 0). Never crashes on any
 * input. */
int ptx_module_parse(const char *text, size_t len, ptx_module **out, char *err, size_t errlen);
void ptx_module_free(ptx_module *m);

/* Module-scope variables in the .global and .const state spaces. The emulated driver allocates
 * device memory for each (size bytes, copying init when it is not NULL, zero otherwise) and binds
 * its address before the module's first launch; kernels then see that address for the name. */
typedef struct ptx_global_info {
    const char *name;   /* owned by the module */
    size_t size;
    size_t align;
    const void *init;   /* size bytes owned by the module, or NULL for zero-fill */
    int is_const;       /* 1 for .const, 0 for .global */
} ptx_global_info;

size_t ptx_module_global_count(const ptx_module *m);
void ptx_module_global(const ptx_module *m, size_t i, ptx_global_info *info);
void ptx_module_bind_global(ptx_module *m, size_t i, uint64_t device_addr);
/* An initializer may hold addresses: of functions (constants, already in init) and of module
 * variables (generic or global, "= {a, generic(b)+8}"), known only once every variable is bound.
 * Once all are, this writes the latter into dst, variable i's size bytes that hold a copy of its
 * init. */
void ptx_module_global_relocate(const ptx_module *m, size_t i, void *dst);

/* Kernels (.entry). The returned pointers live as long as the module. */
size_t ptx_module_kernel_count(const ptx_module *m);
const ptx_kernel *ptx_module_kernel_at(const ptx_module *m, size_t i);
const ptx_kernel *ptx_module_find_kernel(const ptx_module *m, const char *name);
const char *ptx_kernel_name(const ptx_kernel *k);
size_t ptx_kernel_param_count(const ptx_kernel *k);
/* Offset and size, in bytes, of parameter i within the packed parameter buffer (CUDA's layout:
 * each parameter at its natural alignment, as cuFuncGetParamInfo reports). */
void ptx_kernel_param(const ptx_kernel *k, size_t i, size_t *offset, size_t *size);
size_t ptx_kernel_param_bytes(const ptx_kernel *k);
size_t ptx_kernel_static_shared(const ptx_kernel *k);
size_t ptx_kernel_local_bytes(const ptx_kernel *k);   /* per thread */
int ptx_kernel_num_regs(const ptx_kernel *k);      /* per thread, as reported: 1..64 */
unsigned ptx_kernel_max_threads(const ptx_kernel *k); /* .maxntid product, else 1024 */
/* 1 when the kernel can call device malloc/free (the driver's heap, ptx_memory.heap_alloc). */
int ptx_kernel_uses_heap(const ptx_kernel *k);
/* NULL when the kernel can run, else why not ("'wmma.load.a.sync.aligned...' (line 42)"): the first
 * construct the emulator cannot run in the kernel or a .func it can call. Lives as long as the
 * module. A launch of such a kernel fails with PTX_ERR_UNSUPPORTED. */
const char *ptx_kernel_unsupported(const ptx_kernel *k);

/* Textures and surfaces, resolved by the driver. A kernel receives a texture or surface object as
 * a 64-bit handle (a .u64 parameter); the interpreter's tex / tld4 / txq / suld / sust / suq
 * instructions hand it to the callbacks below with what they ask. */
enum ptx_tex_geom {
    PTX_TEX_1D, PTX_TEX_2D, PTX_TEX_3D, PTX_TEX_A1D, PTX_TEX_A2D, PTX_TEX_CUBE, PTX_TEX_ACUBE
};
enum ptx_tex_lod { PTX_TEX_LOD_NONE, PTX_TEX_LOD_LEVEL, PTX_TEX_LOD_GRAD };

typedef struct ptx_tex_request {
    int geom;                     /* ptx_tex_geom */
    int int_coords;               /* .s32 coordinates: element indices (tex1Dfetch, texel fetch) */
    float x, y, z;                /* .f32 coordinates; for cubes the direction vector */
    int32_t ix, iy, iz;           /* .s32 coordinates */
    int32_t layer;                /* a1d / a2d: the layer; acube: the cube's index */
    int lod_kind;                 /* ptx_tex_lod: tex (level 0), tex.level, tex.grad */
    float lod;                    /* tex.level */
    float dpdx[3], dpdy[3];       /* tex.grad */
    int gather;                   /* tld4: the component to gather (0..3 = r, g, b, a); -1: tex */
} ptx_tex_request;

/* Boundary handling of suld / sust, from the instruction's .trap / .clamp / .zero. */
enum ptx_surf_boundary { PTX_SURF_TRAP, PTX_SURF_CLAMP, PTX_SURF_ZERO };

/* txq / suq queries; the OpenCL-style enumerations the PTX ISA specifies for channel data type and
 * order (CL_UNORM_INT8 = 0x10D2, CL_RGBA = 0x10B5, ...). */
enum ptx_tex_query {
    PTX_TXQ_WIDTH, PTX_TXQ_HEIGHT, PTX_TXQ_DEPTH, PTX_TXQ_CHANNEL_DATA_TYPE,
    PTX_TXQ_CHANNEL_ORDER, PTX_TXQ_NORMALIZED_COORDS, PTX_TXQ_FILTER_MODE, PTX_TXQ_ADDR_MODE_0,
    PTX_TXQ_ADDR_MODE_1, PTX_TXQ_ADDR_MODE_2, PTX_TXQ_ARRAY_SIZE, PTX_TXQ_NUM_MIPMAP_LEVELS,
    PTX_TXQ_NUM_SAMPLES
};

/* Device memory and output as the emulated driver owns them. translate returns the host pointer
 * backing [addr, addr + len) when that whole range lies inside one live allocation the launching
 * context may reach, else NULL. It is called concurrently from worker threads and must be cheap.
 * print, when set, receives the text of each device printf (one call per printf, len bytes, not
 * NUL-terminated; concurrently from worker threads): the driver buffers it in the context's printf
 * FIFO and writes it out at synchronizing calls. When print is NULL the text goes to stdout. */
typedef struct ptx_memory {
    void *ctx;
    void *(*translate)(void *ctx, uint64_t addr, size_t len);
    void (*print)(void *ctx, const char *text, size_t len);
    /* tex / tld4: four 32-bit results in out, float bits when the texture returns floats (float
     * and half formats, normalized-float read mode, filtered fetches), integer bits otherwise.
     * Returns PTX_OK, or PTX_ERR_ILLEGAL_ADDRESS when handle is not a texture object of the
     * launching context (or its memory is gone). */
    int (*tex_fetch)(void *ctx, uint64_t handle, const ptx_tex_request *req, uint32_t out[4]);
    /* suld.b / sust.b: size (1, 2, 4, 8 or 16) bytes at byte x of row y of slice or layer z (for
     * cubes: the face plus 6 times the cube's index), with the instruction's boundary handling.
     * Returns PTX_OK, or PTX_ERR_ILLEGAL_ADDRESS (bad handle, or out of range with .trap). */
    int (*surf_access)(void *ctx, uint64_t handle, int geom, int32_t x, int32_t y, int32_t z,
                       void *data, unsigned size, int write, int boundary);
    /* txq / suq: one ptx_tex_query of a texture (surface = 0) or surface (1) object. */
    int (*tex_query)(void *ctx, uint64_t handle, int surface, int what, int32_t *out);
    /* Device malloc / free (the CUDA runtime's device heap; C++ new and delete). heap_alloc
     * returns the device address of size fresh bytes, or 0 when the heap cannot hold them (or
     * the driver has no heap). heap_free releases what heap_alloc returned (0 is a no-op) and
     * returns PTX_OK, or PTX_ERR_ILLEGAL_ADDRESS for any other address (the launch fails).
     * Called concurrently from worker threads. NULL: malloc returns 0, free fails. */
    uint64_t (*heap_alloc)(void *ctx, uint64_t size);
    int (*heap_free)(void *ctx, uint64_t addr);
} ptx_memory;

/* Engines that run kernels: the interpreter (the reference) and, when built with LLVM, the JIT,
 * which compiles a kernel to native code on its first launch and falls back to the interpreter
 * for anything it cannot compile. PTX_ENGINE_DEFAULT follows VGPU_EMU_JIT (1 = JIT, the default
 * when built with it; 0 = interpreter). */
enum ptx_engine { PTX_ENGINE_DEFAULT = 0, PTX_ENGINE_INTERP = 1, PTX_ENGINE_JIT = 2 };

typedef struct ptx_launch {
    const ptx_kernel *kernel;
    unsigned grid[3];
    unsigned block[3];
    size_t dynamic_shared;        /* bytes of extern .shared, after the static shared memory */
    const void *params;           /* ptx_kernel_param_bytes(kernel) bytes, laid out as above */
    const ptx_memory *memory;
    unsigned workers;             /* threads to spread blocks over; 0 = one per online CPU */
    int engine;                   /* enum ptx_engine */
    uint64_t lane_instructions;   /* out: instructions executed, summed over active lanes */
    /* A cooperative launch (cuLaunchCooperativeKernel, or the cooperative launch attribute): every
     * block of the grid must be able to wait for every other (grid-wide sync), so all blocks must
     * be resident at once. The driver admits such a launch only when the grid has at most
     * (blocks per multiprocessor, by the kernel's occupancy) x (multiprocessor count = workers)
     * blocks, so the state of all of them at once is bounded; each worker keeps every block it
     * took in progress, a round of warp turns each in turn, and takes one more block per round
     * while some are left (ptx_launch.c), so a block spinning at a grid barrier lets the others
     * reach it, however many workers join. */
    unsigned cooperative;
    /* 0: no limit. Else a worker thread stops the launch with PTX_ERR_BUDGET once the blocks it
     * ran have executed more lane instructions than this (checked between a warp's turns, so up
     * to one turn more runs). With workers = 1 it bounds the whole launch, deterministically:
     * for tests and fuzzing, where a kernel may loop forever. */
    uint64_t max_lane_instructions;
    /* %envreg0..31: what a GPU driver puts in a launch's environment registers. The CUDA runtime
     * reads the cooperative-groups grid workspace from %envreg1 (high 32 bits) and %envreg2
     * (low): a cooperative launch gets the device address of 8 zeroed bytes there ({size,
     * barrier}), any other launch 0 (this_grid().sync() then traps, as on a GPU). */
    uint32_t envreg[32];
} ptx_launch;

/* 1 when this build can run kernels with the engine (the interpreter always can). */
int ptx_engine_available(int engine);
/* The instruction-set variant of the interpreter's fast handlers on this CPU: "avx2" or
 * "baseline". */
const char *ptx_simd_variant(void);

/* Compiles k for the JIT now, as its first JIT launch would (later launches reuse the code).
 * Returns PTX_OK when k has native code, with the milliseconds spent compiling or loading it
 * from the disk cache (*from_disk says which); PTX_ERR_UNSUPPORTED when the JIT is not built in
 * or cannot compile k, whose launches then run on the interpreter. */
int ptx_kernel_jit_prepare(const ptx_kernel *k, double *compile_ms, int *from_disk);

/* Runs the whole grid and returns when it is done. On failure returns a ptx_status and writes a
 * reason ("illegal address 0x... (4 bytes) in kernel K, line N") into err. */
int ptx_launch_run(ptx_launch *l, char *err, size_t errlen);

#endif
