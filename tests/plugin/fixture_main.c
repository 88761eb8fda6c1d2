/* fixture_main.c: compiled by run_fixture.sh against the tables that
 * protoc-gen-parley-grpc generated, at test time, from tests/plugin/fixtures
 * (services of a package the plugin never saw before). It checks every row
 * and that dispatch reaches the right typed handler: a new RPC needs no
 * hand-written routing. Exit status 0 when all checks pass. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "acme/shop/v1/legacy.grpc.h"
#include "acme/shop/v1/shop.grpc.h"

struct rpc_call {
    int unused;
};

static int failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static const char *seen_which;
static const void *seen_req;
static rpc_call *seen_call;
static void *seen_ud;

static void record(const char *which, rpc_call *call, const void *req, void *ud)
{
    seen_which = which;
    seen_call = call;
    seen_req = req;
    seen_ud = ud;
}

static void list_items(rpc_call *c, const Acme__Shop__V1__ListItemsRequest *r, void *ud)
{
    record("list_items", c, r, ud);
}
static void get_price(rpc_call *c, const Acme__Shared__V2__Outer__PriceTag *r, void *ud)
{
    record("get_price", c, r, ud);
}
static void httplookup_v2(rpc_call *c, const Acme__Shop__V1__ListItemsRequest *r, void *ud)
{
    record("httplookup_v2", c, r, ud);
}
static void upload_cart(rpc_call *c, void *ud) { record("upload_cart", c, NULL, ud); }
static void haggle(rpc_call *c, void *ud) { record("haggle", c, NULL, ud); }
static void pay_now(rpc_call *c, const Acme__Shop__V1__Item *r, void *ud)
{
    record("pay_now", c, r, ud);
}
static void echo(rpc_call *c, const OldShop__Ping *r, void *ud) { record("echo", c, r, ud); }
static void reprice(rpc_call *c, const Acme__Shop__V1__Item *r, void *ud)
{
    record("reprice", c, r, ud);
}

static const acme_shop_v1_Catalog_handlers catalog = {
    .list_items = list_items, .get_price = get_price, .httplookup_v2 = httplookup_v2,
};
static const acme_shop_v1_CheckoutDesk_handlers desk = {
    .upload_cart = upload_cart, .haggle = haggle, .pay_now = pay_now,
};
static const acme_shop_v1_legacy_Legacy_handlers legacy = {
    .echo = echo, .reprice = reprice,
};

static void check_row(const rpc_service_desc *s, const void *handlers, int index,
                      const char *name, const char *path, rpc_kind kind,
                      const ProtobufCMessageDescriptor *in,
                      const ProtobufCMessageDescriptor *out, size_t offset,
                      const char *handler)
{
    if ((size_t)index >= s->n_methods) {
        CHECK((size_t)index < s->n_methods);
        return;
    }
    const rpc_method_desc *m = &s->methods[index];
    CHECK(strcmp(m->name, name) == 0);
    CHECK(strcmp(m->path, path) == 0);
    CHECK(m->kind == kind);
    CHECK(m->input == in);
    CHECK(m->output == out);
    CHECK(m->handler_offset == offset);

    union {
        ProtobufCMessage base;
        char space[256];
    } req;
    int takes = kind == RPC_UNARY || kind == RPC_SERVER_STREAMING;
    if (takes) {
        CHECK(in->sizeof_message <= sizeof req.space);
        in->message_init(&req.base);
    }
    struct rpc_call call;
    int ud;
    seen_which = NULL;
    m->dispatch(handlers, &call, takes ? &req.base : NULL, &ud);
    CHECK(seen_which && strcmp(seen_which, handler) == 0);
    CHECK(seen_call == &call);
    CHECK(seen_ud == &ud);
    CHECK(seen_req == (takes ? (const void *)&req.base : NULL));
}

int main(void)
{
    const rpc_service_desc *s = &acme_shop_v1_Catalog_service;
    CHECK(strcmp(s->full_name, "acme.shop.v1.Catalog") == 0);
    CHECK(s->n_methods == 3 && ACME_SHOP_V1_CATALOG__N_METHODS == 3);
    check_row(s, &catalog, ACME_SHOP_V1_CATALOG_LIST_ITEMS, "ListItems",
              "/acme.shop.v1.Catalog/ListItems", RPC_SERVER_STREAMING,
              &acme__shop__v1__list_items_request__descriptor,
              &acme__shop__v1__item__descriptor,
              offsetof(acme_shop_v1_Catalog_handlers, list_items), "list_items");
    check_row(s, &catalog, ACME_SHOP_V1_CATALOG_GET_PRICE, "GetPrice",
              "/acme.shop.v1.Catalog/GetPrice", RPC_UNARY,
              &acme__shared__v2__outer__price_tag__descriptor,
              &acme__shared__v2__money__descriptor,
              offsetof(acme_shop_v1_Catalog_handlers, get_price), "get_price");
    check_row(s, &catalog, ACME_SHOP_V1_CATALOG_HTTPLOOKUP_V2, "HTTPLookupV2",
              "/acme.shop.v1.Catalog/HTTPLookupV2", RPC_UNARY,
              &acme__shop__v1__list_items_request__descriptor,
              &acme__shop__v1__item__descriptor,
              offsetof(acme_shop_v1_Catalog_handlers, httplookup_v2), "httplookup_v2");

    s = &acme_shop_v1_CheckoutDesk_service;
    CHECK(strcmp(s->full_name, "acme.shop.v1.CheckoutDesk") == 0);
    CHECK(s->n_methods == 3 && ACME_SHOP_V1_CHECKOUT_DESK__N_METHODS == 3);
    check_row(s, &desk, ACME_SHOP_V1_CHECKOUT_DESK_UPLOAD_CART, "UploadCart",
              "/acme.shop.v1.CheckoutDesk/UploadCart", RPC_CLIENT_STREAMING,
              &acme__shop__v1__item__descriptor, &acme__shop__v1__receipt__descriptor,
              offsetof(acme_shop_v1_CheckoutDesk_handlers, upload_cart), "upload_cart");
    check_row(s, &desk, ACME_SHOP_V1_CHECKOUT_DESK_HAGGLE, "Haggle",
              "/acme.shop.v1.CheckoutDesk/Haggle", RPC_BIDI_STREAMING,
              &acme__shared__v2__money__descriptor, &acme__shop__v1__receipt__descriptor,
              offsetof(acme_shop_v1_CheckoutDesk_handlers, haggle), "haggle");
    check_row(s, &desk, ACME_SHOP_V1_CHECKOUT_DESK_PAY_NOW, "PayNow",
              "/acme.shop.v1.CheckoutDesk/PayNow", RPC_UNARY,
              &acme__shop__v1__item__descriptor, &acme__shop__v1__receipt__descriptor,
              offsetof(acme_shop_v1_CheckoutDesk_handlers, pay_now), "pay_now");

    s = &acme_shop_v1_legacy_Legacy_service;
    CHECK(strcmp(s->full_name, "acme.shop.v1.legacy.Legacy") == 0);
    CHECK(s->n_methods == 2 && ACME_SHOP_V1_LEGACY_LEGACY__N_METHODS == 2);
    check_row(s, &legacy, ACME_SHOP_V1_LEGACY_LEGACY_ECHO, "Echo",
              "/acme.shop.v1.legacy.Legacy/Echo", RPC_UNARY,
              &old_shop__ping__descriptor, &old_shop__ping__descriptor,
              offsetof(acme_shop_v1_legacy_Legacy_handlers, echo), "echo");
    check_row(s, &legacy, ACME_SHOP_V1_LEGACY_LEGACY_REPRICE, "Reprice",
              "/acme.shop.v1.legacy.Legacy/Reprice", RPC_UNARY,
              &acme__shop__v1__item__descriptor, &old_shop__ping__descriptor,
              offsetof(acme_shop_v1_legacy_Legacy_handlers, reprice), "reprice");

    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("fixture tables: all checks passed\n");
    return failures ? 1 : 0;
}
