/* Frame codec and message round trips (protocol/), no server. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calls.h"
#include "frame.h"

static struct vg_frame_header sample(void)
{
    struct vg_frame_header h = {.magic = VG_FRAME_MAGIC, .version = VG_PROTOCOL_VERSION,
                                .type = VG_MSG_CALL, .flags = VG_FLAG_NO_REPLY, .pb_len = 1234,
                                .request_id = 0x1122334455667788ull, .bulk_len = 99999};
    return h;
}

Test(frame, header_round_trip)
{
    struct vg_frame_header h = sample(), back;
    uint8_t buf[VG_FRAME_HEADER_SIZE];
    vg_frame_encode_header(&h, buf);
    /* Little-endian on the wire whatever the host: the magic reads "VGPU". */
    cr_assert(memcmp(buf, "VGPU", 4) == 0);
    const char *why = "unset";
    cr_assert_eq(vg_frame_decode_header(buf, VG_FRAME_DEFAULT_MAX, &back, &why), 0);
    cr_assert_null(why);
    cr_assert_eq(back.type, h.type);
    cr_assert_eq(back.flags, h.flags);
    cr_assert_eq(back.pb_len, h.pb_len);
    cr_assert_eq(back.request_id, h.request_id);
    cr_assert_eq(back.bulk_len, h.bulk_len);
}

static int decode_modified(void (*mod)(struct vg_frame_header *), uint64_t max, const char **why)
{
    struct vg_frame_header h = sample(), back;
    mod(&h);
    uint8_t buf[VG_FRAME_HEADER_SIZE];
    vg_frame_encode_header(&h, buf);
    return vg_frame_decode_header(buf, max, &back, why);
}

static void bad_magic(struct vg_frame_header *h) { h->magic = 0x12345678; }
static void bad_version(struct vg_frame_header *h) { h->version = VG_PROTOCOL_VERSION + 1; }
static void bad_type0(struct vg_frame_header *h) { h->type = 0; }
static void bad_type(struct vg_frame_header *h) { h->type = VG_MSG_TYPE_MAX + 1; }
static void bad_flags(struct vg_frame_header *h) { h->flags = 0x80; }
static void big_pb(struct vg_frame_header *h) { h->pb_len = VG_PB_MAX + 1; }
static void big_bulk(struct vg_frame_header *h) { h->bulk_len = VG_FRAME_DEFAULT_MAX; }
static void wrap_bulk(struct vg_frame_header *h) { h->bulk_len = UINT64_MAX - 10; }
static void none(struct vg_frame_header *h) { (void)h; }

Test(frame, rejects_each_malformed_header)
{
    const char *why = NULL;
    cr_assert_eq(decode_modified(bad_magic, VG_FRAME_DEFAULT_MAX, &why), -EBADMSG);
    cr_assert_not_null(why);
    cr_assert_eq(decode_modified(bad_version, VG_FRAME_DEFAULT_MAX, &why), -EPROTONOSUPPORT);
    cr_assert_eq(decode_modified(bad_type0, VG_FRAME_DEFAULT_MAX, &why), -EBADMSG);
    cr_assert_eq(decode_modified(bad_type, VG_FRAME_DEFAULT_MAX, &why), -EBADMSG);
    cr_assert_eq(decode_modified(bad_flags, VG_FRAME_DEFAULT_MAX, &why), -EBADMSG);
    cr_assert_eq(decode_modified(big_pb, VG_FRAME_DEFAULT_MAX, &why), -EMSGSIZE);
    cr_assert_eq(decode_modified(big_bulk, VG_FRAME_DEFAULT_MAX, &why), -EMSGSIZE);
    cr_assert_eq(decode_modified(wrap_bulk, VG_FRAME_DEFAULT_MAX, &why), -EMSGSIZE);
    /* The maximum is the receiver's: the same frame fits one and not a smaller one. */
    cr_assert_eq(decode_modified(none, VG_FRAME_DEFAULT_MAX, &why), 0);
    cr_assert_eq(decode_modified(none, 50000, &why), -EMSGSIZE);
}

Test(frame, version_mismatch_still_reports_peer_version)
{
    struct vg_frame_header h = sample(), back;
    h.version = 7;
    uint8_t buf[VG_FRAME_HEADER_SIZE];
    vg_frame_encode_header(&h, buf);
    cr_assert_eq(vg_frame_decode_header(buf, VG_FRAME_DEFAULT_MAX, &back, NULL), -EPROTONOSUPPORT);
    cr_assert_eq(back.version, 7);
}

Test(frame, call_message_round_trip)
{
    uint64_t args[] = {1, UINT64_MAX, 0, 42};
    Vgpu__Call c = VGPU__CALL__INIT;
    c.call = VG_CALL_cuMemcpyDtoH_v2;
    c.ctx = 0x0100000100000001ull;
    c.n_args = 4;
    c.args = args;
    c.name = "kernel_name";
    uint8_t *buf;
    size_t len;
    cr_assert_eq(vg_frame_build(VG_MSG_CALL, 0, 77, &c.base, 5, &buf, &len), 0);
    struct vg_frame_header h;
    cr_assert_eq(vg_frame_decode_header(buf, VG_FRAME_DEFAULT_MAX, &h, NULL), 0);
    cr_assert_eq(h.request_id, 77);
    cr_assert_eq(h.bulk_len, 5);
    cr_assert_eq(h.pb_len, len - VG_FRAME_HEADER_SIZE);
    Vgpu__Call *back = (Vgpu__Call *)vg_msg_unpack(h.type, buf + VG_FRAME_HEADER_SIZE, h.pb_len);
    cr_assert_not_null(back);
    cr_assert_eq(back->call, (unsigned)VG_CALL_cuMemcpyDtoH_v2);
    cr_assert_eq(back->ctx, c.ctx);
    cr_assert_eq(back->n_args, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(back->args[i], args[i]);
    cr_assert_str_eq(back->name, "kernel_name");
    protobuf_c_message_free_unpacked(&back->base, NULL);
    free(buf);
}

Test(frame, undecodable_message_is_rejected)
{
    /* A field header announcing a length far past the end of the buffer. */
    const uint8_t junk[] = {0x1a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    cr_assert_null(vg_msg_unpack(VG_MSG_CALL, junk, sizeof junk));
    cr_assert_null(vg_msg_unpack(99, junk, 0));
}

/* vg_call_unpack against protobuf-c: the same Call from every encoding, whichever path took it. */
static void same_call(const Vgpu__Call *a, const Vgpu__Call *b)
{
    cr_assert_eq(a->call, b->call);
    cr_assert_eq(a->ctx, b->ctx);
    cr_assert_eq(a->n_args, b->n_args);
    for (size_t i = 0; i < a->n_args; i++)
        cr_assert_eq(a->args[i], b->args[i], "arg %zu", i);
    cr_assert_str_eq(a->name ? a->name : "", b->name ? b->name : "");
}

/* Decodes pb both ways; both refuse it or both give the same Call. Returns 1 when the direct
 * decoding took it. */
static int unpack_both(const uint8_t *pb, size_t len)
{
    struct vg_call_msg m;
    Vgpu__Call *fast = vg_call_unpack(&m, pb, len);
    Vgpu__Call *ref = (Vgpu__Call *)vg_msg_unpack(VG_MSG_CALL, pb, len);
    cr_assert_eq(fast == NULL, ref == NULL, "one decoder refused %zu bytes the other took", len);
    int direct = fast && !m.unpacked;
    if (fast)
        same_call(fast, ref);
    if (ref)
        protobuf_c_message_free_unpacked(&ref->base, NULL);
    vg_call_release(&m);
    return direct;
}

Test(frame, call_unpack_matches_protobuf_c)
{
    srand(12345);
    uint64_t args[VG_CALL_INLINE_ARGS + 2];
    uint8_t pb[2048];
    int direct = 0, total = 0;
    for (int iter = 0; iter < 20000; iter++) {
        Vgpu__Call c = VGPU__CALL__INIT;
        /* Values of every varint length, zeros (omitted by the encoder) included. */
        int bits = rand() % 65;
        c.call = iter % 3 ? (uint32_t)rand() % VG_CALL_COUNT : (uint32_t)rand() << 1 ^ (uint32_t)rand();
        c.ctx = bits == 64 ? UINT64_MAX : ((uint64_t)rand() << 33 ^ (uint64_t)rand()) & ((1ull << bits) - 1);
        c.n_args = (size_t)(rand() % (VG_CALL_INLINE_ARGS + 3));
        for (size_t i = 0; i < c.n_args; i++)
            args[i] = ((uint64_t)rand() << 40 ^ (uint64_t)rand() << 20 ^ (uint64_t)rand()) >> (rand() % 64);
        c.args = args;
        c.name = iter % 7 == 0 ? "kernel" : "";
        size_t len = protobuf_c_message_pack(&c.base, pb);
        cr_assert_leq(len, sizeof pb);
        /* The stub's form goes the direct way when it fits; the rest is protobuf-c's. */
        int d = unpack_both(pb, len);
        if (c.n_args <= VG_CALL_INLINE_ARGS && !c.name[0])
            cr_assert(d, "a Call the stub writes left the direct decoding (%zu args)", c.n_args);
        /* Damaged copies: truncated, a byte changed, a field appended or put first. */
        unpack_both(pb, (size_t)rand() % (len + 1));
        uint8_t bad[sizeof pb + 16];
        memcpy(bad, pb, len);
        if (len) {
            bad[rand() % len] = (uint8_t)rand();
            direct += unpack_both(bad, len);
            total++;
        }
        static const uint8_t extra[][3] = {{0x08, 0x05}, {0x10, 0x07}, {0x18, 0x01}, {0x22, 0x01, 'x'},
                                           {0x28, 0x01}, {0x1a, 0x00}, {0x00, 0x00}};
        const uint8_t *e = extra[rand() % 7];
        size_t elen = e[0] == 0x22 ? 3 : 2;
        memcpy(bad, pb, len);
        memcpy(bad + len, e, elen);
        unpack_both(bad, len + elen);
        memcpy(bad, e, elen);
        memcpy(bad + elen, pb, len);
        unpack_both(bad, len + elen);
    }
    /* The damaged copies exercised both paths. */
    cr_assert_gt(direct, 0);
    cr_assert_lt(direct, total);
}

/* vg_msg_pack writes Calls itself: byte for byte what protobuf-c writes, for every value. */
Test(frame, call_pack_matches_protobuf_c)
{
    srand(54321);
    static const char *names[] = {"", "k", "a_kernel_name", NULL};
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    uint64_t args[70];
    uint8_t ours[4096], theirs[4096];
    for (int iter = 0; iter < 20000; iter++) {
        Vgpu__Call c = VGPU__CALL__INIT;
        int bits = rand() % 65;
        c.call = iter % 4 ? (uint32_t)rand() % VG_CALL_COUNT : (uint32_t)rand() << 1 ^ (uint32_t)rand();
        c.ctx = bits == 64 ? UINT64_MAX : ((uint64_t)rand() << 33 ^ (uint64_t)rand()) & ((1ull << bits) - 1);
        c.n_args = (size_t)(rand() % 70);
        for (size_t i = 0; i < c.n_args; i++)
            args[i] = i % 5 == 0 ? UINT64_MAX >> (rand() % 64) : (uint64_t)rand() >> (rand() % 31);
        c.args = args;
        c.name = iter % 11 == 0 ? longname : (char *)names[rand() % 4];
        size_t want = protobuf_c_message_get_packed_size(&c.base);
        cr_assert_eq(vg_msg_packed_size(&c.base), want);
        cr_assert_eq(protobuf_c_message_pack(&c.base, theirs), want);
        cr_assert_eq(vg_msg_pack(&c.base, ours), want);
        cr_assert(memcmp(ours, theirs, want) == 0, "call %u, %zu args: encodings differ", c.call, c.n_args);
    }
    /* Other messages are protobuf-c's. */
    Vgpu__Reply r = VGPU__REPLY__INIT;
    r.result = -1;
    r.str = "x";
    size_t want = protobuf_c_message_get_packed_size(&r.base);
    cr_assert_eq(vg_msg_packed_size(&r.base), want);
    cr_assert_eq(vg_msg_pack(&r.base, ours), want);
    protobuf_c_message_pack(&r.base, theirs);
    cr_assert(memcmp(ours, theirs, want) == 0);
}

Test(frame, socket_send_recv_with_bulk)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    Vgpu__Reply r = VGPU__REPLY__INIT;
    uint64_t outs[] = {5, 6};
    r.result = 3;
    r.n_outs = 2;
    r.outs = outs;
    r.str = "name";
    char bulk[1000];
    for (size_t i = 0; i < sizeof bulk; i++)
        bulk[i] = (char)(rand() & 0xff);
    cr_assert_eq(vg_frame_send(sv[0], VG_MSG_REPLY, 0, 9, &r.base, bulk, sizeof bulk), 0);
    struct vg_frame_header h;
    ProtobufCMessage *m;
    cr_assert_eq(vg_frame_recv(sv[1], VG_FRAME_DEFAULT_MAX, &h, &m, NULL), 0);
    Vgpu__Reply *back = (Vgpu__Reply *)m;
    cr_assert_eq(back->result, 3);
    cr_assert_eq(back->n_outs, 2);
    cr_assert_eq(back->outs[1], 6);
    cr_assert_str_eq(back->str, "name");
    cr_assert_eq(h.bulk_len, sizeof bulk);
    char got[1000];
    cr_assert_eq(vg_io_read_all(sv[1], got, sizeof got), 0);
    cr_assert(memcmp(got, bulk, sizeof bulk) == 0);
    protobuf_c_message_free_unpacked(m, NULL);
    /* A truncated frame: the peer closes after half a header. */
    uint8_t head[VG_FRAME_HEADER_SIZE];
    struct vg_frame_header hh = sample();
    vg_frame_encode_header(&hh, head);
    cr_assert_eq(vg_io_write_all(sv[0], head, 10), 0);
    close(sv[0]);
    cr_assert_eq(vg_frame_recv(sv[1], VG_FRAME_DEFAULT_MAX, &h, &m, NULL), -ECONNRESET);
    close(sv[1]);
}

Test(frame, call_list_is_consistent)
{
    cr_assert_eq(vg_call_kind(VG_CALL_cuLaunchKernel), VG_PIPELINED);
    cr_assert_eq(vg_call_kind(VG_CALL_cuMemcpyDtoH_v2), VG_SYNCING);
    cr_assert_eq(vg_call_kind(VG_CALL_cuMemAlloc_v2), VG_REPLY);
    cr_assert_str_eq(vg_call_name(VG_CALL_cuMemAlloc_v2), "cuMemAlloc_v2");
    cr_assert_str_eq(vg_call_name(VG_CALL_COUNT), "?");
}

Test(frame, hello_check_and_description)
{
    Vgpu__Hello hello = VGPU__HELLO__INIT;
    char why[160] = "unset";
    hello.protocol_version = VG_PROTOCOL_VERSION;
    hello.api_hash = VG_API_HASH;
    cr_assert_eq(vg_hello_check(&hello, why, sizeof why), 0);
    cr_assert_str_empty(why);
    hello.api_hash = VG_API_HASH ^ 1;
    cr_assert_eq(vg_hello_check(&hello, why, sizeof why), -EPROTONOSUPPORT);
    cr_assert(strstr(why, "call list"), "%s", why);
    hello.api_hash = VG_API_HASH;
    hello.protocol_version = VG_PROTOCOL_VERSION + 1;
    cr_assert_eq(vg_hello_check(&hello, why, sizeof why), -EPROTONOSUPPORT);
    cr_assert(strstr(why, "version"), "%s", why);

    char out[160];
    /* Missing or empty strings read "?". */
    hello.pid = 42;
    vg_hello_describe(&hello, "127.0.0.1:5000", out, sizeof out);
    cr_assert_str_eq(out, "127.0.0.1:5000 (? pid 42 on ?)");
    /* A peer's newline or terminal escape cannot reach the log as such. */
    hello.program = "app\n[error] forged line";
    hello.host = "h\x1b[31m\xff";
    vg_hello_describe(&hello, "p", out, sizeof out);
    cr_assert_str_eq(out, "p (app?[error] forged line pid 42 on h?[31m?)");
    /* Long fields are cut, and the whole fits any buffer. */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    hello.program = longname;
    hello.host = longname;
    vg_hello_describe(&hello, longname, out, sizeof out);
    cr_assert_lt(strlen(out), sizeof out);
    cr_assert(strstr(out, " pid 42 on "), "%s", out);
    char tiny[8];
    vg_hello_describe(&hello, "peer", tiny, sizeof tiny);
    cr_assert_str_eq(tiny, "peer (x");
}
