/* ptx_jit: when and how kernels get compiled, and the code caches (see ptx_jit.h). No LLVM
 * here: compiling and loading code is libvgpu-jit.so's (ptx_jit_plugin.h), dlopened on first
 * use.
 *
 * A kernel's compiled code, first time it is wanted in a process: look its key up in the
 * process's table (another module instance with the same PTX may have it); else read the disk
 * cache and load that object; else compile (the plugin), write the object to the disk cache and
 * load it. One lock serializes all of it; the result is published in the kernel (k->jit) with
 * release semantics and never freed (the code stays loaded for the life of the process).
 *
 * Disk cache files are written whole under a temporary name and renamed into place; each holds
 * a header with the key, the object's size and its hash, checked before the object is used. A
 * file that fails the checks, or an object the plugin refuses, is recompiled. */
#include "ptx_jit.h"
#include "ptx_jit_plugin.h"
#include "ptx_math.h"
#include "ptx_xops.h"

#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Stores of the lanes of one 8-lane chunk, in lane order. */
static void scatter8_4(uint8_t *base, const uint32_t *off, const void *v, uint32_t mask)
{
    for (int j = 0; j < 8; j++)
        if (mask >> j & 1)
            memcpy(base + (int32_t)off[j], (const uint8_t *)v + 4 * j, 4);
}

static void scatter8_8(uint8_t *base, const uint32_t *off, const void *v, uint32_t mask)
{
    for (int j = 0; j < 8; j++)
        if (mask >> j & 1)
            memcpy(base + (int32_t)off[j], (const uint8_t *)v + 8 * j, 8);
}

ptx_jit_rt ptx_jit_runtime = {
    ptx_exec_global_range,
    {NULL, NULL, NULL, NULL, NULL},
    {NULL, NULL},
    {NULL, NULL},
    {scatter8_4, scatter8_8},
    {0},
};

int ptx_jit_built(void)
{
#ifdef VGPU_HAVE_JIT
    return 1;
#else
    return 0;
#endif
}

int ptx_jit_mode(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *env = getenv("VGPU_EMU_JIT");
        if (!ptx_jit_built() || (env && strcmp(env, "0") == 0))
            v = PTX_JIT_OFF;
        else if (env && strcmp(env, "always") == 0)
            v = PTX_JIT_ALWAYS;
        else
            v = PTX_JIT_TIERED;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Everything below is guarded by jit_lock. */
static pthread_mutex_t jit_lock = PTHREAD_MUTEX_INITIALIZER;
static int jit_state;                 /* 0 not tried, 1 ready, -1 unusable */
static const ptx_jit_plugin *plugin;
static uint64_t host_id;

typedef struct known {
    struct known *next;
    ptx_jit_kernel *jk;
} known;
static known *known_list;             /* every kernel compiled or loaded in this process */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* libvgpu-jit.so: $VGPU_EMU_JIT_LIB, else next to the library or program that holds this code
 * (build/lib/emulated/ for the emulated driver), else its lib/emulated/ sibling (programs in
 * build/bin), else the build tree it came from, else the dynamic linker's search path. */
static void *open_plugin(void)
{
    const char *env = getenv("VGPU_EMU_JIT_LIB");
    if (env && env[0])
        return dlopen(env, RTLD_NOW | RTLD_LOCAL);
    Dl_info info;
    char dir[1024], path[1100];
    if (dladdr((void *)&open_plugin, &info) && info.dli_fname) {
        snprintf(dir, sizeof(dir), "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            const char *rel[] = {"", "/../lib/emulated"};
            for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "%s%s/libvgpu-jit.so", dir, rel[i]);
                void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (h)
                    return h;
            }
        }
    }
#ifdef VGPU_JIT_PLUGIN_DIR
    snprintf(path, sizeof(path), "%s/libvgpu-jit.so", VGPU_JIT_PLUGIN_DIR);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h)
        return h;
#endif
    return dlopen("libvgpu-jit.so", RTLD_NOW | RTLD_LOCAL);
}

static int jit_init(void)
{
    if (jit_state)
        return jit_state;
    jit_state = -1;
    if (!ptx_jit_built())
        return -1;
    /* Written before any compiled code exists, under jit_lock; read-only afterwards. */
    const ptx_xops_table *ops = ptx_xops_select();
    ptx_jit_runtime.gather[0] = (void (*)(void *, const uint8_t *, const uint32_t *))ops->gather32;
    ptx_jit_runtime.gather[1] = (void (*)(void *, const uint8_t *, const uint32_t *))ops->gather64;
    ptx_jit_runtime.scatter[0] = (void (*)(uint8_t *, const uint32_t *, const void *, uint32_t))ops->scatter32;
    ptx_jit_runtime.scatter[1] = (void (*)(uint8_t *, const uint32_t *, const void *, uint32_t))ops->scatter64;
    for (int i = 0; i < 5; i++)
        ptx_jit_runtime.row_f32[i] = ops->row_f32[i];
    void *h = open_plugin();
    if (!h) {
        vg_warn("JIT unavailable, kernels run on the interpreter: cannot load libvgpu-jit.so (%s)", dlerror());
        return -1;
    }
    ptx_jit_plugin_entry entry = (ptx_jit_plugin_entry)dlsym(h, PTX_JIT_PLUGIN_SYMBOL);
    const ptx_jit_plugin *p = entry ? entry() : NULL;
    if (!p || p->version != PTX_JIT_PLUGIN_VERSION || p->layout != ptx_jit_layout_signature()) {
        vg_warn("JIT unavailable, kernels run on the interpreter: libvgpu-jit.so is from another build");
        return -1; /* the library stays loaded: dlclose of LLVM at run time is not worth the risk */
    }
    char why[256] = "";
    if (p->init(&host_id, why, sizeof(why)) != 0) {
        vg_warn("JIT unavailable, kernels run on the interpreter: %s", why);
        return -1;
    }
    host_id = mix(host_id, &(uint64_t){ptx_jit_layout_signature()}, sizeof(uint64_t));
    plugin = p;
    jit_state = 1;
    return 1;
}

/* Compile times are this thread's CPU time: on a shared machine wall time also counts the time
 * other processes held the CPU. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- disk cache ------------------------------------------------------------------------------- */

typedef struct cache_header {
    char magic[8];          /* "VGPUJIT\0" */
    uint64_t key[2];
    uint64_t size;
    uint64_t hash;
} cache_header;

/* The cache directory (created), or 0 when there is none. */
static int cache_dir(char *out, size_t len)
{
    const char *env = getenv("VGPU_EMU_JIT_CACHE");
    if (env && strcmp(env, "off") == 0)
        return 0;
    int n;
    if (env && env[0]) {
        n = snprintf(out, len, "%s", env);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
            n = snprintf(out, len, "%s/vgpu/jit", xdg);
        else if (home && home[0] == '/')
            n = snprintf(out, len, "%s/.cache/vgpu/jit", home);
        else
            return 0;
    }
    if (n <= 0 || (size_t)n >= len)
        return 0;
    for (char *p = out + 1; *p; p++) { /* mkdir -p */
        if (*p != '/')
            continue;
        *p = '\0';
        int bad = mkdir(out, 0700) != 0 && errno != EEXIST;
        *p = '/';
        if (bad)
            return 0;
    }
    return mkdir(out, 0700) == 0 || errno == EEXIST;
}

static int cache_path(const uint64_t key[2], char *out, size_t len)
{
    char dir[900];
    if (!cache_dir(dir, sizeof(dir)))
        return 0;
    int n = snprintf(out, len, "%s/%016llx%016llx.o", dir, (unsigned long long)key[0], (unsigned long long)key[1]);
    return n > 0 && (size_t)n < len;
}

#define CACHE_MAX_OBJECT (256u << 20)

/* The cached object for key (malloc'd), or NULL. */
static void *cache_read(const uint64_t key[2], size_t *len)
{
    char path[1024];
    if (!cache_path(key, path, sizeof(path)))
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *data = NULL;
    cache_header h;
    if (read(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) || memcmp(h.magic, "VGPUJIT", 8) != 0 ||
        h.key[0] != key[0] || h.key[1] != key[1] || h.size == 0 || h.size > CACHE_MAX_OBJECT)
        goto bad;
    data = malloc(h.size);
    if (!data || read(fd, data, h.size) != (ssize_t)h.size ||
        mix(1469598103934665603ull, data, h.size) != h.hash)
        goto bad;
    close(fd);
    *len = h.size;
    return data;
bad:
    free(data);
    close(fd);
    return NULL;
}

static void cache_write(const uint64_t key[2], const void *data, size_t size)
{
    char path[1024], tmp[1100];
    if (!cache_path(key, path, sizeof(path)))
        return;
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    cache_header h;
    memcpy(h.magic, "VGPUJIT", 8);
    h.key[0] = key[0];
    h.key[1] = key[1];
    h.size = size;
    h.hash = mix(1469598103934665603ull, data, size);
    int ok = write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) && write(fd, data, size) == (ssize_t)size;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}

/* ---- compiled kernels ------------------------------------------------------------------------- */

static const char *kname(const ptx_kernel *k)
{
    return k->module->funcs[k->func].name;
}

static const ptx_jit_kernel *get_locked(const ptx_kernel *k)
{
    if (jit_init() != 1)
        return NULL;
    const ptx_module *m = k->module;
    uint64_t key[2] = {m->text_hash[0] ^ host_id, mix(m->text_hash[1], kname(k), strlen(kname(k)) + 1)};
    for (known *p = known_list; p; p = p->next)
        if (p->jk->key[0] == key[0] && p->jk->key[1] == key[1] && p->jk->nfuncs == m->nfuncs)
            return p->jk;
    double t0 = cpu_ms();
    ptx_jit_kernel *jk = calloc(1, sizeof(*jk));
    known *node = calloc(1, sizeof(*node));
    ptx_jit_fn *fns = calloc(m->nfuncs ? m->nfuncs : 1, sizeof(*fns));
    if (!jk || !node || !fns)
        goto fail;
    jk->key[0] = key[0];
    jk->key[1] = key[1];
    jk->nfuncs = m->nfuncs;
    jk->fn = fns;
    char prefix[64], why[256] = "";
    snprintf(prefix, sizeof(prefix), "vgpu_%016llx%016llx", (unsigned long long)key[0], (unsigned long long)key[1]);
    size_t len = 0;
    void *obj = cache_read(key, &len);
    int loaded = 0, had_cached = obj != NULL;
    if (obj) {
        loaded = plugin->load(k, prefix, obj, len, fns, why, sizeof(why)) == 0;
        jk->from_disk = loaded;
        if (!loaded)
            vg_debug("jit: cached object for %s unusable (%s), recompiling", kname(k), why);
        free(obj);
        obj = NULL;
    }
    if (!loaded) {
        /* A refused cached object may have left its names taken: compile under fresh ones, and
         * leave the disk cache alone (the file it holds names the others). */
        if (had_cached)
            snprintf(prefix, sizeof(prefix), "vgpu_%016llx%016llx_r", (unsigned long long)key[0],
                     (unsigned long long)key[1]);
        if (plugin->compile(k, prefix, &obj, &len, why, sizeof(why)) != 0) {
            vg_debug("jit: kernel %s not compiled: %s", kname(k), why);
            goto fail;
        }
        vg_debug("jit: kernel %s: %s", kname(k), why);
        if (!had_cached)
            cache_write(key, obj, len);
        loaded = plugin->load(k, prefix, obj, len, fns, why, sizeof(why)) == 0;
        free(obj);
        if (!loaded) {
            vg_debug("jit: kernel %s not loaded: %s", kname(k), why);
            goto fail;
        }
    }
    jk->compile_ms = cpu_ms() - t0;
    vg_debug("jit: kernel %s %s in %.1f ms", kname(k), jk->from_disk ? "loaded from the disk cache" : "compiled",
             jk->compile_ms);
    node->jk = jk;
    node->next = known_list;
    known_list = node;
    return jk;
fail:
    free(fns);
    free(jk);
    free(node);
    return NULL;
}

/* Published in a kernel whose compile failed, so that later launches do not retry. */
static const ptx_jit_kernel jit_failed;

static const ptx_jit_kernel *get(const ptx_kernel *k, int wait)
{
    struct ptx_kernel *mk = (struct ptx_kernel *)k;
    const ptx_jit_kernel *jk = __atomic_load_n(&mk->jit, __ATOMIC_ACQUIRE);
    if (!jk && !k->unsupported && !k->recursive && ptx_jit_built()) {
        if (wait)
            pthread_mutex_lock(&jit_lock);
        else if (pthread_mutex_trylock(&jit_lock) != 0)
            return NULL; /* another thread is compiling: interpret meanwhile */
        jk = mk->jit;
        if (!jk) {
            jk = get_locked(k);
            if (!jk)
                jk = &jit_failed;
            __atomic_store_n(&mk->jit, (void *)jk, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&jit_lock);
    }
    return jk == &jit_failed ? NULL : jk;
}

const ptx_jit_kernel *ptx_jit_kernel_get(const ptx_kernel *k)
{
    return get(k, 1);
}

const ptx_jit_kernel *ptx_jit_kernel_ready(const ptx_kernel *k)
{
    const ptx_jit_kernel *jk = __atomic_load_n(&((struct ptx_kernel *)k)->jit, __ATOMIC_ACQUIRE);
    return jk == &jit_failed ? NULL : jk;
}

const ptx_jit_kernel *ptx_jit_kernel_work(const ptx_kernel *k, uint64_t lanes)
{
    struct ptx_kernel *mk = (struct ptx_kernel *)k;
    uint64_t total = __atomic_add_fetch(&mk->interp_lanes, lanes, __ATOMIC_RELAXED);
    if (total < PTX_JIT_TIER_LANES)
        return NULL;
    return get(k, 0);
}
