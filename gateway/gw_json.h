/* gw_json.h: one generic proto3-JSON codec for every protobuf-c message,
 * driven by the message descriptors (fields, oneofs, repeated, nested
 * messages, enums by name, 64-bit integers as decimal strings, bytes as
 * base64). No per-message code: a field added to a .proto appears in JSON
 * as soon as gen/ is regenerated. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stddef.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include "errors.h"

/* The lowerCamelCase JSON name of a proto field name ("client_msg_id" ->
 * "clientMsgId"), written into out (NUL-terminated, truncated to cap). */
void gw_json_field_name(const char *proto_name, char *out, size_t cap);

/* msg as a JSON object (a new reference), NULL if out of memory. Fields at
 * their proto3 default are omitted, as proto3 JSON prescribes, except a set
 * oneof member, which is always written. */
json_t *gw_json_from_msg(const ProtobufCMessage *msg);

/* msg as compact JSON text; malloc'd, *len set to its length. NULL if out of
 * memory. */
char *gw_json_encode(const ProtobufCMessage *msg, size_t *len);

/* Build a message of type d from a JSON object. Accepts lowerCamelCase and
 * original field names, enum names and numbers, 64-bit integers as strings
 * or numbers; ignores unknown fields. PARLEY_ERR_MALFORMED on a wrong type
 * (detail says which field). On success *out is freed with
 * protobuf_c_message_free_unpacked(*out, NULL). */
parley_err gw_json_to_msg(const ProtobufCMessageDescriptor *d, json_t *obj,
                          ProtobufCMessage **out, char *detail, size_t cap);

/* Parse text then gw_json_to_msg. Text that is not JSON, or not an object,
 * is MALFORMED; a string that is not valid UTF-8 is INVALID_UTF8. */
parley_err gw_json_decode(const ProtobufCMessageDescriptor *d, const char *text,
                          size_t len, ProtobufCMessage **out, char *detail,
                          size_t cap);

/* Standard base64 with padding; malloc'd, NUL-terminated. */
char *gw_base64_encode(const unsigned char *p, size_t n, size_t *outlen);
/* Accepts standard and URL-safe alphabets, padding optional. -1 if bad. */
int gw_base64_decode(const char *s, size_t n, unsigned char **out,
                     size_t *outlen);

#endif
