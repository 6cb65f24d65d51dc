/* emu_link: the JIT linker (cuLinkCreate, cuLinkAddData, cuLinkAddFile, cuLinkComplete).
 *
 * The emulated GPU runs PTX, so linking is done on PTX text: each input (PTX text, or the PTX
 * entry of a fatbin) is cut into its top-level items, and the output is one PTX module that
 * cuModuleLoadData and cuLibraryLoadData accept:
 *   - one header: the highest .version of the inputs, the first input's .target, 64-bit addresses;
 *   - every module variable once, before everything else: an .extern declaration of a variable
 *     that some input defines is dropped (the definition takes its place), a .weak definition
 *     repeated in several inputs is kept once;
 *   - every function prototype once (prototypes before definitions, as the PTX parser wants);
 *   - then the definitions and kernels in input order, a .weak function defined again dropped.
 * A symbol defined (not weakly) twice, or still undefined, is a link error reported in the error
 * log (CU_JIT_ERROR_LOG_BUFFER) and by the module load. Cubins, objects, libraries and NVVM IR
 * cannot be linked here (CUDA_ERROR_NOT_SUPPORTED, logged): the emulated GPU has no SASS. */
#include "emu.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINK_MAX_INPUTS 1024
#define LINK_MAX_INPUT_BYTES ((size_t)256 << 20)

typedef struct link_input {
    char *text;
    size_t len;
    char name[64];
} link_input;

typedef struct emu_link {
    link_input *inputs;
    size_t ninputs;
    char *image;                   /* the linked PTX, valid until cuLinkDestroy */
    size_t image_len;
    char *error_log, *info_log;    /* the caller's buffers, or NULL */
    size_t error_cap, info_cap;
    void **option_values;          /* the caller's array: the log sizes are written back */
    int error_size_at, info_size_at;
} emu_link;

static void log_to(char *buf, size_t cap, const char *fmt, const char *a, const char *b)
{
    if (!buf || cap == 0)
        return;
    char line[512];
    snprintf(line, sizeof line, fmt, a, b);
    size_t have = strnlen(buf, cap - 1);
    snprintf(buf + have, cap - have, "%s\n", line);
}

static CUresult link_resolve(CUlinkState h, emu_link **out)
{
    return emu_obj_resolve(h, EMU_OBJ_LINK, CUDA_ERROR_INVALID_HANDLE, (void **)out);
}

CUresult CUDAAPI cuLinkCreate(unsigned int numOptions, CUjit_option *options, void **optionValues,
                              CUlinkState *stateOut)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!stateOut || (numOptions && (!options || !optionValues)) || numOptions > 64)
        return CUDA_ERROR_INVALID_VALUE;
    emu_link *l = calloc(1, sizeof *l);
    if (!l)
        return CUDA_ERROR_OUT_OF_MEMORY;
    l->error_size_at = l->info_size_at = -1;
    l->option_values = optionValues;
    for (unsigned i = 0; i < numOptions; i++) {
        CUjit_option o;
        void *v;
        if (emu_host_read(&o, &options[i], sizeof o) || emu_host_read(&v, &optionValues[i], sizeof v)) {
            free(l);
            return CUDA_ERROR_INVALID_VALUE;
        }
        /* Compiler options tune a compiler we do not have; the logs are honoured. */
        switch (o) {
        case CU_JIT_ERROR_LOG_BUFFER: l->error_log = v; break;
        case CU_JIT_INFO_LOG_BUFFER: l->info_log = v; break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
            l->error_cap = (size_t)(uintptr_t)v;
            l->error_size_at = (int)i;
            break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
            l->info_cap = (size_t)(uintptr_t)v;
            l->info_size_at = (int)i;
            break;
        default: break;
        }
    }
    /* The logs are written through emu_host_write: check they are really there. */
    if ((l->error_log && (emu_host_probe(l->error_log, l->error_cap, 1))) ||
        (l->info_log && (emu_host_probe(l->info_log, l->info_cap, 1)))) {
        free(l);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->error_log && l->error_cap)
        l->error_log[0] = '\0';
    if (l->info_log && l->info_cap)
        l->info_log[0] = '\0';
    if (emu_obj_add(l, EMU_OBJ_LINK) != 0) {
        free(l);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *stateOut = (CUlinkState)l;
    return CUDA_SUCCESS;
}

static CUresult add_ptx(emu_link *l, const char *text, size_t len, const char *name)
{
    if (l->ninputs >= LINK_MAX_INPUTS || len > LINK_MAX_INPUT_BYTES)
        return CUDA_ERROR_INVALID_VALUE;
    link_input *n = realloc(l->inputs, (l->ninputs + 1) * sizeof *n);
    if (!n)
        return CUDA_ERROR_OUT_OF_MEMORY;
    l->inputs = n;
    link_input *in = &l->inputs[l->ninputs];
    in->text = malloc(len + 1);
    if (!in->text)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(in->text, text, len);
    in->text[len] = '\0';
    in->len = strlen(in->text); /* text ends at its first NUL */
    snprintf(in->name, sizeof in->name, "%s", name && *name ? name : "(unnamed)");
    l->ninputs++;
    free(l->image); /* a completed image no longer reflects the inputs */
    l->image = NULL;
    return CUDA_SUCCESS;
}

static CUresult add_data(emu_link *l, CUjitInputType type, const void *data, size_t size,
                         const char *name)
{
    switch (type) {
    case CU_JIT_INPUT_PTX: {
        if (!data || size == 0 || size > LINK_MAX_INPUT_BYTES)
            return CUDA_ERROR_INVALID_VALUE;
        char *copy = malloc(size);
        if (!copy)
            return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = emu_host_read(copy, data, size);
        if (!r)
            r = add_ptx(l, copy, size, name);
        free(copy);
        return r;
    }
    case CU_JIT_INPUT_FATBINARY: {
        const char *ptx;
        size_t len;
        int owned;
        CUresult r = emu_image_ptx(data, &ptx, &len, &owned);
        if (r) {
            log_to(l->error_log, l->error_cap, "%s: no PTX in this fatbinary%s", name ? name : "",
                   "");
            return r;
        }
        r = add_ptx(l, ptx, len, name);
        if (owned)
            free((char *)ptx);
        return r;
    }
    case CU_JIT_INPUT_CUBIN:
    case CU_JIT_INPUT_OBJECT:
    case CU_JIT_INPUT_LIBRARY:
    case CU_JIT_INPUT_NVVM:
        log_to(l->error_log, l->error_cap, "%s: %s", name ? name : "",
               "the emulated GPU links PTX and fatbinaries with PTX only");
        return EMU_UNSUPPORTED("cuLinkAddData/cuLinkAddFile of a cubin, object, library or NVVM IR");
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuLinkAddData(CUlinkState state, CUjitInputType type, void *data, size_t size,
                               const char *name, unsigned int numOptions, CUjit_option *options,
                               void **optionValues)
{
    (void)options, (void)optionValues;
    emu_link *l;
    CUresult r = link_resolve(state, &l);
    if (r)
        return r;
    if (numOptions && (!options || !optionValues))
        return CUDA_ERROR_INVALID_VALUE;
    return add_data(l, type, data, size, name);
}

CUresult CUDAAPI cuLinkAddFile(CUlinkState state, CUjitInputType type, const char *path,
                               unsigned int numOptions, CUjit_option *options,
                               void **optionValues)
{
    emu_link *l;
    CUresult r = link_resolve(state, &l);
    if (r)
        return r;
    if (!path || (numOptions && (!options || !optionValues)))
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > LINK_MAX_INPUT_BYTES) {
        fclose(f);
        return CUDA_ERROR_INVALID_VALUE;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 64);
    if (!buf) {
        fclose(f);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    memset(buf + got, 0, 64);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    r = type == CU_JIT_INPUT_PTX ? (got ? add_ptx(l, buf, got, base) : CUDA_ERROR_INVALID_VALUE)
                                 : add_data(l, type, buf, got, base);
    free(buf);
    return r;
}

/* ---- cutting PTX into top-level items ---- */

enum item_kind { ITEM_UNKNOWN, ITEM_HEADER, ITEM_VAR, ITEM_VAR_EXTERN, ITEM_PROTO, ITEM_FUNC, ITEM_OTHER };

typedef struct item {
    const char *text;
    size_t len;
    int kind;
    int weak;
    char name[256];
} item;

typedef struct items {
    item *v;
    size_t n, cap;
} items;

static int push_item(items *it, const char *text, size_t len)
{
    if (it->n == it->cap) {
        size_t ncap = it->cap ? it->cap * 2 : 64;
        item *nv = realloc(it->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        it->v = nv;
        it->cap = ncap;
    }
    item *x = &it->v[it->n++];
    memset(x, 0, sizeof *x);
    x->text = text;
    x->len = len;
    return 0;
}

/* Whether word w appears as a whole token in [s, s+n) outside comments (comments were skipped
 * by the splitter only at item boundaries, so check token boundaries). */
static const char *find_token(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++) {
        if (memcmp(s + i, w, wl) != 0)
            continue;
        int before = i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_' || s[i - 1] == '.');
        int after = i + wl == n || !(isalnum((unsigned char)s[i + wl]) || s[i + wl] == '_');
        if (before && after)
            return s + i;
    }
    return NULL;
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || c == '%';
}

/* Splits text into items: header directives (a line each), and statements ending at ';' or at
 * the '}' that closes a body, at brace depth 0. Comments are skipped. */
static int split(const char *text, size_t len, items *it)
{
    size_t i = 0;
    while (i < len) {
        /* Skip blanks and comments between items. */
        if (isspace((unsigned char)text[i])) {
            i++;
            continue;
        }
        if (text[i] == '/' && i + 1 < len && text[i + 1] == '/') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        if (text[i] == '/' && i + 1 < len && text[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && !(text[i] == '*' && text[i + 1] == '/'))
                i++;
            i += 2;
            continue;
        }
        size_t start = i;
        static const char *const headers[] = {".version", ".target", ".address_size", ".file"};
        int is_header = 0;
        for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
            size_t hl = strlen(headers[h]);
            if (len - i >= hl && memcmp(text + i, headers[h], hl) == 0 &&
                (i + hl == len || isspace((unsigned char)text[i + hl])))
                is_header = 1;
        }
        if (is_header) {
            while (i < len && text[i] != '\n')
                i++;
            if (push_item(it, text + start, i - start) != 0)
                return -1;
            it->v[it->n - 1].kind = ITEM_HEADER;
            continue;
        }
        int depth = 0, done = 0;
        while (i < len && !done) {
            char c = text[i];
            if (c == '/' && i + 1 < len && text[i + 1] == '/') {
                while (i < len && text[i] != '\n')
                    i++;
                continue;
            }
            if (c == '/' && i + 1 < len && text[i + 1] == '*') {
                i += 2;
                while (i + 1 < len && !(text[i] == '*' && text[i + 1] == '/'))
                    i++;
                i += 2;
                continue;
            }
            if (c == '"') { /* strings in initializers or pragmas */
                i++;
                while (i < len && text[i] != '"')
                    i += text[i] == '\\' ? 2 : 1;
                i++;
                continue;
            }
            if (c == '{')
                depth++;
            else if (c == '}' && --depth <= 0)
                done = depth == 0 && i + 1 > start;
            else if (c == ';' && depth == 0)
                done = 1;
            i++;
            /* A variable's initializer is in braces but ends at its ';'. */
            if (done && c == '}') {
                size_t j = i;
                while (j < len && isspace((unsigned char)text[j]))
                    j++;
                if (j < len && text[j] == ';')
                    i = j + 1;
            }
        }
        if (depth != 0)
            return -1;
        if (push_item(it, text + start, i - start) != 0)
            return -1;
    }
    return 0;
}

/* The name a variable or function item declares. */
static void item_name(item *x)
{
    const char *s = x->text;
    size_t n = x->len;
    const char *p = find_token(s, n, ".func");
    if (!p)
        p = find_token(s, n, ".entry");
    if (p) {
        /* .func [(return parameters)] name( ... */
        const char *e = s + n;
        p += 5;
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (p < e && *p == '(') {
            int d = 0;
            for (; p < e; p++) {
                if (*p == '(')
                    d++;
                else if (*p == ')' && --d == 0) {
                    p++;
                    break;
                }
            }
        }
        while (p < e && isspace((unsigned char)*p))
            p++;
        size_t k = 0;
        while (p < e && ident_char(*p) && k + 1 < sizeof x->name)
            x->name[k++] = *p++;
        x->name[k] = '\0';
        return;
    }
    /* Variables: the identifier before '[', '=', ';' or ':' at the statement's top level. */
    const char *e = s + n;
    const char *last = NULL;
    size_t last_len = 0;
    for (const char *q = s; q < e; q++) {
        if (*q == '[' || *q == '=' || *q == ';')
            break;
        if (ident_char(*q) && (q == s || (!ident_char(q[-1]) && q[-1] != '.'))) {
            const char *b = q;
            while (q < e && ident_char(*q))
                q++;
            last = b;
            last_len = (size_t)(q - b);
            q--;
        }
    }
    if (last) {
        size_t k = last_len < sizeof x->name - 1 ? last_len : sizeof x->name - 1;
        memcpy(x->name, last, k);
        x->name[k] = '\0';
    }
}

static void classify(item *x)
{
    if (x->kind == ITEM_HEADER)
        return;
    const char *s = x->text;
    size_t n = x->len;
    x->weak = find_token(s, n, ".weak") != NULL;
    int is_extern = find_token(s, n, ".extern") != NULL;
    if (find_token(s, n, ".entry")) {
        x->kind = ITEM_OTHER;
    } else if (find_token(s, n, ".func")) {
        x->kind = memchr(s, '{', n) ? ITEM_FUNC : ITEM_PROTO;
    } else if (find_token(s, n, ".global") || find_token(s, n, ".const")) {
        x->kind = is_extern ? ITEM_VAR_EXTERN : ITEM_VAR;
    } else {
        x->kind = ITEM_OTHER;
        return;
    }
    item_name(x);
}

/* ---- output ---- */

typedef struct outbuf {
    char *p;
    size_t n, cap;
    int failed;
} outbuf;

static void emit(outbuf *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->cap - o->n < n + 2) {
        size_t ncap = (o->cap ? o->cap * 2 : 65536) + n;
        char *np = realloc(o->p, ncap);
        if (!np) {
            o->failed = 1;
            return;
        }
        o->p = np;
        o->cap = ncap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n++] = '\n';
    o->p[o->n] = '\0';
}

static int defined_strongly(const items *all, const char *name, int kind, size_t except)
{
    for (size_t i = 0; i < all->n; i++)
        if (i != except && all->v[i].kind == kind && !strcmp(all->v[i].name, name))
            return 1;
    return 0;
}

static int seen_before(const items *all, size_t upto, const char *name, int kind)
{
    for (size_t i = 0; i < upto; i++)
        if (all->v[i].kind == kind && !strcmp(all->v[i].name, name))
            return 1;
    return 0;
}

static CUresult link_all(emu_link *l)
{
    items all = {0};
    CUresult r = CUDA_SUCCESS;
    int major = 0, minor = 0;
    char target[64] = "sm_75";
    for (size_t k = 0; k < l->ninputs; k++) {
        size_t from = all.n;
        if (split(l->inputs[k].text, l->inputs[k].len, &all) != 0) {
            log_to(l->error_log, l->error_cap, "%s: %s", l->inputs[k].name,
                   "unbalanced braces: not PTX");
            r = CUDA_ERROR_INVALID_PTX;
            goto out;
        }
        for (size_t i = from; i < all.n; i++) {
            classify(&all.v[i]);
            item *x = &all.v[i];
            if (x->kind == ITEM_HEADER && x->len > 9 && !strncmp(x->text, ".version", 8)) {
                int a = 0, b = 0;
                char tmp[32];
                snprintf(tmp, sizeof tmp, "%.*s", (int)(x->len - 8 < 31 ? x->len - 8 : 31), x->text + 8);
                if (sscanf(tmp, "%d.%d", &a, &b) == 2 && (a > major || (a == major && b > minor))) {
                    major = a;
                    minor = b;
                }
            } else if (x->kind == ITEM_HEADER && k == 0 && !strncmp(x->text, ".target", 7)) {
                snprintf(target, sizeof target, "%.*s", (int)(x->len - 7 < 63 ? x->len - 7 : 63),
                         x->text + 7);
            }
        }
    }
    if (!major) {
        log_to(l->error_log, l->error_cap, "%s%s", "no PTX input (no .version directive)", "");
        r = CUDA_ERROR_INVALID_PTX;
        goto out;
    }
    /* Duplicate strong definitions are errors; weak ones are kept once. */
    for (size_t i = 0; i < all.n; i++) {
        item *x = &all.v[i];
        if ((x->kind == ITEM_VAR || x->kind == ITEM_FUNC) && !x->weak &&
            seen_before(&all, i, x->name, x->kind)) {
            for (size_t j = 0; j < i; j++)
                if (all.v[j].kind == x->kind && !strcmp(all.v[j].name, x->name) && !all.v[j].weak) {
                    log_to(l->error_log, l->error_cap, "duplicate definition of %s%s", x->name, "");
                    r = CUDA_ERROR_INVALID_PTX;
                    goto out;
                }
        }
    }
    outbuf o = {0};
    char head[160];
    int hn = snprintf(head, sizeof head, "// vgpu JIT link of %zu inputs\n.version %d.%d\n.target %s\n.address_size 64",
                      l->ninputs, major, minor, target);
    emit(&o, head, (size_t)hn);
    for (size_t i = 0; i < all.n; i++) { /* variables */
        item *x = &all.v[i];
        if (x->kind == ITEM_VAR && !seen_before(&all, i, x->name, ITEM_VAR))
            emit(&o, x->text, x->len);
        else if (x->kind == ITEM_VAR_EXTERN && !defined_strongly(&all, x->name, ITEM_VAR, i) &&
                 !seen_before(&all, i, x->name, ITEM_VAR_EXTERN)) {
            log_to(l->error_log, l->error_cap, "undefined variable %s%s", x->name, "");
            emit(&o, x->text, x->len); /* the module load reports it */
        }
    }
    for (size_t i = 0; i < all.n; i++) { /* prototypes */
        item *x = &all.v[i];
        if (x->kind == ITEM_PROTO && !seen_before(&all, i, x->name, ITEM_PROTO))
            emit(&o, x->text, x->len);
    }
    for (size_t i = 0; i < all.n; i++) { /* definitions and kernels */
        item *x = &all.v[i];
        if ((x->kind == ITEM_FUNC && !seen_before(&all, i, x->name, ITEM_FUNC)) ||
            x->kind == ITEM_OTHER)
            emit(&o, x->text, x->len);
    }
    if (o.failed) {
        free(o.p);
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    /* Undefined functions: a prototype without a definition anywhere. */
    for (size_t i = 0; i < all.n; i++) {
        item *x = &all.v[i];
        if (x->kind == ITEM_PROTO && find_token(x->text, x->len, ".extern") &&
            !defined_strongly(&all, x->name, ITEM_FUNC, (size_t)-1) &&
            strcmp(x->name, "vprintf") && strcmp(x->name, "__assertfail") &&
            strcmp(x->name, "malloc") && strcmp(x->name, "free"))
            log_to(l->error_log, l->error_cap, "undefined function %s%s", x->name, "");
    }
    free(l->image);
    l->image = o.p;
    l->image_len = o.n + 1;
    log_to(l->info_log, l->info_cap, "linked %s PTX input(s) into one module%s",
           l->ninputs == 1 ? "1" : "several", "");
out:
    free(all.v);
    return r;
}

CUresult CUDAAPI cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut)
{
    emu_link *l;
    CUresult r = link_resolve(state, &l);
    if (r)
        return r;
    if (!cubinOut || !sizeOut)
        return CUDA_ERROR_INVALID_VALUE;
    if (l->ninputs == 0)
        return CUDA_ERROR_INVALID_VALUE;
    r = link_all(l);
    /* The log sizes go back where the caller gave them, as CUDA does. */
    if (l->option_values && l->error_size_at >= 0 && l->error_log) {
        void *v = (void *)(uintptr_t)strnlen(l->error_log, l->error_cap);
        emu_host_write(&l->option_values[l->error_size_at], &v, sizeof v);
    }
    if (l->option_values && l->info_size_at >= 0 && l->info_log) {
        void *v = (void *)(uintptr_t)strnlen(l->info_log, l->info_cap);
        emu_host_write(&l->option_values[l->info_size_at], &v, sizeof v);
    }
    if (r)
        return r;
    *cubinOut = l->image; /* owned by the link state, valid until cuLinkDestroy */
    *sizeOut = l->image_len;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLinkDestroy(CUlinkState state)
{
    emu_link *l;
    CUresult r = link_resolve(state, &l);
    if (r)
        return r;
    emu_obj_del(l);
    for (size_t i = 0; i < l->ninputs; i++)
        free(l->inputs[i].text);
    free(l->inputs);
    free(l->image);
    free(l);
    return CUDA_SUCCESS;
}
