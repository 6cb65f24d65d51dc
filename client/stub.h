/* Internals shared by the stub's API files (client/ctx.c, mem.c, module.c, launch.c, stream.c).
 *
 * Each API function checks what it can locally, marshals its arguments into a Call
 * (protocol/calls.h; the argument table is in protocol/README.md) and unmarshals the Reply.
 * Handles the server gives out (contexts, modules, functions, streams, events, ...) are opaque
 * session ids; device pointers are the server's device addresses. */
#ifndef VG_STUB_H
#define VG_STUB_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#include "calls.h"
#include "conn.h"

#define H(x) ((uint64_t)(uintptr_t)(x))
#define ARGV(...) ((const uint64_t[]){0, ##__VA_ARGS__} + 1)
#define ARGC(...) (sizeof((const uint64_t[]){0, ##__VA_ARGS__}) / sizeof(uint64_t) - 1)

/* The calling thread's current context (0 = none): ctx.c keeps the stack. */
uint64_t vg_stub_ctx(void);

/* One call with the current context and scalar arguments; outs as in vg_conn_call. */
CUresult vg_stub_rpc(unsigned call, const uint64_t *args, size_t nargs, uint64_t *outs, size_t nouts);
#define FWD(id, outs, nouts, ...) vg_stub_rpc(VG_CALL_##id, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), outs, nouts)

/* The stream value to send: the per-thread-default-stream entry points (_ptds/_ptsz) mean
 * CU_STREAM_PER_THREAD by stream 0. */
uint64_t vg_stub_stream(CUstream s, int per_thread);

/* Reads a whole file (a module image, a link input) into a malloc'd buffer with a NUL after
 * its *size bytes; CUDA_ERROR_FILE_NOT_FOUND, CUDA_ERROR_INVALID_IMAGE (empty or larger than a
 * frame) or CUDA_ERROR_OUT_OF_MEMORY otherwise. */
CUresult vg_stub_read_file(const char *path, char **data, size_t *size);

/* True when p is device memory of this session (the server says so). */
int vg_stub_is_device_ptr(CUdeviceptr p);

/* Drop the cached kernel parameter layouts and names (in a forked child: the handles they are
 * keyed by are the parent's session's). */
void vg_stub_forget_layouts(void);
void vg_stub_forget_names(void);
/* Makes the page-locked memory list usable in a forked child. */
void vg_stub_forget_host_lock(void);

#endif
