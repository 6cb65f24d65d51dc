#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

void vg_cw_in_owned(struct vg_cw *c, void *p, size_t n)
{
    if (!p) {
        c->overflow = 2;
        return;
    }
    if (c->nowned == VG_CW_MAX_SEGS) {
        free(p);
        c->overflow = 1;
        return;
    }
    c->owned[c->nowned++] = p;
    vg_cw_in(c, p, n);
}

void vg_cw_done(struct vg_cw *c)
{
    for (int i = 0; i < c->nowned; i++)
        free(c->owned[i]);
    c->nowned = 0;
}

static CUresult cw_run(struct vg_cw *c);

CUresult vg_cw_run(struct vg_cw *c)
{
    CUresult rc = cw_run(c);
    vg_cw_done(c);
    return rc;
}

static CUresult cw_run(struct vg_cw *c)
{
    if (c->overflow)
        return c->overflow == 2 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_UNKNOWN;
    /* Several segments each way are gathered into one buffer (one bulk per frame). */
    uint8_t stack_in[1024], stack_out[1024];
    const void *bulk = NULL;
    uint8_t *in_buf = NULL, *out_buf = NULL;
    size_t bulk_len = 0, rbulk_len = 0;
    for (int i = 0; i < c->nin; i++)
        bulk_len += c->in_n[i];
    for (int i = 0; i < c->nout; i++)
        rbulk_len += c->out_n[i];
    if (c->nin == 1) {
        bulk = c->in_p[0];
    } else if (c->nin > 1) {
        in_buf = bulk_len <= sizeof stack_in ? stack_in : malloc(bulk_len);
        if (!in_buf)
            return CUDA_ERROR_OUT_OF_MEMORY;
        size_t off = 0;
        for (int i = 0; i < c->nin; i++) {
            memcpy(in_buf + off, c->in_p[i], c->in_n[i]);
            off += c->in_n[i];
        }
        bulk = in_buf;
    }
    void *rbulk = NULL;
    if (c->nout == 1) {
        rbulk = c->out_p[0];
    } else if (c->nout > 1) {
        out_buf = rbulk_len <= sizeof stack_out ? stack_out : malloc(rbulk_len);
        if (!out_buf) {
            if (in_buf != stack_in)
                free(in_buf);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        rbulk = out_buf;
    }
    memset(c->outs, 0, sizeof c->outs);
    struct vg_rpc r = {.call = c->call, .ctx = vg_stub_ctx(), .args = c->args, .nargs = c->nargs,
                       .name = c->name, .bulk = bulk, .bulk_len = bulk_len, .outs = c->outs,
                       .nouts = VG_CW_MAX_OUTS, .str = c->str, .str_size = c->str_size,
                       .rbulk = rbulk, .rbulk_len = rbulk_len, .want_reply = c->want_reply};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS && out_buf) {
        size_t off = 0;
        for (int i = 0; i < c->nout; i++) {
            memcpy(c->out_p[i], out_buf + off, c->out_n[i]);
            off += c->out_n[i];
        }
    }
    if (in_buf != stack_in)
        free(in_buf);
    if (out_buf != stack_out)
        free(out_buf);
    return rc;
}

uint64_t vg_stub_stream(CUstream s, int per_thread)
{
    if (!s && per_thread)
        return (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
    return (uint64_t)(uintptr_t)s;
}
