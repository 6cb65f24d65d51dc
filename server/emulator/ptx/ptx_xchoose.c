/* ptx_xchoose: which fast handler (ptx_xops.c) runs an instruction, if any.
 *
 * A fast handler is chosen only for the exact form it implements: the instruction's type and
 * modifiers, and every operand a register of the row kind the handler reads (or an immediate,
 * which becomes a constant row). Anything else, including every modifier that changes
 * rounding, saturation or widths, stays with the general handler. */
#include "ptx_xops.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- the variant for this CPU ----------------------------------------------------------------- */

#if defined(__x86_64__)
/* AVX2 and FMA, and the OS saving the YMM state (OSXSAVE + XCR0 bits 1 and 2). */
static int cpu_has_avx2_fma(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!fma || !osxsave || !avx)
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6)
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1; /* AVX2 */
}
#endif

const ptx_xops_table *ptx_xops_select(void)
{
    const char *force = getenv("VGPU_EMU_SIMD");
    if (force && strcmp(force, "baseline") == 0)
        return &ptx_xops_baseline;
#if defined(__x86_64__)
    if (cpu_has_avx2_fma())
        return &ptx_xops_avx2;
#endif
    return &ptx_xops_baseline;
}

const char *ptx_simd_variant(void)
{
    return ptx_xops_select()->name;
}

/* ---- operands --------------------------------------------------------------------------------- */

static int is_int32(int t)
{
    return t == T_B32 || t == T_U32 || t == T_S32;
}

static int is_int64(int t)
{
    return t == T_B64 || t == T_U64 || t == T_S64;
}

/* Row of a source operand of the given kind: a register of that kind, or an immediate made a
 * constant row. Returns the byte offset, -1 when the operand does not fit, -2 out of memory. */
static int32_t src_row(ptx_func *f, const ptx_operand *o, int kind)
{
    if (o->kind == OPK_REG) {
        if (o->reg < 0 || o->reg >= f->nregs || f->xkind[o->reg] != kind || o->neg)
            return -1;
        return f->xroff[o->reg];
    }
    if (o->kind == OPK_IMM && kind != XK_PRED) {
        int32_t off = ptx_xbuild_const(f, kind, (uint64_t)o->imm);
        return off < 0 ? -2 : off;
    }
    return -1;
}

static int32_t dst_row(const ptx_func *f, const ptx_operand *o, int kind)
{
    if (o->kind != OPK_REG || o->reg < 0 || o->reg >= f->nregs || f->xkind[o->reg] != kind)
        return -1;
    return f->xroff[o->reg];
}

static int32_t pred_row(const ptx_func *f, const ptx_operand *o, uint32_t *neg)
{
    if (o->kind != OPK_REG || o->reg < 0 || o->reg >= f->nregs || f->xkind[o->reg] != XK_PRED)
        return -1;
    *neg = o->neg ? ~0u : 0u;
    return f->xroff[o->reg];
}

/* Fills x->d and x->a [, x->b [, x->c]] from operands 0..n-1 of kinds kd, ka...; returns 1 when
 * all fit, 0 when one does not, -1 out of memory. */
static int rows(ptx_func *f, const ptx_insn *in, ptx_xinsn *x, int n, int kd, int ka, int kb, int kc)
{
    if (in->nops != n)
        return 0;
    x->d = dst_row(f, &in->ops[0], kd);
    if (x->d < 0)
        return 0;
    int32_t *slot[3] = {&x->a, &x->b, &x->c};
    int kinds[3] = {ka, kb, kc};
    for (int i = 1; i < n; i++) {
        int32_t off = src_row(f, &in->ops[i], kinds[i - 1]);
        if (off == -2)
            return -1;
        if (off < 0)
            return 0;
        *slot[i - 1] = off;
    }
    return 1;
}

/* ---- choice per opcode ------------------------------------------------------------------------ */

static const uint16_t setp_int_ids[4][6] = {
    {XOP_setp_eq_s32, XOP_setp_ne_s32, XOP_setp_lt_s32, XOP_setp_le_s32, XOP_setp_gt_s32, XOP_setp_ge_s32},
    {XOP_setp_eq_u32, XOP_setp_ne_u32, XOP_setp_lt_u32, XOP_setp_le_u32, XOP_setp_gt_u32, XOP_setp_ge_u32},
    {XOP_setp_eq_s64, XOP_setp_ne_s64, XOP_setp_lt_s64, XOP_setp_le_s64, XOP_setp_gt_s64, XOP_setp_ge_s64},
    {XOP_setp_eq_u64, XOP_setp_ne_u64, XOP_setp_lt_u64, XOP_setp_le_u64, XOP_setp_gt_u64, XOP_setp_ge_u64},
};

static const uint16_t setp_float_ids[2][14] = {
    {XOP_setp_eq_f32, XOP_setp_ne_f32, XOP_setp_lt_f32, XOP_setp_le_f32, XOP_setp_gt_f32,
     XOP_setp_ge_f32, XOP_setp_equ_f32, XOP_setp_neu_f32, XOP_setp_ltu_f32, XOP_setp_leu_f32,
     XOP_setp_gtu_f32, XOP_setp_geu_f32, XOP_setp_num_f32, XOP_setp_nan_f32},
    {XOP_setp_eq_f64, XOP_setp_ne_f64, XOP_setp_lt_f64, XOP_setp_le_f64, XOP_setp_gt_f64,
     XOP_setp_ge_f64, XOP_setp_equ_f64, XOP_setp_neu_f64, XOP_setp_ltu_f64, XOP_setp_leu_f64,
     XOP_setp_gtu_f64, XOP_setp_geu_f64, XOP_setp_num_f64, XOP_setp_nan_f64},
};

static int choose_setp(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    if (in->boolop != BOOL_NONE || in->ops[0].kind != OPK_REG)
        return -1;
    int t = in->type, cmp = in->cmp, kind, id;
    if (t == T_F32 || t == T_F64) {
        if (cmp > CMP_GE && cmp < CMP_EQU)
            return -1; /* lo/ls/hi/hs are for integers */
        int ci = cmp <= CMP_GE ? cmp : cmp - CMP_EQU + 6;
        id = setp_float_ids[t == T_F64][ci];
        kind = t == T_F64 ? XK_64 : XK_32;
    } else if (is_int32(t) || is_int64(t)) {
        /* lo/ls/hi/hs compare as unsigned, whatever the type's signedness. */
        int uns = t != T_S32 && t != T_S64;
        int ci = cmp;
        if (cmp >= CMP_LO && cmp <= CMP_HS) {
            uns = 1;
            ci = cmp == CMP_LO ? CMP_LT : cmp == CMP_LS ? CMP_LE : cmp == CMP_HI ? CMP_GT : CMP_GE;
        } else if (cmp > CMP_GE) {
            return -1;
        }
        int w64 = is_int64(t);
        id = setp_int_ids[w64 * 2 + uns][ci];
        kind = w64 ? XK_64 : XK_32;
    } else {
        return -1;
    }
    int r = rows(f, in, x, 3, XK_PRED, kind, kind, 0);
    return r == 1 ? id : r == 0 ? -1 : -2;
}

static int choose_cvt(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    int dt = in->type, st = in->type2, rnd = in->rnd, id = -1, kd, ka;
    if (in->nops != 2 || in->sat || in->ftz)
        return -1;
    if (is_int64(dt) && is_int32(st) && rnd == RND_NONE) {
        id = st == T_S32 ? XOP_cvt_s64_s32 : XOP_cvt_u64_u32;
        kd = XK_64, ka = XK_32;
    } else if (is_int32(dt) && is_int64(st) && rnd == RND_NONE) {
        id = XOP_cvt_u32_u64, kd = XK_32, ka = XK_64;
    } else if (dt == T_F32 && is_int32(st) && (rnd == RND_RN || rnd == RND_NONE)) {
        id = st == T_S32 ? XOP_cvt_rn_f32_s32 : XOP_cvt_rn_f32_u32;
        kd = ka = XK_32;
    } else if (dt == T_S32 && st == T_F32) {
        id = rnd == RND_RZI || rnd == RND_NONE ? XOP_cvt_rzi_s32_f32 : rnd == RND_RNI ? XOP_cvt_rni_s32_f32
           : rnd == RND_RMI ? XOP_cvt_rmi_s32_f32 : rnd == RND_RPI ? XOP_cvt_rpi_s32_f32 : -1;
        kd = ka = XK_32;
    } else if (dt == T_U32 && st == T_F32 && (rnd == RND_RZI || rnd == RND_NONE)) {
        id = XOP_cvt_rzi_u32_f32, kd = ka = XK_32;
    } else if (dt == T_F32 && st == T_F32) {
        id = rnd == RND_RNI ? XOP_cvt_rni_f32_f32 : rnd == RND_RZI ? XOP_cvt_rzi_f32_f32
           : rnd == RND_RMI ? XOP_cvt_rmi_f32_f32 : rnd == RND_RPI ? XOP_cvt_rpi_f32_f32 : -1;
        kd = ka = XK_32;
    } else if (dt == T_F64 && st == T_F32 && rnd == RND_NONE) {
        id = XOP_cvt_f64_f32, kd = XK_64, ka = XK_32;
    } else if (dt == T_F32 && st == T_F64 && (rnd == RND_RN || rnd == RND_NONE)) {
        id = XOP_cvt_rn_f32_f64, kd = XK_32, ka = XK_64;
    } else if (dt == T_F64 && is_int32(st) && (rnd == RND_RN || rnd == RND_NONE)) {
        id = st == T_S32 ? XOP_cvt_rn_f64_s32 : XOP_cvt_rn_f64_u32;
        kd = XK_64, ka = XK_32;
    } else if (dt == T_S32 && st == T_F64 && (rnd == RND_RZI || rnd == RND_NONE)) {
        id = XOP_cvt_rzi_s32_f64, kd = XK_32, ka = XK_64;
    } else {
        return -1;
    }
    if (id < 0)
        return -1;
    int r = rows(f, in, x, 2, kd, ka, 0, 0);
    return r == 1 ? id : r == 0 ? -1 : -2;
}

/* f32 and f64 arithmetic with the default rounding, no saturation. */
static int choose_float(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    int t = in->type;
    if (in->sat || (in->rnd != RND_NONE && in->rnd != RND_RN))
        return -1;
    int n = in->nops, id = -1;
    if (t == T_F32) {
        int z = in->ftz;
        switch (in->op) {
        case OP_ADD: id = z ? XOP_add_ftz_f32 : XOP_add_f32; break;
        case OP_SUB: id = z ? XOP_sub_ftz_f32 : XOP_sub_f32; break;
        case OP_MUL: id = z ? XOP_mul_ftz_f32 : XOP_mul_f32; break;
        case OP_DIV: id = z ? XOP_div_ftz_f32 : XOP_div_f32; break;
        case OP_MIN: id = z ? XOP_min_ftz_f32 : XOP_min_f32; break;
        case OP_MAX: id = z ? XOP_max_ftz_f32 : XOP_max_f32; break;
        case OP_MAD:
        case OP_FMA: id = z ? XOP_fma_ftz_f32 : XOP_fma_f32; break;
        case OP_NEG: id = z ? XOP_neg_ftz_f32 : XOP_neg_f32; break;
        case OP_ABS: id = z ? XOP_abs_ftz_f32 : XOP_abs_f32; break;
        case OP_SQRT: id = z ? XOP_sqrt_ftz_f32 : XOP_sqrt_f32; break;
        case OP_RCP: id = z ? XOP_rcp_ftz_f32 : XOP_rcp_f32; break;
        case OP_RSQRT: id = z ? XOP_rsqrt_ftz_f32 : XOP_rsqrt_f32; break;
        case OP_EX2: id = z ? XOP_ex2_ftz_f32 : XOP_ex2_f32; break;
        case OP_LG2: id = z ? XOP_lg2_ftz_f32 : XOP_lg2_f32; break;
        case OP_SIN: id = z ? XOP_sin_ftz_f32 : XOP_sin_f32; break;
        case OP_COS: id = z ? XOP_cos_ftz_f32 : XOP_cos_f32; break;
        case OP_TANH: id = z ? XOP_tanh_ftz_f32 : XOP_tanh_f32; break;
        default: return -1;
        }
    } else if (t == T_F64) {
        switch (in->op) {
        case OP_ADD: id = XOP_add_f64; break;
        case OP_SUB: id = XOP_sub_f64; break;
        case OP_MUL: id = XOP_mul_f64; break;
        case OP_DIV: id = XOP_div_f64; break;
        case OP_MIN: id = XOP_min_f64; break;
        case OP_MAX: id = XOP_max_f64; break;
        case OP_MAD:
        case OP_FMA: id = XOP_fma_f64; break;
        case OP_NEG: id = XOP_neg_f64; break;
        case OP_ABS: id = XOP_abs_f64; break;
        case OP_SQRT: id = XOP_sqrt_f64; break;
        case OP_RCP: id = XOP_rcp_f64; break;
        default: return -1;
        }
    } else {
        return -1;
    }
    int k = t == T_F64 ? XK_64 : XK_32;
    int r = rows(f, in, x, n, k, k, k, k);
    return r == 1 ? id : r == 0 ? -1 : -2;
}

/* Integer arithmetic and logic on 32- and 64-bit rows. */
static int choose_int(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    int t = in->type, w64 = is_int64(t), sg = t == T_S32 || t == T_S64;
    if (!is_int32(t) && !w64)
        return -1;
    if (in->carry || in->sat || in->mul24)
        return -1;
    int k = w64 ? XK_64 : XK_32, kd = k, kb = k, kc = k, id;
    switch (in->op) {
    case OP_ADD: id = w64 ? XOP_add_i64 : XOP_add_i32; break;
    case OP_SUB: id = w64 ? XOP_sub_i64 : XOP_sub_i32; break;
    case OP_MUL:
        if (in->mode == MUL_LO)
            id = w64 ? XOP_mul_lo_i64 : XOP_mul_lo_i32;
        else if (w64)
            return -1;
        else if (in->mode == MUL_HI)
            id = sg ? XOP_mul_hi_s32 : XOP_mul_hi_u32;
        else
            id = sg ? XOP_mul_wide_s32 : XOP_mul_wide_u32, kd = XK_64;
        break;
    case OP_MAD:
        if (in->mode == MUL_LO)
            id = w64 ? XOP_mad_lo_i64 : XOP_mad_lo_i32;
        else if (in->mode == MUL_WIDE && !w64)
            id = sg ? XOP_mul_wide_s32 : XOP_mul_wide_u32, kd = kc = XK_64;
        else
            return -1;
        break;
    case OP_AND: id = w64 ? XOP_and_b64 : XOP_and_b32; break;
    case OP_OR: id = w64 ? XOP_or_b64 : XOP_or_b32; break;
    case OP_XOR: id = w64 ? XOP_xor_b64 : XOP_xor_b32; break;
    case OP_NOT: id = w64 ? XOP_not_b64 : XOP_not_b32; break;
    case OP_NEG: id = w64 ? XOP_neg_s64 : XOP_neg_s32; break;
    case OP_ABS:
        if (w64)
            return -1;
        id = XOP_abs_s32;
        break;
    case OP_SHL: id = w64 ? XOP_shl_b64 : XOP_shl_b32, kb = XK_32; break;
    case OP_SHR:
        id = w64 ? (sg ? XOP_shr_s64 : XOP_shr_u64) : (sg ? XOP_shr_s32 : XOP_shr_u32), kb = XK_32;
        break;
    case OP_MIN: id = w64 ? (sg ? XOP_min_s64 : XOP_min_u64) : (sg ? XOP_min_s32 : XOP_min_u32); break;
    case OP_MAX: id = w64 ? (sg ? XOP_max_s64 : XOP_max_u64) : (sg ? XOP_max_s32 : XOP_max_u32); break;
    case OP_POPC:
        if (w64)
            return -1;
        id = XOP_popc_b32;
        break;
    case OP_CLZ:
        if (w64)
            return -1;
        id = XOP_clz_b32;
        break;
    case OP_BREV:
        if (w64)
            return -1;
        id = XOP_brev_b32;
        break;
    default:
        return -1;
    }
    int r = rows(f, in, x, in->nops, kd, k, kb, kc);
    return r == 1 ? id : r == 0 ? -1 : -2;
}

static int choose_pred_logic(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    uint32_t na = 0, nb = 0;
    if (in->ops[0].kind != OPK_REG || f->xkind[in->ops[0].reg] != XK_PRED)
        return -1;
    x->d = f->xroff[in->ops[0].reg];
    x->a = pred_row(f, &in->ops[1], &na);
    if (x->a < 0 || na)
        return -1;
    if (in->op == OP_NOT)
        return in->nops == 2 ? XOP_not_pred : -1;
    if (in->nops != 3)
        return -1;
    x->b = pred_row(f, &in->ops[2], &nb);
    if (x->b < 0 || nb)
        return -1;
    return in->op == OP_AND ? XOP_and_pred : in->op == OP_OR ? XOP_or_pred
         : in->op == OP_XOR ? XOP_xor_pred : -1;
}

static int choose_mov(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    const ptx_operand *d = &in->ops[0], *a = &in->ops[1];
    int t = in->type;
    if (d->kind != OPK_REG)
        return -1;
    if (t == T_PRED) {
        uint32_t neg = 0;
        x->d = dst_row(f, d, XK_PRED);
        x->a = pred_row(f, a, &neg);
        if (x->d < 0 || x->a < 0)
            return -1;
        x->aux = neg;
        return XOP_mov_pred;
    }
    int bytes = ptx_type_bytes(t);
    if (bytes != 4 && bytes != 8)
        return -1;
    int k = bytes == 8 ? XK_64 : XK_32;
    if (a->kind == OPK_SREG) {
        if (k != XK_32 || a->reg == SR_CLOCK64 || a->reg == SR_GLOBALTIMER)
            return -1;
        x->d = dst_row(f, d, XK_32);
        if (x->d < 0)
            return -1;
        x->aux = (uint32_t)a->reg;
        return XOP_mov_sreg;
    }
    int r = rows(f, in, x, 2, k, k, 0, 0);
    return r == 1 ? (k == XK_64 ? XOP_mov64 : XOP_mov32) : r == 0 ? -1 : -2;
}

/* ld/st: x->a the address row (x->imm its offset), data rows in d,e,f,g (ld) or b,c,f,g (st). */
static int choose_mem(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    int st = in->op == OP_ST;
    const ptx_operand *ao = &in->ops[st ? 0 : 1], *vo = &in->ops[st ? 1 : 0];
    int bytes = ptx_type_bytes(in->type), n = in->vec;
    if (bytes != 4 && bytes != 8)
        return -1;
    int k = bytes == 8 ? XK_64 : XK_32;
    /* Element kind: 0 b32, 1 b64, 2 v2b32, 3 v4b32, 4 v2b64. */
    int ek;
    if (n == 1)
        ek = bytes == 8;
    else if (n == 2)
        ek = bytes == 8 ? 4 : 2;
    else if (n == 4 && bytes == 4)
        ek = 3;
    else
        return -1;
    if (ao->kind != OPK_ADDR)
        return -1;
    x->imm = ao->imm;
    /* Data rows. */
    int32_t *dslots[4] = {st ? &x->b : &x->d, st ? &x->c : &x->e, &x->f, &x->g};
    if (n == 1) {
        int32_t off = st ? src_row(f, vo, k) : dst_row(f, vo, k);
        if (off == -2)
            return -2;
        if (off < 0)
            return -1;
        *dslots[0] = off;
    } else {
        if (vo->kind != OPK_VEC || vo->nvec != n)
            return -1;
        for (int e = 0; e < n; e++) {
            int r = vo->vec[e];
            if (r < 0 || r >= f->nregs || f->xkind[r] != k)
                return -1;
            *dslots[e] = f->xroff[r];
        }
    }
    if (ao->reg < 0) {
        /* A kernel parameter by name: one uniform value. */
        if (st || n != 1 || in->space != SP_PARAM || ao->symkind != SYM_KPARAM)
            return -1;
        x->imm = (int64_t)ao->sym + ao->imm;
        return bytes == 8 ? XOP_ld_kparam_b64 : XOP_ld_kparam_b32;
    }
    int bk = f->xkind[ao->reg];
    x->a = f->xroff[ao->reg];
    static const uint16_t ld_ids[4][5] = {
        {XOP_ld_shared32_b32, XOP_ld_shared32_b64, XOP_ld_shared32_v2b32, XOP_ld_shared32_v4b32, XOP_ld_shared32_v2b64},
        {XOP_ld_shared64_b32, XOP_ld_shared64_b64, XOP_ld_shared64_v2b32, XOP_ld_shared64_v4b32, XOP_ld_shared64_v2b64},
        {XOP_ld_global_b32, XOP_ld_global_b64, XOP_ld_global_v2b32, XOP_ld_global_v4b32, XOP_ld_global_v2b64},
        {XOP_ld_generic_b32, XOP_ld_generic_b64, XOP_ld_generic_v2b32, XOP_ld_generic_v4b32, XOP_ld_generic_v2b64},
    };
    static const uint16_t st_ids[4][5] = {
        {XOP_st_shared32_b32, XOP_st_shared32_b64, XOP_st_shared32_v2b32, XOP_st_shared32_v4b32, XOP_st_shared32_v2b64},
        {XOP_st_shared64_b32, XOP_st_shared64_b64, XOP_st_shared64_v2b32, XOP_st_shared64_v4b32, XOP_st_shared64_v2b64},
        {XOP_st_global_b32, XOP_st_global_b64, XOP_st_global_v2b32, XOP_st_global_v4b32, XOP_st_global_v2b64},
        {XOP_st_generic_b32, XOP_st_generic_b64, XOP_st_generic_v2b32, XOP_st_generic_v4b32, XOP_st_generic_v2b64},
    };
    int sp;
    if (in->space == SP_SHARED && bk == XK_32 && ao->neg)
        sp = 0;
    else if (in->space == SP_SHARED && bk == XK_64)
        sp = 1;
    else if (in->space == SP_GLOBAL && bk == XK_64)
        sp = 2;
    else if (in->space == SP_GENERIC && bk == XK_64)
        sp = 3;
    else
        return -1;
    return st ? st_ids[sp][ek] : ld_ids[sp][ek];
}

static int choose_warp(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    if (in->op == OP_SHFL) {
        if (in->type != T_B32)
            return -1;
        const ptx_operand *d = &in->ops[0];
        int dreg = d->kind == OPK_VEC ? d->vec[0] : d->kind == OPK_REG ? d->reg : -1;
        if (dreg < 0 || f->xkind[dreg] != XK_32)
            return -1;
        x->d = f->xroff[dreg];
        x->e = -1;
        if (d->kind == OPK_VEC) {
            int p = d->vec[1];
            if (p < 0 || f->xkind[p] != XK_PRED)
                return -1;
            x->e = f->xroff[p];
        }
        int32_t *slot[3] = {&x->a, &x->b, &x->c};
        for (int i = 1; i <= 3; i++) {
            int32_t off = src_row(f, &in->ops[i], XK_32);
            if (off == -2)
                return -2;
            if (off < 0)
                return -1;
            *slot[i - 1] = off;
        }
        static const uint16_t ids[4] = {XOP_shfl_up, XOP_shfl_down, XOP_shfl_bfly, XOP_shfl_idx};
        return ids[in->mode & 3];
    }
    /* vote */
    uint32_t neg = 0;
    x->a = pred_row(f, &in->ops[1], &neg);
    if (x->a < 0)
        return -1;
    x->aux = neg;
    if (in->mode == VOTE_BALLOT) {
        x->d = dst_row(f, &in->ops[0], XK_32);
        return x->d < 0 ? -1 : XOP_vote_ballot;
    }
    if (in->mode != VOTE_ANY && in->mode != VOTE_ALL)
        return -1;
    x->d = dst_row(f, &in->ops[0], XK_PRED);
    return x->d < 0 ? -1 : in->mode == VOTE_ANY ? XOP_vote_any : XOP_vote_all;
}

static int choose_id(ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    switch (in->op) {
    case OP_MOV:
        return choose_mov(f, in, x);
    case OP_LD:
    case OP_ST:
        return choose_mem(f, in, x);
    case OP_CVT:
        return choose_cvt(f, in, x);
    case OP_CVTA: {
        if (in->type != T_U64 && in->type != T_B64 && in->type != T_S64)
            return -1;
        int id = in->space == SP_GLOBAL || in->space == SP_CONST ? XOP_mov64
               : in->space == SP_SHARED ? (in->mode ? XOP_cvta_to_shared : XOP_cvta_shared) : -1;
        if (id < 0)
            return -1;
        int r = rows(f, in, x, 2, XK_64, XK_64, 0, 0);
        return r == 1 ? id : r == 0 ? -1 : -2;
    }
    case OP_SETP:
        return choose_setp(f, in, x);
    case OP_SELP: {
        int bytes = ptx_type_bytes(in->type);
        if ((bytes != 4 && bytes != 8) || in->type == T_F16X2 || in->type == T_BF16X2)
            return -1;
        int k = bytes == 8 ? XK_64 : XK_32;
        uint32_t neg = 0;
        int32_t p = pred_row(f, &in->ops[3], &neg);
        if (p < 0 || in->nops != 4)
            return -1;
        int r = rows(f, in, x, 3, k, k, k, 0);
        if (r != 1)
            return r == 0 ? -1 : -2;
        x->c = p;
        x->aux = neg;
        return k == XK_64 ? XOP_selp64 : XOP_selp32;
    }
    case OP_AND: case OP_OR: case OP_XOR: case OP_NOT:
        if (in->type == T_PRED)
            return choose_pred_logic(f, in, x);
        return choose_int(f, in, x);
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_MAD: case OP_FMA: case OP_DIV:
    case OP_MIN: case OP_MAX: case OP_NEG: case OP_ABS: case OP_SQRT: case OP_RCP:
    case OP_RSQRT: case OP_EX2: case OP_LG2: case OP_SIN: case OP_COS: case OP_TANH:
        if (in->type == T_F32 || in->type == T_F64)
            return choose_float(f, in, x);
        return choose_int(f, in, x);
    case OP_SHL: case OP_SHR: case OP_POPC: case OP_CLZ: case OP_BREV:
        return choose_int(f, in, x);
    case OP_SHFL:
    case OP_VOTE:
        return choose_warp(f, in, x);
    default:
        return -1;
    }
}

int ptx_xops_choose(const ptx_xops_table *ops, ptx_func *f, const ptx_insn *in, ptx_xinsn *x)
{
    ptx_xinsn save = *x;
    int id = choose_id(f, in, x);
    if (id == -2)
        return -1;
    if (id < 0) {
        *x = save; /* a partial choice may have filled operand slots */
        return 0;
    }
    x->fn = ops->fn[id];
    x->xop = (uint16_t)id;
    return 1;
}
