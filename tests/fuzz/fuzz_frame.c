/* Fuzz harness: the bytes a client sends gpu-server, taken as the server takes them.
 *
 * The input is one connection's byte stream: frames back to back, each a 32-byte header, the
 * protobuf message and the bulk bytes. Like gpu-server, the harness reads the first frame as the
 * main process reads a handshake (server/main_listen.c: at most VG_HELLO_MAX bytes, a Hello, no
 * bulk, vg_hello_check, vg_hello_describe) and the frames after it as a session process does
 * (server/sess_proc.c: vg_frame_decode_header with the maximum frame size; Calls only and no
 * bulk references, as on a TCP connection: Regions belong to shared-memory sessions), and
 * stops where the server would close the connection or wait for more bytes (a partial frame).
 * Each message is unpacked from a buffer of exactly pb_len bytes (vg_msg_unpack), so that a
 * read past it is caught; a frame of a type the server refuses is still unpacked once, as the
 * stub unpacks what a server sends, before the harness stops. Every accepted message is built
 * into a frame again as a sender would (vg_frame_build, vg_frame_put) and must decode to the
 * same bytes. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "calls.h"
#include "frame.h"

/* gpu-server's smallest --max-frame: small enough that the fuzzer reaches the size checks. */
#define FUZZ_MAX_FRAME VG_FRAME_MIN_MAX

/* The session process decodes Calls with vg_call_unpack: it must agree with protobuf-c (ref,
 * NULL when that refused the bytes) on every input. */
static void check_call_unpack(const uint8_t *pb, size_t len, const Vgpu__Call *ref)
{
    struct vg_call_msg m;
    const Vgpu__Call *c = vg_call_unpack(&m, pb, len);
    if (!c || !ref) {
        /* Refused by protobuf-c: the direct decoding takes nothing protobuf-c refuses. */
        FUZZ_CHECK(!(c && !m.unpacked && !ref));
        vg_call_release(&m);
        return;
    }
    FUZZ_CHECK(c->call == ref->call && c->ctx == ref->ctx && c->n_args == ref->n_args);
    for (size_t i = 0; i < c->n_args; i++)
        FUZZ_CHECK(c->args[i] == ref->args[i]);
    FUZZ_CHECK(strcmp(c->name ? c->name : "", ref->name ? ref->name : "") == 0);
    vg_call_release(&m);
}

/* Packs msg into a frame (both ways a sender can) and checks that it reads back the same. */
static void check_rebuild(unsigned type, const struct vg_frame_header *h, const ProtobufCMessage *msg)
{
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    int rc = vg_frame_build(type, h->flags, h->request_id, msg, h->bulk_len, &frame, &frame_len);
    if (rc == -ENOMEM)
        return;
    /* The peer's message fit in VG_PB_MAX bytes; packed again it cannot be longer. */
    FUZZ_CHECK(rc == 0);
    size_t pb_len = frame_len - VG_FRAME_HEADER_SIZE;
    FUZZ_CHECK(pb_len == protobuf_c_message_get_packed_size(msg));

    uint8_t *put = malloc(frame_len);
    if (put) {
        FUZZ_CHECK(vg_frame_put(type, h->flags, h->request_id, msg, pb_len, h->bulk_len, put) == frame_len);
        FUZZ_CHECK(memcmp(put, frame, frame_len) == 0);
        free(put);
    }

    struct vg_frame_header back;
    const char *why = NULL;
    FUZZ_CHECK(vg_frame_decode_header(frame, UINT64_MAX, &back, &why) == 0);
    FUZZ_CHECK(back.type == type && back.flags == h->flags && back.pb_len == pb_len &&
               back.request_id == h->request_id && back.bulk_len == h->bulk_len);
    ProtobufCMessage *again = vg_msg_unpack(type, frame + VG_FRAME_HEADER_SIZE, pb_len);
    if (again) { /* NULL only on ENOMEM: what we packed decodes */
        uint8_t *repacked = malloc(pb_len ? pb_len : 1);
        if (repacked) {
            FUZZ_CHECK(protobuf_c_message_pack(again, repacked) == pb_len);
            FUZZ_CHECK(memcmp(repacked, frame + VG_FRAME_HEADER_SIZE, pb_len) == 0);
            free(repacked);
        }
        protobuf_c_message_free_unpacked(again, NULL);
    }
    free(frame);
}

/* The handshake's checks of a Hello (server/main_listen.c). Returns 0 when it is accepted. */
static int accept_hello(const Vgpu__Hello *hello)
{
    char why[160] = "unset";
    int rc = vg_hello_check(hello, why, sizeof why);
    if (rc < 0) {
        FUZZ_CHECK(rc == -EPROTONOSUPPORT && why[0]);
        return -1;
    }
    FUZZ_CHECK(why[0] == '\0');
    char who[200];
    vg_hello_describe(hello, "127.0.0.1:40000", who, sizeof who);
    size_t n = strlen(who);
    FUZZ_CHECK(n < sizeof who);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(who[i] >= 0x20 && who[i] < 0x7f);
    return 0;
}

/* What a session process reads of every Call before dispatching it: the call's kind and name
 * (an unknown id is answered CUDA_ERROR_NOT_SUPPORTED), its arguments and its name string. */
static void read_call(const Vgpu__Call *call)
{
    int kind = vg_call_kind(call->call);
    FUZZ_CHECK(kind == VG_REPLY || kind == VG_PIPELINED || kind == VG_SYNCING);
    FUZZ_CHECK(vg_call_name(call->call) != NULL);
    FUZZ_CHECK(call->n_args == 0 || call->args != NULL);
    volatile uint64_t sum = 0;
    for (size_t i = 0; i < call->n_args; i++)
        sum += call->args[i];
    FUZZ_CHECK(call->name != NULL);
    sum += strlen(call->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int handshake_done = 0;
    size_t pos = 0;
    while (size - pos >= VG_FRAME_HEADER_SIZE) {
        /* Before the handshake the main process reads no frame over VG_HELLO_MAX bytes. */
        uint64_t max_frame = handshake_done ? FUZZ_MAX_FRAME : VG_FRAME_HEADER_SIZE + VG_HELLO_MAX;
        struct vg_frame_header h;
        const char *why = "unset";
        int rc = vg_frame_decode_header(data + pos, max_frame, &h, &why);
        if (rc < 0) {
            FUZZ_CHECK(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EMSGSIZE);
            FUZZ_CHECK(why && *why);
            break;
        }
        FUZZ_CHECK(why == NULL);
        /* A header that decodes is within every limit and encodes back to the same bytes. */
        FUZZ_CHECK(h.type >= 1 && h.type <= VG_MSG_TYPE_MAX && vg_msg_descriptor(h.type));
        FUZZ_CHECK(h.pb_len <= VG_PB_MAX);
        FUZZ_CHECK(VG_FRAME_HEADER_SIZE + (uint64_t)h.pb_len + h.bulk_len <= max_frame);
        uint8_t again[VG_FRAME_HEADER_SIZE];
        vg_frame_encode_header(&h, again);
        FUZZ_CHECK(memcmp(again, data + pos, VG_FRAME_HEADER_SIZE) == 0);
        pos += VG_FRAME_HEADER_SIZE;
        /* The server refuses these before it reads the message. */
        int refused = handshake_done ? h.type != VG_MSG_CALL || (h.flags & VG_FLAG_BULK_REF)
                                     : h.type != VG_MSG_HELLO || h.bulk_len != 0;
        if (h.pb_len + h.bulk_len > size - pos)
            break; /* the server would wait for the rest of the frame */

        /* The message alone in its own allocation, so that any read past pb_len is caught. */
        uint8_t *pb = malloc(h.pb_len ? h.pb_len : 1);
        if (!pb)
            break;
        memcpy(pb, data + pos, h.pb_len);
        pos += h.pb_len + (size_t)h.bulk_len;
        ProtobufCMessage *msg = vg_msg_unpack(h.type, pb, h.pb_len);
        if (h.type == VG_MSG_CALL)
            check_call_unpack(pb, h.pb_len, (const Vgpu__Call *)msg);
        free(pb);
        if (!msg)
            break;
        FUZZ_CHECK(msg->descriptor == vg_msg_descriptor(h.type));
        if (!refused) {
            if (handshake_done)
                read_call((const Vgpu__Call *)msg);
            else
                refused = accept_hello((const Vgpu__Hello *)msg) < 0;
        }
        check_rebuild(h.type, &h, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (refused)
            break;
        handshake_done = 1;
    }
    return 0;
}
