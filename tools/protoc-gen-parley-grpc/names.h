/* names.h: the C names protoc-c gives to proto types, so the generated
 * tables refer to exactly the identifiers in the .pb-c.h files, and the
 * snake/upper names of services and methods. All results are pool strings.
 *
 * protoc-c's rules (protobuf-c 1.4): a full name "a.b.Outer.Inner" is split on
 * dots; the type name joins ToCamel(piece) with "__" (Parley__V1__Outer__Inner,
 * where ToCamel drops '_' and uppercases the next letter), the descriptor
 * joins CamelToLower(piece) with "__" plus "__descriptor", where CamelToLower
 * puts '_' before an uppercase letter that follows a non-uppercase character
 * and lowercases it ("HTTPThing" -> "httpthing", "GetRoomV2" -> "get_room_v2").
 * A file option (pb_c_file).c_package replaces the package in both. */
#ifndef PGPG_NAMES_H
#define PGPG_NAMES_H

#include "text.h"

char *names_camel_to_lower(text_pool *p, const char *s);
char *names_camel_to_upper(text_pool *p, const char *s);
char *names_to_camel(text_pool *p, const char *s);
/* "parley.v1.Outer.Inner" -> "Parley__V1__Outer__Inner" */
char *names_full_to_c(text_pool *p, const char *full);
/* "parley.v1.Outer.Inner" -> "parley__v1__outer__inner" */
char *names_full_to_lower(text_pool *p, const char *full);
/* "parley.v1" -> "parley_v1" */
char *names_dots_to_underscores(text_pool *p, const char *s);
char *names_upper(text_pool *p, const char *s);
/* protoc-c's FilenameIdentifier: non-alphanumerics become _<hex>. */
char *names_file_ident(text_pool *p, const char *filename);
/* "parley/v1/history.proto" -> "parley/v1/history" */
char *names_strip_proto(text_pool *p, const char *filename);
/* 1 if s is a C (or C++) keyword, which cannot name a struct member. */
int names_is_keyword(const char *s);

#endif
