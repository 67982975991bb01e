// libFuzzer target (Scripts/fuzz.sh): decodes an input as one of the messages a peer can send, with the generated
// protobuf-c code the server uses, then encodes it again and frees it. The first byte picks the message type.
// AddressSanitizer and UndefinedBehaviorSanitizer watch every step; the packed size must equal the size computed
// first (the server allocates from that size). A re-decode of the packed bytes is not required: protobuf-c keeps
// unknown fields as they came, including ones it would refuse written back.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "VPPProtoC.h"

extern const ProtobufCMessageDescriptor *const vpp_fuzz_descriptors[];
extern const unsigned vpp_fuzz_descriptor_count;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const ProtobufCMessageDescriptor *descriptor = vpp_fuzz_descriptors[data[0] % vpp_fuzz_descriptor_count];
    ProtobufCMessage *message = protobuf_c_message_unpack(descriptor, NULL, size - 1, data + 1);
    if (message == NULL) return 0;
    size_t packed = protobuf_c_message_get_packed_size(message);
    uint8_t *buffer = malloc(packed ? packed : 1);
    if (buffer != NULL) {
        size_t written = protobuf_c_message_pack(message, buffer);
        if (written != packed) {  // the two sizes must agree
            fprintf(stderr, "%s: packed %zu bytes, sized %zu\n", descriptor->name, written, packed);
            abort();
        }
        free(buffer);
    }
    protobuf_c_message_free_unpacked(message, NULL);
    return 0;
}
