/* ptx_jit_llvm: libvgpu-jit.so, the JIT's use of LLVM (see ptx_jit_plugin.h): setting LLVM up
 * for the host, compiling a kernel's IR (ptx_jit_cg.c) to an object in memory, and loading
 * objects into one ORC LLJIT instance for the life of the process. ptx_jit.c calls it under its
 * lock: nothing here is called concurrently. */
#include "ptx_jit_plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Core.h>
#include <llvm-c/Support.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

/* Bumped whenever generated code changes meaning. The cache key also covers this library's own
 * bytes (plugin_identity), so that a rebuilt code generator never loads another's objects. */
#define JIT_FORMAT 3

/* Kept from init() for the life of the process. */
static LLVMOrcLLJITRef jit;
static LLVMTargetMachineRef tm;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s, strlen(s) + 1);
}

static int fail_llvm(char *why, size_t whylen, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    snprintf(why, whylen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

/* Mixes the contents of the file this library was loaded from into h (unchanged if it cannot
 * be read). */
static uint64_t plugin_identity(uint64_t h)
{
    Dl_info info;
    if (!dladdr((void *)&plugin_identity, &info) || !info.dli_fname)
        return h;
    FILE *f = fopen(info.dli_fname, "rb");
    if (!f)
        return h;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        h = mix(h, buf, n);
    fclose(f);
    return h;
}

static int plugin_init(uint64_t *host_id, char *why, size_t whylen)
{
    /* LLVM's -O2 code generation less three passes that took a fifth of its time on the corpus
     * kernels and made no measurable difference to the code (vgpu-emu-bench): loop strength
     * reduction (the only loops the JIT makes are its 4-chunk loops; kernel loops are jumps between
     * leaders) and the two schedulers after register allocation (an out-of-order core reorders
     * anyway). These are LLVM's process-wide options, set once here, before the target machine
     * exists; they exist in LLVM 14, the version the build requires. */
    static const char *const llvm_args[] = {"vgpu-jit", "-disable-lsr", "-post-RA-scheduler=false",
                                            "-enable-post-misched=false"};
    LLVMParseCommandLineOptions((int)(sizeof(llvm_args) / sizeof(llvm_args[0])), llvm_args, NULL);
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        snprintf(why, whylen, "LLVM has no native target");
        return -1;
    }
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        snprintf(why, whylen, "%s", err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return -1;
    }
    char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                 LLVMCodeModelSmall);
    uint64_t h = 1469598103934665603ull;
    h = mix_str(h, triple);
    h = mix_str(h, cpu);
    h = mix_str(h, features);
    h = mix_str(h, LLVM_VERSION_STRING);
    unsigned format = JIT_FORMAT;
    h = mix(h, &format, sizeof(format));
    h = plugin_identity(h);
    *host_id = h;
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&jit, LLVMOrcCreateLLJITBuilder());
    if (e)
        return fail_llvm(why, whylen, "cannot create the ORC JIT", e);
    /* libm and libc for whatever code generation calls (fmaf on a CPU without FMA...). */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
    if (e)
        return fail_llvm(why, whylen, "no process symbol generator", e);
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit), gen);
    return 0;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* The passes the generated IR needs: it is already vectorized and has no calls to inline, so
 * what matters is promoting the segments' values to SSA and removing repeated loads and address
 * arithmetic; code generation's own combining does the rest. instcombine, gvn and dse took two
 * thirds of this phase's time on the corpus kernels and changed nothing vgpu-emu-bench could
 * measure in the code. VGPU_EMU_JIT_PASSES replaces the pipeline (for experiments). */
#define JIT_PASSES "function(sroa,early-cse<memssa>,simplifycfg)"

static int plugin_compile(const ptx_kernel *k, const char *prefix, void **obj, size_t *len, char *why,
                          size_t whylen)
{
    *obj = NULL;
    *len = 0;
    int rc = -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(prefix, ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, td);
    LLVMDisposeTargetData(td);
    double t0 = cpu_ms();
    if (ptx_jit_cg_kernel(ctx, mod, k, prefix, why, whylen) != 0)
        goto out;
    double t1 = cpu_ms();
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    const char *pipeline = getenv("VGPU_EMU_JIT_PASSES");
    LLVMErrorRef e = LLVMRunPasses(mod, pipeline && pipeline[0] ? pipeline : JIT_PASSES, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        fail_llvm(why, whylen, "optimization failed", e);
        goto out;
    }
    if (getenv("VGPU_EMU_JIT_DUMP"))
        LLVMDumpModule(mod);
    double t2 = cpu_ms();
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
        snprintf(why, whylen, "code generation failed: %s", msg);
        LLVMDisposeMessage(msg);
        goto out;
    }
    *len = LLVMGetBufferSize(buf);
    *obj = malloc(*len ? *len : 1);
    if (*obj) {
        memcpy(*obj, LLVMGetBufferStart(buf), *len);
        rc = 0;
    } else {
        snprintf(why, whylen, "out of memory");
    }
    LLVMDisposeMemoryBuffer(buf);
    /* Not a failure: the phases' CPU time, for whoever asks (VGPU_LOG=debug). */
    snprintf(why, whylen, "IR %.1f ms, optimization %.1f ms, code generation %.1f ms", t1 - t0, t2 - t1,
             cpu_ms() - t2);
out:
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    return rc;
}

static int plugin_load(const ptx_kernel *k, const char *prefix, const void *obj, size_t len, ptx_jit_fn *fn,
                       char *why, size_t whylen)
{
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, len, prefix);
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(jit, LLVMOrcLLJITGetMainJITDylib(jit), buf);
    if (e)
        return fail_llvm(why, whylen, "ORC refused the object", e);
    const ptx_module *m = k->module;
    for (size_t fi = 0; fi < m->nfuncs; fi++) {
        if (k->reg_base[fi] < 0 || !m->funcs[fi].defined)
            continue;
        char name[96];
        snprintf(name, sizeof(name), "%s_f%zu", prefix, fi);
        LLVMOrcExecutorAddress addr = 0;
        e = LLVMOrcLLJITLookup(jit, &addr, name);
        if (e)
            return fail_llvm(why, whylen, "a compiled function is missing", e);
        fn[fi] = (ptx_jit_fn)(uintptr_t)addr;
    }
    return 0;
}

static const ptx_jit_plugin plugin = {
    PTX_JIT_PLUGIN_VERSION, 0, plugin_init, plugin_compile, plugin_load,
};

__attribute__((visibility("default"))) const ptx_jit_plugin *vgpu_jit_plugin(void)
{
    static ptx_jit_plugin p;
    p = plugin;
    p.layout = ptx_jit_layout_signature();
    return &p;
}
