/* ptx_xbuild: from the parsed module to what the interpreter runs (see ptx_exec.h): register
 * layouts per function and per kernel, and one handler per instruction, chosen once here so
 * that running an instruction is one indirect call with no decoding left.
 *
 * Handler choice: a fast handler of ptx_xops.c when the instruction has one of the forms it
 * covers (operand kinds and register widths matching exactly), else the control-flow handlers
 * or the general handler of ptx_exec.c. The fast handlers come from the variant of ptx_xops.c
 * built for this CPU (AVX2/FMA where the CPU has them, baseline otherwise). */
#include "ptx_exec.h"
#include "ptx_xops.h"

#include <stdlib.h>
#include <string.h>

static int reg_kind(int type)
{
    if (type == T_PRED)
        return XK_PRED;
    return ptx_type_bytes(type) == 8 ? XK_64 : XK_32;
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

#define ROW_ALIGN 64

/* Lays out one function's registers: 64- and 32-bit rows in index order, then the predicate
 * words packed, then (added while handlers are chosen) constant rows. */
static int layout_func(ptx_func *f)
{
    size_t n = (size_t)f->nregs;
    f->xroff = malloc((n ? n : 1) * sizeof(int32_t));
    f->xkind = malloc(n ? n : 1);
    if (!f->xroff || !f->xkind)
        return PTX_ERR_NOMEM;
    size_t off = 0;
    for (size_t r = 0; r < n; r++) {
        int kind = reg_kind(f->reg_types[r]);
        f->xkind[r] = (uint8_t)kind;
        if (kind == XK_PRED)
            continue;
        f->xroff[r] = (int32_t)off;
        off += kind == XK_64 ? 32 * 8 : 32 * 4;
    }
    for (size_t r = 0; r < n; r++) {
        if (f->xkind[r] != XK_PRED)
            continue;
        f->xroff[r] = (int32_t)off;
        off += 4;
    }
    f->xbytes = align_up(off, ROW_ALIGN);
    /* The parser bounds registers (MAX_TOTAL_REGS rows of at most 256 bytes): offsets fit. */
    return PTX_OK;
}

/* The byte offset of a constant row holding value (kind XK_32 or XK_64), added to f's range
 * on first use. Returns -1 when out of memory. */
int32_t ptx_xbuild_const(ptx_func *f, int kind, uint64_t value)
{
    if (kind == XK_32)
        value = (uint32_t)value;
    for (size_t i = 0; i < f->nxconst; i++)
        if (f->xconst[i].kind == kind && f->xconst[i].value == value)
            return f->xconst[i].off;
    if (f->nxconst == f->xconst_cap) {
        size_t cap = f->xconst_cap ? f->xconst_cap * 2 : 8;
        ptx_xconst *p = realloc(f->xconst, cap * sizeof(*p));
        if (!p)
            return -1;
        f->xconst = p;
        f->xconst_cap = cap;
    }
    ptx_xconst *c = &f->xconst[f->nxconst++];
    c->off = (int32_t)f->xbytes;
    c->kind = (uint8_t)kind;
    c->value = value;
    f->xbytes += kind == XK_64 ? 32 * 8 : 32 * 4;
    return c->off;
}

/* Control flow and the general handler: the handler for an instruction no fast form covers. */
static ptx_xfn base_handler(const ptx_insn *in)
{
    switch (in->op) {
    case OP_BRA: return in->guard >= 0 ? ptx_x_bra : ptx_x_bra_always;
    case OP_CALL: return ptx_x_call;
    case OP_RET: return ptx_x_ret;
    case OP_EXIT: return ptx_x_exit;
    case OP_TRAP: return ptx_x_trap;
    case OP_BAR: return ptx_x_bar;
    case OP_NOP: return ptx_x_nop;
    case OP_TEX: case OP_TLD4: return ptx_x_tex;
    case OP_SULD: case OP_SUST: return ptx_x_surf;
    case OP_TXQ: case OP_SUQ: return ptx_x_texquery;
    case OP_WMMA_LOAD: case OP_WMMA_STORE: case OP_WMMA_MMA: return ptx_x_wmma;
    default: return ptx_x_generic;
    }
}

int ptx_xbuild(ptx_module *m)
{
    const ptx_xops_table *ops = ptx_xops_select();
    for (size_t i = 0; i < m->nfuncs; i++) {
        if (m->funcs[i].defined && layout_func(&m->funcs[i]) != PTX_OK)
            return PTX_ERR_NOMEM;
    }
    /* One more entry than instructions: the interpreter looks at the next one's leader flag. */
    m->xcode = calloc(m->ncode + 1, sizeof(ptx_xinsn));
    if (!m->xcode)
        return PTX_ERR_NOMEM;
    m->xcode[m->ncode].leader = 1;
    for (size_t i = 0; i < m->ncode; i++) {
        const ptx_insn *in = &m->code[i];
        ptx_func *f = &m->funcs[in->func];
        ptx_xinsn *x = &m->xcode[i];
        x->in = in;
        x->xop = XOP_NONE;
        x->guard = in->guard >= 0 ? f->xroff[in->guard] : -1;
        x->guard_xor = in->guard_neg ? ~0u : 0u;
        x->d = x->a = x->b = x->c = x->e = -1;
        if (in->op == OP_BRA)
            x->imm = in->ops[0].imm;
        int rc = ptx_xops_choose(ops, f, in, x);
        if (rc < 0)
            return PTX_ERR_NOMEM;
        if (rc == 0)
            x->fn = base_handler(in);
    }
    /* Block leaders: both engines go back to the scheduler and count their time slice only
     * there. */
    for (size_t fi = 0; fi < m->nfuncs; fi++) {
        const ptx_func *f = &m->funcs[fi];
        if (!f->defined || f->count == 0)
            continue;
        m->xcode[f->first].leader = 1;
        for (uint32_t pc = f->first; pc < f->first + f->count; pc++) {
            const ptx_insn *in = &m->code[pc];
            if (in->op == OP_BRA) {
                uint64_t t = (uint64_t)in->ops[0].imm;
                if (t >= f->first && t < f->first + f->count)
                    m->xcode[t].leader = 1;
            }
            int ends = in->op == OP_BRA || in->op == OP_CALL || in->op == OP_RET || in->op == OP_EXIT ||
                       in->op == OP_TRAP || in->op == OP_BAR;
            if (ends && pc + 1 < f->first + f->count)
                m->xcode[pc + 1].leader = 1;
        }
    }
    for (size_t i = 0; i < m->nkernels; i++) {
        struct ptx_kernel *k = &m->kernels[i];
        k->xbase = calloc(m->nfuncs ? m->nfuncs : 1, sizeof(size_t));
        if (!k->xbase)
            return PTX_ERR_NOMEM;
        /* Ranges in the order of the parser's register bases (a call-graph walk from the
         * kernel, which comes first). Every range starts on a row boundary. */
        uint8_t *placed = calloc(m->nfuncs ? m->nfuncs : 1, 1);
        if (!placed)
            return PTX_ERR_NOMEM;
        size_t off = 0;
        for (;;) {
            int next = -1;
            for (size_t fi = 0; fi < m->nfuncs; fi++) {
                if (k->reg_base[fi] < 0 || placed[fi])
                    continue;
                if (next < 0 || k->reg_base[fi] < k->reg_base[next] ||
                    (k->reg_base[fi] == k->reg_base[next] && (int)fi == k->func))
                    next = (int)fi;
            }
            if (next < 0)
                break;
            placed[next] = 1;
            k->xbase[next] = off;
            off += align_up(m->funcs[next].xbytes, ROW_ALIGN);
        }
        free(placed);
        if (off == 0)
            off = ROW_ALIGN;
        k->xbytes = off;
    }
    return PTX_OK;
}

void ptx_xbuild_free(ptx_module *m)
{
    for (size_t i = 0; i < m->nfuncs; i++) {
        free(m->funcs[i].xroff);
        free(m->funcs[i].xkind);
        free(m->funcs[i].xconst);
    }
    for (size_t i = 0; i < m->nkernels; i++)
        free(m->kernels[i].xbase);
    free(m->xcode);
}
