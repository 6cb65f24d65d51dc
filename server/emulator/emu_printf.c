/* emu_printf: device printf through a FIFO, as on a GPU.
 *
 * A GPU's kernels append printf records to a buffer of CU_LIMIT_PRINTF_FIFO_SIZE bytes (1 MiB by
 * default); what does not fit is dropped, and the host writes the buffer out at synchronizing
 * points (context, stream and event synchronization, blocking copies, module unload, context
 * destroy or reset). We do the same with the formatted text: each printf's text is appended whole
 * or dropped whole, and a flush writes the buffer to fd 1 in one write(2). So a kernel that prints
 * in a loop produces at most the FIFO's size per flush, and gpu-server's session process, which
 * captures fd 1, can forward the output to its client at the client's next synchronizing call. */
#include "emu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void emu_printf_init(emu_ctx *c)
{
    pthread_mutex_init(&c->printf_lock, NULL);
    c->printf_buf = NULL;
    atomic_store(&c->printf_len, 0);
    c->printf_cap = 0;
    c->printf_frozen = 0;
    atomic_store(&c->printf_dropped, 0);
}

void emu_printf_free(emu_ctx *c)
{
    free(c->printf_buf);
    c->printf_buf = NULL;
    atomic_store(&c->printf_len, 0);
    c->printf_cap = 0;
    pthread_mutex_destroy(&c->printf_lock);
}

/* Kernel side (worker threads): append one printf's text, or drop it when it does not fit. */
void emu_ptx_print(void *ctx, const char *text, size_t len)
{
    emu_ctx *c = ctx;
    pthread_mutex_lock(&c->printf_lock);
    if (!c->printf_frozen) {
        /* The FIFO comes into being at the first printf, with the size the limit has then; from
         * now on the limit cannot change (CUDA refuses it after a printing kernel has run). */
        c->printf_frozen = 1;
        size_t cap = c->limits[CU_LIMIT_PRINTF_FIFO_SIZE];
        c->printf_buf = cap ? malloc(cap) : NULL;
        c->printf_cap = c->printf_buf ? cap : 0;
        if (cap && !c->printf_buf)
            vg_warn("emulated GPU: no memory for a %zu-byte printf FIFO; device printf is dropped",
                    cap);
    }
    size_t have = atomic_load_explicit(&c->printf_len, memory_order_relaxed);
    if (len <= c->printf_cap - have) {
        memcpy(c->printf_buf + have, text, len);
        atomic_store_explicit(&c->printf_len, have + len, memory_order_release);
    } else {
        atomic_fetch_add(&c->printf_dropped, len);
    }
    pthread_mutex_unlock(&c->printf_lock);
}

void emu_printf_flush(emu_ctx *c)
{
    /* Every synchronize comes here: nothing printed (and nothing dropped, which only happens
     * with something printed) is the common case, and costs one load. */
    if (atomic_load_explicit(&c->printf_len, memory_order_acquire) == 0 &&
        atomic_load_explicit(&c->printf_dropped, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&c->printf_lock);
    size_t len = atomic_load(&c->printf_len), done = 0;
    while (done < len) {
        ssize_t n = write(1, c->printf_buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* fd 1 closed or full: the output is lost, as a GPU's would be */
        done += (size_t)n;
    }
    atomic_store(&c->printf_len, 0);
    size_t dropped = atomic_exchange(&c->printf_dropped, 0);
    if (dropped)
        vg_debug("emulated GPU: %zu bytes of device printf dropped (FIFO of %zu bytes full)",
                 dropped, c->printf_cap);
    pthread_mutex_unlock(&c->printf_lock);
}

CUresult emu_printf_set_size(emu_ctx *c, size_t bytes)
{
    pthread_mutex_lock(&c->printf_lock);
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    if (!c->printf_frozen) {
        c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = bytes;
        r = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&c->printf_lock);
    return r;
}
