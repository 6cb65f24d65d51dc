/* vg_frame: the wire framing shared by the stub, gpu-server and the tests.
 *
 * A frame is a 32-byte header (all fields little-endian), then pb_len bytes of the protobuf-c
 * message named by `type`, then bulk_len raw bytes:
 *
 *   off size field
 *     0    4 magic       VG_FRAME_MAGIC ("VGPU")
 *     4    2 version     VG_PROTOCOL_VERSION
 *     6    2 type        enum vg_msg_type
 *     8    4 flags       VG_FLAG_*
 *    12    4 pb_len      <= VG_PB_MAX
 *    16    8 request_id  chosen by the client, echoed in the Reply
 *    24    8 bulk_len    header + pb_len + bulk_len <= the receiver's maximum frame size
 *
 * All validation of untrusted frames happens here (vg_frame_decode_header, vg_msg_unpack): code
 * behind them works with checked values. */
#ifndef VG_FRAME_H
#define VG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu.pb-c.h"

#define VG_FRAME_MAGIC 0x55504756u /* bytes 'V' 'G' 'P' 'U' */
#define VG_PROTOCOL_VERSION 2
#define VG_FRAME_HEADER_SIZE 32
#define VG_PB_MAX (1u << 20)
#define VG_FRAME_DEFAULT_MAX ((uint64_t)(256u << 20) + 4096)
#define VG_FRAME_MIN_MAX ((uint64_t)64 << 10) /* smallest --max-frame accepted */
#define VG_FRAME_MAX_MAX ((uint64_t)2 << 30)  /* largest: libuv buffers are 32-bit */

enum vg_msg_type {
    VG_MSG_HELLO = 1,
    VG_MSG_WELCOME = 2,
    VG_MSG_CALL = 3,
    VG_MSG_REPLY = 4,
    VG_MSG_ERROR = 5,
    VG_MSG_HEARTBEAT = 6,
    VG_MSG_OUTPUT = 7,
    VG_MSG_REGION = 8, /* shared-memory transports only: pinned host memory comes or goes */
};
#define VG_MSG_TYPE_MAX VG_MSG_REGION

/* The largest frame a peer may send before the handshake is done (a Hello): gpu-server reads
 * no more than this from an unauthenticated connection. */
#define VG_HELLO_MAX 4096

/* The sender expects no Reply (pipelined call). */
#define VG_FLAG_NO_REPLY 0x1u
/* Shared-memory transports only: the bulk is a vg_bulk_ref (VG_BULK_REF_SIZE bytes) naming
 * bytes in a shared region instead of the bytes: a host-to-device copy's source, or where a
 * device-to-host copy's bytes go (its Reply then carries none). */
#define VG_FLAG_BULK_REF 0x2u
#define VG_FLAGS_KNOWN (VG_FLAG_NO_REPLY | VG_FLAG_BULK_REF)

/* A reference to bytes in a shared region: region id (from the Region frame's Reply), offset
 * and length, little-endian. */
struct vg_bulk_ref {
    uint64_t region;
    uint64_t offset;
    uint64_t length;
};
#define VG_BULK_REF_SIZE 24
void vg_bulk_ref_put(const struct vg_bulk_ref *r, uint8_t out[VG_BULK_REF_SIZE]);
void vg_bulk_ref_get(const uint8_t in[VG_BULK_REF_SIZE], struct vg_bulk_ref *r);

struct vg_frame_header {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t flags;
    uint32_t pb_len;
    uint64_t request_id;
    uint64_t bulk_len;
};

void vg_frame_encode_header(const struct vg_frame_header *h, uint8_t out[VG_FRAME_HEADER_SIZE]);

/* Decodes and validates a header read from the wire. Fills *h as far as it could read it (so that
 * a caller can report e.g. the peer's version) and *why with a static reason on failure.
 * Returns 0; -EBADMSG (bad magic, unknown type or flags); -EPROTONOSUPPORT (version mismatch);
 * -EMSGSIZE (pb_len over VG_PB_MAX or the whole frame over max_frame). */
int vg_frame_decode_header(const uint8_t in[VG_FRAME_HEADER_SIZE], uint64_t max_frame,
                           struct vg_frame_header *h, const char **why);

/* The protobuf-c descriptor of a message type, NULL for an unknown type. */
const ProtobufCMessageDescriptor *vg_msg_descriptor(unsigned type);

/* Unpacks pb[0..len) as the message of `type`; NULL when it does not decode (or on ENOMEM).
 * Free with protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *vg_msg_unpack(unsigned type, const uint8_t *pb, size_t len);

/* protobuf_c_message_get_packed_size and protobuf_c_message_pack, byte for byte, with Calls
 * (every call the stub makes) encoded directly instead of by protobuf-c's descriptor walk. */
size_t vg_msg_packed_size(const ProtobufCMessage *msg);
size_t vg_msg_pack(const ProtobufCMessage *msg, uint8_t *out);

/* A Call decoded without allocating: gpu-server's per-call path (a burst of launches is one
 * Call after another, and protobuf-c's unpack costs two allocations and a generic walk over the
 * descriptor each). vg_call_unpack takes the encoding the stub writes (fields 1, 2, 3 in order,
 * each at most once, args packed, at most VG_CALL_INLINE_ARGS of them, no name) directly into
 * m; any other encoding, valid or not, goes to protobuf-c (vg_msg_unpack), so the result is
 * always protobuf-c's. Returns the Call (inside m, or protobuf-c's), or NULL when it does not
 * decode. Valid until vg_call_release(m), which frees what protobuf-c allocated. */
#define VG_CALL_INLINE_ARGS 48
struct vg_call_msg {
    Vgpu__Call call;
    uint64_t args[VG_CALL_INLINE_ARGS];
    ProtobufCMessage *unpacked; /* protobuf-c's message when the direct decoding declined */
};
Vgpu__Call *vg_call_unpack(struct vg_call_msg *m, const uint8_t *pb, size_t len);
void vg_call_release(struct vg_call_msg *m);
/* The Call vg_call_unpack returned. */
static inline Vgpu__Call *vg_call_get(struct vg_call_msg *m)
{
    return m->unpacked ? (Vgpu__Call *)m->unpacked : &m->call;
}

/* The handshake's checks of a client's Hello, the first message from an unauthenticated peer.
 * Returns 0 (why = ""), or -EPROTONOSUPPORT with the reason in why[0..whylen) when the client
 * speaks another protocol version or was built from another call list (VG_API_HASH). */
int vg_hello_check(const Vgpu__Hello *hello, char *why, size_t whylen);

/* Names the client for logs: "PEER (PROGRAM pid PID on HOST)" ("?" for an empty part), each
 * part cut short and every byte that is not printable ASCII written as '?', so that a peer
 * cannot forge log lines or send terminal escapes. out always ends in a NUL when outlen > 0. */
void vg_hello_describe(const Vgpu__Hello *hello, const char *peer, char *out, size_t outlen);

/* Builds header + packed message into one malloc'd buffer (*out, *out_len; caller frees).
 * bulk_len is written into the header; the bulk itself is sent separately by the caller.
 * msg may be NULL for an empty message. Returns 0 or -ENOMEM / -EMSGSIZE. */
int vg_frame_build(unsigned type, uint32_t flags, uint64_t request_id, const ProtobufCMessage *msg,
                   uint64_t bulk_len, uint8_t **out, size_t *out_len);

/* Writes header + packed message to out, which has room for VG_FRAME_HEADER_SIZE + pb_len
 * bytes, where pb_len is vg_msg_packed_size(msg) (0 when msg is NULL), at most
 * VG_PB_MAX. Lets a sender build frames in its own buffer, without an allocation per frame.
 * Returns the bytes written. */
size_t vg_frame_put(unsigned type, uint32_t flags, uint64_t request_id, const ProtobufCMessage *msg,
                    size_t pb_len, uint64_t bulk_len, uint8_t *out);

/* Blocking socket helpers, for the client and tests (the server uses libuv).
 * All return 0 or a negative errno (-ECONNRESET when the peer closed the connection). */
int vg_io_write_all(int fd, const void *buf, size_t len);
int vg_io_read_all(int fd, void *buf, size_t len);

/* Sends one frame: header + msg, then bulk (may be NULL when bulk_len is 0). */
int vg_frame_send(int fd, unsigned type, uint32_t flags, uint64_t request_id,
                  const ProtobufCMessage *msg, const void *bulk, uint64_t bulk_len);

/* Receives one frame's header and message. The bulk is left unread on the socket: the caller
 * reads exactly h->bulk_len bytes next (vg_io_read_all or vg_io_discard). *msg is NULL for a
 * message that does not decode (returns -EBADMSG). */
int vg_frame_recv(int fd, uint64_t max_frame, struct vg_frame_header *h, ProtobufCMessage **msg,
                  const char **why);

/* Reads and drops len bytes. */
int vg_io_discard(int fd, uint64_t len);

#endif
