/* ptx_parse: PTX text -> pre-decoded module (ptx_ir.h), plus the module accessors of ptx.h.
 *
 * A recursive-descent parser over ptx_lex tokens. Errors unwind with longjmp to
 * ptx_module_parse, which frees the half-built module: every allocation is owned by the module
 * or the parser state at all times, so no path leaks. Every loop consumes a token or stops at
 * end of input, so no input can make the parser spin. */
#include "ptx_exec.h"
#include "ptx_lex.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits that keep hostile input from asking for absurd amounts of memory. */
#define MAX_REG_RANGE 65536
#define MAX_VAR_BYTES (64u << 20)
#define MAX_TOTAL_REGS (1 << 20)

enum decl_kind { D_REG, D_KPARAM, D_FRAME, D_SHARED };

typedef struct decl {
    const char *name; /* into the source text */
    size_t n;
    int kind;
    int count;        /* D_REG: -1 single name, else range %r<count> */
    int base;         /* D_REG: first index; D_SHARED: shared index */
    int type;
    int64_t off;      /* D_KPARAM/D_FRAME: byte offset */
} decl;

/* Module-level names: globals, shared variables, functions. */
enum msym_kind { MS_GLOBAL, MS_SHARED, MS_DYNSHARED, MS_FUNC };
typedef struct msym {
    char *name;
    size_t n;
    uint64_t hash;
    int kind;
    int idx;
} msym;

typedef struct label {
    const char *name;
    size_t n;
    uint64_t hash;
    uint32_t at;
} label;

/* Open-addressing index over an entry array: slot = entry index + 1, 0 when empty. Keeps the
 * parser linear in the number of symbols and labels, however many a module has. */
typedef struct name_index {
    uint32_t *slot;
    size_t cap;        /* power of two, or 0 */
} name_index;

typedef struct fixup {
    const char *name;
    size_t n;
    uint32_t insn;
    int opi;
    int line;
} fixup;

/* An address in a variable's initializer, resolved once the whole module is read. */
typedef struct init_ref {
    int var;          /* global index */
    size_t offset;
    uint8_t bytes;
    ptx_tok name;
    int64_t addend;
} init_ref;

typedef struct parser {
    ptx_lexer lx;
    jmp_buf fail;
    int status;
    char *err;
    size_t errlen;
    ptx_module *m;
    size_t code_cap, funcs_cap, globals_cap, shared_cap, call_args_cap;
    msym *msyms;
    size_t nmsyms, msyms_cap;
    name_index msym_index;
    name_index label_index;
    /* Current function. */
    decl *decls;
    size_t ndecls, decls_cap;
    label *labels;
    size_t nlabels, labels_cap;
    fixup *fixups;
    size_t nfixups, fixups_cap;
    int cur;
    uint8_t *reg_types;
    int nregs, reg_types_cap;
    int *calls;
    size_t ncalls, calls_cap;
    int *shused;
    size_t nshused, shused_cap;
    int *onpath;      /* call-graph walk marks, owned here so an error unwind frees them */
    /* The instruction being decoded: unsupported_at() unwinds to insn_skip. */
    jmp_buf insn_skip;
    int in_insn;      /* inside parse_instruction: unsupported constructs are recorded */
    int insn_semi;    /* the instruction's ';' has been consumed */
    init_ref *inits;  /* addresses in initializers, resolved by resolve_inits */
    size_t ninits, inits_cap;
} parser;

static void __attribute__((noreturn, format(printf, 3, 4)))
fail_at(parser *ps, int line, const char *fmt, ...)
{
    if (ps->errlen > 0) {
        int k = snprintf(ps->err, ps->errlen, "line %d: ", line);
        if (k >= 0 && (size_t)k < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + k, ps->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    ps->status = PTX_ERR_PARSE;
    longjmp(ps->fail, 1);
}

static char *dupn(parser *ps, const char *s, size_t n);

/* Well-formed PTX that the emulator cannot run. Inside an instruction it is recorded in the
 * current function (the first one only) and the rest of the instruction is skipped, so that the
 * module loads and only kernels that can reach the function are refused at launch. Anywhere else
 * it fails the parse. */
static void __attribute__((noreturn, format(printf, 3, 4)))
unsupported_at(parser *ps, int line, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (!ps->in_insn)
        fail_at(ps, line, "%s", what);
    ptx_func *f = &ps->m->funcs[ps->cur];
    if (!f->unsupported) {
        char buf[256];
        int k = snprintf(buf, sizeof(buf), "%s (line %d)", what, line);
        f->unsupported = dupn(ps, buf, k < 0 ? 0 : (size_t)k < sizeof(buf) ? (size_t)k : sizeof(buf) - 1);
    }
    longjmp(ps->insn_skip, 1);
}

static void __attribute__((noreturn)) fail_nomem(parser *ps)
{
    if (ps->errlen > 0)
        snprintf(ps->err, ps->errlen, "line %d: out of memory", ps->lx.line);
    ps->status = PTX_ERR_NOMEM;
    longjmp(ps->fail, 1);
}

/* Grows *arr (element size sz) so that index n is valid. */
static void grow(parser *ps, void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc <= n)
        nc *= 2;
    void *p = realloc(*arr, nc * sz);
    if (!p)
        fail_nomem(ps);
    *arr = p;
    *cap = nc;
}
#define GROW(ps, arr, cap, n) grow((ps), (void **)&(arr), &(cap), (n), sizeof(*(arr)))

static char *dupn(parser *ps, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        fail_nomem(ps);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void *zalloc(parser *ps, size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        fail_nomem(ps);
    return p;
}

/* ---- tokens ---------------------------------------------------------------------------- */

static ptx_tok next(parser *ps)
{
    ptx_tok t = ptx_lex_next(&ps->lx);
    if (t.kind == TK_BAD)
        fail_at(ps, t.line, "unexpected character '%c' (0x%02x)",
                (t.s[0] >= 32 && t.s[0] < 127) ? t.s[0] : '?', (unsigned char)t.s[0]);
    return t;
}

static ptx_tok peek(parser *ps)
{
    return ptx_lex_peek(&ps->lx);
}

static void expect(parser *ps, char c)
{
    ptx_tok t = next(ps);
    if (!ptx_tok_is(&t, c))
        fail_at(ps, t.line, "expected '%c' before '%.*s'", c, (int)(t.n > 40 ? 40 : t.n), t.s);
}

static int accept(parser *ps, char c)
{
    ptx_tok t = peek(ps);
    if (ptx_tok_is(&t, c)) {
        next(ps);
        return 1;
    }
    return 0;
}

static ptx_tok expect_ident(parser *ps, const char *what)
{
    ptx_tok t = next(ps);
    if (t.kind != TK_IDENT)
        fail_at(ps, t.line, "expected %s, got '%.*s'", what, (int)(t.n > 40 ? 40 : t.n), t.s);
    return t;
}

/* Parses an integer literal token (decimal, 0x hex, 0 octal, 0b binary, optional U suffix). */
static int parse_int_tok(const ptx_tok *t, int64_t *out)
{
    if (t->kind != TK_NUM || t->n == 0 || t->n > 64)
        return -1;
    char buf[72];
    memcpy(buf, t->s, t->n);
    buf[t->n] = '\0';
    size_t n = t->n;
    if (n > 1 && (buf[n - 1] == 'U' || buf[n - 1] == 'u'))
        buf[--n] = '\0';
    int base = 10;
    const char *s = buf;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (n > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (n > 1 && s[0] == '0') {
        base = 8;
        s += 1;
    }
    char *end;
    unsigned long long v = strtoull(s, &end, base);
    if (*end != '\0' || end == s)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int64_t expect_int(parser *ps)
{
    int neg = accept(ps, '-');
    ptx_tok t = next(ps);
    int64_t v;
    if (parse_int_tok(&t, &v) < 0)
        fail_at(ps, t.line, "expected an integer, got '%.*s'", (int)(t.n > 40 ? 40 : t.n), t.s);
    return neg ? (int64_t)(0 - (uint64_t)v) : v;
}

/* double -> int64 without undefined behaviour for NaN or out-of-range values. */
static int64_t float_to_i64(double d)
{
    if (!(d == d))
        return 0;
    if (d >= 9.2233720368547758e18)
        return INT64_MAX;
    if (d <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)d;
}

/* A numeric literal: integer, or float given as 0fXXXXXXXX, 0dXXXXXXXXXXXXXXXX or decimal. */
typedef struct literal {
    int is_float;   /* 0 int, 1 decimal float, 2 0f bits, 3 0d bits */
    int64_t i;
    double d;
} literal;

static int parse_literal(const ptx_tok *t, int neg, literal *lit)
{
    memset(lit, 0, sizeof(*lit));
    if (t->kind != TK_NUM)
        return -1;
    if (t->n >= 2 && t->s[0] == '0' && (t->s[1] == 'f' || t->s[1] == 'F')) {
        if (t->n != 10)
            return -1;
        char buf[16];
        memcpy(buf, t->s + 2, 8);
        buf[8] = '\0';
        char *end;
        unsigned long v = strtoul(buf, &end, 16);
        if (*end)
            return -1;
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, 4);
        lit->is_float = 2;
        lit->d = neg ? -(double)f : (double)f;
        return 0;
    }
    if (t->n >= 2 && t->s[0] == '0' && (t->s[1] == 'd' || t->s[1] == 'D')) {
        if (t->n != 18)
            return -1;
        char buf[24];
        memcpy(buf, t->s + 2, 16);
        buf[16] = '\0';
        char *end;
        unsigned long long v = strtoull(buf, &end, 16);
        if (*end)
            return -1;
        double d;
        memcpy(&d, &v, 8);
        lit->is_float = 3;
        lit->d = neg ? -d : d;
        return 0;
    }
    if (parse_int_tok(t, &lit->i) == 0) {
        if (neg)
            lit->i = (int64_t)(0 - (uint64_t)lit->i);
        lit->d = (double)lit->i;
        return 0;
    }
    if (t->n > 60)
        return -1;
    char buf[64];
    memcpy(buf, t->s, t->n);
    buf[t->n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end)
        return -1;
    lit->is_float = 1;
    lit->d = neg ? -d : d;
    lit->i = float_to_i64(lit->d);
    return 0;
}

/* ---- types --------------------------------------------------------------------------------- */

static const struct { const char *name; int type; } type_names[] = {
    {".b8", T_B8}, {".b16", T_B16}, {".b32", T_B32}, {".b64", T_B64},
    {".u8", T_U8}, {".u16", T_U16}, {".u32", T_U32}, {".u64", T_U64},
    {".s8", T_S8}, {".s16", T_S16}, {".s32", T_S32}, {".s64", T_S64},
    {".f16", T_F16}, {".f16x2", T_F16X2}, {".bf16", T_BF16}, {".bf16x2", T_BF16X2},
    {".f32", T_F32}, {".f64", T_F64}, {".pred", T_PRED},
};

static int type_of(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strlen(type_names[i].name) == n && memcmp(type_names[i].name, s, n) == 0)
            return type_names[i].type;
    return T_NONE;
}

int ptx_type_bytes(int type)
{
    switch (type) {
    case T_B8: case T_U8: case T_S8: return 1;
    case T_B16: case T_U16: case T_S16: case T_F16: case T_BF16: return 2;
    case T_B32: case T_U32: case T_S32: case T_F32: case T_F16X2: case T_BF16X2: return 4;
    case T_B64: case T_U64: case T_S64: case T_F64: return 8;
    case T_PRED: return 1;
    default: return 0;
    }
}


uint16_t ptx_f32_to_f16(float f);
uint16_t ptx_f32_to_bf16(float f);

/* Converts a literal to the bit pattern an operand of type `type` holds. */
static int64_t literal_value(const literal *lit, int type)
{
    if (type == T_F32 || type == T_F16X2) {
        float f = lit->is_float ? (float)lit->d : (float)lit->i;
        if (lit->is_float == 0 && type == T_F16X2)
            return lit->i;
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
    }
    if (type == T_F64) {
        double d = lit->is_float ? lit->d : (double)lit->i;
        uint64_t b;
        memcpy(&b, &d, 8);
        return (int64_t)b;
    }
    if (type == T_F16 || type == T_BF16) {
        if (lit->is_float == 0)
            return lit->i & 0xffff;
        return type == T_F16 ? ptx_f32_to_f16((float)lit->d) : ptx_f32_to_bf16((float)lit->d);
    }
    if (lit->is_float == 2) {
        float f = (float)lit->d;
        uint32_t b;
        memcpy(&b, &f, 4);
        return b;
    }
    if (lit->is_float == 3) {
        uint64_t b;
        memcpy(&b, &lit->d, 8);
        return (int64_t)b;
    }
    if (lit->is_float == 1)
        return float_to_i64(lit->d);
    return lit->i;
}

/* ---- symbols ------------------------------------------------------------------------------- */

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Makes room for count entries (load factor at most 1/2), rebuilding from the entry hashes. */
static void index_reserve(parser *ps, name_index *ix, size_t count, const uint64_t *hashes,
                          size_t stride)
{
    if (count * 2 < ix->cap)
        return;
    size_t cap = ix->cap ? ix->cap * 2 : 64;
    while (count * 2 >= cap)
        cap *= 2;
    uint32_t *slot = calloc(cap, sizeof(uint32_t));
    if (!slot)
        fail_nomem(ps);
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    for (size_t i = 0; i + 1 < count; i++) {
        uint64_t h = *(const uint64_t *)((const char *)hashes + i * stride);
        size_t j = (size_t)h & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)(i + 1);
    }
}

static void index_put(name_index *ix, uint64_t h, size_t idx)
{
    size_t j = (size_t)h & (ix->cap - 1);
    while (ix->slot[j])
        j = (j + 1) & (ix->cap - 1);
    ix->slot[j] = (uint32_t)(idx + 1);
}

static msym *find_msym(parser *ps, const char *s, size_t n)
{
    if (!ps->msym_index.cap)
        return NULL;
    uint64_t h = hash_name(s, n);
    size_t mask = ps->msym_index.cap - 1;
    for (size_t j = (size_t)h & mask; ps->msym_index.slot[j]; j = (j + 1) & mask) {
        msym *e = &ps->msyms[ps->msym_index.slot[j] - 1];
        if (e->hash == h && e->n == n && memcmp(e->name, s, n) == 0)
            return e;
    }
    return NULL;
}

static void add_msym(parser *ps, const char *s, size_t n, int kind, int idx)
{
    GROW(ps, ps->msyms, ps->msyms_cap, ps->nmsyms);
    msym *e = &ps->msyms[ps->nmsyms];
    e->name = dupn(ps, s, n);
    e->n = n;
    e->hash = hash_name(s, n);
    e->kind = kind;
    e->idx = idx;
    ps->nmsyms++;
    index_reserve(ps, &ps->msym_index, ps->nmsyms, &ps->msyms[0].hash, sizeof(msym));
    index_put(&ps->msym_index, e->hash, ps->nmsyms - 1);
}

static label *find_label(parser *ps, const char *s, size_t n)
{
    if (!ps->label_index.cap)
        return NULL;
    uint64_t h = hash_name(s, n);
    size_t mask = ps->label_index.cap - 1;
    for (size_t j = (size_t)h & mask; ps->label_index.slot[j]; j = (j + 1) & mask) {
        label *e = &ps->labels[ps->label_index.slot[j] - 1];
        if (e->hash == h && e->n == n && memcmp(e->name, s, n) == 0)
            return e;
    }
    return NULL;
}

static void add_label(parser *ps, const ptx_tok *t, uint32_t at)
{
    if (find_label(ps, t->s, t->n))
        fail_at(ps, t->line, "label '%.*s' defined twice", (int)(t->n > 60 ? 60 : t->n), t->s);
    GROW(ps, ps->labels, ps->labels_cap, ps->nlabels);
    label *e = &ps->labels[ps->nlabels++];
    e->name = t->s;
    e->n = t->n;
    e->hash = hash_name(t->s, t->n);
    e->at = at;
    index_reserve(ps, &ps->label_index, ps->nlabels, &ps->labels[0].hash, sizeof(label));
    index_put(&ps->label_index, e->hash, ps->nlabels - 1);
}

/* Looks a name up in the current function's scopes, innermost first. For a register range
 * "%r<N>" the name "%r17" matches with *reg_index = base + 17. */
static decl *find_decl(parser *ps, const char *s, size_t n, int *reg_index)
{
    for (size_t i = ps->ndecls; i-- > 0;) {
        decl *d = &ps->decls[i];
        if (d->count < 0) {
            if (d->n == n && memcmp(d->name, s, n) == 0) {
                if (reg_index)
                    *reg_index = d->base;
                return d;
            }
        } else if (n > d->n && memcmp(d->name, s, d->n) == 0) {
            const char *q = s + d->n;
            size_t k = n - d->n;
            if (k > 7 || (k > 1 && q[0] == '0'))
                continue;
            int v = 0, ok = 1;
            for (size_t j = 0; j < k; j++) {
                if (q[j] < '0' || q[j] > '9') {
                    ok = 0;
                    break;
                }
                v = v * 10 + (q[j] - '0');
            }
            if (ok && v < d->count) {
                if (reg_index)
                    *reg_index = d->base + v;
                return d;
            }
        }
    }
    return NULL;
}

static decl *add_decl(parser *ps, const ptx_tok *name, int kind)
{
    GROW(ps, ps->decls, ps->decls_cap, ps->ndecls);
    decl *d = &ps->decls[ps->ndecls++];
    memset(d, 0, sizeof(*d));
    d->name = name->s;
    d->n = name->n;
    d->kind = kind;
    d->count = -1;
    return d;
}

static int new_regs(parser *ps, int count, int type, int line)
{
    if (count < 0 || ps->nregs + count > MAX_TOTAL_REGS)
        fail_at(ps, line, "too many registers");
    size_t cap = (size_t)ps->reg_types_cap;
    GROW(ps, ps->reg_types, cap, (size_t)(ps->nregs + count));
    ps->reg_types_cap = (int)cap;
    for (int i = 0; i < count; i++)
        ps->reg_types[ps->nregs + i] = (uint8_t)type;
    int base = ps->nregs;
    ps->nregs += count;
    return base;
}

/* ---- declarations -------------------------------------------------------------------------- */

/* Reads "[.align N] [.ptr ...] .type" modifiers of a variable or parameter declaration. Stops at
 * the name. */
static void parse_var_mods(parser *ps, int *type, size_t *align, int *vecn)
{
    *type = T_NONE;
    *align = 0;
    if (vecn)
        *vecn = 1;
    for (;;) {
        ptx_tok t = peek(ps);
        if (t.kind != TK_IDENT || t.s[0] != '.')
            break;
        next(ps);
        int ty = type_of(t.s, t.n);
        if (ty != T_NONE) {
            *type = ty;
        } else if (ptx_tok_eq(&t, ".align")) {
            int64_t a = expect_int(ps);
            if (a <= 0 || a > 4096 || (a & (a - 1)))
                fail_at(ps, t.line, "bad alignment %lld", (long long)a);
            *align = (size_t)a;
        } else if (ptx_tok_eq(&t, ".v2") || ptx_tok_eq(&t, ".v4")) {
            if (vecn)
                *vecn = t.s[2] - '0';
        } else if (ptx_tok_eq(&t, ".ptr") || ptx_tok_eq(&t, ".global") ||
                   ptx_tok_eq(&t, ".shared") || ptx_tok_eq(&t, ".const") ||
                   ptx_tok_eq(&t, ".local") || ptx_tok_eq(&t, ".param")) {
            /* .ptr .global .align N: a pointer annotation only. */
        } else {
            fail_at(ps, t.line, "unexpected '%.*s' in declaration", (int)(t.n > 40 ? 40 : t.n), t.s);
        }
    }
    if (*type == T_NONE)
        fail_at(ps, ps->lx.line, "declaration without a type");
}

/* Reads optional array dimensions "[N][M]" or "[]" (unsized: *unsized = 1). */
static size_t parse_dims(parser *ps, int *unsized)
{
    size_t count = 1;
    *unsized = 0;
    while (accept(ps, '[')) {
        if (accept(ps, ']')) {
            *unsized = 1;
            continue;
        }
        int64_t n = expect_int(ps);
        if (n < 0 || n > (int64_t)MAX_VAR_BYTES)
            fail_at(ps, ps->lx.line, "bad array size");
        count *= (size_t)n;
        if (count > MAX_VAR_BYTES)
            fail_at(ps, ps->lx.line, "array too large");
        expect(ps, ']');
    }
    return count;
}

static size_t align_up(size_t v, size_t a)
{
    return a ? (v + a - 1) / a * a : v;
}

/* Initializer "= v" or "= {v, {v, v}, ...}" written element by element into v->init (size
 * bytes). An element may be an address: of a function (its PTX_FUNC_ADDR, written now) or of a
 * module variable, "name", "generic(name)", either "+ offset" (a relocation, written by
 * ptx_module_global_relocate once variables have addresses). */
static void parse_init_list(parser *ps, ptx_var *var, size_t size, int type, size_t *pos,
                            int depth)
{
    int es = ptx_type_bytes(type);
    if (accept(ps, '{')) {
        if (depth > 8)
            fail_at(ps, ps->lx.line, "initializer nested too deeply");
        if (accept(ps, '}'))
            return;
        do {
            parse_init_list(ps, var, size, type, pos, depth + 1);
        } while (accept(ps, ','));
        expect(ps, '}');
        return;
    }
    int neg = accept(ps, '-');
    ptx_tok t = next(ps);
    literal lit;
    int64_t v = 0;
    if (*pos + (size_t)es > size)
        fail_at(ps, t.line, "too many initializers");
    if (t.kind == TK_IDENT && !neg) {
        int generic = ptx_tok_eq(&t, "generic");
        if (generic) {
            expect(ps, '(');
            t = expect_ident(ps, "symbol");
            expect(ps, ')');
        }
        int64_t addend = 0;
        if (accept(ps, '+'))
            addend = expect_int(ps);
        if (es != 4 && es != 8)
            fail_at(ps, t.line, "an address in an initializer of %d-byte elements", es);
        /* Resolved at the end of the module: the name may be defined further down. */
        GROW(ps, ps->inits, ps->inits_cap, ps->ninits);
        init_ref *r = &ps->inits[ps->ninits++];
        r->var = (int)(var - ps->m->globals);
        r->offset = *pos;
        r->bytes = (uint8_t)es;
        r->name = t;
        r->addend = addend;
    } else {
        if (parse_literal(&t, neg, &lit) < 0)
            fail_at(ps, t.line, "unsupported initializer '%.*s'", (int)(t.n > 40 ? 40 : t.n), t.s);
        v = literal_value(&lit, type);
    }
    memcpy(var->init + *pos, &v, (size_t)es); /* little-endian host */
    *pos += (size_t)es;
}

/* Module-scope .global / .const / .shared variable. `space` is the token already read. */
static void parse_module_var(parser *ps, const ptx_tok *space, int is_extern)
{
    int type;
    size_t align;
    int vecn;
    parse_var_mods(ps, &type, &align, &vecn);
    ptx_tok name = expect_ident(ps, "variable name");
    int unsized;
    size_t count = parse_dims(ps, &unsized);
    size_t es = (size_t)ptx_type_bytes(type) * (size_t)vecn;
    size_t size = es * count;
    if (size > MAX_VAR_BYTES)
        fail_at(ps, name.line, "variable too large");
    if (!align)
        align = es ? es : 1;
    if (find_msym(ps, name.s, name.n))
        fail_at(ps, name.line, "'%.*s' redefined", (int)name.n, name.s);
    ptx_module *m = ps->m;
    if (ptx_tok_eq(space, ".shared")) {
        if (unsized || is_extern) {
            if (align > m->dyn_shared_align)
                m->dyn_shared_align = align;
            add_msym(ps, name.s, name.n, MS_DYNSHARED, 0);
        } else {
            GROW(ps, m->shared, ps->shared_cap, m->nshared);
            ptx_var *v = &m->shared[m->nshared];
            memset(v, 0, sizeof(*v));
            v->name = dupn(ps, name.s, name.n);
            v->size = size;
            v->align = align;
            add_msym(ps, name.s, name.n, MS_SHARED, (int)m->nshared++);
        }
        expect(ps, ';');
        return;
    }
    if (is_extern)
        fail_at(ps, name.line, "external variable '%.*s' is not supported", (int)name.n, name.s);
    GROW(ps, m->globals, ps->globals_cap, m->nglobals);
    ptx_var *v = &m->globals[m->nglobals];
    memset(v, 0, sizeof(*v));
    m->nglobals++;
    v->name = dupn(ps, name.s, name.n);
    v->align = align;
    v->is_const = ptx_tok_eq(space, ".const");
    if (accept(ps, '=')) {
        if (unsized) {
            /* Size comes from the initializer: collect into a generous buffer first. */
            size = MAX_VAR_BYTES / 16;
        }
        v->init = zalloc(ps, size ? size : 1, 1);
        size_t pos = 0;
        parse_init_list(ps, v, size, type, &pos, 0);
        if (unsized)
            size = pos;
    }
    v->size = size;
    add_msym(ps, name.s, name.n, MS_GLOBAL, (int)(m->nglobals - 1));
    expect(ps, ';');
}

/* ---- functions ----------------------------------------------------------------------------- */

static ptx_func *cur_func(parser *ps)
{
    return &ps->m->funcs[ps->cur];
}

static size_t frame_alloc(parser *ps, size_t size, size_t align)
{
    ptx_func *f = cur_func(ps);
    size_t off = align_up(f->frame_bytes, align ? align : 1);
    f->frame_bytes = off + size;
    if (f->frame_bytes > MAX_VAR_BYTES)
        fail_at(ps, ps->lx.line, "frame too large");
    return off;
}

/* ".param [.align N] .type name[dims]" inside a parameter list. Returns size and align. */
static ptx_tok parse_param_decl(parser *ps, size_t *size, size_t *align)
{
    ptx_tok t = expect_ident(ps, ".param");
    if (!ptx_tok_eq(&t, ".param") && !ptx_tok_eq(&t, ".reg"))
        fail_at(ps, t.line, "expected .param, got '%.*s'", (int)(t.n > 40 ? 40 : t.n), t.s);
    int type;
    parse_var_mods(ps, &type, align, NULL);
    ptx_tok name = expect_ident(ps, "parameter name");
    int unsized;
    size_t count = parse_dims(ps, &unsized);
    *size = (size_t)ptx_type_bytes(type) * count;
    if (!*align)
        *align = (size_t)ptx_type_bytes(type);
    if (*align == 0)
        *align = 1;
    return name;
}

static int find_or_add_func(parser *ps, const ptx_tok *name, int is_entry)
{
    msym *s = find_msym(ps, name->s, name->n);
    if (s) {
        if (s->kind != MS_FUNC)
            fail_at(ps, name->line, "'%.*s' redefined", (int)name->n, name->s);
        return s->idx;
    }
    ptx_module *m = ps->m;
    GROW(ps, m->funcs, ps->funcs_cap, m->nfuncs);
    ptx_func *f = &m->funcs[m->nfuncs];
    memset(f, 0, sizeof(*f));
    f->name = dupn(ps, name->s, name->n);
    f->is_entry = is_entry;
    f->line = name->line;
    add_msym(ps, name->s, name->n, MS_FUNC, (int)m->nfuncs);
    return (int)m->nfuncs++;
}

static void parse_body(parser *ps);

static void reset_func_state(parser *ps)
{
    ps->ndecls = 0;
    ps->nlabels = 0;
    if (ps->label_index.cap)
        memset(ps->label_index.slot, 0, ps->label_index.cap * sizeof(uint32_t));
    ps->nfixups = 0;
    ps->nregs = 0;
    ps->ncalls = 0;
    ps->nshused = 0;
}

/* .entry / .func: header, parameters, performance directives, then a body or ';'. */
static void parse_function(parser *ps, int is_entry)
{
    reset_func_state(ps);
    int has_ret = 0;
    size_t ret_size = 0, ret_align = 0;
    ptx_tok ret_name = {0};
    if (!is_entry && accept(ps, '(')) {
        ret_name = parse_param_decl(ps, &ret_size, &ret_align);
        has_ret = 1;
        expect(ps, ')');
    }
    ptx_tok name = expect_ident(ps, "function name");
    int fi = find_or_add_func(ps, &name, is_entry);
    ptx_func *f = &ps->m->funcs[fi];
    if (f->defined)
        fail_at(ps, name.line, "function '%.*s' defined twice", (int)name.n, name.s);
    if (f->is_entry != is_entry)
        fail_at(ps, name.line, "'%.*s' declared as both .entry and .func", (int)name.n, name.s);
    ps->cur = fi;
    /* A prototype may repeat: rebuild the parameter layout each time. */
    free(f->param_off);
    free(f->param_size);
    f->param_off = f->param_size = NULL;
    f->nparams = 0;
    f->frame_bytes = 0;
    f->param_bytes = 0;
    f->line = name.line;
    size_t pcap_off = 0, pcap_size = 0;
    if (has_ret) {
        f->has_retval = 1;
        f->retval_size = ret_size;
        f->retval_off = frame_alloc(ps, ret_size, ret_align);
        decl *d = add_decl(ps, &ret_name, D_FRAME);
        d->off = (int64_t)f->retval_off;
    }
    if (accept(ps, '(')) {
        if (!accept(ps, ')')) {
            do {
                size_t size, align;
                ptx_tok pn = parse_param_decl(ps, &size, &align);
                GROW(ps, f->param_off, pcap_off, f->nparams);
                GROW(ps, f->param_size, pcap_size, f->nparams);
                size_t off;
                decl *d;
                if (is_entry) {
                    off = align_up(f->param_bytes, align);
                    f->param_bytes = off + size;
                    if (f->param_bytes > 32768)
                        fail_at(ps, pn.line, "kernel parameters exceed 32 KiB");
                    d = add_decl(ps, &pn, D_KPARAM);
                } else {
                    off = frame_alloc(ps, size, align);
                    d = add_decl(ps, &pn, D_FRAME);
                }
                d->off = (int64_t)off;
                f->param_off[f->nparams] = off;
                f->param_size[f->nparams] = size;
                f->nparams++;
            } while (accept(ps, ','));
            expect(ps, ')');
        }
    }
    /* Performance tuning directives. */
    for (;;) {
        ptx_tok t = peek(ps);
        if (ptx_tok_eq(&t, ".maxntid") || ptx_tok_eq(&t, ".reqntid")) {
            next(ps);
            uint64_t prod = 1;
            do {
                int64_t v = expect_int(ps);
                if (v <= 0 || v > 1024)
                    fail_at(ps, t.line, "bad %.*s value", (int)t.n, t.s);
                prod *= (uint64_t)v;
            } while (accept(ps, ','));
            f->maxntid = prod > 1024 ? 1024 : (unsigned)prod;
        } else if (ptx_tok_eq(&t, ".minnctapersm") || ptx_tok_eq(&t, ".maxnreg") ||
                   ptx_tok_eq(&t, ".maxnctapersm")) {
            next(ps);
            expect_int(ps);
        } else if (ptx_tok_eq(&t, ".noreturn")) {
            next(ps);
        } else if (ptx_tok_eq(&t, ".pragma")) {
            next(ps);
            while (!accept(ps, ';')) {
                if (next(ps).kind == TK_EOF)
                    fail_at(ps, t.line, "unterminated .pragma");
            }
        } else {
            break;
        }
    }
    if (accept(ps, ';')) {
        reset_func_state(ps);
        return;
    }
    expect(ps, '{');
    f->first = (uint32_t)ps->m->ncode;
    parse_body(ps);
    f = &ps->m->funcs[fi];
    f->count = (uint32_t)(ps->m->ncode - f->first);
    f->defined = 1;
    /* Resolve branch targets now that every label of the function is known. */
    for (size_t i = 0; i < ps->nfixups; i++) {
        fixup *x = &ps->fixups[i];
        label *lb = find_label(ps, x->name, x->n);
        if (!lb)
            fail_at(ps, x->line, "undefined label '%.*s'", (int)(x->n > 60 ? 60 : x->n), x->name);
        ps->m->code[x->insn].ops[x->opi].imm = lb->at;
    }
    int label_at_end = 0;
    for (size_t i = 0; i < ps->nlabels; i++)
        if (ps->labels[i].at == ps->m->ncode)
            label_at_end = 1;
    const ptx_insn *last = f->count ? &ps->m->code[f->first + f->count - 1] : NULL;
    if (!last || label_at_end || last->op != OP_RET || last->guard >= 0) {
        /* Falling off the end of a function returns: add an implicit ret so pc stays in range. */
        GROW(ps, ps->m->code, ps->code_cap, ps->m->ncode);
        ptx_insn *in = &ps->m->code[ps->m->ncode++];
        memset(in, 0, sizeof(*in));
        in->op = OP_RET;
        in->guard = -1;
        in->func = fi;
        in->line = ps->lx.line;
        f->count++;
    }
    f->nregs = ps->nregs;
    f->reg_types = zalloc(ps, (size_t)ps->nregs, 1);
    if (ps->nregs)
        memcpy(f->reg_types, ps->reg_types, (size_t)ps->nregs);
    f->callees = zalloc(ps, ps->ncalls, sizeof(int));
    if (ps->ncalls)
        memcpy(f->callees, ps->calls, ps->ncalls * sizeof(int));
    f->ncallees = ps->ncalls;
    f->shared_used = zalloc(ps, ps->nshused, sizeof(int));
    if (ps->nshused)
        memcpy(f->shared_used, ps->shused, ps->nshused * sizeof(int));
    f->nshared_used = ps->nshused;
    reset_func_state(ps);
}

/* ".reg .type names" with names "a", "%r<N>" separated by commas. */
static void parse_reg_decl(parser *ps, int line)
{
    int type;
    size_t align;
    int vecn;
    parse_var_mods(ps, &type, &align, &vecn);
    if (vecn != 1)
        fail_at(ps, line, "vector registers are not supported");
    do {
        ptx_tok name = expect_ident(ps, "register name");
        decl *d = add_decl(ps, &name, D_REG);
        d->type = type;
        if (accept(ps, '<')) {
            int64_t n = expect_int(ps);
            if (n < 0 || n > MAX_REG_RANGE)
                fail_at(ps, name.line, "bad register count");
            expect(ps, '>');
            d = &ps->decls[ps->ndecls - 1];
            d->count = (int)n;
            d->base = new_regs(ps, (int)n, type, name.line);
        } else {
            int base = new_regs(ps, 1, type, name.line);
            ps->decls[ps->ndecls - 1].base = base;
        }
    } while (accept(ps, ','));
    expect(ps, ';');
}

/* .local / .param (call sequence) / .shared declared inside a function body. */
static void parse_func_var(parser *ps, const ptx_tok *space)
{
    int type;
    size_t align;
    int vecn;
    parse_var_mods(ps, &type, &align, &vecn);
    ptx_tok name = expect_ident(ps, "variable name");
    int unsized;
    size_t count = parse_dims(ps, &unsized);
    size_t size = (size_t)ptx_type_bytes(type) * (size_t)vecn * count;
    if (size > MAX_VAR_BYTES)
        fail_at(ps, name.line, "variable too large");
    if (!align)
        align = (size_t)ptx_type_bytes(type) * (size_t)vecn;
    if (ptx_tok_eq(space, ".shared")) {
        ptx_module *m = ps->m;
        if (unsized)
            fail_at(ps, name.line, "unsized .shared inside a function");
        GROW(ps, m->shared, ps->shared_cap, m->nshared);
        ptx_var *v = &m->shared[m->nshared];
        memset(v, 0, sizeof(*v));
        v->name = dupn(ps, name.s, name.n);
        v->size = size;
        v->align = align ? align : 1;
        decl *d = add_decl(ps, &name, D_SHARED);
        d->base = (int)m->nshared++;
    } else {
        size_t off = frame_alloc(ps, size, align);
        decl *d = add_decl(ps, &name, D_FRAME);
        d->off = (int64_t)off;
    }
    expect(ps, ';');
}

#include "ptx_decode.inc"

static void parse_body(parser *ps)
{
    size_t scope_marks[64];
    int depth = 0;
    for (;;) {
        ptx_tok t = next(ps);
        if (t.kind == TK_EOF)
            fail_at(ps, t.line, "unexpected end of input inside a function body");
        if (ptx_tok_is(&t, '}')) {
            if (depth == 0)
                return;
            ps->ndecls = scope_marks[--depth];
            continue;
        }
        if (ptx_tok_is(&t, '{')) {
            if (depth == 64)
                fail_at(ps, t.line, "blocks nested too deeply");
            scope_marks[depth++] = ps->ndecls;
            continue;
        }
        if (ptx_tok_is(&t, ';'))
            continue;
        if (t.kind == TK_IDENT && t.s[0] == '.') {
            if (ptx_tok_eq(&t, ".reg")) {
                parse_reg_decl(ps, t.line);
            } else if (ptx_tok_eq(&t, ".local") || ptx_tok_eq(&t, ".param") ||
                       ptx_tok_eq(&t, ".shared")) {
                parse_func_var(ps, &t);
            } else if (ptx_tok_eq(&t, ".loc") || ptx_tok_eq(&t, ".file")) {
                ptx_lex_skip_line(&ps->lx);
            } else if (ptx_tok_eq(&t, ".callprototype")) {
                /* "name: .callprototype (...) _ (...);" describes an indirect call's
                 * signature; indirect calls are recorded as unsupported where they occur. */
                while (!accept(ps, ';'))
                    if (next(ps).kind == TK_EOF)
                        fail_at(ps, t.line, "unterminated .callprototype");
            } else if (ptx_tok_eq(&t, ".pragma")) {
                while (!accept(ps, ';'))
                    if (next(ps).kind == TK_EOF)
                        fail_at(ps, t.line, "unterminated .pragma");
            } else {
                fail_at(ps, t.line, "unexpected directive '%.*s' in a function body",
                        (int)(t.n > 40 ? 40 : t.n), t.s);
            }
            continue;
        }
        if (t.kind == TK_IDENT) {
            ptx_tok p = peek(ps);
            if (ptx_tok_is(&p, ':')) {
                next(ps);
                add_label(ps, &t, (uint32_t)ps->m->ncode);
                continue;
            }
        }
        parse_instruction(ps, &t);
    }
}

/* ---- module -------------------------------------------------------------------------------- */

static void parse_module(parser *ps)
{
    for (;;) {
        ptx_tok t = next(ps);
        if (t.kind == TK_EOF)
            return;
        if (t.kind != TK_IDENT || t.s[0] != '.')
            fail_at(ps, t.line, "unexpected '%.*s' at module scope", (int)(t.n > 40 ? 40 : t.n), t.s);
        if (ptx_tok_eq(&t, ".version")) {
            ptx_tok v = next(ps);
            if (v.kind != TK_NUM)
                fail_at(ps, t.line, "bad .version");
        } else if (ptx_tok_eq(&t, ".target")) {
            do {
                expect_ident(ps, "target");
            } while (accept(ps, ','));
        } else if (ptx_tok_eq(&t, ".address_size")) {
            int64_t a = expect_int(ps);
            if (a != 64 && a != 32)
                fail_at(ps, t.line, "bad .address_size %lld", (long long)a);
        } else if (ptx_tok_eq(&t, ".file") || ptx_tok_eq(&t, ".loc")) {
            ptx_lex_skip_line(&ps->lx);
        } else if (ptx_tok_eq(&t, ".section")) {
            /* Debug sections: skip the balanced { } block. */
            expect_ident(ps, "section name");
            expect(ps, '{');
            int depth = 1;
            while (depth > 0) {
                ptx_tok u = next(ps);
                if (u.kind == TK_EOF)
                    fail_at(ps, t.line, "unterminated .section");
                if (ptx_tok_is(&u, '{'))
                    depth++;
                else if (ptx_tok_is(&u, '}'))
                    depth--;
            }
        } else if (ptx_tok_eq(&t, ".pragma")) {
            while (!accept(ps, ';'))
                if (next(ps).kind == TK_EOF)
                    fail_at(ps, t.line, "unterminated .pragma");
        } else {
            /* Linkage then a declaration. */
            int is_extern = 0;
            while (ptx_tok_eq(&t, ".visible") || ptx_tok_eq(&t, ".extern") ||
                   ptx_tok_eq(&t, ".weak") || ptx_tok_eq(&t, ".common")) {
                if (ptx_tok_eq(&t, ".extern"))
                    is_extern = 1;
                t = expect_ident(ps, "declaration");
            }
            if (ptx_tok_eq(&t, ".entry")) {
                parse_function(ps, 1);
            } else if (ptx_tok_eq(&t, ".func")) {
                parse_function(ps, 0);
            } else if (ptx_tok_eq(&t, ".global") || ptx_tok_eq(&t, ".const") ||
                       ptx_tok_eq(&t, ".shared")) {
                parse_module_var(ps, &t, is_extern);
            } else {
                fail_at(ps, t.line, "unknown directive '%.*s'", (int)(t.n > 40 ? 40 : t.n), t.s);
            }
        }
    }
}

void ptx_module_free(ptx_module *m)
{
    if (!m)
        return;
    ptx_xbuild_free(m);
    for (size_t i = 0; i < m->nfuncs; i++) {
        ptx_func *f = &m->funcs[i];
        free(f->name);
        free(f->reg_types);
        free(f->param_off);
        free(f->param_size);
        free(f->callees);
        free(f->shared_used);
        free(f->unsupported);
    }
    for (size_t i = 0; i < m->nglobals; i++) {
        free(m->globals[i].name);
        free(m->globals[i].init);
        free(m->globals[i].relocs);
    }
    for (size_t i = 0; i < m->nshared; i++)
        free(m->shared[i].name);
    for (size_t i = 0; i < m->nkernels; i++) {
        free(m->kernels[i].reg_base);
        free(m->kernels[i].frame_base);
        free(m->kernels[i].shared_off);
    }
    free(m->kernels);
    free(m->funcs);
    free(m->globals);
    free(m->shared);
    free(m->code);
    free(m->call_args);
    free(m);
}

/* Depth-first walk of the call graph from a kernel, each function visited once: assigns
 * register ranges, collects shared variables, records a post-order for the frame layout, and
 * flags cycles (or call chains deeper than PTX_MAX_CALL_DEPTH) as recursion. A function that
 * calls through a pointer may reach every address-taken function; a cycle through such an edge
 * (a virtual method calling another through this) is not recursion unless it happens, which
 * the call itself checks (ptx_ir.h, ptx_kernel.indirect). */
static void layout_visit(parser *ps, struct ptx_kernel *k, int fi, int *state, int *order,
                         size_t *norder, int depth, int via_ptr)
{
    ptx_module *m = ps->m;
    ptx_func *f = &m->funcs[fi];
    if (f->unsupported && !k->unsupported)
        k->unsupported = f->unsupported;
    if (f->builtin == PTX_BUILTIN_MALLOC || f->builtin == PTX_BUILTIN_FREE)
        k->uses_heap = 1;
    if (!f->defined)
        return; /* a builtin (vprintf, __assertfail) or an unresolved extern (unsupported) */
    if (state[fi] == 1 || (depth > PTX_MAX_CALL_DEPTH && !via_ptr)) {
        if (!via_ptr)
            k->recursive = 1;
        return;
    }
    if (state[fi] == 2)
        return;
    state[fi] = 1;
    k->reg_base[fi] = k->nregs_total;
    k->nregs_total += f->nregs;
    if (k->nregs_total > MAX_TOTAL_REGS)
        fail_at(ps, f->line, "too many registers");
    k->frame_base[fi] = 0;
    for (size_t i = 0; i < f->nshared_used; i++)
        k->shared_off[f->shared_used[i]] = 1; /* mark; offsets assigned after the walk */
    if (f->uses_dynshared)
        k->dyn_shared_align = m->dyn_shared_align ? m->dyn_shared_align : 16;
    for (size_t i = 0; i < f->ncallees; i++)
        layout_visit(ps, k, f->callees[i], state, order, norder, depth + 1, via_ptr);
    if (f->indirect_calls) {
        k->indirect = 1;
        for (size_t ti = 0; ti < m->nfuncs; ti++)
            if (m->funcs[ti].address_taken && !m->funcs[ti].is_entry)
                layout_visit(ps, k, (int)ti, state, order, norder, depth + 1, 1);
    }
    state[fi] = 2;
    order[(*norder)++] = fi;
}

static void layout_kernels(parser *ps)
{
    ptx_module *m = ps->m;
    /* Calls to functions without a body: a few CUDA runtime helpers are built in; a kernel that
     * can call any other is refused at launch. */
    for (size_t i = 0; i < m->nfuncs; i++) {
        ptx_func *f = &m->funcs[i];
        if (f->defined || f->is_entry)
            continue;
        if (strcmp(f->name, "vprintf") == 0) {
            f->builtin = PTX_BUILTIN_VPRINTF;
        } else if (strcmp(f->name, "__assertfail") == 0) {
            f->builtin = PTX_BUILTIN_ASSERTFAIL;
        } else if (strcmp(f->name, "malloc") == 0 && f->nparams == 1 && f->param_size[0] == 8 &&
                   f->has_retval && f->retval_size == 8) {
            f->builtin = PTX_BUILTIN_MALLOC;
        } else if (strcmp(f->name, "free") == 0 && f->nparams == 1 && f->param_size[0] == 8) {
            f->builtin = PTX_BUILTIN_FREE;
        } else if (!f->unsupported) {
            char buf[256];
            int k = snprintf(buf, sizeof(buf), "call to '%.200s', which has no body", f->name);
            f->unsupported = dupn(ps, buf, k < 0 ? 0 : (size_t)k < sizeof(buf) ? (size_t)k : sizeof(buf) - 1);
        }
    }
    size_t nk = 0;
    for (size_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].is_entry && m->funcs[i].defined)
            nk++;
    m->kernels = zalloc(ps, nk, sizeof(*m->kernels));
    /* Scratch: visit state and post-order, in one allocation owned by the parser. */
    int *state = ps->onpath = zalloc(ps, 2 * m->nfuncs, sizeof(int));
    int *order = state + m->nfuncs;
    for (size_t i = 0; i < m->nfuncs; i++) {
        if (!m->funcs[i].is_entry || !m->funcs[i].defined)
            continue;
        struct ptx_kernel *k = &m->kernels[m->nkernels++];
        k->module = m;
        k->func = (int)i;
        k->reg_base = malloc((m->nfuncs ? m->nfuncs : 1) * sizeof(int));
        k->frame_base = malloc((m->nfuncs ? m->nfuncs : 1) * sizeof(size_t));
        k->shared_off = calloc(m->nshared ? m->nshared : 1, sizeof(size_t));
        if (!k->reg_base || !k->frame_base || !k->shared_off)
            fail_nomem(ps);
        for (size_t j = 0; j < m->nfuncs; j++) {
            k->reg_base[j] = -1;
            k->frame_base[j] = 0;
            state[j] = 0;
        }
        size_t norder = 0;
        layout_visit(ps, k, (int)i, state, order, &norder, 0, 0);
        /* Frames stack up like a call stack: walking callers before callees (reverse
         * post-order), each callee's frame starts after the deepest caller frame's end. With
         * calls through pointers any two may be active at once: each gets its own. */
        k->local_bytes = 0;
        for (size_t oi = norder; k->indirect && oi-- > 0;) {
            int fi = order[oi];
            k->frame_base[fi] = align_up(k->local_bytes, 16);
            k->local_bytes = k->frame_base[fi] + m->funcs[fi].frame_bytes;
        }
        for (size_t oi = norder; !k->indirect && oi-- > 0;) {
            int fi = order[oi];
            const ptx_func *f = &m->funcs[fi];
            size_t end = k->frame_base[fi] + f->frame_bytes;
            if (end > k->local_bytes)
                k->local_bytes = end;
            for (size_t c = 0; c < f->ncallees; c++) {
                int ci = f->callees[c];
                if (k->reg_base[ci] >= 0 && align_up(end, 16) > k->frame_base[ci])
                    k->frame_base[ci] = align_up(end, 16);
            }
        }
        size_t off = 0;
        for (size_t s = 0; s < m->nshared; s++) {
            if (k->shared_off[s]) {
                off = align_up(off, m->shared[s].align);
                k->shared_off[s] = off;
                off += m->shared[s].size;
            } else {
                k->shared_off[s] = (size_t)-1;
            }
        }
        k->static_shared = off;
        if (!k->dyn_shared_align)
            k->dyn_shared_align = 16;
        k->local_bytes = align_up(k->local_bytes, 16);
    }
}

/* Initializer addresses: a function's is a constant written now, a variable's a relocation
 * (ptx_module_global_relocate). */
static void resolve_inits(parser *ps)
{
    ptx_module *m = ps->m;
    for (size_t i = 0; i < ps->ninits; i++) {
        const init_ref *r = &ps->inits[i];
        msym *s = find_msym(ps, r->name.s, r->name.n);
        if (!s || (s->kind != MS_FUNC && s->kind != MS_GLOBAL))
            fail_at(ps, r->name.line, "initializer names '%.*s', which is not a function or a "
                    "module variable", (int)(r->name.n > 60 ? 60 : r->name.n), r->name.s);
        ptx_var *v = &m->globals[r->var];
        if (s->kind == MS_FUNC) {
            if (m->funcs[s->idx].is_entry)
                fail_at(ps, r->name.line, "initializer names kernel '%s'", m->funcs[s->idx].name);
            m->funcs[s->idx].address_taken = 1;
            uint64_t a = PTX_FUNC_ADDR(s->idx) + (uint64_t)r->addend;
            memcpy(v->init + r->offset, &a, r->bytes); /* little-endian host */
            continue;
        }
        size_t cap = v->nrelocs; /* grown one by one: rare, and few per variable */
        GROW(ps, v->relocs, cap, v->nrelocs);
        ptx_reloc *x = &v->relocs[v->nrelocs++];
        x->offset = r->offset;
        x->bytes = r->bytes;
        x->target = s->idx;
        x->addend = r->addend;
    }
}

/* The one setjmp: every parse error longjmps back here. */
static int parse_guarded(parser *ps)
{
    if (setjmp(ps->fail))
        return ps->status;
    parse_module(ps);
    resolve_inits(ps);
    layout_kernels(ps);
    return PTX_OK;
}

int ptx_module_parse(const char *text, size_t len, ptx_module **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    parser *ps = calloc(1, sizeof(*ps));
    if (!ps) {
        if (errlen > 0)
            snprintf(err, errlen, "line 0: out of memory");
        return PTX_ERR_NOMEM;
    }
    ps->err = err;
    ps->errlen = errlen;
    ps->m = calloc(1, sizeof(*ps->m));
    int rc = PTX_OK;
    if (!ps->m) {
        if (errlen > 0)
            snprintf(err, errlen, "line 0: out of memory");
        rc = PTX_ERR_NOMEM;
        goto done;
    }
    if (!text) {
        if (errlen > 0)
            snprintf(err, errlen, "line 0: no text");
        rc = PTX_ERR_PARSE;
        goto done;
    }
    ptx_lex_init(&ps->lx, text, len);
    rc = parse_guarded(ps);
    if (rc != PTX_OK)
        goto done;
    ptx_text_hash(text, len, ps->m->text_hash);
    rc = ptx_xbuild(ps->m);
    if (rc != PTX_OK) {
        if (errlen > 0)
            snprintf(err, errlen, "line 0: out of memory");
        goto done;
    }
    *out = ps->m;
    ps->m = NULL;
done:
    if (ps->m)
        ptx_module_free(ps->m);
    for (size_t i = 0; i < ps->nmsyms; i++)
        free(ps->msyms[i].name);
    free(ps->msyms);
    free(ps->decls);
    free(ps->labels);
    free(ps->msym_index.slot);
    free(ps->label_index.slot);
    free(ps->fixups);
    free(ps->inits);
    free(ps->reg_types);
    free(ps->calls);
    free(ps->shused);
    free(ps->onpath);
    free(ps);
    return rc;
}

/* Two independent 64-bit hashes of the text (FNV-1a and a multiply-xorshift mix), together the
 * 128-bit identity under which the JIT caches code compiled from it. */
void ptx_text_hash(const char *text, size_t len, uint64_t out[2])
{
    uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull ^ len;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)text[i];
        h1 = (h1 ^ ch) * 1099511628211ull;
        h2 = (h2 + ch) * 0xff51afd7ed558ccdull;
        h2 ^= h2 >> 29;
    }
    out[0] = h1;
    out[1] = h2;
}

/* ---- accessors ----------------------------------------------------------------------------- */

size_t ptx_module_global_count(const ptx_module *m)
{
    return m ? m->nglobals : 0;
}

void ptx_module_global(const ptx_module *m, size_t i, ptx_global_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!m || i >= m->nglobals)
        return;
    const ptx_var *v = &m->globals[i];
    info->name = v->name;
    info->size = v->size;
    info->align = v->align;
    info->init = v->init;
    info->is_const = v->is_const;
}

void ptx_module_bind_global(ptx_module *m, size_t i, uint64_t device_addr)
{
    if (m && i < m->nglobals)
        m->globals[i].addr = device_addr;
}

void ptx_module_global_relocate(const ptx_module *m, size_t i, void *dst)
{
    if (!m || i >= m->nglobals || !dst)
        return;
    const ptx_var *v = &m->globals[i];
    for (size_t r = 0; r < v->nrelocs; r++) {
        const ptx_reloc *x = &v->relocs[r];
        uint64_t a = m->globals[x->target].addr + (uint64_t)x->addend;
        if (x->offset + x->bytes <= v->size)
            memcpy((uint8_t *)dst + x->offset, &a, x->bytes); /* little-endian host */
    }
}

size_t ptx_module_kernel_count(const ptx_module *m)
{
    return m ? m->nkernels : 0;
}

const ptx_kernel *ptx_module_kernel_at(const ptx_module *m, size_t i)
{
    return m && i < m->nkernels ? &m->kernels[i] : NULL;
}

const ptx_kernel *ptx_module_find_kernel(const ptx_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->nkernels; i++)
        if (strcmp(m->funcs[m->kernels[i].func].name, name) == 0)
            return &m->kernels[i];
    return NULL;
}

static const ptx_func *kfunc(const ptx_kernel *k)
{
    return &k->module->funcs[k->func];
}

const char *ptx_kernel_name(const ptx_kernel *k)
{
    return kfunc(k)->name;
}

size_t ptx_kernel_param_count(const ptx_kernel *k)
{
    return kfunc(k)->nparams;
}

void ptx_kernel_param(const ptx_kernel *k, size_t i, size_t *offset, size_t *size)
{
    const ptx_func *f = kfunc(k);
    if (i >= f->nparams) {
        *offset = 0;
        *size = 0;
        return;
    }
    *offset = f->param_off[i];
    *size = f->param_size[i];
}

size_t ptx_kernel_param_bytes(const ptx_kernel *k)
{
    return kfunc(k)->param_bytes;
}

size_t ptx_kernel_static_shared(const ptx_kernel *k)
{
    return k->static_shared;
}

size_t ptx_kernel_local_bytes(const ptx_kernel *k)
{
    return k->local_bytes;
}

/* PTX registers are virtual (nvcc never reuses one), so the count says little about what a GPU
 * would allocate. Reported capped at 64, so that occupancy calculators (the CUDA runtime's among
 * them) always find that a 1024-thread block fits the 64K-register file. */
int ptx_kernel_num_regs(const ptx_kernel *k)
{
    return k->nregs_total < 1 ? 1 : k->nregs_total > 64 ? 64 : k->nregs_total;
}

int ptx_kernel_uses_heap(const ptx_kernel *k)
{
    return k ? k->uses_heap : 0;
}

const char *ptx_kernel_unsupported(const ptx_kernel *k)
{
    return k ? k->unsupported : NULL;
}

unsigned ptx_kernel_max_threads(const ptx_kernel *k)
{
    unsigned n = kfunc(k)->maxntid;
    return n ? n : 1024;
}
