/* Stand-in for the PTX interpreter (server/emulator/ptx, target vgptx) while it is not in the
 * tree: every module is rejected with a clear message, so the rest of the driver still builds and
 * its non-kernel paths can be tested. Compiled only when the vgptx target does not exist. */
#include <stdio.h>

#include "ptx.h"

int ptx_module_parse(const char *text, size_t len, ptx_module **out, char *err, size_t errlen)
{
    (void)text;
    (void)len;
    *out = NULL;
    if (errlen)
        snprintf(err, errlen, "line 1: this build has no PTX interpreter (vgptx missing)");
    return PTX_ERR_PARSE;
}

void ptx_module_free(ptx_module *m) { (void)m; }
size_t ptx_module_global_count(const ptx_module *m) { (void)m; return 0; }
void ptx_module_global(const ptx_module *m, size_t i, ptx_global_info *info)
{
    (void)m; (void)i; (void)info;
}
void ptx_module_bind_global(ptx_module *m, size_t i, uint64_t a) { (void)m; (void)i; (void)a; }
size_t ptx_module_kernel_count(const ptx_module *m) { (void)m; return 0; }
const ptx_kernel *ptx_module_kernel_at(const ptx_module *m, size_t i) { (void)m; (void)i; return NULL; }
const ptx_kernel *ptx_module_find_kernel(const ptx_module *m, const char *n) { (void)m; (void)n; return NULL; }
const char *ptx_kernel_name(const ptx_kernel *k) { (void)k; return ""; }
size_t ptx_kernel_param_count(const ptx_kernel *k) { (void)k; return 0; }
void ptx_kernel_param(const ptx_kernel *k, size_t i, size_t *o, size_t *s)
{
    (void)k; (void)i; *o = 0; *s = 0;
}
size_t ptx_kernel_param_bytes(const ptx_kernel *k) { (void)k; return 0; }
size_t ptx_kernel_static_shared(const ptx_kernel *k) { (void)k; return 0; }
size_t ptx_kernel_local_bytes(const ptx_kernel *k) { (void)k; return 0; }
int ptx_kernel_num_regs(const ptx_kernel *k) { (void)k; return 0; }
unsigned ptx_kernel_max_threads(const ptx_kernel *k) { (void)k; return 1024; }
int ptx_launch_run(ptx_launch *l, char *err, size_t errlen)
{
    (void)l;
    if (errlen)
        snprintf(err, errlen, "no PTX interpreter in this build");
    return PTX_ERR_LAUNCH;
}
