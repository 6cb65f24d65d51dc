#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "calls.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void vg_frame_encode_header(const struct vg_frame_header *h, uint8_t out[VG_FRAME_HEADER_SIZE])
{
    put32(out, h->magic);
    put16(out + 4, h->version);
    put16(out + 6, h->type);
    put32(out + 8, h->flags);
    put32(out + 12, h->pb_len);
    put64(out + 16, h->request_id);
    put64(out + 24, h->bulk_len);
}

void vg_bulk_ref_put(const struct vg_bulk_ref *r, uint8_t out[VG_BULK_REF_SIZE])
{
    put64(out, r->region);
    put64(out + 8, r->offset);
    put64(out + 16, r->length);
}

void vg_bulk_ref_get(const uint8_t in[VG_BULK_REF_SIZE], struct vg_bulk_ref *r)
{
    r->region = get64(in);
    r->offset = get64(in + 8);
    r->length = get64(in + 16);
}

int vg_frame_decode_header(const uint8_t in[VG_FRAME_HEADER_SIZE], uint64_t max_frame,
                           struct vg_frame_header *h, const char **why)
{
    const char *reason_sink;
    if (!why)
        why = &reason_sink;
    h->magic = get32(in);
    h->version = get16(in + 4);
    h->type = get16(in + 6);
    h->flags = get32(in + 8);
    h->pb_len = get32(in + 12);
    h->request_id = get64(in + 16);
    h->bulk_len = get64(in + 24);
    if (h->magic != VG_FRAME_MAGIC) {
        *why = "bad magic (not a vgpu peer)";
        return -EBADMSG;
    }
    if (h->version != VG_PROTOCOL_VERSION) {
        *why = "protocol version mismatch";
        return -EPROTONOSUPPORT;
    }
    if (h->type < VG_MSG_HELLO || h->type > VG_MSG_TYPE_MAX) {
        *why = "unknown message type";
        return -EBADMSG;
    }
    if (h->flags & ~VG_FLAGS_KNOWN) {
        *why = "unknown flags";
        return -EBADMSG;
    }
    if (h->pb_len > VG_PB_MAX) {
        *why = "protobuf length over the maximum";
        return -EMSGSIZE;
    }
    /* No overflow: pb_len is at most 2^20 and the first test bounds bulk_len. */
    if (h->bulk_len > max_frame || VG_FRAME_HEADER_SIZE + (uint64_t)h->pb_len + h->bulk_len > max_frame) {
        *why = "frame larger than the maximum frame size";
        return -EMSGSIZE;
    }
    *why = NULL;
    return 0;
}

const ProtobufCMessageDescriptor *vg_msg_descriptor(unsigned type)
{
    switch (type) {
    case VG_MSG_HELLO: return &vgpu__hello__descriptor;
    case VG_MSG_WELCOME: return &vgpu__welcome__descriptor;
    case VG_MSG_CALL: return &vgpu__call__descriptor;
    case VG_MSG_REPLY: return &vgpu__reply__descriptor;
    case VG_MSG_ERROR: return &vgpu__error__descriptor;
    case VG_MSG_HEARTBEAT: return &vgpu__heartbeat__descriptor;
    case VG_MSG_OUTPUT: return &vgpu__output__descriptor;
    case VG_MSG_REGION: return &vgpu__region__descriptor;
    default: return NULL;
    }
}

ProtobufCMessage *vg_msg_unpack(unsigned type, const uint8_t *pb, size_t len)
{
    const ProtobufCMessageDescriptor *d = vg_msg_descriptor(type);
    if (!d || len > VG_PB_MAX)
        return NULL;
    return protobuf_c_message_unpack(d, NULL, len, pb);
}

/* A varint at p[0..end) of at most max_bytes bytes whose value fits in max_value, as protobuf-c
 * reads it; the bytes it took, or 0 (the caller then leaves the message to protobuf-c). */
static size_t call_varint(const uint8_t *p, const uint8_t *end, unsigned max_bytes, uint64_t max_value,
                          uint64_t *v)
{
    if (p < end && p[0] < 0x80) { /* most values of a launch (dimensions, sizes) */
        *v = p[0];
        return p[0] <= max_value;
    }
    uint64_t x = 0;
    for (unsigned i = 0; i < max_bytes && p + i < end; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            /* The tenth byte of a 64-bit value carries one bit; more would be lost. */
            if ((i == 9 && p[i] > 1) || x > max_value)
                return 0;
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

/* The direct decoding (see frame.h): 1 when pb[0..len) is in the stub's form and was decoded
 * into m->call, 0 otherwise (nothing is concluded about its validity). */
static int call_decode_direct(struct vg_call_msg *m, const uint8_t *pb, size_t len)
{
    static char empty_name[1];
    Vgpu__Call *c = &m->call;
    *c = (Vgpu__Call)VGPU__CALL__INIT;
    c->name = empty_name;
    c->args = m->args;
    const uint8_t *p = pb, *end = pb + len;
    unsigned last_field = 0;
    while (p < end) {
        uint64_t tag, v;
        size_t n = call_varint(p, end, 1, 0x7f, &tag);
        if (!n)
            return 0;
        p += n;
        unsigned field = (unsigned)(tag >> 3), wire = (unsigned)(tag & 7);
        if (field <= last_field)
            return 0; /* out of order or repeated: protobuf-c's rules (last one wins, merging) */
        last_field = field;
        if (field == 1 && wire == 0) {
            if (!(n = call_varint(p, end, 5, UINT32_MAX, &v)))
                return 0;
            c->call = (uint32_t)v;
        } else if (field == 2 && wire == 0) {
            if (!(n = call_varint(p, end, 10, UINT64_MAX, &v)))
                return 0;
            c->ctx = v;
        } else if (field == 3 && wire == 2) {
            uint64_t bytes;
            if (!(n = call_varint(p, end, 3, VG_PB_MAX, &bytes)) || bytes == 0 || bytes > (uint64_t)(end - p - n))
                return 0;
            const uint8_t *q = p + n, *qend = q + bytes;
            size_t nargs = c->n_args;
            while (q < qend) {
                size_t k = call_varint(q, qend, 10, UINT64_MAX, &v);
                if (!k || nargs == VG_CALL_INLINE_ARGS)
                    return 0;
                m->args[nargs++] = v;
                q += k;
            }
            c->n_args = nargs;
            n += (size_t)bytes;
        } else {
            return 0; /* a name, an unpacked list, unknown fields: protobuf-c's to judge */
        }
        p += n;
    }
    return 1;
}

/* ---- Calls packed directly ---- */

static size_t varint_size(uint64_t v)
{
    /* 7 bits a byte: bits used (1 to 64) rounded up to sevens, (bits * 9 + 64) / 64 being
     * exactly that on this range, without a division. */
    unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);
    return (bits * 9 + 64) >> 6;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (uint8_t)v;
        return p + 1;
    }
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The packed args' length (field 3's payload). */
static size_t call_args_size(const Vgpu__Call *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_args; i++)
        n += varint_size(c->args[i]);
    return n;
}

/* protobuf-c's encoding of a Call, written out: proto3 leaves zero scalars, an empty list and
 * an empty name out; args are packed. */
static size_t call_packed_size(const Vgpu__Call *c)
{
    size_t n = 0;
    if (c->call)
        n += 1 + varint_size(c->call);
    if (c->ctx)
        n += 1 + varint_size(c->ctx);
    if (c->n_args) {
        size_t a = call_args_size(c);
        n += 1 + varint_size(a) + a;
    }
    if (c->name && c->name[0]) {
        size_t l = strlen(c->name);
        n += 1 + varint_size(l) + l;
    }
    return n;
}

static size_t call_pack(const Vgpu__Call *c, uint8_t *out)
{
    uint8_t *p = out;
    if (c->call) {
        *p++ = 0x08;
        p = varint_put(p, c->call);
    }
    if (c->ctx) {
        *p++ = 0x10;
        p = varint_put(p, c->ctx);
    }
    if (c->n_args) {
        *p++ = 0x1a;
        p = varint_put(p, call_args_size(c));
        for (size_t i = 0; i < c->n_args; i++)
            p = varint_put(p, c->args[i]);
    }
    if (c->name && c->name[0]) {
        size_t l = strlen(c->name);
        *p++ = 0x22;
        p = varint_put(p, l);
        memcpy(p, c->name, l);
        p += l;
    }
    return (size_t)(p - out);
}

size_t vg_msg_packed_size(const ProtobufCMessage *msg)
{
    if (msg->descriptor == &vgpu__call__descriptor)
        return call_packed_size((const Vgpu__Call *)msg);
    return protobuf_c_message_get_packed_size(msg);
}

size_t vg_msg_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    if (msg->descriptor == &vgpu__call__descriptor)
        return call_pack((const Vgpu__Call *)msg, out);
    return protobuf_c_message_pack(msg, out);
}

Vgpu__Call *vg_call_unpack(struct vg_call_msg *m, const uint8_t *pb, size_t len)
{
    m->unpacked = NULL;
    if (len <= VG_PB_MAX && call_decode_direct(m, pb, len))
        return &m->call;
    m->unpacked = vg_msg_unpack(VG_MSG_CALL, pb, len);
    return m->unpacked ? vg_call_get(m) : NULL;
}

void vg_call_release(struct vg_call_msg *m)
{
    if (m->unpacked)
        protobuf_c_message_free_unpacked(m->unpacked, NULL);
    m->unpacked = NULL;
}

int vg_hello_check(const Vgpu__Hello *hello, char *why, size_t whylen)
{
    if (hello->protocol_version != VG_PROTOCOL_VERSION) {
        snprintf(why, whylen, "protocol version mismatch: client speaks %u, server speaks %u",
                 hello->protocol_version, VG_PROTOCOL_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (hello->api_hash != VG_API_HASH) {
        snprintf(why, whylen, "call list mismatch: client %016llx, server %016llx (built from "
                 "different protocol/cuda.calls)", (unsigned long long)hello->api_hash,
                 (unsigned long long)VG_API_HASH);
        return -EPROTONOSUPPORT;
    }
    if (whylen)
        why[0] = '\0';
    return 0;
}

/* Appends at most max bytes of s (NULL or empty: "?") to out[*at..outlen), non-printable bytes as '?'. */
static void put_printable(char *out, size_t outlen, size_t *at, const char *s, size_t max)
{
    if (!s || !*s)
        s = "?";
    for (size_t i = 0; s[i] && i < max && *at + 1 < outlen; i++)
        out[(*at)++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
}

void vg_hello_describe(const Vgpu__Hello *hello, const char *peer, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    char pid[32];
    snprintf(pid, sizeof pid, " pid %u on ", hello->pid);
    size_t at = 0;
    put_printable(out, outlen, &at, peer, 60);
    put_printable(out, outlen, &at, " (", 2);
    put_printable(out, outlen, &at, hello->program, 40);
    put_printable(out, outlen, &at, pid, sizeof pid);
    put_printable(out, outlen, &at, hello->host, 40);
    put_printable(out, outlen, &at, ")", 1);
    out[at] = '\0';
}

int vg_frame_build(unsigned type, uint32_t flags, uint64_t request_id, const ProtobufCMessage *msg,
                   uint64_t bulk_len, uint8_t **out, size_t *out_len)
{
    size_t pb_len = msg ? vg_msg_packed_size(msg) : 0;
    if (pb_len > VG_PB_MAX)
        return -EMSGSIZE;
    uint8_t *buf = malloc(VG_FRAME_HEADER_SIZE + pb_len);
    if (!buf)
        return -ENOMEM;
    struct vg_frame_header h = {
        .magic = VG_FRAME_MAGIC,
        .version = VG_PROTOCOL_VERSION,
        .type = (uint16_t)type,
        .flags = flags,
        .pb_len = (uint32_t)pb_len,
        .request_id = request_id,
        .bulk_len = bulk_len,
    };
    vg_frame_encode_header(&h, buf);
    if (msg)
        vg_msg_pack(msg, buf + VG_FRAME_HEADER_SIZE);
    *out = buf;
    *out_len = VG_FRAME_HEADER_SIZE + pb_len;
    return 0;
}

size_t vg_frame_put(unsigned type, uint32_t flags, uint64_t request_id, const ProtobufCMessage *msg,
                    size_t pb_len, uint64_t bulk_len, uint8_t *out)
{
    struct vg_frame_header h = {
        .magic = VG_FRAME_MAGIC,
        .version = VG_PROTOCOL_VERSION,
        .type = (uint16_t)type,
        .flags = flags,
        .pb_len = (uint32_t)pb_len,
        .request_id = request_id,
        .bulk_len = bulk_len,
    };
    vg_frame_encode_header(&h, out);
    if (msg && pb_len)
        vg_msg_pack(msg, out + VG_FRAME_HEADER_SIZE);
    return VG_FRAME_HEADER_SIZE + pb_len;
}

int vg_io_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vg_io_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ECONNRESET;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vg_io_discard(int fd, uint64_t len)
{
    uint8_t sink[16384];
    while (len > 0) {
        size_t chunk = len < sizeof sink ? (size_t)len : sizeof sink;
        int rc = vg_io_read_all(fd, sink, chunk);
        if (rc < 0)
            return rc;
        len -= chunk;
    }
    return 0;
}

int vg_frame_send(int fd, unsigned type, uint32_t flags, uint64_t request_id,
                  const ProtobufCMessage *msg, const void *bulk, uint64_t bulk_len)
{
    uint8_t *head;
    size_t head_len;
    int rc = vg_frame_build(type, flags, request_id, msg, bulk_len, &head, &head_len);
    if (rc < 0)
        return rc;
    rc = vg_io_write_all(fd, head, head_len);
    free(head);
    if (rc == 0 && bulk_len > 0)
        rc = vg_io_write_all(fd, bulk, (size_t)bulk_len);
    return rc;
}

int vg_frame_recv(int fd, uint64_t max_frame, struct vg_frame_header *h, ProtobufCMessage **msg,
                  const char **why)
{
    uint8_t head[VG_FRAME_HEADER_SIZE];
    *msg = NULL;
    int rc = vg_io_read_all(fd, head, sizeof head);
    if (rc < 0) {
        if (why)
            *why = "connection closed";
        return rc;
    }
    rc = vg_frame_decode_header(head, max_frame, h, why);
    if (rc < 0)
        return rc;
    uint8_t *pb = malloc(h->pb_len ? h->pb_len : 1);
    if (!pb)
        return -ENOMEM;
    rc = vg_io_read_all(fd, pb, h->pb_len);
    if (rc == 0) {
        *msg = vg_msg_unpack(h->type, pb, h->pb_len);
        if (!*msg) {
            if (why)
                *why = "message does not decode";
            rc = -EBADMSG;
        }
    } else if (why) {
        *why = "connection closed";
    }
    free(pb);
    return rc;
}
