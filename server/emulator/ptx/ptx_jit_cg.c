/* ptx_jit_cg: LLVM IR for a kernel's functions (see ptx_jit.h).
 *
 * One LLVM function per PTX function reachable from the kernel:
 *
 *   i32 f(exec_ctx *c, ptx_group *g, i32 other_min, i8 *R, ptx_xinsn *xcode, ptx_jit_rt *rt)
 *
 * It starts at g->pc through a switch over the block leaders (branch targets, the instruction
 * after a branch, call, return, exit or barrier, the function's entry) and runs blocks until the
 * group must go back to the scheduler, exactly where run_group would: a divergent branch, a
 * call, return or exit, a barrier, reaching another group's pc (other_min), or an error. A
 * uniform branch is a jump inside the function, so a loop whose lanes agree stays in native
 * code; every jump into a leader counts against the warp's time slice.
 *
 * Lane-wise instructions (arithmetic, conversions, comparisons, selection, predicate logic,
 * moves) are compiled from the form the interpreter chose for them (ptx_xinsn.xop, operands as
 * register-row offsets) with the same IEEE operations as the fast handlers (no fast-math, no
 * contraction). A run of them is a segment, compiled once for 8 lanes (one AVX2 register per
 * 32-bit row slice) inside a loop over the warp's 4 lane chunks: each chunk loads the slices of
 * the rows it reads, keeps them in machine registers through the segment and stores what it
 * writes under its lanes' mask. 8-lane vectors are what the target computes on, so the IR stays
 * small and quick to compile. Every other instruction (memory, warp-wide and control operations,
 * what the JIT does not compile) is a call to its interpreter handler through xcode, between
 * segments, on the register file as it is in memory. */
#include "ptx_jit.h"
#include "ptx_xops.h"

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cg {
    LLVMContextRef C;
    LLVMModuleRef M;
    LLVMBuilderRef B;
    LLVMTypeRef i1, i8, i32, i64, f32, f64, p8, v8i1, v8i32, v8i64, v8f32, v8f64;
    LLVMTypeRef fn_type, handler_type, rowfn_type, range_type, gather_type, scatter_type;
    unsigned tbaa_kind;
    LLVMValueRef tbaa_reg, tbaa_mem, tbaa_ctx;
    /* The function being built. */
    const ptx_module *m;
    const ptx_kernel *k;
    const ptx_func *f;
    LLVMValueRef fn, c, g, other_min, R, xcode, rt;
    LLVMValueRef gmask, icount, budget;
    LLVMValueRef ch;                   /* the lane chunk inside a segment (i64), else NULL */
    LLVMValueRef gmask8;               /* the chunk's bits of the group mask (i8) */
    /* Inside a segment, the chunk's current value of each register it wrote (SSA): rows as
     * <8 x i32> / <8 x i64>, predicates as their 8 bits (i8). Stored once, at the segment's end,
     * for the registers live after it. */
    struct seg_val { int32_t off; int reg; int kind; LLVMValueRef v; } *vals;
    size_t nvals, vals_cap;
    /* The segment's memory accesses, grouped by address register, space and guard: each group's
     * range is checked once, before the chunk loop (see seg_memory). */
    struct mem_group {
        int32_t aoff;          /* address row */
        int space;             /* JSP_* */
        int32_t guard;         /* guard predicate offset or -1 */
        uint32_t guard_xor;
        int64_t imm_lo, imm_hi;  /* immediate offsets: smallest, largest + access length */
        int align;             /* largest access length (all powers of two) */
        int bytes;             /* the element size of its accesses (one per group) */
        int loads;             /* it has loads (their lanes' pattern is checked) */
        LLVMValueRef host, lo; /* from the prologue: host address of device address lo */
        LLVMValueRef any_off;  /* an active lane's offset (for chunks without active lanes) */
    } groups[8];
    int ngroups;
    LLVMValueRef scratch_off, scratch_val; /* stack rows for the scatter helper */
    /* Per group and chunk (index 4 * group + chunk), filled by the prologue: the lowest active
     * lane's base address (any_off when none is active), and for groups with loads whether the
     * active lanes read one address (i8 0/1). */
    LLVMValueRef chunk_amin, chunk_uni;
    uint64_t *live;                    /* scratch bitset of nregs */
    LLVMValueRef w, b;                 /* c->w, c->b, loaded at entry */
    LLVMBasicBlockRef *arrive, *body;  /* per instruction of f (NULL: not a leader) */
    LLVMBasicBlockRef exit_rc;         /* phi rc: store icount, return rc */
    LLVMValueRef exit_phi;
    LLVMBasicBlockRef h_out;           /* phi handler rc (not X_NEXT): what run_group returns */
    LLVMValueRef h_phi;
    LLVMBasicBlockRef stop;            /* phi pc: another group's pc or the end of the slice */
    LLVMValueRef stop_phi;
    char *why;
    size_t whylen;
} cg;

#define OFF(type, field) ((uint64_t)offsetof(type, field))

static int has_dest(const ptx_insn *in);
static int emit_mem(cg *g, const ptx_xinsn *x, LLVMValueRef guard8);

/* Address kinds of the memory instructions a segment can hold. */
enum { JSP_SH32, JSP_SH64, JSP_GLOBAL, JSP_GENERIC };

/* ---- small builders ----------------------------------------------------------------------- */

static LLVMValueRef ci32(cg *g, uint64_t v)
{
    return LLVMConstInt(g->i32, v, 0);
}

static LLVMValueRef ci64(cg *g, uint64_t v)
{
    return LLVMConstInt(g->i64, v, 0);
}

static LLVMValueRef gep8(cg *g, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildGEP2(g->B, g->i8, base, &off, 1, "");
}

static LLVMValueRef gep8c(cg *g, LLVMValueRef base, uint64_t off)
{
    return gep8(g, base, ci64(g, off));
}

static void tag(cg *g, LLVMValueRef inst, LLVMValueRef tbaa)
{
    if (tbaa)
        LLVMSetMetadata(inst, g->tbaa_kind, tbaa);
}

static LLVMValueRef load(cg *g, LLVMTypeRef t, LLVMValueRef p8, unsigned align, LLVMValueRef tbaa)
{
    LLVMValueRef p = LLVMBuildBitCast(g->B, p8, LLVMPointerType(t, 0), "");
    LLVMValueRef v = LLVMBuildLoad2(g->B, t, p, "");
    LLVMSetAlignment(v, align);
    tag(g, v, tbaa);
    return v;
}

static void store(cg *g, LLVMValueRef v, LLVMValueRef p8, unsigned align, LLVMValueRef tbaa)
{
    LLVMValueRef p = LLVMBuildBitCast(g->B, p8, LLVMPointerType(LLVMTypeOf(v), 0), "");
    LLVMValueRef s = LLVMBuildStore(g->B, v, p);
    LLVMSetAlignment(s, align);
    tag(g, s, tbaa);
}

static LLVMValueRef ctx_field(cg *g, LLVMValueRef base, uint64_t off, LLVMTypeRef t)
{
    return load(g, t, gep8c(g, base, off), 1, g->tbaa_ctx);
}

static LLVMValueRef splat(cg *g, LLVMValueRef scalar, unsigned n)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), n);
    LLVMValueRef v = LLVMBuildInsertElement(g->B, LLVMGetUndef(vt), scalar, ci32(g, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->i32, n));
    return LLVMBuildShuffleVector(g->B, v, LLVMGetUndef(vt), zeros, "");
}

static LLVMValueRef const_splat(LLVMTypeRef vt, LLVMValueRef c, unsigned n)
{
    LLVMValueRef e[32];
    for (unsigned i = 0; i < n; i++)
        e[i] = c;
    (void)vt;
    return LLVMConstVector(e, n);
}

static LLVMValueRef intrinsic(cg *g, const char *name, LLVMTypeRef *over, size_t nover,
                              LLVMValueRef *args, unsigned nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->M, id, over, nover);
    LLVMTypeRef ft = LLVMIntrinsicGetType(g->C, id, over, nover);
    return LLVMBuildCall2(g->B, ft, fn, args, nargs, "");
}

static LLVMValueRef intr1(cg *g, const char *name, LLVMValueRef a)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    return intrinsic(g, name, &t, 1, &a, 1);
}

/* ---- lane chunks of register rows ----------------------------------------------------------- */

/* Inside a segment g->ch is the chunk index (i64, 0..3): lanes 8*ch .. 8*ch+7. */

static const ptx_xconst *const_row(cg *g, int32_t off)
{
    for (size_t i = 0; i < g->f->nxconst; i++)
        if (g->f->xconst[i].off == off)
            return &g->f->xconst[i];
    return NULL;
}

/* Address of the chunk's slice of the row at off (32 or 64 bytes in). */
static LLVMValueRef slice_ptr(cg *g, int32_t off, int wide)
{
    LLVMValueRef o = LLVMBuildAdd(g->B, ci64(g, (uint64_t)off),
                                  LLVMBuildMul(g->B, g->ch, ci64(g, wide ? 64 : 32), ""), "");
    return gep8(g, g->R, o);
}

static struct seg_val *seg_lookup(cg *g, int32_t off)
{
    for (size_t i = 0; i < g->nvals; i++)
        if (g->vals[i].off == off)
            return &g->vals[i];
    return NULL;
}

static void seg_set(cg *g, int32_t off, int reg, int kind, LLVMValueRef v)
{
    struct seg_val *e = seg_lookup(g, off);
    if (!e) {
        if (g->nvals == g->vals_cap) {
            size_t cap = g->vals_cap ? g->vals_cap * 2 : 32;
            struct seg_val *p = realloc(g->vals, cap * sizeof(*p));
            if (!p) {
                snprintf(g->why, g->whylen, "out of memory");
                return;
            }
            g->vals = p;
            g->vals_cap = cap;
        }
        e = &g->vals[g->nvals++];
        e->off = off;
    }
    e->reg = reg;
    e->kind = kind;
    e->v = v;
}

static LLVMValueRef s32(cg *g, int32_t off)
{
    struct seg_val *e = seg_lookup(g, off);
    if (e)
        return e->v;
    const ptx_xconst *k = const_row(g, off);
    if (k)
        return const_splat(g->v8i32, LLVMConstInt(g->i32, (uint32_t)k->value, 0), 8);
    return load(g, g->v8i32, slice_ptr(g, off, 0), 32, g->tbaa_reg);
}

static LLVMValueRef s64(cg *g, int32_t off)
{
    struct seg_val *e = seg_lookup(g, off);
    if (e)
        return e->v;
    const ptx_xconst *k = const_row(g, off);
    if (k)
        return const_splat(g->v8i64, LLVMConstInt(g->i64, k->value, 0), 8);
    return load(g, g->v8i64, slice_ptr(g, off, 1), 64, g->tbaa_reg);
}

static LLVMValueRef sf32(cg *g, int32_t off)
{
    return LLVMBuildBitCast(g->B, s32(g, off), g->v8f32, "");
}

static LLVMValueRef sf64(cg *g, int32_t off)
{
    return LLVMBuildBitCast(g->B, s64(g, off), g->v8f64, "");
}

static LLVMValueRef pred_word(cg *g, int32_t off)
{
    return load(g, g->i32, gep8c(g, g->R, (uint64_t)off), 4, g->tbaa_reg);
}

/* The chunk's 8 bits of a 32-bit lane mask, as an i8. */
static LLVMValueRef chunk_bits(cg *g, LLVMValueRef word)
{
    LLVMValueRef sh = LLVMBuildTrunc(g->B, LLVMBuildMul(g->B, g->ch, ci64(g, 8), ""), g->i32, "");
    return LLVMBuildTrunc(g->B, LLVMBuildLShr(g->B, word, sh, ""), g->i8, "");
}

/* The chunk's bits of the predicate at off (i8). */
static LLVMValueRef pbits(cg *g, int32_t off)
{
    struct seg_val *e = seg_lookup(g, off);
    return e ? e->v : chunk_bits(g, pred_word(g, off));
}

/* Lane l of the result is bit l of bits8. Built as a vector comparison: a bitcast of the i8 to
 * <8 x i1> is lowered bit by bit on targets without mask registers (AVX2). */
static LLVMValueRef bits_vec(cg *g, LLVMValueRef bits8)
{
    LLVMValueRef e[8];
    for (int i = 0; i < 8; i++)
        e[i] = LLVMConstInt(g->i32, 1u << i, 0);
    LLVMValueRef bitv = LLVMConstVector(e, 8);
    LLVMValueRef w = splat(g, LLVMBuildZExt(g->B, bits8, g->i32, ""), 8);
    return LLVMBuildICmp(g->B, LLVMIntNE, LLVMBuildAnd(g->B, w, bitv, ""), LLVMConstNull(g->v8i32), "");
}

/* All 8 lanes of a comparison true (i1). */
static LLVMValueRef all8(cg *g, LLVMValueRef v1)
{
    return LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildBitCast(g->B, v1, g->i8, ""), LLVMConstInt(g->i8, 0xff, 0), "");
}

/* The chunk's slice of the destination row takes v (8 x 32 or 64 bits): in the segment's values,
 * under the instruction's guard bits when it has a guard (NULL: none). Lanes outside the group
 * mask are left alone when the segment stores its results. */
static void put_slice(cg *g, const ptx_xinsn *x, LLVMValueRef v, LLVMValueRef guard8)
{
    LLVMTypeRef et = LLVMGetElementType(LLVMTypeOf(v));
    int wide = et == g->i64 || et == g->f64;
    v = LLVMBuildBitCast(g->B, v, wide ? g->v8i64 : g->v8i32, "");
    if (guard8)
        v = LLVMBuildSelect(g->B, bits_vec(g, guard8), v, wide ? s64(g, x->d) : s32(g, x->d), "");
    seg_set(g, x->d, x->in->ops[0].reg, wide ? XK_64 : XK_32, v);
}

static void put_pred_bits(cg *g, const ptx_xinsn *x, LLVMValueRef bits8, LLVMValueRef guard8)
{
    if (guard8) {
        LLVMValueRef old = pbits(g, x->d);
        bits8 = LLVMBuildOr(g->B, LLVMBuildAnd(g->B, bits8, guard8, ""),
                            LLVMBuildAnd(g->B, old, LLVMBuildNot(g->B, guard8, ""), ""), "");
    }
    seg_set(g, x->d, x->in->ops[0].reg, XK_PRED, bits8);
}

/* At the segment's end, inside the chunk loop: the registers it wrote that are live after it go
 * to the register file, for the lanes of the group mask. */
static void seg_store(cg *g)
{
    for (size_t i = 0; i < g->nvals; i++) {
        struct seg_val *e = &g->vals[i];
        if (!(g->live[e->reg / 64] >> (e->reg % 64) & 1))
            continue;
        if (e->kind == XK_PRED) {
            LLVMValueRef p = gep8c(g, g->R, (uint64_t)e->off);
            LLVMValueRef old = load(g, g->i32, p, 4, g->tbaa_reg);
            LLVMValueRef sh = LLVMBuildTrunc(g->B, LLVMBuildMul(g->B, g->ch, ci64(g, 8), ""), g->i32, "");
            LLVMValueRef m = LLVMBuildShl(g->B, LLVMBuildZExt(g->B, g->gmask8, g->i32, ""), sh, "");
            LLVMValueRef nb = LLVMBuildShl(g->B, LLVMBuildZExt(g->B, e->v, g->i32, ""), sh, "");
            LLVMValueRef keep = LLVMBuildAnd(g->B, old, LLVMBuildNot(g->B, m, ""), "");
            store(g, LLVMBuildOr(g->B, keep, LLVMBuildAnd(g->B, nb, m, ""), ""), p, 4, g->tbaa_reg);
            continue;
        }
        int wide = e->kind == XK_64;
        LLVMValueRef p = slice_ptr(g, e->off, wide);
        LLVMValueRef old = load(g, wide ? g->v8i64 : g->v8i32, p, wide ? 64 : 32, g->tbaa_reg);
        store(g, LLVMBuildSelect(g->B, bits_vec(g, g->gmask8), e->v, old, ""), p, wide ? 64 : 32, g->tbaa_reg);
    }
}

static LLVMValueRef ci8(cg *g, uint64_t v)
{
    return LLVMConstInt(g->i8, v & 0xff, 0);
}

static LLVMValueRef cv8i32(cg *g, uint64_t v)
{
    return const_splat(g->v8i32, ci32(g, v), 8);
}

static LLVMValueRef cv8i64(cg *g, uint64_t v)
{
    return const_splat(g->v8i64, ci64(g, v), 8);
}

/* ---- control ---------------------------------------------------------------------------------- */

static LLVMBasicBlockRef new_block(cg *g, const char *name)
{
    return LLVMAppendBasicBlockInContext(g->C, g->fn, name);
}

static void add_icount(cg *g, uint64_t n)
{
    LLVMValueRef v = LLVMBuildLoad2(g->B, g->i64, g->icount, "");
    LLVMBuildStore(g->B, LLVMBuildAdd(g->B, v, ci64(g, n), ""), g->icount);
}

/* Leaves the function with rc, after setting g->pc (when pc >= 0). */
static void leave(cg *g, LLVMValueRef rc, int64_t pc)
{
    if (pc >= 0)
        store(g, ci32(g, (uint64_t)pc), gep8c(g, g->g, OFF(ptx_group, pc)), 4, g->tbaa_ctx);
    LLVMBasicBlockRef here = LLVMGetInsertBlock(g->B);
    LLVMAddIncoming(g->exit_phi, &rc, &here, 1);
    LLVMBuildBr(g->B, g->exit_rc);
}

/* Goes on at leader pc, through its arrival checks. */
static void go_to(cg *g, uint32_t pc)
{
    uint32_t i = pc - g->f->first;
    if (pc < g->f->first || i >= g->f->count || !g->arrive[i]) {
        leave(g, ci32(g, RUN_SCHED), pc); /* not a leader: let the scheduler resume it */
        return;
    }
    LLVMBuildBr(g->B, g->arrive[i]);
}

/* Calls the instruction's interpreter handler; on anything but X_NEXT the function returns what
 * run_group would (through the shared block h_out). Continues in a fresh block. */
static void call_handler(cg *g, uint32_t pc, LLVMValueRef mask32)
{
    /* A handler may read %clock: it sees the instructions run so far. */
    store(g, LLVMBuildLoad2(g->B, g->i64, g->icount, ""), gep8c(g, g->c, OFF(exec_ctx, icount)), 8,
          g->tbaa_ctx);
    LLVMValueRef xp = gep8c(g, g->xcode, (uint64_t)pc * sizeof(ptx_xinsn));
    LLVMValueRef fnp = load(g, LLVMPointerType(g->handler_type, 0), gep8c(g, xp, OFF(ptx_xinsn, fn)), 8,
                            g->tbaa_ctx);
    LLVMValueRef args[3] = {g->c, xp, mask32};
    LLVMValueRef rc = LLVMBuildCall2(g->B, g->handler_type, fnp, args, 3, "");
    LLVMBasicBlockRef next = new_block(g, "h_next");
    LLVMBasicBlockRef here = LLVMGetInsertBlock(g->B);
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, rc, ci32(g, X_NEXT), ""), next, g->h_out);
    LLVMAddIncoming(g->h_phi, &rc, &here, 1);
    LLVMPositionBuilderAtEnd(g->B, next);
}

/* The shared tails: h_out maps a handler's result to run_group's (X_JUMP: resume at c->jump;
 * X_SCHED, X_BARRIER: the handler set the group; negative: a failure, as it is); stop leaves at
 * the pc of its phi, because another group waits there or the slice is used up. */
static void build_tails(cg *g)
{
    LLVMPositionBuilderAtEnd(g->B, g->h_out);
    g->h_phi = LLVMBuildPhi(g->B, g->i32, "hrc");
    LLVMBasicBlockRef jump = new_block(g, "h_jump"), rest = new_block(g, "h_rest");
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, g->h_phi, ci32(g, X_JUMP), ""), jump, rest);
    LLVMPositionBuilderAtEnd(g->B, jump);
    LLVMValueRef target = ctx_field(g, g->c, OFF(exec_ctx, jump), g->i32);
    store(g, target, gep8c(g, g->g, OFF(ptx_group, pc)), 4, g->tbaa_ctx);
    leave(g, ci32(g, RUN_SCHED), -1);
    LLVMPositionBuilderAtEnd(g->B, rest);
    LLVMValueRef is_bar = LLVMBuildICmp(g->B, LLVMIntEQ, g->h_phi, ci32(g, X_BARRIER), "");
    LLVMValueRef is_sched = LLVMBuildICmp(g->B, LLVMIntEQ, g->h_phi, ci32(g, X_SCHED), "");
    LLVMValueRef out = LLVMBuildSelect(g->B, is_bar, ci32(g, RUN_BARRIER),
                                       LLVMBuildSelect(g->B, is_sched, ci32(g, RUN_SCHED), g->h_phi, ""), "");
    leave(g, out, -1);

    LLVMPositionBuilderAtEnd(g->B, g->stop);
    g->stop_phi = LLVMBuildPhi(g->B, g->i32, "stop_pc");
    store(g, g->stop_phi, gep8c(g, g->g, OFF(ptx_group, pc)), 4, g->tbaa_ctx);
    LLVMValueRef waits = LLVMBuildICmp(g->B, LLVMIntUGE, g->stop_phi, g->other_min, "");
    leave(g, LLVMBuildSelect(g->B, waits, ci32(g, RUN_SCHED), ci32(g, RUN_YIELD), ""), -1);
}

/* ---- lane-wise instructions ------------------------------------------------------------------- */

static LLVMValueRef ftz(cg *g, LLVMValueRef vf)
{
    LLVMValueRef bits = LLVMBuildBitCast(g->B, vf, g->v8i32, "");
    LLVMValueRef exp = LLVMBuildAnd(g->B, bits, cv8i32(g, 0x7f800000u), "");
    LLVMValueRef zero = LLVMBuildICmp(g->B, LLVMIntEQ, exp, LLVMConstNull(g->v8i32), "");
    LLVMValueRef sign = LLVMBuildAnd(g->B, bits, cv8i32(g, 0x80000000u), "");
    return LLVMBuildBitCast(g->B, LLVMBuildSelect(g->B, zero, sign, bits, ""), g->v8f32, "");
}

/* PTX min/max: a NaN operand gives the other; -0 below +0 (bitwise or/and of equal values). */
static LLVMValueRef fminmax(cg *g, LLVMValueRef a, LLVMValueRef b, int is_max, int wide)
{
    LLVMTypeRef it = wide ? g->v8i64 : g->v8i32;
    LLVMValueRef r = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, is_max ? LLVMRealOGT : LLVMRealOLT, a, b, ""), a, b, "");
    LLVMValueRef ai = LLVMBuildBitCast(g->B, a, it, ""), bi = LLVMBuildBitCast(g->B, b, it, "");
    LLVMValueRef both = is_max ? LLVMBuildAnd(g->B, ai, bi, "") : LLVMBuildOr(g->B, ai, bi, "");
    r = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOEQ, a, b, ""),
                        LLVMBuildBitCast(g->B, both, LLVMTypeOf(a), ""), r, "");
    r = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealUNO, b, b, ""), a, r, "");
    return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealUNO, a, a, ""), b, r, "");
}

static LLVMValueRef fma_v(cg *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = {a, b, c};
    return intrinsic(g, "llvm.fma", &t, 1, args, 3);
}

static LLVMValueRef sat_cvt(cg *g, const char *name, LLVMTypeRef to, LLVMValueRef a)
{
    LLVMTypeRef over[2] = {to, LLVMTypeOf(a)};
    return intrinsic(g, name, over, 2, &a, 1);
}

/* A kernel parameter load the JIT can read directly: inside the parameter buffer, aligned. */
static int kparam_ok(cg *g, const ptx_xinsn *x)
{
    int bytes = x->xop == XOP_ld_kparam_b64 ? 8 : 4;
    const ptx_func *kf = &g->m->funcs[g->k->func];
    return g->f == kf && x->imm >= 0 && (uint64_t)x->imm + (uint64_t)bytes <= kf->param_bytes &&
           !(x->imm & (bytes - 1));
}

/* Whether the JIT compiles xop lane-wise (in a segment). */
static int lanewise(int xop)
{
    if (xop == XOP_NONE)
        return 0;
    if (xop >= XOP_ex2_f32 && xop <= XOP_tanh_ftz_f32)
        return 0; /* the row functions of ptx_math.c, through the handler */
    if (xop >= XOP_shfl_up && xop <= XOP_vote_all)
        return 0; /* lanes read each other */
    if (xop >= XOP_ld_shared32_b32 && xop <= XOP_ld_kparam_b64)
        return xop == XOP_ld_kparam_b32 || xop == XOP_ld_kparam_b64;
    if (xop == XOP_mov_sreg)
        return 1; /* those it cannot, it leaves to the handler: see emit_lanes */
    return 1;
}

/* Compiles one lane-wise instruction for the current chunk, into the segment's values; guard8 is
 * its guard's bits for the chunk, or NULL when it has none. Returns -1 when it turns out not to
 * be one. */
static int emit_lanes(cg *g, const ptx_xinsn *x, LLVMValueRef guard8)
{
    LLVMBuilderRef B = g->B;
    LLVMValueRef v = NULL, a, b, c;
    int z = 0;
    if (x->xop >= XOP_ld_shared32_b32 && x->xop <= XOP_st_generic_v2b64)
        return emit_mem(g, x, guard8);
    switch (x->xop) {
    /* moves */
    case XOP_mov32: v = s32(g, x->a); break;
    case XOP_mov64: v = s64(g, x->a); break;
    case XOP_mov_pred:
        put_pred_bits(g, x, LLVMBuildXor(B, pbits(g, x->a), ci8(g, x->aux), ""), guard8);
        return 0;
    case XOP_mov_sreg: {
        int sr = (int)x->aux;
        if (sr >= SR_TID_X && sr <= SR_TID_Z) {
            LLVMValueRef p = gep8(g, g->w, LLVMBuildAdd(B, ci64(g, OFF(ptx_warp, tid) + (uint64_t)(sr - SR_TID_X) * 128),
                                                        LLVMBuildMul(B, g->ch, ci64(g, 32), ""), ""));
            v = load(g, g->v8i32, p, 4, g->tbaa_ctx);
        } else if (sr >= SR_NTID_X && sr <= SR_NTID_Z) {
            v = splat(g, ctx_field(g, g->b, OFF(ptx_block, block) + 4u * (uint64_t)(sr - SR_NTID_X), g->i32), 8);
        } else if (sr >= SR_CTAID_X && sr <= SR_CTAID_Z) {
            v = splat(g, ctx_field(g, g->b, OFF(ptx_block, ctaid) + 4u * (uint64_t)(sr - SR_CTAID_X), g->i32), 8);
        } else if (sr >= SR_NCTAID_X && sr <= SR_NCTAID_Z) {
            v = splat(g, ctx_field(g, g->b, OFF(ptx_block, grid) + 4u * (uint64_t)(sr - SR_NCTAID_X), g->i32), 8);
        } else if (sr == SR_LANEID) {
            LLVMValueRef e[8];
            for (int i = 0; i < 8; i++)
                e[i] = ci32(g, (uint64_t)i);
            LLVMValueRef base8 = LLVMBuildTrunc(B, LLVMBuildMul(B, g->ch, ci64(g, 8), ""), g->i32, "");
            v = LLVMBuildAdd(B, LLVMConstVector(e, 8), splat(g, base8, 8), "");
        } else if (sr == SR_WARPID) {
            v = splat(g, ctx_field(g, g->w, OFF(ptx_warp, index), g->i32), 8);
        } else {
            return -1;
        }
        break;
    }
    /* 32-bit integers */
    case XOP_add_i32: v = LLVMBuildAdd(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_sub_i32: v = LLVMBuildSub(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_mul_lo_i32: v = LLVMBuildMul(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_mad_lo_i32: v = LLVMBuildAdd(B, LLVMBuildMul(B, s32(g, x->a), s32(g, x->b), ""), s32(g, x->c), ""); break;
    case XOP_mul_hi_s32:
    case XOP_mul_hi_u32: {
        int s = x->xop == XOP_mul_hi_s32;
        a = s ? LLVMBuildSExt(B, s32(g, x->a), g->v8i64, "") : LLVMBuildZExt(B, s32(g, x->a), g->v8i64, "");
        b = s ? LLVMBuildSExt(B, s32(g, x->b), g->v8i64, "") : LLVMBuildZExt(B, s32(g, x->b), g->v8i64, "");
        v = LLVMBuildTrunc(B, LLVMBuildLShr(B, LLVMBuildMul(B, a, b, ""), cv8i64(g, 32), ""), g->v8i32, "");
        break;
    }
    case XOP_and_b32: v = LLVMBuildAnd(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_or_b32: v = LLVMBuildOr(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_xor_b32: v = LLVMBuildXor(B, s32(g, x->a), s32(g, x->b), ""); break;
    case XOP_not_b32: v = LLVMBuildNot(B, s32(g, x->a), ""); break;
    case XOP_neg_s32: v = LLVMBuildNeg(B, s32(g, x->a), ""); break;
    case XOP_abs_s32:
        a = s32(g, x->a);
        v = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, LLVMConstNull(g->v8i32), ""), LLVMBuildNeg(B, a, ""), a, "");
        break;
    case XOP_shl_b32:
    case XOP_shr_u32:
    case XOP_shr_s32: {
        a = s32(g, x->a);
        b = s32(g, x->b);
        LLVMValueRef big = LLVMBuildICmp(B, LLVMIntUGE, b, cv8i32(g, 32), "");
        LLVMValueRef amt = LLVMBuildAnd(B, b, cv8i32(g, 31), "");
        if (x->xop == XOP_shr_s32) {
            v = LLVMBuildAShr(B, a, LLVMBuildSelect(B, big, cv8i32(g, 31), amt, ""), "");
        } else {
            v = x->xop == XOP_shl_b32 ? LLVMBuildShl(B, a, amt, "") : LLVMBuildLShr(B, a, amt, "");
            v = LLVMBuildSelect(B, big, LLVMConstNull(g->v8i32), v, "");
        }
        break;
    }
    case XOP_min_s32: case XOP_max_s32: case XOP_min_u32: case XOP_max_u32: {
        a = s32(g, x->a);
        b = s32(g, x->b);
        LLVMIntPredicate p = x->xop == XOP_min_s32 ? LLVMIntSLT : x->xop == XOP_max_s32 ? LLVMIntSGT
                           : x->xop == XOP_min_u32 ? LLVMIntULT : LLVMIntUGT;
        v = LLVMBuildSelect(B, LLVMBuildICmp(B, p, a, b, ""), a, b, "");
        break;
    }
    case XOP_popc_b32: v = intr1(g, "llvm.ctpop", s32(g, x->a)); break;
    case XOP_clz_b32: {
        LLVMValueRef args[2] = {s32(g, x->a), LLVMConstInt(g->i1, 0, 0)};
        LLVMTypeRef t = g->v8i32;
        v = intrinsic(g, "llvm.ctlz", &t, 1, args, 2);
        break;
    }
    case XOP_brev_b32: v = intr1(g, "llvm.bitreverse", s32(g, x->a)); break;
    /* 64-bit integers */
    case XOP_add_i64: v = LLVMBuildAdd(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_sub_i64: v = LLVMBuildSub(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_mul_lo_i64: v = LLVMBuildMul(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_mad_lo_i64: v = LLVMBuildAdd(B, LLVMBuildMul(B, s64(g, x->a), s64(g, x->b), ""), s64(g, x->c), ""); break;
    case XOP_and_b64: v = LLVMBuildAnd(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_or_b64: v = LLVMBuildOr(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_xor_b64: v = LLVMBuildXor(B, s64(g, x->a), s64(g, x->b), ""); break;
    case XOP_not_b64: v = LLVMBuildNot(B, s64(g, x->a), ""); break;
    case XOP_neg_s64: v = LLVMBuildNeg(B, s64(g, x->a), ""); break;
    case XOP_min_s64: case XOP_max_s64: case XOP_min_u64: case XOP_max_u64: {
        a = s64(g, x->a);
        b = s64(g, x->b);
        LLVMIntPredicate p = x->xop == XOP_min_s64 ? LLVMIntSLT : x->xop == XOP_max_s64 ? LLVMIntSGT
                           : x->xop == XOP_min_u64 ? LLVMIntULT : LLVMIntUGT;
        v = LLVMBuildSelect(B, LLVMBuildICmp(B, p, a, b, ""), a, b, "");
        break;
    }
    case XOP_shl_b64:
    case XOP_shr_u64:
    case XOP_shr_s64: {
        a = s64(g, x->a);
        b = LLVMBuildZExt(B, s32(g, x->b), g->v8i64, "");
        LLVMValueRef big = LLVMBuildICmp(B, LLVMIntUGE, b, cv8i64(g, 64), "");
        LLVMValueRef amt = LLVMBuildAnd(B, b, cv8i64(g, 63), "");
        if (x->xop == XOP_shr_s64) {
            v = LLVMBuildAShr(B, a, LLVMBuildSelect(B, big, cv8i64(g, 63), amt, ""), "");
        } else {
            v = x->xop == XOP_shl_b64 ? LLVMBuildShl(B, a, amt, "") : LLVMBuildLShr(B, a, amt, "");
            v = LLVMBuildSelect(B, big, LLVMConstNull(g->v8i64), v, "");
        }
        break;
    }
    case XOP_mul_wide_s32:
    case XOP_mul_wide_u32: {
        int s = x->xop == XOP_mul_wide_s32;
        a = s ? LLVMBuildSExt(B, s32(g, x->a), g->v8i64, "") : LLVMBuildZExt(B, s32(g, x->a), g->v8i64, "");
        b = s ? LLVMBuildSExt(B, s32(g, x->b), g->v8i64, "") : LLVMBuildZExt(B, s32(g, x->b), g->v8i64, "");
        v = LLVMBuildMul(B, a, b, "");
        if (x->c >= 0)
            v = LLVMBuildAdd(B, v, s64(g, x->c), "");
        break;
    }
    /* conversions */
    case XOP_cvt_u64_u32: v = LLVMBuildZExt(B, s32(g, x->a), g->v8i64, ""); break;
    case XOP_cvt_s64_s32: v = LLVMBuildSExt(B, s32(g, x->a), g->v8i64, ""); break;
    case XOP_cvt_u32_u64: v = LLVMBuildTrunc(B, s64(g, x->a), g->v8i32, ""); break;
    case XOP_cvt_rn_f32_s32: v = LLVMBuildSIToFP(B, s32(g, x->a), g->v8f32, ""); break;
    case XOP_cvt_rn_f32_u32: v = LLVMBuildUIToFP(B, s32(g, x->a), g->v8f32, ""); break;
    case XOP_cvt_rzi_s32_f32: v = sat_cvt(g, "llvm.fptosi.sat", g->v8i32, sf32(g, x->a)); break;
    case XOP_cvt_rni_s32_f32: v = sat_cvt(g, "llvm.fptosi.sat", g->v8i32, intr1(g, "llvm.rint", sf32(g, x->a))); break;
    case XOP_cvt_rmi_s32_f32: v = sat_cvt(g, "llvm.fptosi.sat", g->v8i32, intr1(g, "llvm.floor", sf32(g, x->a))); break;
    case XOP_cvt_rpi_s32_f32: v = sat_cvt(g, "llvm.fptosi.sat", g->v8i32, intr1(g, "llvm.ceil", sf32(g, x->a))); break;
    case XOP_cvt_rzi_u32_f32: v = sat_cvt(g, "llvm.fptoui.sat", g->v8i32, sf32(g, x->a)); break;
    case XOP_cvt_rni_f32_f32: v = intr1(g, "llvm.rint", sf32(g, x->a)); break;
    case XOP_cvt_rzi_f32_f32: v = intr1(g, "llvm.trunc", sf32(g, x->a)); break;
    case XOP_cvt_rmi_f32_f32: v = intr1(g, "llvm.floor", sf32(g, x->a)); break;
    case XOP_cvt_rpi_f32_f32: v = intr1(g, "llvm.ceil", sf32(g, x->a)); break;
    case XOP_cvt_f64_f32: v = LLVMBuildFPExt(B, sf32(g, x->a), g->v8f64, ""); break;
    case XOP_cvt_rn_f32_f64: v = LLVMBuildFPTrunc(B, sf64(g, x->a), g->v8f32, ""); break;
    case XOP_cvt_rn_f64_s32: v = LLVMBuildSIToFP(B, s32(g, x->a), g->v8f64, ""); break;
    case XOP_cvt_rn_f64_u32: v = LLVMBuildUIToFP(B, s32(g, x->a), g->v8f64, ""); break;
    case XOP_cvt_rzi_s32_f64: v = sat_cvt(g, "llvm.fptosi.sat", g->v8i32, sf64(g, x->a)); break;
    /* f32 */
    case XOP_add_ftz_f32: case XOP_sub_ftz_f32: case XOP_mul_ftz_f32: case XOP_div_ftz_f32:
    case XOP_min_ftz_f32: case XOP_max_ftz_f32: case XOP_fma_ftz_f32: case XOP_neg_ftz_f32:
    case XOP_abs_ftz_f32: case XOP_sqrt_ftz_f32: case XOP_rcp_ftz_f32: case XOP_rsqrt_ftz_f32:
        z = 1;
        /* fall through */
    case XOP_add_f32: case XOP_sub_f32: case XOP_mul_f32: case XOP_div_f32: case XOP_min_f32:
    case XOP_max_f32: case XOP_fma_f32: case XOP_neg_f32: case XOP_abs_f32: case XOP_sqrt_f32:
    case XOP_rcp_f32: case XOP_rsqrt_f32: {
        a = sf32(g, x->a);
        b = x->b >= 0 ? sf32(g, x->b) : NULL;
        c = x->c >= 0 ? sf32(g, x->c) : NULL;
        if (z) {
            a = ftz(g, a);
            b = b ? ftz(g, b) : NULL;
            c = c ? ftz(g, c) : NULL;
        }
        LLVMValueRef one = const_splat(g->v8f32, LLVMConstReal(g->f32, 1.0), 8);
        switch (x->xop) {
        case XOP_add_f32: case XOP_add_ftz_f32: v = LLVMBuildFAdd(B, a, b, ""); break;
        case XOP_sub_f32: case XOP_sub_ftz_f32: v = LLVMBuildFSub(B, a, b, ""); break;
        case XOP_mul_f32: case XOP_mul_ftz_f32: v = LLVMBuildFMul(B, a, b, ""); break;
        case XOP_div_f32: case XOP_div_ftz_f32: v = LLVMBuildFDiv(B, a, b, ""); break;
        case XOP_min_f32: case XOP_min_ftz_f32: v = fminmax(g, a, b, 0, 0); break;
        case XOP_max_f32: case XOP_max_ftz_f32: v = fminmax(g, a, b, 1, 0); break;
        case XOP_fma_f32: case XOP_fma_ftz_f32: v = fma_v(g, a, b, c); break;
        case XOP_neg_f32: case XOP_neg_ftz_f32: v = LLVMBuildFNeg(B, a, ""); break;
        case XOP_abs_f32: case XOP_abs_ftz_f32: v = intr1(g, "llvm.fabs", a); break;
        case XOP_sqrt_f32: case XOP_sqrt_ftz_f32: v = intr1(g, "llvm.sqrt", a); break;
        case XOP_rcp_f32: case XOP_rcp_ftz_f32: v = LLVMBuildFDiv(B, one, a, ""); break;
        default: v = LLVMBuildFDiv(B, one, intr1(g, "llvm.sqrt", a), ""); break;
        }
        if (z)
            v = ftz(g, v);
        break;
    }
    /* f64 */
    case XOP_add_f64: v = LLVMBuildFAdd(B, sf64(g, x->a), sf64(g, x->b), ""); break;
    case XOP_sub_f64: v = LLVMBuildFSub(B, sf64(g, x->a), sf64(g, x->b), ""); break;
    case XOP_mul_f64: v = LLVMBuildFMul(B, sf64(g, x->a), sf64(g, x->b), ""); break;
    case XOP_div_f64: v = LLVMBuildFDiv(B, sf64(g, x->a), sf64(g, x->b), ""); break;
    case XOP_min_f64: v = fminmax(g, sf64(g, x->a), sf64(g, x->b), 0, 1); break;
    case XOP_max_f64: v = fminmax(g, sf64(g, x->a), sf64(g, x->b), 1, 1); break;
    case XOP_fma_f64: v = fma_v(g, sf64(g, x->a), sf64(g, x->b), sf64(g, x->c)); break;
    case XOP_neg_f64: v = LLVMBuildFNeg(B, sf64(g, x->a), ""); break;
    case XOP_abs_f64: v = intr1(g, "llvm.fabs", sf64(g, x->a)); break;
    case XOP_sqrt_f64: v = intr1(g, "llvm.sqrt", sf64(g, x->a)); break;
    case XOP_rcp_f64:
        v = LLVMBuildFDiv(B, const_splat(g->v8f64, LLVMConstReal(g->f64, 1.0), 8), sf64(g, x->a), "");
        break;
    /* selection and predicates */
    case XOP_selp32:
    case XOP_selp64: {
        LLVMValueRef p = bits_vec(g, LLVMBuildXor(B, pbits(g, x->c), ci8(g, x->aux), ""));
        v = x->xop == XOP_selp32 ? LLVMBuildSelect(B, p, s32(g, x->a), s32(g, x->b), "")
                                 : LLVMBuildSelect(B, p, s64(g, x->a), s64(g, x->b), "");
        break;
    }
    case XOP_and_pred:
    case XOP_or_pred:
    case XOP_xor_pred:
    case XOP_not_pred: {
        LLVMValueRef pa = pbits(g, x->a), r;
        if (x->xop == XOP_not_pred)
            r = LLVMBuildNot(B, pa, "");
        else if (x->xop == XOP_and_pred)
            r = LLVMBuildAnd(B, pa, pbits(g, x->b), "");
        else if (x->xop == XOP_or_pred)
            r = LLVMBuildOr(B, pa, pbits(g, x->b), "");
        else
            r = LLVMBuildXor(B, pa, pbits(g, x->b), "");
        put_pred_bits(g, x, r, guard8);
        return 0;
    }
    case XOP_ld_kparam_b32:
    case XOP_ld_kparam_b64: {
        int bytes = x->xop == XOP_ld_kparam_b64 ? 8 : 4;
        if (!kparam_ok(g, x))
            return -1;
        LLVMValueRef params = ctx_field(g, g->b, OFF(ptx_block, params), g->p8);
        v = splat(g, load(g, bytes == 8 ? g->i64 : g->i32, gep8c(g, params, (uint64_t)x->imm), (unsigned)bytes,
                          g->tbaa_ctx), 8);
        break;
    }
    case XOP_cvta_shared: v = LLVMBuildAdd(B, s64(g, x->a), cv8i64(g, PTX_SHARED_WINDOW), ""); break;
    case XOP_cvta_to_shared: v = LLVMBuildSub(B, s64(g, x->a), cv8i64(g, PTX_SHARED_WINDOW), ""); break;
    default:
        break;
    }
    if (v) {
        put_slice(g, x, v, guard8);
        return 0;
    }
    if (x->xop >= XOP_setp_eq_s32 && x->xop <= XOP_setp_nan_f64) {
        int id = x->xop;
        LLVMValueRef r = NULL;
        static const LLVMIntPredicate ip_s[6] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
        static const LLVMIntPredicate ip_u[6] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
        static const LLVMRealPredicate fp[14] = {LLVMRealOEQ, LLVMRealONE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT,
                                                 LLVMRealOGE, LLVMRealUEQ, LLVMRealUNE, LLVMRealULT, LLVMRealULE,
                                                 LLVMRealUGT, LLVMRealUGE, LLVMRealORD, LLVMRealUNO};
        if (id <= XOP_setp_ge_s32)
            r = LLVMBuildICmp(B, ip_s[id - XOP_setp_eq_s32], s32(g, x->a), s32(g, x->b), "");
        else if (id >= XOP_setp_eq_u32 && id <= XOP_setp_ge_u32)
            r = LLVMBuildICmp(B, ip_u[id - XOP_setp_eq_u32], s32(g, x->a), s32(g, x->b), "");
        else if (id >= XOP_setp_eq_s64 && id <= XOP_setp_ge_s64)
            r = LLVMBuildICmp(B, ip_s[id - XOP_setp_eq_s64], s64(g, x->a), s64(g, x->b), "");
        else if (id >= XOP_setp_eq_u64 && id <= XOP_setp_ge_u64)
            r = LLVMBuildICmp(B, ip_u[id - XOP_setp_eq_u64], s64(g, x->a), s64(g, x->b), "");
        else if (id >= XOP_setp_eq_f32 && id <= XOP_setp_nan_f32)
            r = LLVMBuildFCmp(B, fp[id - XOP_setp_eq_f32], sf32(g, x->a), sf32(g, x->b), "");
        else
            r = LLVMBuildFCmp(B, fp[id - XOP_setp_eq_f64], sf64(g, x->a), sf64(g, x->b), "");
        put_pred_bits(g, x, LLVMBuildBitCast(B, r, g->i8, ""), guard8);
        return 0;
    }
    return -1;
}

/* A memory instruction the JIT can put in a segment: its space, address kind, access length and
 * direction. Returns 0 when x is none. */
static int mem_form(const ptx_xinsn *x, int *space, int *bytes, int *is_store)
{
    static const struct { uint16_t xop; uint8_t space, bytes, store; } forms[] = {
        {XOP_ld_shared32_b32, JSP_SH32, 4, 0}, {XOP_ld_shared32_b64, JSP_SH32, 8, 0},
        {XOP_st_shared32_b32, JSP_SH32, 4, 1}, {XOP_st_shared32_b64, JSP_SH32, 8, 1},
        {XOP_ld_shared64_b32, JSP_SH64, 4, 0}, {XOP_ld_shared64_b64, JSP_SH64, 8, 0},
        {XOP_st_shared64_b32, JSP_SH64, 4, 1}, {XOP_st_shared64_b64, JSP_SH64, 8, 1},
        {XOP_ld_global_b32, JSP_GLOBAL, 4, 0}, {XOP_ld_global_b64, JSP_GLOBAL, 8, 0},
        {XOP_st_global_b32, JSP_GLOBAL, 4, 1}, {XOP_st_global_b64, JSP_GLOBAL, 8, 1},
        {XOP_ld_generic_b32, JSP_GENERIC, 4, 0}, {XOP_ld_generic_b64, JSP_GENERIC, 8, 0},
        {XOP_st_generic_b32, JSP_GENERIC, 4, 1}, {XOP_st_generic_b64, JSP_GENERIC, 8, 1},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        if (forms[i].xop == x->xop) {
            *space = forms[i].space;
            *bytes = forms[i].bytes;
            *is_store = forms[i].store;
            return 1;
        }
    }
    return 0;
}

/* What a segment being formed holds so far (seg_can_add). */
typedef struct seg_form {
    int32_t written[64];      /* rows written (a longer segment just ends) */
    int nwritten;
    int loads[2], stores[2];  /* per memory space: shared, global (generic counts for both) */
    int ngroups;
    struct { int32_t aoff; int space; int32_t guard; uint32_t gx; int bytes; } groups[8];
} seg_form;

static int seg_wrote(const seg_form *sf, int32_t off)
{
    for (int i = 0; i < sf->nwritten; i++)
        if (sf->written[i] == off)
            return 1;
    return 0;
}

/* Whether x can join the segment sf describes (and records it): a lane-wise form the JIT
 * compiles, or a memory access whose address and guard are not computed in the segment (so its
 * range can be checked before the segment runs) and that keeps the warp's order of memory
 * accesses although the segment runs lane chunk by lane chunk: per space either loads only, or
 * a single store. */
static int seg_can_add(cg *g, seg_form *sf, const ptx_xinsn *x)
{
    int space, bytes, st;
    if (sf->nwritten == 64)
        return 0;
    if (x->guard >= 0 && seg_wrote(sf, x->guard))
        return 0;
    if (mem_form(x, &space, &bytes, &st)) {
        if (seg_wrote(sf, x->a) || (x->imm & (bytes - 1)) || x->imm > INT32_MAX || x->imm < INT32_MIN)
            return 0;
        int sh = space == JSP_SH32 || space == JSP_SH64 || space == JSP_GENERIC;
        int gl = space == JSP_GLOBAL || space == JSP_GENERIC;
        if (st ? (sh && (sf->loads[0] || sf->stores[0])) || (gl && (sf->loads[1] || sf->stores[1]))
               : (sh && sf->stores[0]) || (gl && sf->stores[1]))
            return 0;
        int gi;
        for (gi = 0; gi < sf->ngroups; gi++)
            if (sf->groups[gi].aoff == x->a && sf->groups[gi].space == space && sf->groups[gi].guard == x->guard &&
                sf->groups[gi].gx == x->guard_xor)
                break;
        if (gi < sf->ngroups && sf->groups[gi].bytes != bytes)
            return 0; /* one element size per group: its lanes' pattern is checked for it */
        if (gi == sf->ngroups) {
            if (sf->ngroups == 8)
                return 0;
            sf->groups[gi].aoff = x->a;
            sf->groups[gi].space = space;
            sf->groups[gi].guard = x->guard;
            sf->groups[gi].gx = x->guard_xor;
            sf->groups[gi].bytes = bytes;
            sf->ngroups++;
        }
        if (sh)
            st ? sf->stores[0]++ : sf->loads[0]++;
        if (gl)
            st ? sf->stores[1]++ : sf->loads[1]++;
    } else {
        if (!lanewise(x->xop))
            return 0;
        if (x->xop == XOP_mov_sreg) {
            int sr = (int)x->aux;
            if (!((sr >= SR_TID_X && sr <= SR_NCTAID_Z) || sr == SR_LANEID || sr == SR_WARPID))
                return 0;
        }
        if ((x->xop == XOP_ld_kparam_b32 || x->xop == XOP_ld_kparam_b64) && !kparam_ok(g, x))
            return 0;
    }
    if (has_dest(x->in))
        sf->written[sf->nwritten++] = x->d;
    return 1;
}

/* ---- memory in segments ----------------------------------------------------------------------- */

static struct mem_group *find_group(cg *g, const ptx_xinsn *x, int space)
{
    for (int i = 0; i < g->ngroups; i++) {
        struct mem_group *mg = &g->groups[i];
        if (mg->aoff == x->a && mg->space == space && mg->guard == x->guard && mg->guard_xor == x->guard_xor)
            return mg;
    }
    return NULL;
}

/* Closes a loop over the 4 lane chunks: the latch (the current block) counts q on and branches
 * back to loop, or on to done after the last chunk; q's phi gets its incoming values (0 from pre).
 * Returns the latch, for the loop's other phis. The loop stays a loop: unrolled, its body would
 * compile 4 times over. The loop's id is a distinct self-referencing node, as LLVM wants. */
static LLVMBasicBlockRef chunk_loop_close(cg *g, LLVMValueRef q, LLVMBasicBlockRef pre, LLVMBasicBlockRef loop,
                                          LLVMBasicBlockRef done)
{
    LLVMValueRef next = LLVMBuildAdd(g->B, q, ci64(g, 1), "");
    LLVMValueRef br = LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntULT, next, ci64(g, 4), ""), loop, done);
    LLVMMetadataRef md[2];
    LLVMMetadataRef unroll = LLVMMDStringInContext2(g->C, "llvm.loop.unroll.disable", 24);
    md[1] = LLVMMDNodeInContext2(g->C, &unroll, 1);
    md[0] = LLVMTemporaryMDNode(g->C, NULL, 0);
    LLVMMetadataRef id = LLVMMDNodeInContext2(g->C, md, 2);
    LLVMMetadataReplaceAllUsesWith(md[0], id);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(g->C, "llvm.loop", 9), LLVMMetadataAsValue(g->C, id));
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->B);
    LLVMValueRef zero = ci64(g, 0);
    LLVMAddIncoming(q, &zero, &pre, 1);
    LLVMAddIncoming(q, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(g->B, done);
    return latch;
}

/* A phi in the current block starting at init (from pre), for a loop value. */
static LLVMValueRef loop_phi(cg *g, LLVMTypeRef t, LLVMValueRef init, LLVMBasicBlockRef pre)
{
    LLVMValueRef phi = LLVMBuildPhi(g->B, t, "");
    LLVMAddIncoming(phi, &init, &pre, 1);
    return phi;
}

/* One loop over the 4 chunks of group mg's address row, under mask (i32): the range of its
 * active lanes (*lo, *hi, 64-bit; *any, the or of them all), and per chunk its lowest active
 * lane's base, in 32 bits for now (zero-extended into chunk_amin: the checks keep the active lanes
 * within 2^31 of lo, and store_chunks makes it 64-bit once lo is known) and, for groups with
 * loads, whether its active lanes read one address (chunk_uni). *pattern_ok: for groups with
 * loads, every chunk's lanes read one address or, all active, consecutive elements. */
static void group_scan(cg *g, struct mem_group *mg, LLVMValueRef mask, LLVMValueRef *lo, LLVMValueRef *hi,
                       LLVMValueRef *any, LLVMValueRef *pattern_ok)
{
    int wide = mg->space != JSP_SH32;
    LLVMTypeRef vt = wide ? g->v8i64 : g->v8i32;
    LLVMValueRef ones = LLVMConstAllOnes(vt), zeros = LLVMConstNull(vt);
    unsigned gi = (unsigned)(mg - g->groups);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
    LLVMBasicBlockRef loop = new_block(g, "mem_scan"), done = new_block(g, "mem_scanned");
    LLVMBuildBr(g->B, loop);
    LLVMPositionBuilderAtEnd(g->B, loop);
    LLVMValueRef q = LLVMBuildPhi(g->B, g->i64, "q");
    LLVMValueRef vlo = loop_phi(g, vt, ones, pre), vhi = loop_phi(g, vt, zeros, pre), vany = loop_phi(g, vt, zeros, pre);
    LLVMValueRef okp = loop_phi(g, g->i1, LLVMConstInt(g->i1, 1, 0), pre);
    LLVMValueRef a = load(g, vt, gep8(g, g->R, LLVMBuildAdd(g->B, LLVMBuildMul(g->B, q, ci64(g, wide ? 64 : 32), ""),
                                                           ci64(g, (uint64_t)mg->aoff), "")),
                          wide ? 64 : 32, g->tbaa_reg);
    LLVMValueRef m8 = LLVMBuildTrunc(g->B, LLVMBuildLShr(g->B, mask, LLVMBuildTrunc(g->B, LLVMBuildMul(g->B, q, ci64(g, 8), ""),
                                                                                      g->i32, ""), ""), g->i8, "");
    LLVMValueRef mv = bits_vec(g, m8);
    LLVMValueRef l = LLVMBuildSelect(g->B, mv, a, ones, ""), h = LLVMBuildSelect(g->B, mv, a, zeros, "");
    LLVMValueRef nlo = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntULT, l, vlo, ""), l, vlo, "");
    LLVMValueRef nhi = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntUGT, h, vhi, ""), h, vhi, "");
    LLVMValueRef nany = LLVMBuildOr(g->B, vany, h, "");
    LLVMValueRef a32 = wide ? LLVMBuildTrunc(g->B, a, g->v8i32, "") : a; /* the pattern holds in 32 bits */
    LLVMValueRef amin = intr1(g, "llvm.vector.reduce.umin", LLVMBuildSelect(g->B, mv, a32, LLVMConstAllOnes(g->v8i32), ""));
    LLVMValueRef idx[2] = {ci64(g, 0), LLVMBuildAdd(g->B, q, ci64(g, 4 * (uint64_t)gi), "")};
    LLVMBuildStore(g->B, LLVMBuildZExt(g->B, amin, g->i64, ""),
                   LLVMBuildGEP2(g->B, LLVMArrayType(g->i64, 32), g->chunk_amin, idx, 2, ""));
    LLVMValueRef nok = okp;
    if (mg->loads) {
        LLVMValueRef none = LLVMBuildICmp(g->B, LLVMIntEQ, m8, ci8(g, 0), "");
        LLVMValueRef bmin = splat(g, amin, 8);
        LLVMValueRef uni = all8(g, LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildSelect(g->B, mv, a32, bmin, ""), bmin, ""));
        LLVMValueRef e[8];
        for (int j = 0; j < 8; j++)
            e[j] = ci32(g, (uint64_t)(j * mg->bytes));
        LLVMValueRef seq = LLVMBuildICmp(g->B, LLVMIntEQ, a32, LLVMBuildAdd(g->B, bmin, LLVMConstVector(e, 8), ""), "");
        LLVMValueRef full = LLVMBuildICmp(g->B, LLVMIntEQ, m8, ci8(g, 0xff), "");
        uni = LLVMBuildOr(g->B, uni, none, "");
        nok = LLVMBuildAnd(g->B, okp, LLVMBuildOr(g->B, uni, LLVMBuildAnd(g->B, full, all8(g, seq), ""), ""), "");
        LLVMBuildStore(g->B, LLVMBuildZExt(g->B, uni, g->i8, ""),
                       LLVMBuildGEP2(g->B, LLVMArrayType(g->i8, 32), g->chunk_uni, idx, 2, ""));
    }
    LLVMBasicBlockRef latch = chunk_loop_close(g, q, pre, loop, done);
    LLVMAddIncoming(vlo, &nlo, &latch, 1);
    LLVMAddIncoming(vhi, &nhi, &latch, 1);
    LLVMAddIncoming(vany, &nany, &latch, 1);
    LLVMAddIncoming(okp, &nok, &latch, 1);
    *lo = intr1(g, "llvm.vector.reduce.umin", nlo);
    *hi = intr1(g, "llvm.vector.reduce.umax", nhi);
    *any = intr1(g, "llvm.vector.reduce.or", nany);
    if (!wide) {
        *lo = LLVMBuildZExt(g->B, *lo, g->i64, "");
        *hi = LLVMBuildZExt(g->B, *hi, g->i64, "");
        *any = LLVMBuildZExt(g->B, *any, g->i64, "");
    }
    *pattern_ok = nok;
}

/* The prologue's per-chunk bases of group mg made 64-bit: lo plus the 32-bit distance from lo's
 * low half (any_off for a chunk with no active lane). Unrolled: a few scalar operations each. */
static void store_chunks(cg *g, struct mem_group *mg, LLVMValueRef mask, LLVMValueRef lo)
{
    LLVMTypeRef at = LLVMArrayType(g->i64, 32);
    unsigned gi = (unsigned)(mg - g->groups);
    LLVMValueRef lo32 = LLVMBuildTrunc(g->B, lo, g->i32, "");
    for (unsigned q = 0; q < 4; q++) {
        LLVMValueRef idx[2] = {ci64(g, 0), ci64(g, 4 * gi + q)};
        LLVMValueRef slot = LLVMBuildGEP2(g->B, at, g->chunk_amin, idx, 2, "");
        LLVMValueRef a32 = LLVMBuildTrunc(g->B, LLVMBuildLoad2(g->B, g->i64, slot, ""), g->i32, "");
        LLVMValueRef amin = LLVMBuildAdd(g->B, lo, LLVMBuildZExt(g->B, LLVMBuildSub(g->B, a32, lo32, ""), g->i64, ""), "");
        LLVMValueRef none = LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildAnd(g->B, mask, ci32(g, 0xffull << (8 * q)), ""),
                                          ci32(g, 0), "");
        LLVMBuildStore(g->B, LLVMBuildSelect(g->B, none, mg->any_off, amin, ""), slot);
    }
}

/* The segment's prologue: every memory group's range, over its active lanes and all its
 * immediate offsets, inside shared memory or one allocation (the
 * warp's translation cache, else global_range), aligned, and for generic addresses outside the
 * shared and local windows; and for groups with loads, every chunk of lanes either reading one
 * address or, all active, consecutive elements. Branches to slow when any check fails. Fills
 * each group's host (host address of device address lo) and any_off. */
static void seg_memory(cg *g, LLVMBasicBlockRef slow)
{
    for (int i = 0; i < g->ngroups; i++) {
        struct mem_group *mg = &g->groups[i];
        LLVMValueRef mask = g->gmask;
        if (mg->guard >= 0)
            mask = LLVMBuildAnd(g->B, mask, LLVMBuildXor(g->B, pred_word(g, mg->guard), ci32(g, mg->guard_xor), ""), "");
        LLVMValueRef lo, hi, any, ok;
        group_scan(g, mg, mask, &lo, &hi, &any, &ok);
        LLVMValueRef none = LLVMBuildICmp(g->B, LLVMIntEQ, mask, ci32(g, 0), "");
        LLVMValueRef first = LLVMBuildAdd(g->B, lo, ci64(g, (uint64_t)mg->imm_lo), "");
        LLVMValueRef end = LLVMBuildAdd(g->B, hi, ci64(g, (uint64_t)mg->imm_hi), "");
        ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildAnd(g->B, any, ci64(g, (uint64_t)mg->align - 1), ""),
                                                  ci64(g, 0), ""), "");
        ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntULE, first, end, ""), "");
        if (mg->imm_lo < 0) /* no wrap below 0 */
            ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntUGE, lo, ci64(g, (uint64_t)-mg->imm_lo), ""), "");
        if (mg->space == JSP_SH32)
            ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntULE, end, ci64(g, 0xffffffffu), ""), "");
        if (mg->space == JSP_SH32 || mg->space == JSP_SH64) {
            LLVMValueRef sbytes = ctx_field(g, g->b, OFF(ptx_block, shared_bytes), g->i64);
            ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntULE, end, sbytes, ""), "");
            ok = LLVMBuildOr(g->B, ok, none, "");
            LLVMBasicBlockRef next = new_block(g, "mem_ok");
            LLVMBuildCondBr(g->B, ok, next, slow);
            LLVMPositionBuilderAtEnd(g->B, next);
            mg->host = ctx_field(g, g->b, OFF(ptx_block, shared), g->p8);
            mg->lo = ci64(g, 0);
            /* The lowest active address; with no active lane, imm - imm_lo from the start. */
            mg->any_off = LLVMBuildSelect(g->B, none, ci64(g, (uint64_t)-mg->imm_lo), lo, "");
            store_chunks(g, mg, mask, lo);
            continue;
        }
        ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntULT, LLVMBuildSub(g->B, end, first, ""),
                                                  ci64(g, 0x80000000u), ""), "");
        if (mg->space == JSP_GENERIC) {
            LLVMValueRef in_win = LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntUGT, end, ci64(g, PTX_SHARED_WINDOW), ""),
                LLVMBuildICmp(g->B, LLVMIntULT, first, ci64(g, PTX_LOCAL_WINDOW + PTX_WINDOW_SIZE), ""), "");
            ok = LLVMBuildAnd(g->B, ok, LLVMBuildNot(g->B, in_win, ""), "");
        }
        /* The usual case without a branch: no active lane (nothing is accessed; chunk code still
         * computes an address, inside a readable place, the runtime table, from a zero base), or
         * a range inside the warp's translation cache. Else global_range, when the checks hold. */
        LLVMValueRef clo = ctx_field(g, g->w, OFF(ptx_warp, cache_lo), g->i64);
        LLVMValueRef chi = ctx_field(g, g->w, OFF(ptx_warp, cache_hi), g->i64);
        LLVMValueRef hit = LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntUGE, first, clo, ""),
                                        LLVMBuildICmp(g->B, LLVMIntULE, end, chi, ""), "");
        LLVMValueRef fast = LLVMBuildOr(g->B, none, LLVMBuildAnd(g->B, ok, hit, ""), "");
        LLVMValueRef p_fast = LLVMBuildSelect(g->B, none, g->rt,
            gep8(g, ctx_field(g, g->w, OFF(ptx_warp, cache_host), g->p8), LLVMBuildSub(g->B, first, clo, "")), "");
        LLVMValueRef l_fast = LLVMBuildSelect(g->B, none, ci64(g, 0), first, "");
        LLVMValueRef a_fast = LLVMBuildSelect(g->B, none, ci64(g, (uint64_t)-mg->imm_lo), lo, "");
        LLVMBasicBlockRef b_fast = LLVMGetInsertBlock(g->B), b_chk = new_block(g, "mem_chk"),
                          b_miss = new_block(g, "mem_miss"), b_done = new_block(g, "mem_done");
        LLVMBuildCondBr(g->B, fast, b_done, b_chk);
        LLVMPositionBuilderAtEnd(g->B, b_chk);
        LLVMBuildCondBr(g->B, ok, b_miss, slow);
        LLVMPositionBuilderAtEnd(g->B, b_miss);
        LLVMValueRef rfp = load(g, LLVMPointerType(g->range_type, 0), gep8c(g, g->rt, OFF(ptx_jit_rt, global_range)), 8,
                                g->tbaa_ctx);
        LLVMValueRef rargs[3] = {g->c, first, LLVMBuildSub(g->B, end, first, "")};
        LLVMValueRef p_miss = LLVMBuildCall2(g->B, g->range_type, rfp, rargs, 3, "");
        LLVMBuildCondBr(g->B, LLVMBuildIsNull(g->B, p_miss, ""), slow, b_done);
        LLVMPositionBuilderAtEnd(g->B, b_done);
        LLVMValueRef hp = LLVMBuildPhi(g->B, g->p8, ""), lp = LLVMBuildPhi(g->B, g->i64, ""),
                     ap = LLVMBuildPhi(g->B, g->i64, "");
        LLVMValueRef hv2[2] = {p_fast, p_miss}, lv2[2] = {l_fast, first}, av2[2] = {a_fast, lo};
        LLVMBasicBlockRef hb2[2] = {b_fast, b_miss};
        LLVMAddIncoming(hp, hv2, hb2, 2);
        LLVMAddIncoming(lp, lv2, hb2, 2);
        LLVMAddIncoming(ap, av2, hb2, 2);
        mg->host = hp;
        mg->lo = lp;
        mg->any_off = ap;
        store_chunks(g, mg, mask, lo);
    }
}

/* The chunk's lanes' addresses (the address row's slice plus the immediate, 64-bit; 32-bit bases
 * wrap in 32 bits), and in *amin the lowest active lane's base (any_off for a chunk with no
 * active lane). */
static LLVMValueRef chunk_addr(cg *g, const ptx_xinsn *x, struct mem_group *mg, LLVMValueRef *amin, int want)
{
    LLVMValueRef idx[2] = {ci64(g, 0), LLVMBuildAdd(g->B, g->ch, ci64(g, 4 * (uint64_t)(mg - g->groups)), "")};
    *amin = LLVMBuildLoad2(g->B, g->i64, LLVMBuildGEP2(g->B, LLVMArrayType(g->i64, 32), g->chunk_amin, idx, 2, ""), "");
    if (!want)
        return NULL;
    if (mg->space == JSP_SH32)
        return LLVMBuildZExt(g->B, LLVMBuildAdd(g->B, s32(g, x->a), cv8i32(g, (uint32_t)x->imm), ""), g->v8i64, "");
    return LLVMBuildAdd(g->B, s64(g, x->a), cv8i64(g, (uint64_t)x->imm), "");
}

/* Whether the current chunk's active lanes of group mg read one address (i1, from the
 * prologue). */
static LLVMValueRef chunk_uniform(cg *g, struct mem_group *mg)
{
    LLVMValueRef idx[2] = {ci64(g, 0), LLVMBuildAdd(g->B, g->ch, ci64(g, 4 * (uint64_t)(mg - g->groups)), "")};
    LLVMValueRef u = LLVMBuildLoad2(g->B, g->i8, LLVMBuildGEP2(g->B, LLVMArrayType(g->i8, 32), g->chunk_uni, idx, 2, ""), "");
    return LLVMBuildICmp(g->B, LLVMIntNE, u, ci8(g, 0), "");
}

/* A load or store of a segment, for the current chunk. A load reads at the lowest active lane's
 * address (the prologue checked that the chunk's lanes read one address, or consecutive
 * elements): one element broadcast, or one vector. A store writes the chunk's consecutive
 * elements at once when all its lanes are active, else lane by lane in lane order (the scatter
 * helper). */
static int emit_mem(cg *g, const ptx_xinsn *x, LLVMValueRef guard8)
{
    int space, bytes, st;
    if (!mem_form(x, &space, &bytes, &st))
        return -1;
    struct mem_group *mg = find_group(g, x, space);
    if (!mg)
        return -1;
    LLVMTypeRef et = bytes == 8 ? g->i64 : g->i32, vt = bytes == 8 ? g->v8i64 : g->v8i32;
    LLVMValueRef m8 = guard8 ? LLVMBuildAnd(g->B, g->gmask8, guard8, "") : g->gmask8;
    LLVMValueRef amin;
    LLVMValueRef addr = chunk_addr(g, x, mg, &amin, st);
    LLVMValueRef base_addr = LLVMBuildAdd(g->B, amin, ci64(g, (uint64_t)x->imm), "");
    if (mg->space == JSP_SH32)
        base_addr = LLVMBuildAnd(g->B, base_addr, ci64(g, 0xffffffffu), "");
    LLVMValueRef p = gep8(g, mg->host, LLVMBuildSub(g->B, base_addr, mg->lo, ""));
    if (!st) {
        LLVMValueRef uni = chunk_uniform(g, mg);
        /* Both reads happen; the vector one of a uniform chunk reads the runtime table's zeros,
         * as its elements past the first may lie outside the checked range. */
        LLVMValueRef pv = LLVMBuildSelect(g->B, uni, gep8c(g, g->rt, OFF(ptx_jit_rt, zeros)), p, "");
        LLVMValueRef one = load(g, et, p, (unsigned)bytes, g->tbaa_mem);
        LLVMValueRef vec = load(g, vt, pv, (unsigned)bytes, g->tbaa_mem);
        put_slice(g, x, LLVMBuildSelect(g->B, uni, splat(g, one, 8), vec, ""), guard8);
        return 0;
    }
    LLVMValueRef v = bytes == 8 ? s64(g, x->b) : s32(g, x->b);
    LLVMValueRef e[8];
    for (int i = 0; i < 8; i++)
        e[i] = ci64(g, (uint64_t)(i * bytes));
    LLVMValueRef seq = LLVMBuildICmp(g->B, LLVMIntEQ, addr, LLVMBuildAdd(g->B, splat(g, base_addr, 8), LLVMConstVector(e, 8), ""), "");
    LLVMValueRef fast = LLVMBuildAnd(g->B, all8(g, seq), LLVMBuildICmp(g->B, LLVMIntEQ, m8, ci8(g, 0xff), ""), "");
    LLVMBasicBlockRef b_vec = new_block(g, "st_vec"), b_lanes = new_block(g, "st_lanes"), b_done = new_block(g, "st_done");
    LLVMBuildCondBr(g->B, fast, b_vec, b_lanes);
    LLVMPositionBuilderAtEnd(g->B, b_vec);
    store(g, v, p, (unsigned)bytes, g->tbaa_mem);
    LLVMBuildBr(g->B, b_done);
    LLVMPositionBuilderAtEnd(g->B, b_lanes);
    /* Through memory: offsets from the group's host and values in stack rows; the helper stores
     * the lanes of the mask in lane order. */
    LLVMValueRef off = LLVMBuildTrunc(g->B, LLVMBuildSub(g->B, addr, splat(g, mg->lo, 8), ""), g->v8i32, "");
    if (mg->space == JSP_SH32 || mg->space == JSP_SH64)
        off = LLVMBuildTrunc(g->B, addr, g->v8i32, "");
    store(g, off, g->scratch_off, 32, NULL);
    store(g, v, g->scratch_val, 64, NULL);
    LLVMValueRef fp = load(g, LLVMPointerType(g->scatter_type, 0),
                           gep8c(g, g->rt, OFF(ptx_jit_rt, scatter8) + (bytes == 8 ? sizeof(void *) : 0)), 8, g->tbaa_ctx);
    LLVMValueRef sargs[4] = {mg->host, g->scratch_off, g->scratch_val, LLVMBuildZExt(g->B, m8, g->i32, "")};
    LLVMBuildCall2(g->B, g->scatter_type, fp, sargs, 4, "");
    LLVMBuildBr(g->B, b_done);
    LLVMPositionBuilderAtEnd(g->B, b_done);
    return 0;
}

static void build_segment(cg *g, uint32_t pc, uint32_t n)
{
    /* Memory groups and their offset ranges. */
    g->ngroups = 0;
    for (uint32_t i = 0; i < n; i++) {
        const ptx_xinsn *x = &g->m->xcode[pc + i];
        int space, bytes, st;
        if (!mem_form(x, &space, &bytes, &st))
            continue;
        struct mem_group *mg = find_group(g, x, space);
        if (!mg) {
            mg = &g->groups[g->ngroups++];
            memset(mg, 0, sizeof(*mg));
            mg->aoff = x->a;
            mg->space = space;
            mg->guard = x->guard;
            mg->guard_xor = x->guard_xor;
            mg->imm_lo = x->imm;
            mg->imm_hi = x->imm + bytes;
            mg->bytes = bytes;
        }
        if (x->imm < mg->imm_lo)
            mg->imm_lo = x->imm;
        if (x->imm + bytes > mg->imm_hi)
            mg->imm_hi = x->imm + bytes;
        if (bytes > mg->align)
            mg->align = bytes;
        mg->loads |= !st;
    }
    if (g->ngroups) {
        /* Checks that fail leave the segment to the interpreter, from its start (the register
         * file is up to date there), which runs or reports every access exactly and comes back
         * at the next leader (RUN_NOT_HERE; see run_warp). */
        LLVMBasicBlockRef slow = new_block(g, "seg_slow");
        seg_memory(g, slow);
        LLVMBasicBlockRef here = LLVMGetInsertBlock(g->B);
        LLVMPositionBuilderAtEnd(g->B, slow);
        leave(g, ci32(g, RUN_NOT_HERE), pc);
        LLVMPositionBuilderAtEnd(g->B, here);
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
    LLVMBasicBlockRef loop = new_block(g, "seg"), done = new_block(g, "seg_done");
    LLVMBuildBr(g->B, loop);
    LLVMPositionBuilderAtEnd(g->B, loop);
    LLVMValueRef ch = LLVMBuildPhi(g->B, g->i64, "ch");
    g->ch = ch;
    g->nvals = 0;
    g->gmask8 = chunk_bits(g, g->gmask);
    for (uint32_t i = 0; i < n; i++) {
        const ptx_xinsn *x = &g->m->xcode[pc + i];
        LLVMValueRef guard8 = NULL;
        if (x->guard >= 0)
            guard8 = LLVMBuildXor(g->B, pbits(g, x->guard), ci8(g, x->guard_xor), "");
        if (emit_lanes(g, x, guard8) != 0)
            snprintf(g->why, g->whylen, "internal: instruction at line %d left a segment", x->in->line);
    }
    seg_store(g);
    chunk_loop_close(g, ch, pre, loop, done);
    g->ch = NULL;
    g->nvals = 0;
    add_icount(g, n);
}

/* ---- liveness ---------------------------------------------------------------------------------- */

/* Registers an instruction reads (uses) and writes (defs). A guarded write also reads its
 * destination (the lanes whose guard is false keep it). Conservative where unsure: every operand
 * that is not surely a destination counts as read. */
typedef struct live_ctx {
    size_t nw;          /* words per bitset */
    uint64_t *in;       /* per instruction of the function: registers live before it */
} live_ctx;

static void bit_set(uint64_t *s, int r)
{
    s[r / 64] |= 1ull << (r % 64);
}

static void bit_clear(uint64_t *s, int r)
{
    s[r / 64] &= ~(1ull << (r % 64));
}

static int has_dest(const ptx_insn *in)
{
    switch (in->op) {
    case OP_ST: case OP_RED: case OP_BRA: case OP_CALL: case OP_RET: case OP_EXIT: case OP_TRAP:
    case OP_MEMBAR: case OP_NOP: case OP_SUST: case OP_WMMA_STORE:
        return 0;
    case OP_BAR:
        return in->mode != BAR_SYNC && in->mode != BAR_ARRIVE;
    default:
        return 1;
    }
}

/* Marks (set) or clears the registers of operand o: a register, an address's base, a vector or
 * a register list (wmma fragments, whose registers live in m->call_args). */
static void mark_operand(const ptx_module *m, const ptx_operand *o, uint64_t *live, int nregs, int set)
{
    int n = 0;
    const int32_t *regs = NULL;
    if (o->kind == OPK_REG || (o->kind == OPK_ADDR && set)) {
        n = 1;
        regs = &o->reg;
    } else if (o->kind == OPK_VEC) {
        n = o->nvec;
        regs = o->vec;
    } else if (o->kind == OPK_LIST) {
        n = o->nvec;
        regs = m->call_args + o->imm;
    }
    for (int e = 0; e < n; e++) {
        if (regs[e] < 0 || regs[e] >= nregs)
            continue;
        if (set)
            bit_set(live, regs[e]);
        else
            bit_clear(live, regs[e]);
    }
}

/* live = (live - defs) + uses, for one instruction (walking backwards). */
static void transfer(const ptx_module *m, const ptx_insn *in, uint64_t *live, int nregs)
{
    int dest = has_dest(in);
    if (dest && in->guard < 0 && in->nops > 0)
        mark_operand(m, &in->ops[0], live, nregs, 0);
    for (int i = 0; i < in->nops && i < PTX_MAX_OPERANDS; i++) {
        if (i == 0 && dest && in->guard < 0)
            continue;
        mark_operand(m, &in->ops[i], live, nregs, 1);
    }
    if (in->guard >= 0 && in->guard < nregs)
        bit_set(live, in->guard);
}

/* Successors of instruction i (function-local) that are inside the function. */
static int successors(const ptx_func *f, const ptx_insn *in, uint32_t i, uint32_t succ[2])
{
    int n = 0;
    int falls = 1;
    if (in->op == OP_BRA) {
        uint64_t t = (uint64_t)in->ops[0].imm;
        if (t >= f->first && t < f->first + f->count)
            succ[n++] = (uint32_t)(t - f->first);
        falls = in->guard >= 0;
    } else if (in->op == OP_RET || in->op == OP_EXIT || in->op == OP_TRAP) {
        falls = in->guard >= 0;
    }
    if (falls && i + 1 < f->count)
        succ[n++] = i + 1;
    return n;
}

/* Live-in sets of every instruction of f, by iterating to a fixed point (backwards). */
static int live_compute(cg *g, const ptx_func *f, live_ctx *lc)
{
    size_t n = f->count, nw = ((size_t)f->nregs + 63) / 64;
    lc->nw = nw ? nw : 1;
    lc->in = calloc(n * lc->nw + lc->nw, sizeof(uint64_t));
    if (!lc->in)
        return -1;
    uint64_t *tmp = lc->in + n * lc->nw;
    const ptx_insn *code = g->m->code + f->first;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t k = n; k-- > 0;) {
            uint32_t succ[2];
            int ns = successors(f, &code[k], (uint32_t)k, succ);
            memset(tmp, 0, lc->nw * sizeof(uint64_t));
            for (int s = 0; s < ns; s++)
                for (size_t w = 0; w < lc->nw; w++)
                    tmp[w] |= lc->in[succ[s] * lc->nw + w];
            transfer(g->m, &code[k], tmp, f->nregs);
            uint64_t *cur = lc->in + k * lc->nw;
            if (memcmp(cur, tmp, lc->nw * sizeof(uint64_t)) != 0) {
                memcpy(cur, tmp, lc->nw * sizeof(uint64_t));
                changed = 1;
            }
        }
    }
    return 0;
}

/* g->live = registers live right after instruction i (function-local). */
static void live_after(cg *g, const ptx_func *f, const live_ctx *lc, uint32_t i)
{
    uint32_t succ[2];
    int ns = successors(f, &g->m->code[f->first + i], i, succ);
    memset(g->live, 0, lc->nw * sizeof(uint64_t));
    for (int s = 0; s < ns; s++)
        for (size_t w = 0; w < lc->nw; w++)
            g->live[w] |= lc->in[succ[s] * lc->nw + w];
}

/* ---- functions -------------------------------------------------------------------------------- */

static int ends_block(const ptx_insn *in)
{
    switch (in->op) {
    case OP_BRA: case OP_CALL: case OP_RET: case OP_EXIT: case OP_TRAP: case OP_BAR:
        return 1;
    default:
        return 0;
    }
}

static int build_function(cg *g, int fi, const char *name)
{
    const ptx_module *m = g->m;
    const ptx_func *f = &m->funcs[fi];
    g->f = f;
    g->fn = LLVMAddFunction(g->M, name, g->fn_type);
    LLVMSetLinkage(g->fn, LLVMExternalLinkage);
    g->c = LLVMGetParam(g->fn, 0);
    g->g = LLVMGetParam(g->fn, 1);
    g->other_min = LLVMGetParam(g->fn, 2);
    g->R = LLVMGetParam(g->fn, 3);
    g->xcode = LLVMGetParam(g->fn, 4);
    g->rt = LLVMGetParam(g->fn, 5);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->C, nounwind, 0));

    size_t n = f->count;
    live_ctx lc = {0, NULL};
    if (live_compute(g, f, &lc) != 0) {
        snprintf(g->why, g->whylen, "out of memory");
        return -1;
    }
    free(g->live);
    g->live = calloc(lc.nw, sizeof(uint64_t));
    uint8_t *lead = calloc(n ? n : 1, 1);
    g->arrive = calloc(n ? n : 1, sizeof(*g->arrive));
    g->body = calloc(n ? n : 1, sizeof(*g->body));
    if (!lead || !g->arrive || !g->body || !g->live) {
        free(lead);
        free(lc.in);
        snprintf(g->why, g->whylen, "out of memory");
        return -1;
    }
    LLVMBasicBlockRef entry = new_block(g, "entry");
    g->exit_rc = new_block(g, "exit");
    /* Leaders: the interpreter's (ptx_xbuild.c), so that both schedule alike. */
    for (size_t i = 0; i < n; i++)
        lead[i] = m->xcode[f->first + i].leader;
    for (size_t i = 0; i < n; i++) {
        if (!lead[i])
            continue;
        char nm[32];
        snprintf(nm, sizeof(nm), "arrive%zu", i);
        g->arrive[i] = new_block(g, nm);
        snprintf(nm, sizeof(nm), "pc%zu", i);
        g->body[i] = new_block(g, nm);
    }
    /* Entry: the group's pc picks the block. */
    LLVMPositionBuilderAtEnd(g->B, entry);
    g->icount = LLVMBuildAlloca(g->B, g->i64, "icount");
    LLVMValueRef so = LLVMBuildAlloca(g->B, g->v8i32, "scratch_off");
    LLVMValueRef sv = LLVMBuildAlloca(g->B, g->v8i64, "scratch_val");
    LLVMSetAlignment(so, 32);
    LLVMSetAlignment(sv, 64);
    g->scratch_off = LLVMBuildBitCast(g->B, so, g->p8, "");
    g->scratch_val = LLVMBuildBitCast(g->B, sv, g->p8, "");
    g->chunk_amin = LLVMBuildAlloca(g->B, LLVMArrayType(g->i64, 32), "chunk_amin");
    g->chunk_uni = LLVMBuildAlloca(g->B, LLVMArrayType(g->i8, 32), "chunk_uni");
    g->budget = LLVMBuildAlloca(g->B, g->i32, "budget");
    LLVMBuildStore(g->B, ci64(g, 0), g->icount);
    LLVMBuildStore(g->B, ctx_field(g, g->c, OFF(exec_ctx, slice), g->i32), g->budget);
    g->gmask = ctx_field(g, g->g, OFF(ptx_group, mask), g->i32);
    g->w = ctx_field(g, g->c, OFF(exec_ctx, w), g->p8);
    g->b = ctx_field(g, g->c, OFF(exec_ctx, b), g->p8);
    LLVMValueRef pc0 = ctx_field(g, g->g, OFF(ptx_group, pc), g->i32);
    LLVMBasicBlockRef not_here = new_block(g, "not_here");
    unsigned nlead = 0;
    for (size_t i = 0; i < n; i++)
        nlead += lead[i];
    LLVMValueRef sw = LLVMBuildSwitch(g->B, pc0, not_here, nlead);
    for (size_t i = 0; i < n; i++)
        if (lead[i])
            LLVMAddCase(sw, ci32(g, f->first + i), g->body[i]);
    LLVMPositionBuilderAtEnd(g->B, not_here);
    LLVMBuildRet(g->B, ci32(g, RUN_NOT_HERE));
    /* The one exit. */
    LLVMPositionBuilderAtEnd(g->B, g->exit_rc);
    g->exit_phi = LLVMBuildPhi(g->B, g->i32, "rc");
    store(g, LLVMBuildLoad2(g->B, g->i64, g->icount, ""), gep8c(g, g->c, OFF(exec_ctx, icount)), 8, g->tbaa_ctx);
    store(g, LLVMBuildLoad2(g->B, g->i32, g->budget, ""), gep8c(g, g->c, OFF(exec_ctx, slice)), 4, g->tbaa_ctx);
    LLVMBuildRet(g->B, g->exit_phi);
    /* Arrival checks: another group's pc, the time slice. */
    g->h_out = new_block(g, "h_out");
    g->stop = new_block(g, "stop");
    build_tails(g);
    for (size_t i = 0; i < n; i++) {
        if (!lead[i])
            continue;
        uint32_t pc = f->first + (uint32_t)i;
        LLVMPositionBuilderAtEnd(g->B, g->arrive[i]);
        LLVMValueRef bud = LLVMBuildSub(g->B, LLVMBuildLoad2(g->B, g->i32, g->budget, ""), ci32(g, 1), "");
        LLVMBuildStore(g->B, bud, g->budget);
        LLVMValueRef stop = LLVMBuildOr(g->B, LLVMBuildICmp(g->B, LLVMIntUGE, ci32(g, pc), g->other_min, ""),
                                        LLVMBuildICmp(g->B, LLVMIntEQ, bud, ci32(g, 0), ""), "");
        LLVMBuildCondBr(g->B, stop, g->stop, g->body[i]);
        LLVMValueRef pcv = ci32(g, pc);
        LLVMBasicBlockRef here = g->arrive[i];
        LLVMAddIncoming(g->stop_phi, &pcv, &here, 1);
    }
    /* Bodies: segments of lane-wise instructions, everything else one by one. */
    for (size_t i = 0; i < n;) {
        uint32_t pc = f->first + (uint32_t)i;
        const ptx_xinsn *x = &m->xcode[pc];
        const ptx_insn *in = x->in;
        if (lead[i])
            LLVMPositionBuilderAtEnd(g->B, g->body[i]);
        seg_form sf;
        memset(&sf, 0, sizeof(sf));
        if (seg_can_add(g, &sf, x)) {
            size_t j = i + 1;
            while (j < n && !lead[j] && seg_can_add(g, &sf, &m->xcode[f->first + j]))
                j++;
            live_after(g, f, &lc, (uint32_t)(j - 1));
            build_segment(g, pc, (uint32_t)(j - i));
            i = j;
            if (i < n && lead[i])
                go_to(g, f->first + (uint32_t)i);
            else if (i == n)
                leave(g, ci32(g, RUN_SCHED), f->first + (uint32_t)i);
            continue;
        }
        add_icount(g, 1);
        LLVMValueRef mask = g->gmask;
        if (x->guard >= 0)
            mask = LLVMBuildAnd(g->B, mask, LLVMBuildXor(g->B, pred_word(g, x->guard), ci32(g, x->guard_xor), ""), "");
        if (in->op == OP_BRA && x->guard < 0) {
            go_to(g, (uint32_t)x->imm);
        } else if (in->op == OP_BRA) {
            LLVMBasicBlockRef all = new_block(g, "bra_all"), notall = new_block(g, "bra_notall"),
                              none = new_block(g, "bra_none"), split = new_block(g, "bra_split");
            LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, mask, g->gmask, ""), all, notall);
            LLVMPositionBuilderAtEnd(g->B, all);
            go_to(g, (uint32_t)x->imm);
            LLVMPositionBuilderAtEnd(g->B, notall);
            LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, mask, ci32(g, 0), ""), none, split);
            LLVMPositionBuilderAtEnd(g->B, split);
            call_handler(g, pc, mask); /* ptx_x_bra: divergence, back to the scheduler */
            leave(g, ci32(g, RUN_SCHED), pc + 1);
            LLVMPositionBuilderAtEnd(g->B, none);
            if (i + 1 < n)
                go_to(g, pc + 1);
            else
                leave(g, ci32(g, RUN_SCHED), pc + 1);
        } else {
            if (x->guard >= 0) {
                /* A handler never runs for no lane. */
                LLVMBasicBlockRef yes = new_block(g, "any"), after = new_block(g, "after");
                LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntNE, mask, ci32(g, 0), ""), yes, after);
                LLVMPositionBuilderAtEnd(g->B, yes);
                call_handler(g, pc, mask);
                LLVMBuildBr(g->B, after);
                LLVMPositionBuilderAtEnd(g->B, after);
            } else {
                call_handler(g, pc, mask);
            }
            if (i + 1 < n && (lead[i + 1] || ends_block(in)))
                go_to(g, pc + 1);
            else if (i + 1 == n)
                leave(g, ci32(g, RUN_SCHED), pc + 1);
        }
        i++;
    }
    free(lead);
    free(lc.in);
    free(g->arrive);
    free(g->body);
    g->arrive = g->body = NULL;
    return g->why[0] ? -1 : 0;
}

static LLVMValueRef tbaa_type(cg *g, LLVMValueRef root, const char *name)
{
    LLVMMetadataRef md[3] = {LLVMMDStringInContext2(g->C, name, strlen(name)), LLVMValueAsMetadata(root),
                             LLVMValueAsMetadata(ci64(g, 0))};
    LLVMValueRef type = LLVMMetadataAsValue(g->C, LLVMMDNodeInContext2(g->C, md, 3));
    LLVMMetadataRef tagmd[3] = {LLVMValueAsMetadata(type), LLVMValueAsMetadata(type),
                                LLVMValueAsMetadata(ci64(g, 0))};
    return LLVMMetadataAsValue(g->C, LLVMMDNodeInContext2(g->C, tagmd, 3));
}

int ptx_jit_cg_kernel(void *llvm_ctx, void *llvm_module, const ptx_kernel *k, const char *prefix,
                      char *why, size_t whylen)
{
    cg g;
    memset(&g, 0, sizeof(g));
    g.C = llvm_ctx;
    g.M = llvm_module;
    g.m = k->module;
    g.k = k;
    g.why = why;
    g.whylen = whylen;
    g.B = LLVMCreateBuilderInContext(g.C);
    g.i1 = LLVMInt1TypeInContext(g.C);
    g.i8 = LLVMInt8TypeInContext(g.C);
    g.i32 = LLVMInt32TypeInContext(g.C);
    g.i64 = LLVMInt64TypeInContext(g.C);
    g.f32 = LLVMFloatTypeInContext(g.C);
    g.f64 = LLVMDoubleTypeInContext(g.C);
    g.p8 = LLVMPointerType(g.i8, 0);
    g.v8i1 = LLVMVectorType(g.i1, 8);
    g.v8i32 = LLVMVectorType(g.i32, 8);
    g.v8i64 = LLVMVectorType(g.i64, 8);
    g.v8f32 = LLVMVectorType(g.f32, 8);
    g.v8f64 = LLVMVectorType(g.f64, 8);
    LLVMTypeRef fp[6] = {g.p8, g.p8, g.i32, g.p8, g.p8, g.p8};
    g.fn_type = LLVMFunctionType(g.i32, fp, 6, 0);
    LLVMTypeRef hp[3] = {g.p8, g.p8, g.i32};
    g.handler_type = LLVMFunctionType(g.i32, hp, 3, 0);
    LLVMTypeRef rp[3] = {LLVMPointerType(g.f32, 0), LLVMPointerType(g.f32, 0), g.i32};
    g.rowfn_type = LLVMFunctionType(LLVMVoidTypeInContext(g.C), rp, 3, 0);
    LLVMTypeRef gp[3] = {g.p8, g.i64, g.i64};
    g.range_type = LLVMFunctionType(g.p8, gp, 3, 0);
    LLVMTypeRef gap[3] = {g.p8, g.p8, g.p8};
    g.gather_type = LLVMFunctionType(LLVMVoidTypeInContext(g.C), gap, 3, 0);
    LLVMTypeRef scp[4] = {g.p8, g.p8, g.p8, g.i32};
    g.scatter_type = LLVMFunctionType(LLVMVoidTypeInContext(g.C), scp, 4, 0);
    g.tbaa_kind = LLVMGetMDKindIDInContext(g.C, "tbaa", 4);
    LLVMMetadataRef rootmd = LLVMMDStringInContext2(g.C, "vgpu jit", 8);
    LLVMValueRef root = LLVMMetadataAsValue(g.C, LLVMMDNodeInContext2(g.C, &rootmd, 1));
    g.tbaa_reg = tbaa_type(&g, root, "register row");
    g.tbaa_mem = tbaa_type(&g, root, "device memory");
    g.tbaa_ctx = tbaa_type(&g, root, "interpreter state");
    int rc = 0;
    for (size_t fi = 0; fi < g.m->nfuncs && rc == 0; fi++) {
        if (k->reg_base[fi] < 0 || !g.m->funcs[fi].defined)
            continue;
        char name[96];
        snprintf(name, sizeof(name), "%s_f%zu", prefix, fi);
        rc = build_function(&g, (int)fi, name);
    }
    LLVMDisposeBuilder(g.B);
    free(g.vals);
    free(g.live);
    return rc;
}
