/* Fuzz harness: the bytes a client sends gpu-server, taken as the server takes them.
 *
 * The input is one connection's byte stream: frames back to back, each a 32-byte header, the
 * protobuf message and the bulk bytes. Like gpu-server, the harness decodes each header
 * (vg_frame_decode_header), stops where the server would close the connection (a bad header, a
 * message that does not decode, anything but Hello first, a Hello that fails the handshake's
 * checks, anything but Call afterwards) or wait for more bytes (a partial frame), and unpacks the
 * message from a buffer of exactly pb_len bytes (vg_msg_unpack), so that a read past it is
 * caught. Every accepted message is built into a frame again as a sender would (vg_frame_build,
 * vg_frame_put) and must decode to the same bytes. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "calls.h"
#include "frame.h"

/* gpu-server's smallest --max-frame: small enough that the fuzzer reaches the size checks. */
#define FUZZ_MAX_FRAME VG_FRAME_MIN_MAX

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

/* What the server does with a decoded message before a session or a driver is involved.
 * Returns 0 to go on reading, -1 where the server closes the connection. */
static int accept_message(int *handshake_done, const struct vg_frame_header *h, ProtobufCMessage *msg)
{
    if (!*handshake_done) {
        if (h->type != VG_MSG_HELLO)
            return -1;
        const Vgpu__Hello *hello = (const Vgpu__Hello *)msg;
        const char *why = "unset";
        int rc = vg_hello_check(hello, &why);
        if (rc < 0) {
            FUZZ_CHECK(rc == -EPROTONOSUPPORT && why && *why);
            return -1;
        }
        FUZZ_CHECK(why == NULL);
        char who[160];
        vg_hello_describe(hello, "127.0.0.1:40000", who, sizeof who);
        size_t n = strlen(who);
        FUZZ_CHECK(n < sizeof who);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(who[i] >= 0x20 && who[i] < 0x7f);
        *handshake_done = 1;
        return 0;
    }
    if (h->type != VG_MSG_CALL)
        return -1;
    /* What the server reads of every Call before dispatching it: the call's name and kind (an
     * unknown id is answered CUDA_ERROR_NOT_SUPPORTED), its arguments and its name string. */
    const Vgpu__Call *call = (const Vgpu__Call *)msg;
    int kind = vg_call_kind(call->call);
    FUZZ_CHECK(kind == VG_REPLY || kind == VG_PIPELINED || kind == VG_SYNCING);
    FUZZ_CHECK(vg_call_name(call->call) != NULL);
    FUZZ_CHECK(call->n_args == 0 || call->args != NULL);
    uint64_t sum = 0;
    for (size_t i = 0; i < call->n_args; i++)
        sum += call->args[i];
    (void)sum;
    FUZZ_CHECK(call->name != NULL);
    (void)strlen(call->name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int handshake_done = 0;
    size_t pos = 0;
    while (size - pos >= VG_FRAME_HEADER_SIZE) {
        struct vg_frame_header h;
        const char *why = "unset";
        int rc = vg_frame_decode_header(data + pos, FUZZ_MAX_FRAME, &h, &why);
        if (rc < 0) {
            FUZZ_CHECK(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EMSGSIZE);
            FUZZ_CHECK(why && *why);
            break;
        }
        FUZZ_CHECK(why == NULL);
        /* A header that decodes is within every limit and encodes back to the same bytes. */
        FUZZ_CHECK(h.pb_len <= VG_PB_MAX);
        FUZZ_CHECK(VG_FRAME_HEADER_SIZE + (uint64_t)h.pb_len + h.bulk_len <= FUZZ_MAX_FRAME);
        uint8_t again[VG_FRAME_HEADER_SIZE];
        vg_frame_encode_header(&h, again);
        FUZZ_CHECK(memcmp(again, data + pos, VG_FRAME_HEADER_SIZE) == 0);
        pos += VG_FRAME_HEADER_SIZE;
        if (h.pb_len + h.bulk_len > size - pos)
            break; /* the server would wait for the rest of the frame */

        /* The message alone in its own allocation, so that any read past pb_len is caught. */
        uint8_t *pb = malloc(h.pb_len ? h.pb_len : 1);
        if (!pb)
            break;
        memcpy(pb, data + pos, h.pb_len);
        pos += h.pb_len + (size_t)h.bulk_len;
        ProtobufCMessage *msg = vg_msg_unpack(h.type, pb, h.pb_len);
        free(pb);
        if (!msg)
            break;
        FUZZ_CHECK(msg->descriptor == vg_msg_descriptor(h.type));
        rc = accept_message(&handshake_done, &h, msg);
        if (rc == 0)
            check_rebuild(h.type, &h, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (rc < 0)
            break;
    }
    return 0;
}
