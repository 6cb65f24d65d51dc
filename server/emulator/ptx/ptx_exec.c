/* ptx_exec: SIMT execution of one thread block (see ptx_exec.h).
 *
 * A block's warps run cooperatively on the calling thread: a warp runs until it reaches a
 * barrier or finishes, then the next; when every live warp waits at the barrier they are all
 * released. Inside a warp, lanes that took different branch directions form groups (pc, mask).
 * The group with the lowest pc always runs next, and groups that reach the same pc merge. For
 * the structured code nvcc emits this reconverges at the immediate post-dominator of a branch
 * (a lagging group catches up with the ones ahead before they move on), so warp-synchronous
 * instructions see the whole warp, and it needs no reconvergence annotations.
 *
 * Each instruction runs through the handler chosen for it at load (ptx_xbuild.c): a fast
 * handler over whole register rows (ptx_xops.c), a control-flow handler here, or the general
 * handler (ptx_alu.inc) that gives every other instruction its exact semantics. */
#include "ptx_exec.h"
#include "ptx_jit.h"
#include "ptx_math.h"

#include <fenv.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
/* ---- scalar helpers ------------------------------------------------------------------------ */

static inline float u2f(uint64_t v)
{
    uint32_t b = (uint32_t)v;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline uint64_t f2u(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static inline double u2d(uint64_t v)
{
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static inline uint64_t d2u(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

uint16_t ptx_f32_to_f16(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}

/* double -> f16 with one rounding (no detour through float). */
static inline uint16_t f64_to_f16(double d)
{
    _Float16 h = (_Float16)d;
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}

float ptx_f16_to_f32(uint16_t b)
{
    _Float16 h;
    memcpy(&h, &b, 2);
    return (float)h;
}

uint16_t ptx_f32_to_bf16(float f)
{
    uint32_t b = (uint32_t)f2u(f);
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x40);
    b += 0x7fffu + ((b >> 16) & 1); /* round to nearest even */
    return (uint16_t)(b >> 16);
}

float ptx_bf16_to_f32(uint16_t h)
{
    return u2f((uint64_t)h << 16);
}

static inline float ftz32(float f)
{
    return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f;
}

static inline float sat32(float f)
{
    if (!(f > 0.0f))
        return 0.0f; /* also NaN -> 0 */
    return f > 1.0f ? 1.0f : f;
}

static inline double sat64(double f)
{
    if (!(f > 0.0))
        return 0.0;
    return f > 1.0 ? 1.0 : f;
}

/* ptx_type_bytes without a call: the executor asks for it on every instruction. */
static const uint8_t type_bytes_tab[] = {
    [T_B8] = 1, [T_B16] = 2, [T_B32] = 4, [T_B64] = 8, [T_U8] = 1, [T_U16] = 2, [T_U32] = 4,
    [T_U64] = 8, [T_S8] = 1, [T_S16] = 2, [T_S32] = 4, [T_S64] = 8, [T_F16] = 2, [T_F16X2] = 4,
    [T_BF16] = 2, [T_BF16X2] = 4, [T_F32] = 4, [T_F64] = 8, [T_PRED] = 1,
};
#define TYPE_BYTES(t) ((int)type_bytes_tab[(t)])

static inline float fmax_f(float a, float b)
{
    if (isnan(a))
        return b;
    if (isnan(b) || a > b)
        return a;
    return a == b && signbit(b) ? a : b; /* max(+0, -0) = +0 */
}

static inline float fmin_f(float a, float b)
{
    if (isnan(a))
        return b;
    if (isnan(b) || a < b)
        return a;
    return a == b && signbit(a) ? a : b; /* min(+0, -0) = -0 */
}

/* The same for f64 (and f16, computed in double): PTX's min/max put -0 below +0, which libm's
 * fmin/fmax need not. */
static inline double fmax_d(double a, double b)
{
    if (isnan(a))
        return b;
    if (isnan(b) || a > b)
        return a;
    return a == b && signbit(b) ? a : b;
}

static inline double fmin_d(double a, double b)
{
    if (isnan(a))
        return b;
    if (isnan(b) || a < b)
        return a;
    return a == b && signbit(a) ? a : b;
}

static int type_signed(int t)
{
    return t == T_S8 || t == T_S16 || t == T_S32 || t == T_S64;
}

/* Reads a register value as the integer of type t (sign- or zero-extended to 64 bits). */
static inline int64_t as_int(uint64_t v, int bytes, int is_signed)
{
    switch (bytes) {
    case 1: return is_signed ? (int64_t)(int8_t)v : (int64_t)(uint8_t)v;
    case 2: return is_signed ? (int64_t)(int16_t)v : (int64_t)(uint16_t)v;
    case 4: return is_signed ? (int64_t)(int32_t)v : (int64_t)(uint32_t)v;
    default: return (int64_t)v;
    }
}

static inline uint64_t trunc_to(uint64_t v, int bytes)
{
    return bytes >= 8 ? v : v & ((1ull << (bytes * 8)) - 1);
}

/* Value of a float-typed register as double (f16/bf16/f32/f64). */
static inline double as_float(uint64_t v, int t)
{
    switch (t) {
    case T_F16: return ptx_f16_to_f32((uint16_t)v);
    case T_BF16: return ptx_bf16_to_f32((uint16_t)v);
    case T_F32: return u2f(v);
    default: return u2d(v);
    }
}

static inline uint64_t from_float(double d, int t)
{
    switch (t) {
    case T_F16: return f64_to_f16(d);
    case T_BF16: return ptx_f32_to_bf16((float)d);
    case T_F32: return f2u((float)d);
    default: return d2u(d);
    }
}

static int is_float(int t)
{
    return t == T_F16 || t == T_BF16 || t == T_F32 || t == T_F64;
}

/* ---- failures, special registers, symbols -------------------------------------------------- */

int ptx_exec_fail(exec_ctx *c, const ptx_insn *in, int status, const char *fmt, ...)
{
    ptx_block *b = c->b;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(b->msg, sizeof(b->msg), "%s in kernel %s, line %d (block %u,%u,%u)", what,
             ptx_kernel_name(c->k), in ? in->line : 0, b->ctaid[0], b->ctaid[1], b->ctaid[2]);
    b->status = status;
    return status;
}
#define fail ptx_exec_fail

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ptx_exec_sreg(exec_ctx *c, int sr, int l)
{
    ptx_block *b = c->b;
    ptx_warp *w = c->w;
    switch (sr) {
    case SR_TID_X: return w->tid[0][l];
    case SR_TID_Y: return w->tid[1][l];
    case SR_TID_Z: return w->tid[2][l];
    case SR_NTID_X: return b->block[0];
    case SR_NTID_Y: return b->block[1];
    case SR_NTID_Z: return b->block[2];
    case SR_CTAID_X: return b->ctaid[0];
    case SR_CTAID_Y: return b->ctaid[1];
    case SR_CTAID_Z: return b->ctaid[2];
    case SR_NCTAID_X: return b->grid[0];
    case SR_NCTAID_Y: return b->grid[1];
    case SR_NCTAID_Z: return b->grid[2];
    case SR_LANEID: return (uint64_t)l;
    case SR_WARPID: return w->index;
    case SR_NWARPID: return b->nwarps;
    case SR_SMID: return (uint64_t)b->worker_id;
    case SR_NSMID: return 1024;
    case SR_GRIDID: return 0;
    /* The clocks count executed lane-instructions of this block (those of the running stretch
     * included): monotonic and deterministic. */
    case SR_CLOCK:
    case SR_CLOCK64: {
        uint64_t t = b->lane_instructions + c->icount * (uint64_t)__builtin_popcount(c->g->mask);
        return sr == SR_CLOCK ? (uint32_t)t : t;
    }
    case SR_GLOBALTIMER: return now_ns();
    case SR_LANEMASK_EQ: return 1u << l;
    case SR_LANEMASK_LT: return (1u << l) - 1;
    case SR_LANEMASK_LE: return (uint32_t)((2ull << l) - 1);
    case SR_LANEMASK_GT: return (uint32_t)~((2ull << l) - 1);
    case SR_LANEMASK_GE: return (uint32_t)~((1u << l) - 1);
    case SR_WARPSZ: return 32;
    case SR_DYN_SMEM: return b->shared_bytes - b->dyn_shared_base;
    default:
        if (sr >= SR_ENVREG0 && sr < SR_ENVREG0 + 32 && b->envreg)
            return b->envreg[sr - SR_ENVREG0];
        return 0;
    }
}

/* Address of a symbol in its own state space (see ptx_ir.h, enum ptx_symkind). */
static uint64_t sym_addr(exec_ctx *c, const ptx_operand *o)
{
    switch (o->symkind) {
    case SYM_KPARAM: return (uint64_t)(int64_t)o->sym;
    case SYM_FRAME: return c->frame + (uint64_t)(int64_t)o->sym;
    case SYM_SHARED: return c->k->shared_off[o->sym];
    case SYM_DYNSHARED: return c->b->dyn_shared_base;
    case SYM_GLOBAL: return c->b->module->globals[o->sym].addr;
    default: return 0;
    }
}

#define LANES(...)                                                                   \
    do {                                                                             \
        if (mask == 0xffffffffu) {                                                   \
            for (int l = 0; l < 32; l++) {                                           \
                __VA_ARGS__;                                                         \
            }                                                                        \
        } else {                                                                     \
            for (uint32_t mm_ = mask; mm_; mm_ &= mm_ - 1) {                         \
                int l = __builtin_ctz(mm_);                                          \
                __VA_ARGS__;                                                         \
            }                                                                        \
        }                                                                            \
    } while (0)

/* ---- the general handler's view of registers ----------------------------------------------- */

/* A register row as 32 uint64_t lanes: loaded from its row (zero-extended from 32 bits, a
 * predicate as 0/1 per lane) and, when dirty, stored back in its own width for all 32 lanes
 * (inactive lanes hold the values they were loaded with). */
typedef struct gen_row {
    int reg;
    int kind;
    int dirty;
    uint8_t *p;
    uint64_t v[32];
} gen_row;

#define GEN_ROWS 8

typedef struct gen_state {
    exec_ctx *c;
    int n;
    gen_row rows[GEN_ROWS];
} gen_state;

static void gen_init(gen_state *gs, exec_ctx *c)
{
    gs->c = c;
    gs->n = 0;
}

static uint64_t *gen_row_of(gen_state *gs, int reg, int dirty)
{
    for (int i = 0; i < gs->n; i++) {
        if (gs->rows[i].reg == reg) {
            gs->rows[i].dirty |= dirty;
            return gs->rows[i].v;
        }
    }
    /* An instruction names at most 5 operands of 4 registers: GEN_ROWS is never reached by
     * the decoded forms, but stay safe. */
    if (gs->n == GEN_ROWS)
        gs->n = GEN_ROWS - 1;
    exec_ctx *c = gs->c;
    gen_row *r = &gs->rows[gs->n++];
    r->reg = reg;
    r->kind = c->f->xkind[reg];
    r->dirty = dirty;
    r->p = c->R + c->f->xroff[reg];
    switch (r->kind) {
    case XK_64:
        memcpy(r->v, r->p, sizeof(r->v));
        break;
    case XK_32: {
        uint32_t v[32];
        memcpy(v, r->p, sizeof(v));
        for (int l = 0; l < 32; l++)
            r->v[l] = v[l];
        break;
    }
    default: {
        uint32_t m;
        memcpy(&m, r->p, 4);
        for (int l = 0; l < 32; l++)
            r->v[l] = m >> l & 1;
        break;
    }
    }
    return r->v;
}

static void gen_flush(gen_state *gs)
{
    for (int i = 0; i < gs->n; i++) {
        gen_row *r = &gs->rows[i];
        if (!r->dirty)
            continue;
        switch (r->kind) {
        case XK_64:
            memcpy(r->p, r->v, sizeof(r->v));
            break;
        case XK_32: {
            uint32_t v[32];
            for (int l = 0; l < 32; l++)
                v[l] = (uint32_t)r->v[l];
            memcpy(r->p, v, sizeof(v));
            break;
        }
        default: {
            uint32_t m = 0;
            for (int l = 0; l < 32; l++)
                m |= (uint32_t)(r->v[l] & 1) << l;
            memcpy(r->p, &m, 4);
            break;
        }
        }
    }
}

/* The 32 lane values of a source operand: a register's row, or tmp filled. */
static const uint64_t *gen_src(gen_state *gs, const ptx_operand *o, uint64_t *tmp)
{
    exec_ctx *c = gs->c;
    switch (o->kind) {
    case OPK_REG:
        return gen_row_of(gs, o->reg, 0);
    case OPK_IMM:
        for (int l = 0; l < 32; l++)
            tmp[l] = (uint64_t)o->imm;
        return tmp;
    case OPK_SREG:
        for (int l = 0; l < 32; l++)
            tmp[l] = ptx_exec_sreg(c, o->reg, l);
        return tmp;
    case OPK_SYM: {
        uint64_t a = sym_addr(c, o) + (uint64_t)o->imm;
        for (int l = 0; l < 32; l++)
            tmp[l] = a;
        return tmp;
    }
    default:
        memset(tmp, 0, 32 * sizeof(uint64_t));
        return tmp;
    }
}

/* ---- memory -------------------------------------------------------------------------------- */

uint8_t *ptx_exec_global_range(exec_ctx *c, uint64_t lo, uint64_t len)
{
    ptx_warp *w = c->w;
    uint64_t hi = lo + len;
    if (hi < lo)
        return NULL;
    if (lo >= w->cache_lo && hi <= w->cache_hi)
        return w->cache_host + (lo - w->cache_lo);
    uint8_t *p = c->b->memory->translate(c->b->memory->ctx, lo, (size_t)len);
    if (p) {
        w->cache_lo = lo;
        w->cache_hi = hi;
        w->cache_host = p;
    }
    return p;
}

uint8_t *ptx_exec_lane_ptr(exec_ctx *c, int sp, uint64_t addr, size_t len, int l)
{
    ptx_block *b = c->b;
    if (sp == SP_GENERIC) {
        if (addr - PTX_SHARED_WINDOW < PTX_WINDOW_SIZE) {
            sp = SP_SHARED;
            addr -= PTX_SHARED_WINDOW;
        } else if (addr - PTX_LOCAL_WINDOW < PTX_WINDOW_SIZE) {
            sp = SP_LOCAL;
            addr -= PTX_LOCAL_WINDOW;
        } else {
            sp = SP_GLOBAL;
        }
    }
    switch (sp) {
    case SP_GLOBAL:
    case SP_CONST:
        return ptx_exec_global_range(c, addr, len);
    case SP_SHARED:
        if (addr > b->shared_bytes || len > b->shared_bytes - addr)
            return NULL;
        return b->shared + addr;
    case SP_LOCAL: {
        size_t lb = c->k->local_bytes;
        if (addr > lb || len > lb - addr)
            return NULL;
        size_t t = (size_t)c->w->index * 32 + (size_t)l;
        return b->local + t * lb + addr;
    }
    case SP_PARAM:
        if (addr > b->param_bytes || len > b->param_bytes - addr)
            return NULL;
        return (uint8_t *)b->params + addr;
    default:
        return NULL;
    }
}
#define lane_ptr ptx_exec_lane_ptr

/* Computes the effective addresses of an [addr] operand for the active lanes and the space
 * they refer to. For .param, a frame variable lives in local space. */
static int gen_eff_addr(gen_state *gs, const ptx_insn *in, const ptx_operand *o, uint32_t mask,
                        uint64_t *addr)
{
    exec_ctx *c = gs->c;
    int sp = in->space;
    if (o->reg >= 0) {
        const uint64_t *base = gen_row_of(gs, o->reg, 0);
        if (o->neg) /* a 32-bit base register: the sum wraps in 32 bits */
            LANES(addr[l] = (uint32_t)(base[l] + (uint64_t)o->imm));
        else
            LANES(addr[l] = base[l] + (uint64_t)o->imm);
        if (sp == SP_PARAM && c->k->func != in->func)
            sp = SP_LOCAL; /* a .func reaching its own parameters through a register */
    } else {
        uint64_t a = (o->symkind ? sym_addr(c, o) : 0) + (uint64_t)o->imm;
        LANES(addr[l] = a);
        if (sp == SP_PARAM && o->symkind == SYM_FRAME)
            sp = SP_LOCAL;
    }
    return sp;
}
#define eff_addr(c_, in_, o_, m_, a_) gen_eff_addr(&gs, (in_), (o_), (m_), (a_))

uint64_t ptx_exec_lane_addr(exec_ctx *c, const ptx_insn *in, const ptx_operand *o, int l, int *space)
{
    gen_state gs;
    gen_init(&gs, c);
    uint64_t addr[32];
    *space = gen_eff_addr(&gs, in, o, 1u << l, addr);
    return addr[l];
}

/* Fast path for a warp-wide global access: one translate() for the span of all lanes. Fills
 * ptr[] and returns -1, or returns the first lane whose access is illegal. */
static int global_ptrs(exec_ctx *c, int sp, const uint64_t *addr, size_t len, uint32_t mask,
                       uint8_t **ptr)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    LANES({
        if (addr[l] < lo) lo = addr[l];
        if (addr[l] > hi) hi = addr[l];
    });
    /* A generic span touching the shared/local windows goes lane by lane. */
    int windowed = sp == SP_GENERIC && hi >= PTX_SHARED_WINDOW &&
                   lo < PTX_LOCAL_WINDOW + PTX_WINDOW_SIZE;
    if (!windowed && hi + len > hi) {
        uint8_t *base = ptx_exec_global_range(c, lo, hi + len - lo);
        if (base) {
            LANES(ptr[l] = base + (addr[l] - lo));
            return -1;
        }
    }
    int bad = -1;
    LANES({
        ptr[l] = lane_ptr(c, sp, addr[l], len, l);
        if (!ptr[l] && bad < 0)
            bad = l;
    });
    return bad;
}

static const char *const space_names[] = {"", "generic", "global", "shared", "local", "const", "param"};

/* Resolves every active lane's pointer; on failure reports the first bad lane. */
static int lanes_ptrs(exec_ctx *c, const ptx_insn *in, int sp, const uint64_t *addr, size_t len,
                      uint32_t mask, uint8_t **ptr)
{
    int bad = -1;
    if (sp == SP_GLOBAL || sp == SP_CONST || sp == SP_GENERIC) {
        bad = global_ptrs(c, sp, addr, len, mask, ptr);
    } else {
        LANES({
            ptr[l] = lane_ptr(c, sp, addr[l], len, l);
            if (!ptr[l] && bad < 0)
                bad = l;
        });
    }
    if (bad >= 0)
        return fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "illegal address 0x%llx (%zu bytes, %s) by thread %u",
                    (unsigned long long)addr[bad], len, space_names[sp],
                    c->w->index * 32 + (unsigned)bad);
    return 0;
}

static inline uint64_t load_n(const uint8_t *p, int bytes)
{
    switch (bytes) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void store_n(uint8_t *p, uint64_t v, int bytes)
{
    switch (bytes) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

static void add_group(ptx_warp *w, uint32_t pc, uint32_t mask)
{
    if (!mask)
        return;
    for (int i = 0; i < w->ngroups; i++) {
        if (w->groups[i].pc == pc) {
            w->groups[i].mask |= mask;
            return;
        }
    }
    /* At most 32 groups: each holds at least one of the 32 lanes. */
    w->groups[w->ngroups].pc = pc;
    w->groups[w->ngroups].mask = mask;
    w->ngroups++;
}

static void remove_group(ptx_warp *w, int i)
{
    w->groups[i] = w->groups[--w->ngroups];
}

static inline uint32_t row_pred(const exec_ctx *c, int reg)
{
    uint32_t m;
    memcpy(&m, c->R + c->f->xroff[reg], 4);
    return m;
}

#include "ptx_alu.inc"

/* ---- control flow -------------------------------------------------------------------------- */

static inline uint32_t pc_of(const exec_ctx *c, const ptx_xinsn *x)
{
    return (uint32_t)(x - c->m->xcode);
}

int ptx_x_nop(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    (void)c, (void)x, (void)mask;
    return X_NEXT;
}

int ptx_x_bra_always(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    (void)mask; /* no guard: every lane of the group goes */
    c->jump = (uint32_t)x->imm;
    return X_JUMP;
}

int ptx_x_bra(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_group *g = c->g;
    if (mask == g->mask) {
        c->jump = (uint32_t)x->imm;
        return X_JUMP;
    }
    /* Divergence: the taken lanes become a new group; the scheduler picks next. */
    g->mask &= ~mask;
    g->pc = pc_of(c, x) + 1;
    add_group(c->w, (uint32_t)x->imm, mask);
    return X_SCHED;
}

int ptx_x_exit(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_group *g = c->g;
    g->mask &= ~mask;
    g->pc = pc_of(c, x) + 1;
    return X_SCHED;
}

int ptx_x_trap(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    (void)mask;
    return fail(c, x->in, PTX_ERR_TRAP, "trap");
}

/* Lane l's bytes of local space at the running function's frame offset off, n bytes long, or
 * NULL when that leaves the thread's local memory. */
static uint8_t *frame_ptr(exec_ctx *c, size_t off, size_t n, int l)
{
    size_t lb = c->k->local_bytes;
    if (off > lb || n > lb - off)
        return NULL;
    return c->b->local + ((size_t)c->w->index * 32 + (size_t)l) * lb + off;
}

/* malloc(size) and free(ptr) through the driver's heap (ptx_memory.heap_*), lane by lane in
 * lane order, so that both engines hand out the same addresses. */
static int builtin_heap(exec_ctx *c, const ptx_insn *in, const ptx_func *callee, uint32_t mask)
{
    const ptx_memory *mem = c->b->memory;
    const int32_t *argv = c->m->call_args + in->ops[2].imm;
    if (in->ops[2].reg != 1)
        return fail(c, in, PTX_ERR_LAUNCH, "call to %s with %d arguments", callee->name, (int)in->ops[2].reg);
    for (uint32_t mm = mask; mm; mm &= mm - 1) {
        int l = __builtin_ctz(mm);
        uint8_t *arg = frame_ptr(c, c->frame + (size_t)argv[0], 8, l);
        if (!arg)
            return fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "call argument out of frame");
        uint64_t v;
        memcpy(&v, arg, 8);
        if (callee->builtin == PTX_BUILTIN_FREE) {
            int rc = v == 0 ? PTX_OK : mem->heap_free ? mem->heap_free(mem->ctx, v) : PTX_ERR_ILLEGAL_ADDRESS;
            if (rc != PTX_OK)
                return fail(c, in, rc, "free(0x%llx) of memory malloc did not return, or freed twice",
                            (unsigned long long)v);
            continue;
        }
        uint64_t p = mem->heap_alloc ? mem->heap_alloc(mem->ctx, v) : 0;
        if (in->ops[1].kind == OPK_SYM) {
            uint8_t *ret = frame_ptr(c, c->frame + (size_t)in->ops[1].sym, 8, l);
            if (!ret)
                return fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "call result out of frame");
            memcpy(ret, &p, 8);
        }
    }
    return X_NEXT;
}

/* The callee of an indirect call for lane l: the function whose address (PTX_FUNC_ADDR) the
 * target register holds, or -1 with the launch failed, as a GPU fails a jump to an address
 * that holds no function of the kernel's module. */
static int indirect_callee(exec_ctx *c, const ptx_insn *in, int l)
{
    const ptx_module *m = c->m;
    const uint8_t *row = c->R + c->f->xroff[in->ops[0].reg];
    uint64_t a;
    if (c->f->xkind[in->ops[0].reg] == XK_64)
        memcpy(&a, row + 8 * l, 8);
    else
        a = ((const uint32_t *)(const void *)row)[l];
    uint64_t fi = (a - PTX_FUNC_WINDOW) / 16;
    if (a < PTX_FUNC_WINDOW || (a - PTX_FUNC_WINDOW) % 16 != 0 || fi >= m->nfuncs ||
        m->funcs[fi].is_entry || (!m->funcs[fi].defined && !m->funcs[fi].builtin)) {
        fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "indirect call to 0x%llx, which is no function, by thread %u",
             (unsigned long long)a, c->w->index * 32 + (unsigned)l);
        return -1;
    }
    if (m->funcs[fi].nparams != (size_t)in->ops[2].reg) {
        fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "indirect call to %s with %d arguments, it takes %zu",
             m->funcs[fi].name, (int)in->ops[2].reg, m->funcs[fi].nparams);
        return -1;
    }
    return (int)fi;
}

int ptx_x_call(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_block *b = c->b;
    ptx_warp *w = c->w;
    const ptx_kernel *k = c->k;
    const ptx_module *m = c->m;
    const ptx_insn *in = x->in;
    ptx_group *g = c->g;
    uint32_t pc = pc_of(c, x);
    int fi;
    if (in->ops[0].kind == OPK_REG) {
        /* Through a pointer: lanes calling different functions go one function at a time, the
         * others wait at this call (a group of their own, run next). */
        int l0 = __builtin_ctz(mask);
        fi = indirect_callee(c, in, l0);
        if (fi < 0)
            return b->status;
        uint32_t same = 0;
        for (uint32_t mm = mask; mm; mm &= mm - 1) {
            int l = __builtin_ctz(mm);
            int f2 = l == l0 ? fi : indirect_callee(c, in, l);
            if (f2 < 0)
                return b->status;
            if (f2 == fi)
                same |= 1u << l;
        }
        if (same != mask) {
            add_group(w, pc, mask & ~same);
            if (mask == g->mask) {
                g->mask = same;
            } else {
                g->mask &= ~mask;
                g->pc = pc + 1;
                add_group(w, pc, same);
                return X_SCHED;
            }
            mask = same;
        }
    } else {
        fi = (int)in->ops[0].imm;
    }
    const ptx_func *callee = &m->funcs[fi];
    if (!callee->defined) {
        if (callee->builtin == PTX_BUILTIN_ASSERTFAIL) {
            /* __assertfail(message, file, line, function, char size) */
            int l = __builtin_ctz(mask);
            char msg[96] = "?", file[96] = "?";
            uint32_t aline = 0;
            const int32_t *argv = m->call_args + in->ops[2].imm;
            size_t lb = k->local_bytes;
            uint8_t *lbase = b->local + ((size_t)w->index * 32 + (size_t)l) * lb;
            uint64_t p0 = 0, p1 = 0;
            if (in->ops[2].reg >= 3 && c->frame + (size_t)argv[0] + 8 <= lb &&
                c->frame + (size_t)argv[1] + 8 <= lb && c->frame + (size_t)argv[2] + 4 <= lb) {
                memcpy(&p0, lbase + c->frame + argv[0], 8);
                memcpy(&p1, lbase + c->frame + argv[1], 8);
                memcpy(&aline, lbase + c->frame + argv[2], 4);
                read_cstr(c, p0, msg, sizeof(msg), l);
                read_cstr(c, p1, file, sizeof(file), l);
            }
            return fail(c, in, PTX_ERR_ASSERT, "device-side assertion '%s' failed at %s:%u",
                        msg, file, aline);
        }
        /* Built in: the lanes (mask) call it and the group goes on together. */
        if (callee->builtin == PTX_BUILTIN_MALLOC || callee->builtin == PTX_BUILTIN_FREE)
            return builtin_heap(c, in, callee, mask);
        if (callee->builtin != PTX_BUILTIN_VPRINTF)
            return fail(c, in, PTX_ERR_LAUNCH, "call to %s, which has no body", callee->name);
        int rc = 0;
        LANES(if (rc == 0) rc = builtin_vprintf(c, in, l));
        return rc < 0 ? rc : X_NEXT;
    }
    uint32_t bad = 0;
    LANES(if (w->depth[l] >= PTX_MAX_CALL_DEPTH) bad = 1);
    if (bad || k->reg_base[fi] < 0)
        return fail(c, in, PTX_ERR_LAUNCH, "call stack overflow");
    if (k->indirect) {
        /* Every function has one frame and one register range: a function already active in a
         * lane cannot be entered again. */
        LANES({
            if (in->func == fi)
                bad = 1;
            for (unsigned d = 0; d < w->depth[l]; d++)
                if (m->code[w->retpc[d][l] - 1].func == fi)
                    bad = 1;
        });
        if (bad)
            return fail(c, in, PTX_ERR_UNSUPPORTED, "recursive call of %s (recursion is not supported)",
                        callee->name);
    }
    size_t cframe = k->frame_base[fi];
    size_t lb = k->local_bytes;
    /* Copy arguments from the caller's frame into the callee's parameters. */
    const int32_t *argv = m->call_args + in->ops[2].imm;
    for (size_t a = 0; a < callee->nparams; a++) {
        size_t from = c->frame + (size_t)argv[a];
        size_t to = cframe + callee->param_off[a];
        size_t n = callee->param_size[a];
        if (from + n > lb || to + n > lb)
            return fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "call argument out of frame");
        LANES({ uint8_t *base = b->local + ((size_t)w->index * 32 + (size_t)l) * lb;
                memmove(base + to, base + from, n); });
    }
    LANES({ w->retpc[w->depth[l]][l] = pc + 1; w->depth[l]++; });
    if (mask != g->mask) {
        add_group(w, callee->first, mask);
        g->mask &= ~mask;
        g->pc = pc + 1;
    } else {
        g->pc = callee->first;
    }
    return X_SCHED;
}

int ptx_x_ret(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_block *b = c->b;
    ptx_warp *w = c->w;
    const ptx_kernel *k = c->k;
    const ptx_module *m = c->m;
    const ptx_insn *in = x->in;
    ptx_group *g = c->g;
    uint32_t top = 0;
    LANES(if (w->depth[l] == 0) top |= 1u << l);
    uint32_t ret = mask & ~top;
    g->mask &= ~mask;            /* exiting and returning lanes leave this group */
    g->pc = pc_of(c, x) + 1;
    const ptx_func *self = &m->funcs[in->func];
    size_t lb = k->local_bytes;
    for (uint32_t mm = ret; mm; mm &= mm - 1) {
        int l = __builtin_ctz(mm);
        uint32_t rp = w->retpc[--w->depth[l]][l];
        const ptx_insn *call = &m->code[rp - 1];
        if (self->has_retval && call->ops[1].kind == OPK_SYM) {
            size_t from = c->frame + self->retval_off;
            size_t to = k->frame_base[call->func] + (size_t)call->ops[1].sym;
            size_t n = self->retval_size;
            if (from + n <= lb && to + n <= lb) {
                uint8_t *base = b->local + ((size_t)w->index * 32 + (size_t)l) * lb;
                memmove(base + to, base + from, n);
            }
        }
        add_group(w, rp, 1u << l);
    }
    return X_SCHED;
}

/* A barrier's id or thread count: the first lane's (they are uniform). */
static uint64_t bar_operand(exec_ctx *c, const ptx_operand *o, uint32_t mask)
{
    if (o->kind == OPK_IMM)
        return (uint64_t)o->imm;
    gen_state gs;
    gen_init(&gs, c);
    uint64_t t[32];
    return gen_src(&gs, o, t)[__builtin_ctz(mask)];
}

int ptx_x_bar(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_block *b = c->b;
    ptx_warp *w = c->w;
    const ptx_insn *in = x->in;
    /* Operands: [d,] a (barrier), [b (thread count),] [{!}c (bar.red predicate)]. */
    uint64_t t0[32];
    int red = in->mode != BAR_SYNC && in->mode != BAR_ARRIVE;
    int ai = red ? 1 : 0, nid = in->nops - (red ? 2 : 0);
    unsigned id = (unsigned)bar_operand(c, &in->ops[ai], mask) % PTX_NUM_BARRIERS;
    unsigned count = 0;
    if (nid == 2)
        count = (unsigned)bar_operand(c, &in->ops[ai + 1], mask);
    if (in->mode == BAR_ARRIVE) {
        b->bar_arrived[id] += 32; /* hardware counts whole warps */
        return X_NEXT;
    }
    w->bar_id = id;
    w->bar_count = count;
    if (red) {
        const ptx_operand *po = &in->ops[in->nops - 1];
        gen_state gs;
        gen_init(&gs, c);
        const uint64_t *P = gen_src(&gs, po, t0);
        uint32_t pm = 0;
        for (int l = 0; l < 32; l++)
            pm |= (uint32_t)(P[l] & 1) << l;
        pm = (po->neg ? ~pm : pm) & mask;
        b->red_popc += (uint64_t)__builtin_popcount(pm);
        b->red_and &= pm == mask;
        b->red_or |= pm != 0;
        w->red_pending = 1;
        w->red_mode = in->mode;
        w->red_mask = mask;
        int r = in->ops[0].reg;
        w->red_off = (size_t)(c->R - w->regs) + (size_t)c->f->xroff[r];
        w->red_kind = c->f->xkind[r];
    }
    c->g->pc = pc_of(c, x) + 1;
    return X_BARRIER;
}

/* ---- textures and surfaces ------------------------------------------------------------------- */

/* Element e of a coordinate or value operand for lane l (0 past a vector's end). */
static uint64_t tex_elem(gen_state *gs, const ptx_operand *o, int e, int l)
{
    if (o->kind == OPK_VEC)
        return e < o->nvec ? gen_row_of(gs, o->vec[e], 0)[l] : 0;
    if (e > 0)
        return 0;
    return o->kind == OPK_IMM ? (uint64_t)o->imm : gen_row_of(gs, o->reg, 0)[l];
}

static float tex_f32(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int tex_unavailable(exec_ctx *c, const ptx_insn *in)
{
    return ptx_exec_fail(c, in, PTX_ERR_UNSUPPORTED,
                         "texture and surface instructions need a driver that provides them");
}

int ptx_x_tex(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    const ptx_insn *in = x->in;
    const ptx_memory *mem = c->b->memory;
    if (!mem->tex_fetch)
        return tex_unavailable(c, in);
    gen_state gs;
    gen_init(&gs, c);
    const uint64_t *H = gen_row_of(&gs, in->ops[1].reg, 0);
    const ptx_operand *co = &in->ops[2];
    int geom = in->mode, arr = geom == PTX_TEX_A1D || geom == PTX_TEX_A2D || geom == PTX_TEX_ACUBE;
    uint32_t res[4][32];
    for (uint32_t m = mask; m; m &= m - 1) {
        int l = __builtin_ctz(m);
        ptx_tex_request q;
        memset(&q, 0, sizeof(q));
        q.geom = geom;
        q.int_coords = in->type2 == T_S32;
        q.lod_kind = in->op == OP_TEX ? in->cmp : PTX_TEX_LOD_NONE;
        q.gather = in->op == OP_TLD4 ? in->cmp : -1;
        if (arr)
            q.layer = (int32_t)tex_elem(&gs, co, 0, l);
        uint64_t v[3];
        for (int e = 0; e < 3; e++)
            v[e] = tex_elem(&gs, co, arr + e, l);
        q.x = tex_f32(v[0]), q.y = tex_f32(v[1]), q.z = tex_f32(v[2]);
        q.ix = (int32_t)v[0], q.iy = (int32_t)v[1], q.iz = (int32_t)v[2];
        if (q.lod_kind == PTX_TEX_LOD_LEVEL) {
            q.lod = tex_f32(tex_elem(&gs, &in->ops[3], 0, l));
        } else if (q.lod_kind == PTX_TEX_LOD_GRAD) {
            for (int e = 0; e < 3; e++) {
                q.dpdx[e] = tex_f32(tex_elem(&gs, &in->ops[3], e, l));
                q.dpdy[e] = tex_f32(tex_elem(&gs, &in->ops[4], e, l));
            }
        }
        uint32_t out[4] = {0, 0, 0, 0};
        int rc = mem->tex_fetch(mem->ctx, H[l], &q, out);
        if (rc != PTX_OK)
            return ptx_exec_fail(c, in, rc, "%s through an invalid texture object 0x%llx",
                                 in->op == OP_TLD4 ? "tld4" : "tex", (unsigned long long)H[l]);
        for (int e = 0; e < 4; e++)
            res[e][l] = out[e];
    }
    /* Written once every lane has read its operands (a destination may be a source), through
     * a row cache of their own (sources and destinations together can exceed one). */
    gen_init(&gs, c);
    for (int e = 0; e < 4; e++) {
        uint64_t *D = gen_row_of(&gs, in->ops[0].vec[e], 1);
        LANES(D[l] = res[e][l]);
    }
    gen_flush(&gs);
    return X_NEXT;
}

int ptx_x_surf(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    const ptx_insn *in = x->in;
    const ptx_memory *mem = c->b->memory;
    if (!mem->surf_access)
        return tex_unavailable(c, in);
    int st = in->op == OP_SUST;
    gen_state gs;
    gen_init(&gs, c);
    const ptx_operand *ho = &in->ops[st ? 0 : 1], *co = &in->ops[st ? 1 : 2], *vo = &in->ops[st ? 2 : 0];
    const uint64_t *H = gen_row_of(&gs, ho->reg, 0);
    int geom = in->mode, arr = geom == PTX_TEX_A1D || geom == PTX_TEX_A2D;
    int bytes = ptx_type_bytes(in->type), n = in->vec;
    uint64_t res[4][32];
    for (uint32_t m = mask; m; m &= m - 1) {
        int l = __builtin_ctz(m);
        int32_t xyz[3] = {0, 0, 0};
        for (int e = 0; e < 3; e++)
            xyz[e] = (int32_t)tex_elem(&gs, co, arr + e, l);
        if (arr) {
            /* layer first: x (and y for a2d), then the layer as z */
            xyz[geom == PTX_TEX_A1D ? 1 : 2] = (int32_t)tex_elem(&gs, co, 0, l);
            if (geom == PTX_TEX_A1D)
                xyz[2] = xyz[1], xyz[1] = 0;
        }
        uint8_t data[32];
        memset(data, 0, sizeof(data));
        if (st)
            for (int e = 0; e < n; e++) {
                uint64_t v = tex_elem(&gs, vo, e, l);
                memcpy(data + e * bytes, &v, (size_t)bytes);
            }
        int rc = mem->surf_access(mem->ctx, H[l], geom, xyz[0], xyz[1], xyz[2], data,
                                  (unsigned)(bytes * n), st, in->cmp);
        if (rc != PTX_OK)
            return ptx_exec_fail(c, in, rc, "%s at (%d, %d, %d) of surface object 0x%llx: invalid "
                                 "object, or out of range", st ? "sust" : "suld", xyz[0], xyz[1],
                                 xyz[2], (unsigned long long)H[l]);
        if (!st)
            for (int e = 0; e < n; e++) {
                uint64_t v = 0;
                memcpy(&v, data + e * bytes, (size_t)bytes);
                res[e][l] = v;
            }
    }
    if (st)
        return X_NEXT;
    gen_init(&gs, c); /* as in ptx_x_tex */
    for (int e = 0; e < n; e++) {
        uint64_t *D = gen_row_of(&gs, vo->kind == OPK_VEC ? vo->vec[e] : vo->reg, 1);
        LANES(D[l] = res[e][l]);
    }
    gen_flush(&gs);
    return X_NEXT;
}

int ptx_x_texquery(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    const ptx_insn *in = x->in;
    const ptx_memory *mem = c->b->memory;
    if (!mem->tex_query)
        return tex_unavailable(c, in);
    gen_state gs;
    gen_init(&gs, c);
    const uint64_t *H = gen_row_of(&gs, in->ops[1].reg, 0);
    uint64_t res[32];
    for (uint32_t m = mask; m; m &= m - 1) {
        int l = __builtin_ctz(m);
        int32_t v = 0;
        int rc = mem->tex_query(mem->ctx, H[l], in->op == OP_SUQ, in->mode, &v);
        if (rc != PTX_OK)
            return ptx_exec_fail(c, in, rc, "%s of an invalid %s object 0x%llx",
                                 in->op == OP_SUQ ? "suq" : "txq", in->op == OP_SUQ ? "surface" : "texture",
                                 (unsigned long long)H[l]);
        res[l] = (uint32_t)v;
    }
    uint64_t *D = gen_row_of(&gs, in->ops[0].reg, 1);
    LANES(D[l] = res[l]);
    gen_flush(&gs);
    return X_NEXT;
}

/* Writes v to the lanes in mask of the register at byte offset off of a warp's file. */
static void write_lanes(uint8_t *row, int kind, uint32_t mask, uint64_t v)
{
    switch (kind) {
    case XK_64: {
        uint64_t *r = (uint64_t *)(void *)row;
        LANES(r[l] = v);
        break;
    }
    case XK_32: {
        uint32_t *r = (uint32_t *)(void *)row;
        LANES(r[l] = (uint32_t)v);
        break;
    }
    default: {
        uint32_t m;
        memcpy(&m, row, 4);
        m = (v & 1) ? m | mask : m & ~mask;
        memcpy(row, &m, 4);
        break;
    }
    }
}

/* ---- warp scheduling ----------------------------------------------------------------------- */

/* Runs one lane group from its pc until it must be rescheduled (divergence, a call or return,
 * arriving at another group's pc), reaches a barrier, uses up its slice (c->slice), or fails;
 * with to_leader, also when it arrives at a leader otherwise (RUN_LEADER: compiled code goes on
 * from there). The loop does nothing but dispatch: every instruction's work is its handler's. */
static int run_group(exec_ctx *c, ptx_group *g, uint32_t other_min, int to_leader)
{
    const ptx_xinsn *xc = c->m->xcode;
    const uint8_t *R = c->R;
    uint32_t pc = g->pc;
    uint32_t gmask = g->mask;
    uint32_t slice = c->slice;
    int rc;
    c->g = g;
    c->icount = 0;
    for (;;) {
        const ptx_xinsn *x = &xc[pc];
        uint32_t mask = gmask;
        c->icount++;
        if (x->guard >= 0) {
            uint32_t p;
            memcpy(&p, R + x->guard, 4);
            mask &= p ^ x->guard_xor;
            if (!mask)
                goto advance;
        }
        rc = x->fn(c, x, mask);
        if (__builtin_expect(rc != X_NEXT, 0)) {
            if (rc == X_JUMP) {
                pc = c->jump;
                goto arrive;
            }
            if (rc == X_SCHED) {
                rc = RUN_SCHED;
                goto out;
            }
            if (rc == X_BARRIER) {
                rc = RUN_BARRIER;
                goto out;
            }
            goto out; /* an error */
        }
    advance:
        pc++;
        if (!xc[pc].leader)
            continue;
    arrive:
        /* At a leader: the same checks, in the same order, as compiled code (ptx_jit_cg.c). */
        slice--;
        if (pc >= other_min || slice == 0 || to_leader) {
            g->pc = pc;
            rc = pc >= other_min ? RUN_SCHED : slice == 0 ? RUN_YIELD : RUN_LEADER;
            goto out;
        }
    }
out:
    c->b->lane_instructions += c->icount * (uint64_t)__builtin_popcount(gmask);
    c->icount = 0;
    c->slice = slice;
    return rc;
}

/* Runs a warp until it finishes, reaches a barrier or fails. */
static int run_warp(ptx_block *b, ptx_warp *w)
{
    const ptx_kernel *k = b->kernel;
    const ptx_module *m = b->module;
    const ptx_insn *code = m->code;
    exec_ctx c = {.b = b, .w = w, .k = k, .m = m};
    while (w->ngroups > 0) {
        /* Pick the lowest pc; merge equal pcs. */
        int gi = 0;
        for (int i = 1; i < w->ngroups; i++)
            if (w->groups[i].pc < w->groups[gi].pc)
                gi = i;
        for (int i = 0; i < w->ngroups; i++) {
            if (i != gi && w->groups[i].pc == w->groups[gi].pc) {
                w->groups[gi].mask |= w->groups[i].mask;
                remove_group(w, i);
                if (gi == w->ngroups)
                    gi = i;
                i = -1;
            }
        }
        uint32_t other_min = UINT32_MAX;
        for (int i = 0; i < w->ngroups; i++)
            if (i != gi && w->groups[i].pc < other_min)
                other_min = w->groups[i].pc;
        /* The running group leaves the table while it runs, so that groups it splits off
         * (add_group) merge only with the others; it goes back in, merging, afterwards. */
        ptx_group g = w->groups[gi];
        remove_group(w, gi);
        int fi = code[g.pc].func;
        c.f = &m->funcs[fi];
        c.R = w->regs + k->xbase[fi];
        c.frame = k->frame_base[fi];
        /* Compiled code runs the stretch where it can; the interpreter where it cannot, up to the
         * next leader, from where compiled code goes on. One time slice for both. */
        ptx_jit_fn jf = b->jit ? b->jit->fn[fi] : NULL;
        int rc;
        c.slice = PTX_WARP_SLICE;
        for (;;) {
            if (jf) {
                uint32_t gmask = g.mask;
                c.g = &g;
                c.icount = 0;
                rc = jf(&c, &g, other_min, c.R, m->xcode, &ptx_jit_runtime);
                b->lane_instructions += c.icount * (uint64_t)__builtin_popcount(gmask);
                c.icount = 0;
                if (rc != RUN_NOT_HERE)
                    break;
            }
            rc = run_group(&c, &g, other_min, jf != NULL);
            if (rc != RUN_LEADER)
                break;
        }
        if (rc < 0)
            return rc;
        if (b->max_lane_instructions && b->lane_instructions > b->max_lane_instructions)
            return fail(&c, NULL, PTX_ERR_BUDGET, "more than %llu lane instructions",
                        (unsigned long long)b->max_lane_instructions);
        add_group(w, g.pc, g.mask);
        if (rc == RUN_BARRIER) {
            w->at_barrier = 1;
            return 0;
        }
        if (rc == RUN_YIELD)
            return 0;
    }
    w->done = 1;
    return 0;
}

void ptx_exec_init_regs(const ptx_kernel *k, uint8_t *regs)
{
    const ptx_module *m = k->module;
    for (size_t fi = 0; fi < m->nfuncs; fi++) {
        const ptx_func *f = &m->funcs[fi];
        if (k->reg_base[fi] < 0)
            continue;
        uint8_t *base = regs + k->xbase[fi];
        for (size_t i = 0; i < f->nxconst; i++) {
            const ptx_xconst *xc = &f->xconst[i];
            uint8_t *row = base + xc->off;
            if (xc->kind == XK_64) {
                for (int l = 0; l < 32; l++)
                    memcpy(row + 8 * l, &xc->value, 8);
            } else {
                uint32_t v = (uint32_t)xc->value;
                for (int l = 0; l < 32; l++)
                    memcpy(row + 4 * l, &v, 4);
            }
        }
    }
}

void ptx_exec_block_begin(ptx_block *b)
{
    const ptx_kernel *k = b->kernel;
    const ptx_module *m = b->module;
    uint32_t entry = m->funcs[k->func].first;
    b->status = PTX_OK;
    b->msg[0] = '\0';
    unsigned tx = 0, ty = 0, tz = 0;
    for (unsigned wi = 0; wi < b->nwarps; wi++) {
        ptx_warp *w = &b->warps[wi];
        w->regs = b->regs + (size_t)wi * k->xbytes;
        w->index = wi;
        w->ngroups = 1;
        w->at_barrier = 0;
        w->done = 0;
        w->cache_lo = w->cache_hi = 0;
        w->cache_host = NULL;
        uint32_t lanes = 0;
        for (int l = 0; l < 32; l++) {
            unsigned t = wi * 32 + (unsigned)l;
            if (t < b->nthreads)
                lanes |= 1u << l;
            /* thread t's coordinates, counted on rather than divided */
            w->tid[0][l] = tx;
            w->tid[1][l] = ty;
            w->tid[2][l] = tz;
            if (++tx == b->block[0]) {
                tx = 0;
                if (++ty == b->block[1]) {
                    ty = 0;
                    tz++;
                }
            }
            w->depth[l] = 0;
        }
        w->groups[0].pc = entry;
        w->groups[0].mask = lanes;
        w->red_pending = 0;
    }
    b->red_popc = 0;
    b->red_and = 1;
    b->red_or = 0;
    memset(b->bar_arrived, 0, sizeof(b->bar_arrived));
}

int ptx_exec_block_round(ptx_block *b)
{
    /* Each warp runs its turn, then counts: later warps' turns cannot change it. Barriers
     * are tallied for the ids some waiting warp is at (touched): the waiting threads there
     * and the largest thread count asked. */
    int alive = 0, waiting = 0;
    unsigned touched = 0, arrived[PTX_NUM_BARRIERS], count[PTX_NUM_BARRIERS];
    for (unsigned wi = 0; wi < b->nwarps; wi++) {
        ptx_warp *w = &b->warps[wi];
        if (!w->done && !w->at_barrier) {
            int rc = run_warp(b, w);
            if (rc < 0)
                return rc;
        }
        if (w->done)
            continue;
        alive++;
        if (!w->at_barrier)
            continue;
        waiting++;
        unsigned id = w->bar_id;
        if (!(touched >> id & 1)) {
            touched |= 1u << id;
            arrived[id] = 0;
            count[id] = 0;
        }
        arrived[id] += 32;
        if (w->bar_count > count[id])
            count[id] = w->bar_count;
    }
    if (!alive)
        return 1;
    /* A barrier with a thread count releases once that many threads have arrived (waiting
     * warps plus bar.arrive). Any
     * barrier releases when every live warp waits: that is bar.sync's "all threads of the
     * block", and it keeps a count that exited threads can no longer reach from deadlocking
     * the block. */
    int release_all = waiting == alive;
    unsigned release_ids = 0;
    for (unsigned t = touched; t; t &= t - 1) {
        unsigned id = (unsigned)__builtin_ctz(t);
        if (count[id] > 0 && arrived[id] + b->bar_arrived[id] >= count[id])
            release_ids |= 1u << id;
    }
    if (!release_all && !release_ids)
        return 0; /* some warp yielded its turn before reaching a barrier */
    for (unsigned wi = 0; wi < b->nwarps; wi++) {
        ptx_warp *w = &b->warps[wi];
        if (w->done || !w->at_barrier || !(release_all || (release_ids >> w->bar_id & 1)))
            continue;
        w->at_barrier = 0;
        if (w->red_pending) {
            uint64_t v = w->red_mode == BAR_RED_POPC ? b->red_popc
                       : w->red_mode == BAR_RED_AND ? (uint64_t)b->red_and : (uint64_t)b->red_or;
            write_lanes(w->regs + w->red_off, w->red_kind, w->red_mask, v);
            w->red_pending = 0;
        }
    }
    for (unsigned id = 0; id < PTX_NUM_BARRIERS; id++)
        if (release_all || (release_ids >> id & 1))
            b->bar_arrived[id] = 0;
    b->red_popc = 0;
    b->red_and = 1;
    b->red_or = 0;
    return 0;
}

int ptx_exec_block(ptx_block *b)
{
    ptx_exec_block_begin(b);
    for (;;) {
        int rc = ptx_exec_block_round(b);
        if (rc != 0)
            return rc < 0 ? rc : PTX_OK;
    }
}
