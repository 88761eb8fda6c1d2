/* test_server.c: CUnit tests of parleyd over real gRPC on loopback, with a
 * client written on the grpc C core (tclient.c): every History RPC,
 * Stream.Publish and Connect, idempotency, tokens, malformed requests,
 * replay-then-live racing concurrent publishes, a slow consumer, and
 * durability across a SIGKILL.
 *
 * usage: test_server PARLEYD_BINARY [postgres]
 * With postgres, every parleyd runs with --store on the PostgreSQL that
 * PARLEY_PG_HOST / _PORT / _USER name (tests/pg/pgtmp exec), and the full
 * disk test (an SQLite file's) gives way to a lost PostgreSQL connection. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tclient.h"
#include "parley/v1/history.pb-c.h"
#include "parley/v1/stream.pb-c.h"

#define H(m) "/parley.v1.History/" m
#define S(m) "/parley.v1.Stream/" m

static const char *g_bin;
static tc_server g_srv;
static grpc_channel *g_ch;
static char *t_org, *t_pat, *t_quinn;

/* ---------- helpers ---------- */

static tc_result call(grpc_channel *ch, const char *path, const char *tok,
                      const void *req, const ProtobufCMessageDescriptor *d) {
    tc_result r;
    int rc = tc_unary(ch, path, tok, req, NULL, 0, d, &r);
    CU_ASSERT_EQUAL(rc, 0);
    return r;
}

static void expect_fail(tc_result *r, grpc_status_code st, const char *code) {
    CU_ASSERT_EQUAL(r->status, st);
    CU_ASSERT_STRING_EQUAL(r->parley_code, code);
    if (r->status != st || strcmp(r->parley_code, code))
        fprintf(stderr, "  want %d/%s got %d/%s (%s)\n", st, code, r->status,
                r->parley_code, r->details);
    tc_result_free(r);
}

static void create_room(const char *name) {
    Parley__V1__CreateRoomRequest q = PARLEY__V1__CREATE_ROOM_REQUEST__INIT;
    q.name = (char *)name;
    tc_result r = call(g_ch, H("CreateRoom"), t_org, &q,
                       &parley__v1__create_room_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);
}

static Parley__V1__PublishResponse *publish(grpc_channel *ch, const char *tok,
                                            const char *room, const char *id,
                                            const char *body, tc_result *r) {
    Parley__V1__PublishRequest q = PARLEY__V1__PUBLISH_REQUEST__INIT;
    q.room = (char *)room;
    q.client_msg_id = (char *)id;
    q.body = (char *)body;
    *r = call(ch, S("Publish"), tok, &q,
              &parley__v1__publish_response__descriptor);
    return (Parley__V1__PublishResponse *)r->resp;
}

static Parley__V1__ServerFrame *recv_frame(tc_stream *st, int ms) {
    ProtobufCMessage *m = NULL;
    if (tc_stream_recv(st, &parley__v1__server_frame__descriptor, ms, &m) != 1)
        return NULL;
    return (Parley__V1__ServerFrame *)m;
}

static void free_frame(Parley__V1__ServerFrame *f) {
    if (f) protobuf_c_message_free_unpacked(&f->base, NULL);
}

static int send_subscribe(tc_stream *st, uint64_t rid, const char *room,
                          uint64_t after) {
    Parley__V1__Subscribe sb = PARLEY__V1__SUBSCRIBE__INIT;
    sb.room = (char *)room;
    sb.resume_after_rev = after;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_SUBSCRIBE;
    f.subscribe = &sb;
    return tc_stream_send(st, &f.base);
}

static int send_publish(tc_stream *st, uint64_t rid, const char *room,
                        const char *id, const char *body) {
    Parley__V1__PublishRequest p = PARLEY__V1__PUBLISH_REQUEST__INIT;
    p.room = (char *)room;
    p.client_msg_id = (char *)id;
    p.body = (char *)body;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
    f.publish = &p;
    return tc_stream_send(st, &f.base);
}

/* Publishes n messages on a Connect stream, `window` in flight at a time;
 * returns how many were acked (not duplicates). */
static int stream_publish_many(grpc_channel *ch, const char *tok,
                               const char *room, const char *prefix, int n,
                               int window, const char *body) {
    tc_stream *st = tc_stream_open(ch, S("Connect"), tok);
    int acked = 0, sent = 0;
    char id[64];
    while (acked < n) {
        while (sent < n && sent - acked < window) {
            snprintf(id, sizeof id, "%s-%d", prefix, sent);
            if (send_publish(st, (uint64_t)sent + 1, room, id, body)) goto out;
            sent++;
        }
        Parley__V1__ServerFrame *f = recv_frame(st, 20000);
        if (!f) goto out;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK &&
            !f->ack->duplicate) {
            acked++;
        }
        else if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_ACK) {
            fprintf(stderr, "  publisher got frame kind %d\n", f->kind_case);
            free_frame(f);
            goto out;
        }
        free_frame(f);
    }
out:
    tc_stream_free(st);
    return acked;
}

/* ---------- History ---------- */

static void test_rooms(void) {
    Parley__V1__CreateRoomRequest q = PARLEY__V1__CREATE_ROOM_REQUEST__INIT;
    q.name = "c-rooms";
    tc_result r = call(g_ch, H("CreateRoom"), t_org, &q,
                       &parley__v1__create_room_response__descriptor);
    Parley__V1__CreateRoomResponse *cr = (void *)r.resp;
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cr);
    CU_ASSERT_TRUE(cr->created);
    CU_ASSERT_STRING_EQUAL(cr->room->name, "c-rooms");
    tc_result_free(&r);
    r = call(g_ch, H("CreateRoom"), t_org, &q,
             &parley__v1__create_room_response__descriptor);
    cr = (void *)r.resp;
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_FALSE(cr->created);
    tc_result_free(&r);
    q.name = "c-not-allowed";
    r = call(g_ch, H("CreateRoom"), t_pat, &q, NULL);
    expect_fail(&r, GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED");
    q.name = "bad name";
    r = call(g_ch, H("CreateRoom"), t_org, &q, NULL);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "ROOM_INVALID");

    Parley__V1__GetRoomRequest g = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    g.name = "c-rooms";
    r = call(g_ch, H("GetRoom"), t_pat, &g,
             &parley__v1__get_room_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.resp);
    CU_ASSERT_EQUAL(((Parley__V1__GetRoomResponse *)r.resp)->room->head_rev, 0);
    tc_result_free(&r);
    g.name = "c-missing";
    r = call(g_ch, H("GetRoom"), t_pat, &g, NULL);
    expect_fail(&r, GRPC_STATUS_NOT_FOUND, "ROOM_NOT_FOUND");
}

static void test_publish_and_history(void) {
    create_room("c-hist");
    tc_result r;
    Parley__V1__PublishResponse *p =
        publish(g_ch, t_pat, "c-hist", "id-1", "first", &r);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(p->message->seq, 1);
    CU_ASSERT_EQUAL(p->message->rev, 1);
    CU_ASSERT_FALSE(p->duplicate);
    CU_ASSERT_STRING_EQUAL(p->message->author->id, "pat");
    CU_ASSERT_EQUAL(p->message->author->role, PARLEY__V1__ROLE__ROLE_PARTICIPANT);
    CU_ASSERT_TRUE(p->message->created_at_ms > 0);
    tc_result_free(&r);
    /* idempotent: same id, same author -> the original, duplicate=true */
    p = publish(g_ch, t_pat, "c-hist", "id-1", "first, retried", &r);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_TRUE(p->duplicate);
    CU_ASSERT_EQUAL(p->message->seq, 1);
    CU_ASSERT_STRING_EQUAL(p->message->body, "first");
    tc_result_free(&r);
    /* same id by another author is another message */
    p = publish(g_ch, t_quinn, "c-hist", "id-1", "quinn's", &r);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_FALSE(p->duplicate);
    CU_ASSERT_EQUAL(p->message->seq, 2);
    tc_result_free(&r);
    publish(g_ch, t_pat, "c-missing", "x", "body", &r);
    expect_fail(&r, GRPC_STATUS_NOT_FOUND, "ROOM_NOT_FOUND");
    publish(g_ch, t_pat, "c-hist", "", "body", &r);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "CLIENT_MSG_ID_INVALID");
    publish(g_ch, t_pat, "c-hist", "e", " \t\n", &r);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "BODY_EMPTY");
    for (int i = 3; i <= 6; i++) {
        char id[16], body[16];
        snprintf(id, sizeof id, "id-%d", i);
        snprintf(body, sizeof body, "body %d", i);
        p = publish(g_ch, t_pat, "c-hist", id, body, &r);
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
        if (p) CU_ASSERT_EQUAL(p->message->seq, (uint64_t)i);
        tc_result_free(&r);
    }

    Parley__V1__GetMessageRequest gq = PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
    gq.room = "c-hist";
    gq.seq = 2;
    r = call(g_ch, H("GetMessage"), t_pat, &gq,
             &parley__v1__get_message_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_STRING_EQUAL(((Parley__V1__GetMessageResponse *)r.resp)->message->body,
                           "quinn's");
    tc_result_free(&r);
    gq.seq = 77;
    r = call(g_ch, H("GetMessage"), t_pat, &gq, NULL);
    expect_fail(&r, GRPC_STATUS_NOT_FOUND, "MESSAGE_NOT_FOUND");

    Parley__V1__EditMessageRequest eq = PARLEY__V1__EDIT_MESSAGE_REQUEST__INIT;
    eq.room = "c-hist";
    eq.seq = 1;
    eq.body = "first (edited)";
    r = call(g_ch, H("EditMessage"), t_pat, &eq,
             &parley__v1__edit_message_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    Parley__V1__Message *m = ((Parley__V1__EditMessageResponse *)r.resp)->message;
    CU_ASSERT_EQUAL(m->rev, 7);
    CU_ASSERT_EQUAL(m->seq, 1);
    CU_ASSERT_TRUE(m->edited_at_ms > 0);
    tc_result_free(&r);
    eq.seq = 2; /* quinn's message */
    r = call(g_ch, H("EditMessage"), t_pat, &eq, NULL);
    expect_fail(&r, GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED");
    r = call(g_ch, H("EditMessage"), t_org, &eq,
             &parley__v1__edit_message_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK); /* organizers may */
    tc_result_free(&r);

    Parley__V1__DeleteMessageRequest dq = PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
    dq.room = "c-hist";
    dq.seq = 3;
    r = call(g_ch, H("DeleteMessage"), t_quinn, &dq, NULL);
    expect_fail(&r, GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED");
    r = call(g_ch, H("DeleteMessage"), t_pat, &dq,
             &parley__v1__delete_message_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    m = ((Parley__V1__DeleteMessageResponse *)r.resp)->message;
    CU_ASSERT_TRUE(m->deleted);
    CU_ASSERT_STRING_EQUAL(m->body, "");
    CU_ASSERT_EQUAL(m->rev, 9);
    tc_result_free(&r);

    /* revs: 1..6 creates, 7 edit seq1, 8 edit seq2, 9 delete seq3 */
    Parley__V1__ListMessagesRequest lq = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    lq.room = "c-hist";
    lq.limit = 2;
    r = call(g_ch, H("ListMessages"), t_pat, &lq,
             &parley__v1__list_messages_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    Parley__V1__ListMessagesResponse *l = (void *)r.resp;
    CU_ASSERT_EQUAL_FATAL(l->n_messages, 2);
    CU_ASSERT_EQUAL(l->messages[0]->seq, 5);
    CU_ASSERT_EQUAL(l->messages[1]->seq, 6);
    CU_ASSERT_TRUE(l->has_more);
    CU_ASSERT_EQUAL(l->room->head_seq, 6);
    CU_ASSERT_EQUAL(l->room->head_rev, 9);
    tc_result_free(&r);
    lq.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_BEFORE_SEQ;
    lq.before_seq = 5;
    lq.limit = 10;
    r = call(g_ch, H("ListMessages"), t_pat, &lq,
             &parley__v1__list_messages_response__descriptor);
    l = (void *)r.resp;
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(l->n_messages, 4);
    CU_ASSERT_EQUAL(l->messages[0]->seq, 1);
    CU_ASSERT_EQUAL(l->messages[3]->seq, 4);
    CU_ASSERT_TRUE(l->messages[2]->deleted);
    CU_ASSERT_FALSE(l->has_more);
    tc_result_free(&r);
    lq.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
    lq.after_rev = 6;
    r = call(g_ch, H("ListMessages"), t_pat, &lq,
             &parley__v1__list_messages_response__descriptor);
    l = (void *)r.resp;
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(l->n_messages, 3);
    CU_ASSERT_EQUAL(l->messages[0]->rev, 7);
    CU_ASSERT_EQUAL(l->messages[0]->seq, 1);
    CU_ASSERT_EQUAL(l->messages[2]->rev, 9);
    CU_ASSERT_EQUAL(l->messages[2]->seq, 3);
    tc_result_free(&r);
    lq.limit = 1001;
    r = call(g_ch, H("ListMessages"), t_pat, &lq, NULL);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "BAD_CURSOR");
    lq.limit = 0;
    lq.room = "c-missing";
    r = call(g_ch, H("ListMessages"), t_pat, &lq, NULL);
    expect_fail(&r, GRPC_STATUS_NOT_FOUND, "ROOM_NOT_FOUND");
}

static void test_tokens(void) {
    Parley__V1__GetRoomRequest g = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    g.name = "lobby";
    tc_result r = call(g_ch, H("GetRoom"), NULL, &g, NULL);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED");
    char *bad = tc_token("pat", "participant", 600,
                         "some-other-secret-some-other-secret!");
    r = call(g_ch, H("GetRoom"), bad, &g, NULL);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED");
    free(bad);
    char *expired = tc_token("pat", "participant", -60, NULL);
    r = call(g_ch, H("GetRoom"), expired, &g, NULL);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "TOKEN_EXPIRED");
    free(expired);
    r = call(g_ch, H("GetRoom"), "not.a.jwt", &g, NULL);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED");
    publish(g_ch, NULL, "lobby", "x", "y", &r);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED");
    /* The same token works. */
    r = call(g_ch, H("GetRoom"), t_pat, &g, NULL);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);

    tc_stream *st = tc_stream_open(g_ch, S("Connect"), NULL);
    Parley__V1__ServerFrame *f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NULL(f);
    free_frame(f);
    grpc_status_code code;
    CU_ASSERT_EQUAL(tc_stream_status(st, 10000, &code, NULL, 0), 0);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_UNAUTHENTICATED);
    tc_stream_free(st);
}

static void test_malformed(void) {
    static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    tc_result r;
    CU_ASSERT_EQUAL(tc_unary(g_ch, H("ListMessages"), t_pat, NULL, junk,
                             sizeof junk, NULL, &r), 0);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "MALFORMED");
    CU_ASSERT_EQUAL(tc_unary(g_ch, S("Publish"), t_pat, NULL, junk, 2, NULL, &r), 0);
    expect_fail(&r, GRPC_STATUS_INVALID_ARGUMENT, "MALFORMED");
    /* the server goes on */
    Parley__V1__GetRoomRequest g = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    g.name = "lobby";
    r = call(g_ch, H("GetRoom"), t_pat, &g,
             &parley__v1__get_room_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL(r.resp);
    tc_result_free(&r);
    CU_ASSERT_EQUAL(tc_unary(g_ch, "/parley.v1.History/Nope", t_pat, NULL, "", 0,
                             NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_UNIMPLEMENTED);
    tc_result_free(&r);

    /* on a stream: an error frame, and the stream goes on */
    tc_stream *st = tc_stream_open(g_ch, S("Connect"), t_pat);
    CU_ASSERT_EQUAL(tc_stream_send_raw(st, junk, sizeof junk), 0);
    Parley__V1__ServerFrame *f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ERROR);
    CU_ASSERT_EQUAL(f->error->code, PARLEY__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    CU_ASSERT_FALSE(f->error->fatal);
    free_frame(f);
    Parley__V1__Ping pg = PARLEY__V1__PING__INIT;
    pg.nonce = 99;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.request_id = 5;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PING;
    cf.ping = &pg;
    CU_ASSERT_EQUAL(tc_stream_send(st, &cf.base), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_PONG);
    CU_ASSERT_EQUAL(f->request_id, 5);
    CU_ASSERT_EQUAL(f->pong->nonce, 99);
    free_frame(f);
    tc_stream_free(st);
}

/* ---------- Connect ---------- */

static void test_connect(void) {
    create_room("c-conn");
    tc_result r;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "pre-%d", i);
        publish(g_ch, t_quinn, "c-conn", id, "before", &r);
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
        tc_result_free(&r);
    }
    tc_stream *st = tc_stream_open(g_ch, S("Connect"), t_pat);
    CU_ASSERT_EQUAL(send_subscribe(st, 1, "c-conn", 1), 0);
    Parley__V1__ServerFrame *f;
    uint64_t want = 2;
    while ((f = recv_frame(st, 10000)) &&
           f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
        CU_ASSERT_TRUE(f->event->replay);
        CU_ASSERT_EQUAL(f->event->message->rev, want);
        CU_ASSERT_EQUAL(f->event->type, PARLEY__V1__EVENT_TYPE__EVENT_TYPE_CREATED);
        want++;
        free_frame(f);
    }
    CU_ASSERT_EQUAL(want, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    CU_ASSERT_EQUAL(f->request_id, 1);
    CU_ASSERT_EQUAL(f->subscribed->room->head_rev, 3);
    free_frame(f);

    /* live: a publish by someone else */
    publish(g_ch, t_quinn, "c-conn", "live-1", "live", &r);
    tc_result_free(&r);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_EVENT);
    CU_ASSERT_FALSE(f->event->replay);
    CU_ASSERT_EQUAL(f->event->message->rev, 4);
    free_frame(f);

    /* publish on the stream: ack (request id echoed), then the event */
    CU_ASSERT_EQUAL(send_publish(st, 7, "c-conn", "s-1", "from the stream"), 0);
    int got_ack = 0, got_ev = 0;
    for (int i = 0; i < 2; i++) {
        f = recv_frame(st, 10000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK) {
            got_ack = 1;
            CU_ASSERT_EQUAL(f->request_id, 7);
            CU_ASSERT_STRING_EQUAL(f->ack->client_msg_id, "s-1");
            CU_ASSERT_EQUAL(f->ack->message->seq, 5);
            CU_ASSERT_FALSE(f->ack->duplicate);
        } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
            got_ev = 1;
            CU_ASSERT_EQUAL(f->event->message->rev, 5);
        }
        free_frame(f);
    }
    CU_ASSERT_TRUE(got_ack && got_ev);
    CU_ASSERT_EQUAL(send_publish(st, 8, "c-conn", "s-1", "again"), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ACK);
    CU_ASSERT_TRUE(f->ack->duplicate);
    CU_ASSERT_EQUAL(f->ack->message->seq, 5);
    CU_ASSERT_EQUAL(f->request_id, 8);
    free_frame(f);

    /* errors on the stream do not end it */
    CU_ASSERT_EQUAL(send_subscribe(st, 9, "c-nowhere", 0), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ERROR);
    CU_ASSERT_EQUAL(f->request_id, 9);
    CU_ASSERT_EQUAL(f->error->code, PARLEY__V1__ERROR_CODE__ERROR_CODE_ROOM_NOT_FOUND);
    free_frame(f);
    CU_ASSERT_EQUAL(send_publish(st, 10, "c-nowhere", "z", "b"), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ERROR);
    CU_ASSERT_EQUAL(f->request_id, 10);
    CU_ASSERT_EQUAL(f->error->code, PARLEY__V1__ERROR_CODE__ERROR_CODE_ROOM_NOT_FOUND);
    free_frame(f);

    /* edits and deletes fan out */
    Parley__V1__EditMessageRequest eq = PARLEY__V1__EDIT_MESSAGE_REQUEST__INIT;
    eq.room = "c-conn";
    eq.seq = 5;
    eq.body = "edited";
    r = call(g_ch, H("EditMessage"), t_pat, &eq, NULL);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->event->type, PARLEY__V1__EVENT_TYPE__EVENT_TYPE_EDITED);
    CU_ASSERT_EQUAL(f->event->message->rev, 6);
    CU_ASSERT_STRING_EQUAL(f->event->message->body, "edited");
    free_frame(f);
    Parley__V1__DeleteMessageRequest dq = PARLEY__V1__DELETE_MESSAGE_REQUEST__INIT;
    dq.room = "c-conn";
    dq.seq = 1;
    r = call(g_ch, H("DeleteMessage"), t_org, &dq, NULL);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->event->type, PARLEY__V1__EVENT_TYPE__EVENT_TYPE_DELETED);
    CU_ASSERT_EQUAL(f->event->message->seq, 1);
    CU_ASSERT_TRUE(f->event->message->deleted);
    free_frame(f);
    /* An organizer deleted another's message: a moderation action, told
     * to the room after the deletion itself. */
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ROOM_EVENT);
    CU_ASSERT_EQUAL(f->room_event->action->kind,
                    PARLEY__V1__ACTION_KIND__ACTION_KIND_DELETE_MESSAGE);
    CU_ASSERT_EQUAL(f->room_event->action->seq, 1);
    CU_ASSERT_STRING_EQUAL(f->room_event->action->actor->id, "olga");
    free_frame(f);

    /* unsubscribe: no more events */
    Parley__V1__Unsubscribe us = PARLEY__V1__UNSUBSCRIBE__INIT;
    us.room = "c-conn";
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.request_id = 11;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_UNSUBSCRIBE;
    cf.unsubscribe = &us;
    CU_ASSERT_EQUAL(tc_stream_send(st, &cf.base), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_UNSUBSCRIBED);
    free_frame(f);
    publish(g_ch, t_quinn, "c-conn", "after-unsub", "quiet", &r);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);
    /* The publish was answered, so its event (had it been fanned out to
     * this stream) is queued already: the next frame must be the Pong. */
    Parley__V1__Ping pg = PARLEY__V1__PING__INIT;
    pg.nonce = 12;
    Parley__V1__ClientFrame pf = PARLEY__V1__CLIENT_FRAME__INIT;
    pf.request_id = 12;
    pf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PING;
    pf.ping = &pg;
    CU_ASSERT_EQUAL(tc_stream_send(st, &pf.base), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_PONG);
    CU_ASSERT_EQUAL(f->request_id, 12);
    free_frame(f);
    /* half-close with no subscriptions: the server ends the stream OK */
    CU_ASSERT_EQUAL(tc_stream_close_send(st), 0);
    f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NULL(f);
    grpc_status_code code;
    CU_ASSERT_EQUAL(tc_stream_status(st, 10000, &code, NULL, 0), 0);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_OK);
    tc_stream_free(st);
}

/* Replay of a big backlog while another client keeps publishing: the
 * subscriber must see every rev exactly once, in order, with Subscribed
 * exactly at the replay/live boundary. The publisher is a separate process
 * (this binary with --publisher), as a real other client would be: in one
 * process, grpc's client threads would also serve the subscriber's socket.
 *
 * Synchronised on events, not on time or disk speed: the subscriber reads
 * the first replayed event (the replay is under way) and then nothing more;
 * its stream window is fixed at 64 KB (tc_channel_small_window) and the
 * server's send queue holds far less than the 10 MB backlog, so the server
 * cannot finish the replay. Only then does the publisher start; once its
 * first RACE_A publishes are acked (committed while the replay is stuck),
 * the subscriber reads on while the publisher goes on with RACE_B more. */
enum { RACE_BACKLOG = 5000, RACE_A = 200, RACE_B = 1000 };

static pid_t spawn_publisher(const char *addr, int *ready_fd) {
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl("/proc/self/exe", "test_server", "--publisher", addr, "c-race",
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *ready_fd = pfd[0];
    return pid;
}

/* test_server --publisher ADDR ROOM: publishes RACE_A messages, prints
 * "a-done" once they are all acked, then RACE_B more; exit 0 when every
 * one was acked. */
static int publisher_main(const char *addr, const char *room) {
    grpc_init();
    char *tok = tc_token("quinn", "participant", 3600, NULL);
    grpc_channel *ch = tc_channel(addr);
    int acked = stream_publish_many(ch, tok, room, "live-a", RACE_A, 8,
                                    "committed while the replay is stuck");
    printf("a-done %d\n", acked);
    fflush(stdout);
    acked += stream_publish_many(ch, tok, room, "live-b", RACE_B, 4,
                                 "published while the subscriber catches up");
    grpc_channel_destroy(ch);
    free(tok);
    grpc_shutdown();
    return acked == RACE_A + RACE_B ? 0 : 1;
}

static void test_replay_races_publishes(void) {
    enum { TOTAL = RACE_BACKLOG + RACE_A + RACE_B, AFTER = 3 };
    create_room("c-race");
    /* 2 KB bodies: a 10 MB backlog. */
    static char big[2001];
    memset(big, 'r', 2000);
    CU_ASSERT_EQUAL_FATAL(stream_publish_many(g_ch, t_pat, "c-race", "old",
                                              RACE_BACKLOG, 256, big),
                          RACE_BACKLOG);
    grpc_channel *ch = tc_channel_small_window(g_srv.addr);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_org);
    CU_ASSERT_EQUAL(send_subscribe(st, 1, "c-race", 0), 0);
    /* The replay has started: its first event is here. */
    Parley__V1__ServerFrame *f = recv_frame(st, 20000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_EVENT);
    CU_ASSERT_EQUAL(f->event->message->rev, 1);
    CU_ASSERT_TRUE(f->event->replay);
    free_frame(f);
    uint64_t next = 2, head = 0;
    int subscribed = 0, bad_order = 0, bad_flag = 0;

    int ready_fd = -1;
    pid_t pub = spawn_publisher(g_srv.addr, &ready_fd);
    CU_ASSERT_FATAL(pub > 0);
    char line[32] = "";
    FILE *rf = fdopen(ready_fd, "r");
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, rf));
    fclose(rf);
    CU_ASSERT_STRING_EQUAL(line, "a-done 200\n");

    /* Read on while phase B is published; stop once Subscribed and every
     * event of the backlog and both phases are in. */
    while (!subscribed || next <= TOTAL) {
        f = recv_frame(st, 20000);
        if (!f) break;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
            subscribed++;
            head = f->subscribed->room->head_rev;
            if (head != next - 1) bad_order++;
        } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
            if (f->event->message->rev != next) bad_order++;
            if ((int)f->event->replay != !subscribed) bad_flag++;
            next = f->event->message->rev + 1;
        } else {
            bad_order++;
        }
        free_frame(f);
    }
    int pst = -1;
    waitpid(pub, &pst, 0);
    fprintf(stderr, "  replay/live boundary at rev %llu of %d\n",
            (unsigned long long)head, TOTAL);
    CU_ASSERT_TRUE(WIFEXITED(pst) && WEXITSTATUS(pst) == 0); /* all acked */
    CU_ASSERT_EQUAL(subscribed, 1);
    CU_ASSERT_EQUAL(bad_order, 0);
    CU_ASSERT_EQUAL(bad_flag, 0);
    CU_ASSERT_EQUAL(next, TOTAL + 1);
    /* Phase A was committed while the replay could not have ended. */
    CU_ASSERT_TRUE(head >= RACE_BACKLOG + RACE_A);

    /* After Subscribed: live events, in order, flagged live. */
    for (int i = 0; i < AFTER; i++) {
        char id[16];
        tc_result r;
        snprintf(id, sizeof id, "after-%d", i);
        publish(g_ch, t_pat, "c-race", id, "after the handover", &r);
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
        tc_result_free(&r);
        f = recv_frame(st, 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_EVENT);
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
            CU_ASSERT_EQUAL(f->event->message->rev, (uint64_t)TOTAL + 1 + i);
            CU_ASSERT_FALSE(f->event->replay);
        }
        free_frame(f);
    }
    tc_stream_free(st);
    grpc_channel_destroy(ch);
}

/* ---------- batches and shared streams ---------- */

/* Frames read from a stream with batches on: a ServerFrame{batch} is
 * flattened into its frames, in order; the outer messages are kept to be
 * freed at the end. */
typedef struct flat_reader {
    tc_stream *st;
    Parley__V1__ServerFrame *outer[4096];
    size_t n_outer;
    Parley__V1__ServerFrame **q;
    size_t q_head, q_len, q_cap;
    size_t batches, batched_frames; /* how many came inside a batch */
} flat_reader;

static Parley__V1__ServerFrame *flat_next(flat_reader *r, int ms) {
    while (r->q_head == r->q_len) {
        Parley__V1__ServerFrame *f = recv_frame(r->st, ms);
        if (!f) return NULL;
        CU_ASSERT_FATAL(r->n_outer < 4096);
        r->outer[r->n_outer++] = f;
        size_t n = f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_BATCH
                       ? f->batch->n_frames
                       : 1;
        if (r->q_len + n > r->q_cap) {
            r->q_cap = (r->q_len + n) * 2;
            r->q = realloc(r->q, r->q_cap * sizeof *r->q);
        }
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_BATCH) {
            r->batches++;
            r->batched_frames += n;
            for (size_t i = 0; i < n; i++) {
                /* never nested */
                CU_ASSERT_NOT_EQUAL(f->batch->frames[i]->kind_case,
                                    PARLEY__V1__SERVER_FRAME__KIND_BATCH);
                r->q[r->q_len++] = f->batch->frames[i];
            }
        } else {
            r->q[r->q_len++] = f;
        }
    }
    return r->q[r->q_head++];
}

static void flat_free(flat_reader *r) {
    for (size_t i = 0; i < r->n_outer; i++) free_frame(r->outer[i]);
    free(r->q);
}

static int send_options(tc_stream *st, uint64_t rid, int batch) {
    Parley__V1__SessionOptions o = PARLEY__V1__SESSION_OPTIONS__INIT;
    o.batch = batch;
    Parley__V1__ClientFrame f = PARLEY__V1__CLIENT_FRAME__INIT;
    f.request_id = rid;
    f.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_OPTIONS;
    f.options = &o;
    return tc_stream_send(st, &f.base);
}

/* With SessionOptions.batch the server sends what queues up behind one
 * send as ServerFrame{batch}; a replay of 2,000 events racing live
 * publishes still arrives as every rev once, in order, replay flags right,
 * Subscribed at the boundary. */
static void test_batches_replay_then_live(void) {
    enum { BACKLOG = 2000, LIVE = 300 };
    create_room("c-batch");
    CU_ASSERT_EQUAL_FATAL(stream_publish_many(g_ch, t_pat, "c-batch", "old",
                                              BACKLOG, 256, "backlog"),
                          BACKLOG);
    grpc_channel *ch = tc_channel(g_srv.addr);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_org);
    CU_ASSERT_EQUAL(send_options(st, 1, 1), 0);
    Parley__V1__ServerFrame *f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_OPTIONS);
    CU_ASSERT_EQUAL(f->request_id, 1);
    CU_ASSERT_TRUE(f->options->batch);
    free_frame(f);
    CU_ASSERT_EQUAL(send_subscribe(st, 2, "c-batch", 0), 0);
    /* live publishes from another stream while the replay runs */
    tc_stream *pub = tc_stream_open(g_ch, S("Connect"), t_quinn);
    for (int i = 0; i < LIVE; i++) {
        char id[32];
        snprintf(id, sizeof id, "live-%d", i);
        CU_ASSERT_EQUAL(send_publish(pub, (uint64_t)i + 1, "c-batch", id, "live"),
                        0);
    }
    flat_reader r = {.st = st};
    uint64_t next = 1;
    int subscribed = 0, bad_order = 0, bad_flag = 0;
    while (next <= BACKLOG + LIVE) {
        Parley__V1__ServerFrame *g = flat_next(&r, 20000);
        if (!g) break;
        if (g->kind_case == PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED) {
            subscribed++;
            CU_ASSERT_EQUAL(g->request_id, 2);
            if (g->subscribed->room->head_rev != next - 1) bad_order++;
        } else if (g->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
            if (g->event->message->rev != next) bad_order++;
            if ((int)g->event->replay != !subscribed) bad_flag++;
            next = g->event->message->rev + 1;
        }
    }
    CU_ASSERT_EQUAL(subscribed, 1);
    CU_ASSERT_EQUAL(bad_order, 0);
    CU_ASSERT_EQUAL(bad_flag, 0);
    CU_ASSERT_EQUAL(next, BACKLOG + LIVE + 1);
    /* the replay pages went out merged, far fewer messages than frames */
    CU_ASSERT_TRUE(r.batches > 0);
    CU_ASSERT_TRUE(r.batched_frames > r.batches * 4);
    fprintf(stderr, "  %zu frames came in %zu batches\n", r.batched_frames,
            r.batches);
    flat_free(&r);
    tc_stream_free(pub);
    tc_stream_free(st);
    grpc_channel_destroy(ch);
}

/* A stream that carries many users: each publish with user_token is stored
 * as that token's user; a token that does not verify is refused and stores
 * nothing; a ClientFrame{batch} is handled frame by frame, in order. */
static void test_shared_stream_user_token(void) {
    create_room("c-shared");
    tc_stream *st = tc_stream_open(g_ch, S("Connect"), t_org);
    Parley__V1__PublishRequest p[3];
    Parley__V1__ClientFrame inner[3], *inner_p[3];
    const char *ids[3] = {"u-1", "u-2", "u-3"};
    const char *toks[3] = {t_pat, "not-a-token", t_quinn};
    for (int i = 0; i < 3; i++) {
        parley__v1__publish_request__init(&p[i]);
        p[i].room = "c-shared";
        p[i].client_msg_id = (char *)ids[i];
        p[i].body = "shared";
        parley__v1__client_frame__init(&inner[i]);
        inner[i].request_id = 10 + (uint64_t)i;
        inner[i].kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PUBLISH;
        inner[i].publish = &p[i];
        inner[i].user_token = (char *)toks[i];
        inner_p[i] = &inner[i];
    }
    Parley__V1__ClientBatch cb = PARLEY__V1__CLIENT_BATCH__INIT;
    cb.n_frames = 3;
    cb.frames = inner_p;
    Parley__V1__ClientFrame outer = PARLEY__V1__CLIENT_FRAME__INIT;
    outer.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_BATCH;
    outer.batch = &cb;
    CU_ASSERT_EQUAL(tc_stream_send(st, &outer.base), 0);
    /* batches are off on this stream: three frames, one by one; the
     * refusal comes at once, the acks after the commit */
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        Parley__V1__ServerFrame *f = recv_frame(st, 10000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_NOT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_BATCH);
        if (f->request_id == 11) {
            CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ERROR);
            CU_ASSERT_EQUAL(f->error->code,
                            PARLEY__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED);
            seen[1]++;
        } else {
            CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ACK);
            int i2 = f->request_id == 10 ? 0 : 2;
            CU_ASSERT_EQUAL(f->request_id, 10 + (uint64_t)i2);
            CU_ASSERT_STRING_EQUAL(f->ack->message->author->id,
                                   i2 == 0 ? "pat" : "quinn");
            seen[i2]++;
        }
        free_frame(f);
    }
    CU_ASSERT_TRUE(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    /* nothing was stored for the refused one: two messages in the room */
    Parley__V1__ListMessagesRequest lq = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    lq.room = "c-shared";
    tc_result r = call(g_ch, H("ListMessages"), t_org, &lq,
                       &parley__v1__list_messages_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    Parley__V1__ListMessagesResponse *lr =
        (Parley__V1__ListMessagesResponse *)r.resp;
    CU_ASSERT_EQUAL(lr->n_messages, 2);
    tc_result_free(&r);
    /* a batch inside a batch is refused */
    Parley__V1__ClientFrame *nest_p[1] = {&outer};
    Parley__V1__ClientBatch nb = PARLEY__V1__CLIENT_BATCH__INIT;
    nb.n_frames = 1;
    nb.frames = nest_p;
    Parley__V1__ClientFrame nest = PARLEY__V1__CLIENT_FRAME__INIT;
    nest.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_BATCH;
    nest.batch = &nb;
    outer.request_id = 77;
    CU_ASSERT_EQUAL(tc_stream_send(st, &nest.base), 0);
    Parley__V1__ServerFrame *f = recv_frame(st, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_ERROR);
    CU_ASSERT_EQUAL(f->request_id, 77);
    CU_ASSERT_EQUAL(f->error->code, PARLEY__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
    free_frame(f);
    tc_stream_free(st);
}

/* ---------- slow consumer ---------- */

typedef struct fast_reader {
    tc_stream *st;
    int want, got, in_order;
} fast_reader;

static void *fast_read(void *arg) {
    fast_reader *fr = arg;
    uint64_t last = 0;
    fr->in_order = 1;
    while (fr->got < fr->want) {
        Parley__V1__ServerFrame *f = recv_frame(fr->st, 20000);
        if (!f) break;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT) {
            if (f->event->message->rev != last + 1) fr->in_order = 0;
            last = f->event->message->rev;
            fr->got++;
        }
        free_frame(f);
    }
    return NULL;
}

static void test_slow_consumer(void) {
    enum { N = 2000 };
    tc_server s;
    const char *extra[] = {"--max-queue", "256", "--rooms", "slow", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch_slow = tc_channel(s.addr), *ch_fast = tc_channel(s.addr),
                 *ch_pub = tc_channel(s.addr);
    tc_stream *slow = tc_stream_open(ch_slow, S("Connect"), t_pat);
    tc_stream *fast = tc_stream_open(ch_fast, S("Connect"), t_quinn);
    send_subscribe(slow, 1, "slow", 0);
    send_subscribe(fast, 1, "slow", 0);
    Parley__V1__ServerFrame *f = recv_frame(slow, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    free_frame(f);
    f = recv_frame(fast, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    free_frame(f);

    fast_reader fr = {fast, N, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, fast_read, &fr);
    char body[4001];
    memset(body, 'x', 4000);
    body[4000] = 0;
    /* 2000 x 4 KB: far more than the slow stream's windows and queue. */
    int acked = stream_publish_many(ch_pub, t_org, "slow", "flood", N, 16, body);
    pthread_join(th, NULL);
    if (fr.got != N) {
        grpc_status_code fc = GRPC_STATUS_OK;
        char fd[256] = "";
        tc_stream_status(fast, 1000, &fc, fd, sizeof fd);
        fprintf(stderr, "  fast subscriber got %d of %d, status %d (%s)\n",
                fr.got, N, fc, fd);
    }
    CU_ASSERT_EQUAL(acked, N);
    CU_ASSERT_EQUAL(fr.got, N);
    CU_ASSERT_TRUE(fr.in_order);

    /* The slow stream was cut: drain what reached it, then the status. */
    int slow_got = 0;
    while ((f = recv_frame(slow, 10000)) != NULL) {
        slow_got++;
        free_frame(f);
    }
    grpc_status_code code = GRPC_STATUS_OK;
    char details[256] = "";
    CU_ASSERT_EQUAL(tc_stream_status(slow, 10000, &code, details, sizeof details), 0);
    fprintf(stderr, "  slow consumer got %d of %d events, then %d (%s)\n",
            slow_got, N, code, details);
    CU_ASSERT_EQUAL(code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(details, "too slow"));
    CU_ASSERT_TRUE(slow_got < N);
    tc_stream_free(slow);
    tc_stream_free(fast);
    grpc_channel_destroy(ch_slow);
    grpc_channel_destroy(ch_fast);
    grpc_channel_destroy(ch_pub);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    tc_server_cleanup(&s);
}

/* The same flood with a service's stream (a gateway's shared link) as the
 * slow reader: it may queue SRV_SERVICE_QUEUE_FACTOR (16) times
 * --max-queue, so a stall that cuts a user's stream (above, the same
 * queue and flood) leaves it whole: it gets all N, in order, once it
 * reads. */
static void test_slow_service_link(void) {
    enum { N = 2000 };
    tc_server s;
    const char *extra[] = {"--max-queue", "256", "--rooms", "slow", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    char *svc = tc_service_token("gateway", 3600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(svc);
    grpc_channel *ch_svc = tc_channel(s.addr), *ch_pub = tc_channel(s.addr);
    tc_stream *link = tc_stream_open(ch_svc, S("Connect"), svc);
    send_subscribe(link, 1, "slow", 0);
    Parley__V1__ServerFrame *f = recv_frame(link, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    free_frame(f);
    char body[4001];
    memset(body, 'x', 4000);
    body[4000] = 0;
    /* Nobody reads the link while all N are published and acked. */
    int acked = stream_publish_many(ch_pub, t_org, "slow", "flood", N, 16, body);
    CU_ASSERT_EQUAL(acked, N);
    fast_reader fr = {link, N, 0, 1};
    fast_read(&fr);
    CU_ASSERT_EQUAL(fr.got, N);
    CU_ASSERT_TRUE(fr.in_order);
    tc_stream_free(link);
    grpc_channel_destroy(ch_svc);
    grpc_channel_destroy(ch_pub);
    free(svc);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
}

/* A replay far bigger than the send queue is paced by the queue, never cut. */
static void test_replay_small_queue(void) {
    enum { N = 700 };
    tc_server s;
    const char *extra[] = {"--max-queue", "16", "--rooms", "big", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch = tc_channel(s.addr);
    CU_ASSERT_EQUAL(stream_publish_many(ch, t_pat, "big", "b", N, 8, "backlog"), N);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_quinn);
    CU_ASSERT_EQUAL(send_subscribe(st, 1, "big", 0), 0);
    uint64_t next = 1;
    int subscribed = 0;
    Parley__V1__ServerFrame *f;
    while (!subscribed && (f = recv_frame(st, 10000)) != NULL) {
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_EVENT &&
            f->event->message->rev == next)
            next++;
        else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED)
            subscribed = 1;
        free_frame(f);
    }
    CU_ASSERT_TRUE(subscribed);
    CU_ASSERT_EQUAL(next, N + 1);
    tc_stream_free(st);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    tc_server_cleanup(&s);
}

/* ---------- durability ---------- */

static void test_restart_after_sigkill(void) {
    tc_server s;
    const char *extra[] = {"--rooms", "durable", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch = tc_channel(s.addr);
    tc_result r;
    Parley__V1__PublishResponse *p =
        publish(ch, t_pat, "durable", "keep-me", "survives kill -9", &r);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    uint64_t seq = p->message->seq;
    tc_result_free(&r);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 1), 128 + 9);

    tc_server s2;
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s2, g_bin, s.dir, extra), 0);
    ch = tc_channel(s2.addr);
    Parley__V1__GetMessageRequest gq = PARLEY__V1__GET_MESSAGE_REQUEST__INIT;
    gq.room = "durable";
    gq.seq = seq;
    r = call(ch, H("GetMessage"), t_quinn, &gq,
             &parley__v1__get_message_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    if (r.resp) {
        Parley__V1__Message *m = ((Parley__V1__GetMessageResponse *)r.resp)->message;
        CU_ASSERT_STRING_EQUAL(m->body, "survives kill -9");
        CU_ASSERT_STRING_EQUAL(m->client_msg_id, "keep-me");
    }
    tc_result_free(&r);
    /* and the idempotency key survived too */
    p = publish(ch, t_pat, "durable", "keep-me", "again", &r);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    if (p) CU_ASSERT_TRUE(p->duplicate);
    tc_result_free(&r);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s2, 0), 0);
    tc_server_cleanup(&s2);
}

/* SIGTERM while publishes stream in: parleyd stops reading, commits and acks
 * what it read, exits 0; after a restart the database holds exactly the
 * acked publishes. */
static void test_sigterm_keeps_acked(void) {
    tc_server s;
    const char *extra[] = {"--rooms", "term", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    grpc_channel *ch = tc_channel(s.addr);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_pat);
    int sent = 0, acked = 0, termed = 0, errors = 0;
    uint64_t max_seq = 0;
    char id[32];
    for (;;) {
        while (sent < 100000 && sent - acked - errors < 32) {
            snprintf(id, sizeof id, "t-%d", sent);
            if (send_publish(st, (uint64_t)sent + 1, "term", id, "body")) break;
            sent++;
        }
        ProtobufCMessage *m = NULL;
        int got = tc_stream_recv(st, &parley__v1__server_frame__descriptor,
                                 10000, &m);
        if (got != 1) { /* the stream ended (server going down), not a timeout */
            CU_ASSERT_EQUAL(got, 0);
            break;
        }
        Parley__V1__ServerFrame *f = (Parley__V1__ServerFrame *)m;
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK) {
            acked++;
            if (f->ack->message->seq > max_seq) max_seq = f->ack->message->seq;
        } else {
            errors++;
        }
        free_frame(f);
        if (acked == 200 && !termed) {
            kill(s.pid, SIGTERM);
            termed = 1;
        }
    }
    tc_stream_free(st);
    grpc_channel_destroy(ch);
    CU_ASSERT_TRUE(termed);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);

    tc_server s2;
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s2, g_bin, s.dir, extra), 0);
    ch = tc_channel(s2.addr);
    Parley__V1__GetRoomRequest g = PARLEY__V1__GET_ROOM_REQUEST__INIT;
    g.name = "term";
    tc_result r = call(ch, H("GetRoom"), t_pat, &g,
                       &parley__v1__get_room_response__descriptor);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    if (r.resp) {
        uint64_t head = ((Parley__V1__GetRoomResponse *)r.resp)->room->head_seq;
        fprintf(stderr, "  %d acked before the stream ended, %llu stored\n",
                acked, (unsigned long long)head);
        CU_ASSERT_TRUE(head >= max_seq); /* every ack is durable */
        /* and every stored publish was acked before the stream ended */
        CU_ASSERT_EQUAL(head, (uint64_t)acked);
    }
    tc_result_free(&r);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s2, 0), 0);
    tc_server_cleanup(&s2);
}

/* ---------- a commit that fails ---------- */

/* A real full disk under parleyd (RLIMIT_FSIZE, see tc_server_opts): three
 * publishers keep publishing on Connect streams while a fourth client
 * watches the room, until the commits start failing. Then: each publish got
 * exactly one answer; every refused one is INTERNAL "storage failure; retry"
 * (not fatal) and reached each of the publishers; the watcher received an
 * event for each acked publish and for nothing else; and after a restart
 * without the limit, the database holds exactly the acked publishes, the
 * refused ones are stored on retry as new messages (never stored before)
 * and an acked one is a duplicate. */
enum { CF_PUBS = 3, CF_WINDOW = 8, CF_ROUNDS = 100,
       CF_MAX = CF_WINDOW * CF_ROUNDS };
enum { CF_NONE, CF_ACKED, CF_REFUSED };

static unsigned char cf_out[CF_PUBS][CF_MAX], cf_seen[CF_PUBS][CF_MAX];

/* "w<p>-<i>" by author "cf<p>" -> p, i; -1 if it is not one of ours. */
static int cf_parse(const char *author, const char *id, int *p, int *i) {
    int a, b, c;
    if (sscanf(author, "cf%d", &a) != 1 || sscanf(id, "w%d-%d", &b, &c) != 2 ||
        a != b || a < 0 || a >= CF_PUBS || c < 0 || c >= CF_MAX)
        return -1;
    *p = a;
    *i = c;
    return 0;
}

static void test_commit_failure(void) {
    static char body[1001];
    memset(body, 'f', 1000);
    memset(cf_out, 0, sizeof cf_out);
    memset(cf_seen, 0, sizeof cf_seen);
    tc_server s;
    const char *extra[] = {"--rooms", "cf", NULL};
    tc_server_opts o = {.fsize_limit = 1024 * 1024};
    CU_ASSERT_EQUAL_FATAL(tc_server_start_opts(&s, g_bin, NULL, extra, &o), 0);
    grpc_channel *ch = tc_channel(s.addr);
    char *tok[CF_PUBS];
    tc_stream *pub[CF_PUBS];
    for (int p = 0; p < CF_PUBS; p++) {
        char sub[8];
        snprintf(sub, sizeof sub, "cf%d", p);
        tok[p] = tc_token(sub, "participant", 3600, NULL);
        pub[p] = tc_stream_open(ch, S("Connect"), tok[p]);
    }
    tc_stream *watch = tc_stream_open(ch, S("Connect"), t_org);
    CU_ASSERT_EQUAL(send_subscribe(watch, 1, "cf", 0), 0);
    Parley__V1__ServerFrame *f = recv_frame(watch, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    free_frame(f);

    int acked = 0, refused = 0, bad = 0, rounds = 0;
    int refused_by[CF_PUBS] = {0};
    while (rounds < CF_ROUNDS) {
        int all = 1;
        for (int p = 0; p < CF_PUBS; p++) all = all && refused_by[p];
        if (all) break;
        for (int p = 0; p < CF_PUBS; p++)
            for (int k = 0; k < CF_WINDOW; k++) {
                int i = rounds * CF_WINDOW + k;
                char id[32];
                snprintf(id, sizeof id, "w%d-%d", p, i);
                CU_ASSERT_EQUAL(send_publish(pub[p], (uint64_t)i + 1, "cf", id, body), 0);
            }
        for (int p = 0; p < CF_PUBS; p++)
            for (int k = 0; k < CF_WINDOW; k++) {
                f = recv_frame(pub[p], 20000);
                CU_ASSERT_PTR_NOT_NULL_FATAL(f);
                int i = (int)f->request_id - 1;
                if (i < rounds * CF_WINDOW || i >= (rounds + 1) * CF_WINDOW ||
                    cf_out[p][i] != CF_NONE) {
                    bad++; /* an answer to nothing, or a second answer */
                } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK &&
                           !f->ack->duplicate) {
                    cf_out[p][i] = CF_ACKED;
                    acked++;
                } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR &&
                           f->error->code == PARLEY__V1__ERROR_CODE__ERROR_CODE_INTERNAL &&
                           !f->error->fatal &&
                           !strcmp(f->error->detail, "storage failure; retry")) {
                    cf_out[p][i] = CF_REFUSED;
                    refused++;
                    refused_by[p]++;
                } else {
                    bad++;
                }
                free_frame(f);
            }
        rounds++;
    }
    fprintf(stderr, "  %d acked, %d refused (by publisher %d/%d/%d) in %d rounds\n",
            acked, refused, refused_by[0], refused_by[1], refused_by[2], rounds);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(acked > 0);
    for (int p = 0; p < CF_PUBS; p++) CU_ASSERT_TRUE(refused_by[p] > 0);

    /* The unary path on a full disk: acked (a small commit may still fit)
     * or refused the same way; either is checked below. */
    tc_result r;
    publish(ch, tok[0], "cf", "w0-799", body, &r);
    if (r.status == GRPC_STATUS_OK) {
        cf_out[0][CF_MAX - 1] = CF_ACKED;
        acked++;
    } else {
        CU_ASSERT_EQUAL(r.status, GRPC_STATUS_INTERNAL);
        CU_ASSERT_STRING_EQUAL(r.parley_code, "INTERNAL");
        CU_ASSERT_STRING_EQUAL(r.details, "storage failure; retry");
        cf_out[0][CF_MAX - 1] = CF_REFUSED;
    }
    tc_result_free(&r);

    /* Everything fanned out left before the Pong: events are queued in the
     * flush that answers their publishes, and every publish is answered. */
    Parley__V1__Ping pg = PARLEY__V1__PING__INIT;
    pg.nonce = 4242;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.request_id = 2;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PING;
    cf.ping = &pg;
    CU_ASSERT_EQUAL(tc_stream_send(watch, &cf.base), 0);
    int events = 0, bad_events = 0;
    uint64_t last_rev = 0;
    for (;;) {
        f = recv_frame(watch, 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_PONG) {
            CU_ASSERT_EQUAL(f->pong->nonce, 4242);
            free_frame(f);
            break;
        }
        int p, i;
        if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_EVENT ||
            cf_parse(f->event->message->author->id,
                     f->event->message->client_msg_id, &p, &i) < 0 ||
            cf_out[p][i] != CF_ACKED || cf_seen[p][i] ||
            f->event->message->rev <= last_rev) {
            bad_events++;
        } else {
            cf_seen[p][i] = 1;
            last_rev = f->event->message->rev;
            events++;
        }
        free_frame(f);
    }
    CU_ASSERT_EQUAL(bad_events, 0);
    CU_ASSERT_EQUAL(events, acked);
    for (int p = 0; p < CF_PUBS; p++) tc_stream_free(pub[p]);
    tc_stream_free(watch);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);

    /* The same database without the limit. */
    tc_server s2;
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s2, g_bin, s.dir, extra), 0);
    ch = tc_channel(s2.addr);
    memset(cf_seen, 0, sizeof cf_seen);
    int stored = 0, bad_rows = 0;
    uint64_t after = 0;
    for (;;) {
        Parley__V1__ListMessagesRequest lq = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
        lq.room = "cf";
        lq.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
        lq.after_rev = after;
        lq.limit = 1000;
        r = call(ch, H("ListMessages"), t_org, &lq,
                 &parley__v1__list_messages_response__descriptor);
        CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
        Parley__V1__ListMessagesResponse *l = (void *)r.resp;
        for (size_t k = 0; k < l->n_messages; k++) {
            Parley__V1__Message *m = l->messages[k];
            int p, i;
            if (cf_parse(m->author->id, m->client_msg_id, &p, &i) < 0 ||
                cf_out[p][i] != CF_ACKED || cf_seen[p][i] ||
                m->seq != (uint64_t)stored + 1)
                bad_rows++;
            else
                cf_seen[p][i] = 1;
            stored++;
            after = m->rev;
        }
        int more = l->has_more && l->n_messages > 0;
        tc_result_free(&r);
        if (!more) break;
    }
    fprintf(stderr, "  %d stored after the restart\n", stored);
    CU_ASSERT_EQUAL(bad_rows, 0);
    CU_ASSERT_EQUAL(stored, acked); /* every ack is in the database */
    int retried = 0, retry_bad = 0, dup_seen = 0;
    for (int p = 0; p < CF_PUBS; p++)
        for (int i = 0; i < CF_MAX; i++) {
            if (cf_out[p][i] == CF_NONE) continue;
            if (cf_out[p][i] == CF_ACKED && dup_seen) continue;
            char id[32];
            snprintf(id, sizeof id, "w%d-%d", p, i);
            Parley__V1__PublishResponse *pr = publish(ch, tok[p], "cf", id, body, &r);
            if (r.status != GRPC_STATUS_OK || !pr)
                retry_bad++;
            else if (cf_out[p][i] == CF_REFUSED)
                retry_bad += pr->duplicate != 0, retried++;
            else
                retry_bad += pr->duplicate == 0, dup_seen = 1;
            tc_result_free(&r);
        }
    CU_ASSERT_EQUAL(retry_bad, 0);
    CU_ASSERT_TRUE(dup_seen);
    CU_ASSERT_EQUAL(retried, refused + (cf_out[0][CF_MAX - 1] == CF_REFUSED));
    for (int p = 0; p < CF_PUBS; p++) free(tok[p]);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s2, 0), 0);
    tc_server_cleanup(&s2);
}

/* ---------- a lost PostgreSQL connection ---------- */

/* parleyd's connection is cut in the middle of a group commit: the test
 * holds a lock on the rooms table, so the batch waits inside its
 * transaction, and ends parleyd's backend there (as a PostgreSQL restart
 * or a network cut would). The publishes of that batch are refused
 * ("storage failure; retry"), the next ones are acked on a new connection,
 * a refused one retried is stored as new, and the database and the
 * watcher's events hold exactly the acked publishes, each once. */
enum { PL_ROUND = 5, PL_MAX = 3 * PL_ROUND };

static int pl_round(tc_stream *st, int first, int *out) {
    char id[32];
    int bad = 0;
    for (int i = first; i < first + PL_ROUND; i++) {
        snprintf(id, sizeof id, "l-%d", i);
        if (send_publish(st, (uint64_t)i + 1, "loss", id, "body")) bad++;
    }
    for (int k = 0; k < PL_ROUND; k++) {
        Parley__V1__ServerFrame *f = recv_frame(st, 20000);
        if (!f) return bad + 1;
        int i = (int)f->request_id - 1;
        if (i < first || i >= first + PL_ROUND || out[i])
            bad++;
        else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK &&
                 !f->ack->duplicate)
            out[i] = 1;
        else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR &&
                 f->error->code == PARLEY__V1__ERROR_CODE__ERROR_CODE_INTERNAL &&
                 !f->error->fatal &&
                 !strcmp(f->error->detail, "storage failure; retry"))
            out[i] = 2;
        else
            bad++;
        free_frame(f);
    }
    return bad;
}

static int pl_wait_blocked(const char *app) {
    char sql[300], v[32];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
             "'%s' AND wait_event_type = 'Lock'", app);
    for (int i = 0; i < 1000; i++) {
        if (tc_pg_admin(sql, v, sizeof v) == 0 && atoi(v) == 1) return 1;
        usleep(10000);
    }
    return 0;
}

static void test_pg_connection_lost(void) {
    tc_server s;
    const char *extra[] = {"--rooms", "loss", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    const char *app = strrchr(s.dir, '/') + 1;
    grpc_channel *ch = tc_channel(s.addr);
    tc_stream *st = tc_stream_open(ch, S("Connect"), t_pat);
    tc_stream *watch = tc_stream_open(ch, S("Connect"), t_org);
    CU_ASSERT_EQUAL(send_subscribe(watch, 1, "loss", 0), 0);
    Parley__V1__ServerFrame *f = recv_frame(watch, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->kind_case, PARLEY__V1__SERVER_FRAME__KIND_SUBSCRIBED);
    free_frame(f);
    int out[PL_MAX] = {0};

    CU_ASSERT_EQUAL(pl_round(st, 0, out), 0);
    for (int i = 0; i < PL_ROUND; i++) CU_ASSERT_EQUAL(out[i], 1);

    /* The lock, on parleyd's database, from a connection of the test's. */
    char uri[1024];
    snprintf(uri, sizeof uri, "postgres://%s@/%s?host=%s&port=%s",
             getenv("PARLEY_PG_USER"), app, getenv("PARLEY_PG_HOST"),
             getenv("PARLEY_PG_PORT"));
    PGconn *lk = PQconnectdb(uri);
    CU_ASSERT_EQUAL_FATAL(PQstatus(lk), CONNECTION_OK);
    PGresult *res = PQexec(lk, "BEGIN; LOCK TABLE rooms IN EXCLUSIVE MODE");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    char id[32];
    for (int i = PL_ROUND; i < 2 * PL_ROUND; i++) {
        snprintf(id, sizeof id, "l-%d", i);
        CU_ASSERT_EQUAL(send_publish(st, (uint64_t)i + 1, "loss", id, "body"), 0);
    }
    /* parleyd's batch waits on the lock, inside its transaction: cut it. */
    CU_ASSERT_TRUE(pl_wait_blocked(app));
    char sql[300], v[32] = "";
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))"
             " FROM (SELECT pid FROM pg_stat_activity WHERE application_name"
             " = '%s' OFFSET 0) b", app);
    CU_ASSERT_EQUAL(tc_pg_admin(sql, v, sizeof v), 0);
    CU_ASSERT_STRING_EQUAL(v, "1");
    res = PQexec(lk, "COMMIT");
    PQclear(res);
    PQfinish(lk);
    int acked = 0, refused = 0, bad = 0;
    for (int k = 0; k < PL_ROUND; k++) {
        f = recv_frame(st, 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        int i = (int)f->request_id - 1;
        if (i < PL_ROUND || i >= 2 * PL_ROUND || out[i])
            bad++;
        else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ACK) {
            out[i] = 1;
            acked++;
        } else if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_ERROR &&
                   f->error->code == PARLEY__V1__ERROR_CODE__ERROR_CODE_INTERNAL &&
                   !strcmp(f->error->detail, "storage failure; retry")) {
            out[i] = 2;
            refused++;
        } else {
            bad++;
        }
        free_frame(f);
    }
    fprintf(stderr, "  cut mid-batch: %d refused, %d acked\n", refused, acked);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(refused >= 1); /* the batch that was cut */

    /* The next publishes go through on a new connection. */
    CU_ASSERT_EQUAL(pl_round(st, 2 * PL_ROUND, out), 0);
    for (int i = 2 * PL_ROUND; i < 3 * PL_ROUND; i++) CU_ASSERT_EQUAL(out[i], 1);
    /* A refused publish was not stored: its retry is new. */
    int retried_bad = 0;
    for (int i = 0; i < PL_MAX; i++) {
        if (out[i] != 2) continue;
        tc_result r;
        snprintf(id, sizeof id, "l-%d", i);
        Parley__V1__PublishResponse *p = publish(ch, t_pat, "loss", id, "body", &r);
        if (r.status != GRPC_STATUS_OK || !p || p->duplicate) retried_bad++;
        else out[i] = 1;
        tc_result_free(&r);
    }
    CU_ASSERT_EQUAL(retried_bad, 0);

    /* Stored: every publish, once, dense. */
    Parley__V1__ListMessagesRequest lq = PARLEY__V1__LIST_MESSAGES_REQUEST__INIT;
    lq.room = "loss";
    lq.cursor_case = PARLEY__V1__LIST_MESSAGES_REQUEST__CURSOR_AFTER_REV;
    lq.after_rev = 0;
    lq.limit = 100;
    tc_result r = call(ch, H("ListMessages"), t_org, &lq,
                       &parley__v1__list_messages_response__descriptor);
    CU_ASSERT_EQUAL_FATAL(r.status, GRPC_STATUS_OK);
    Parley__V1__ListMessagesResponse *l = (void *)r.resp;
    int seen[PL_MAX] = {0}, bad_rows = 0;
    CU_ASSERT_EQUAL(l->n_messages, (size_t)PL_MAX);
    for (size_t k = 0; k < l->n_messages; k++) {
        int i = -1;
        if (sscanf(l->messages[k]->client_msg_id, "l-%d", &i) != 1 || i < 0 ||
            i >= PL_MAX || seen[i] || out[i] != 1 ||
            l->messages[k]->seq != k + 1)
            bad_rows++;
        else
            seen[i] = 1;
    }
    CU_ASSERT_EQUAL(bad_rows, 0);
    tc_result_free(&r);

    /* The watcher got an event for each stored publish, once, in order,
     * and none for the refused attempts. */
    Parley__V1__Ping pg = PARLEY__V1__PING__INIT;
    pg.nonce = 77;
    Parley__V1__ClientFrame cf = PARLEY__V1__CLIENT_FRAME__INIT;
    cf.request_id = 2;
    cf.kind_case = PARLEY__V1__CLIENT_FRAME__KIND_PING;
    cf.ping = &pg;
    CU_ASSERT_EQUAL(tc_stream_send(watch, &cf.base), 0);
    int events = 0, bad_events = 0;
    uint64_t last_seq = 0;
    for (;;) {
        f = recv_frame(watch, 20000);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (f->kind_case == PARLEY__V1__SERVER_FRAME__KIND_PONG) {
            free_frame(f);
            break;
        }
        if (f->kind_case != PARLEY__V1__SERVER_FRAME__KIND_EVENT ||
            f->event->message->seq != last_seq + 1)
            bad_events++;
        else
            last_seq = f->event->message->seq;
        events++;
        free_frame(f);
    }
    CU_ASSERT_EQUAL(bad_events, 0);
    CU_ASSERT_EQUAL(events, PL_MAX);
    tc_stream_free(st);
    tc_stream_free(watch);
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    tc_server_cleanup(&s);
}

/* parleyd runs its store with synchronous=FULL, as SQLite reports it back
 * (printed in the ready line; the store refuses to open otherwise). */
static void test_synchronous_full(void) {
    const char *sync = strstr(g_srv.banner, "synchronous=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    /* and on the engine asked for */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_srv.banner, tc_using_postgres()
                                                    ? "(db postgres://"
                                                    : "/parley.db, "));
    CU_ASSERT_EQUAL(strncmp(sync, "synchronous=FULL)", 17), 0);
}

/* --dev: a 0600 secret file next to the db, and working printed tokens. */
static void test_dev_mode(void) {
    tc_server s;
    const char *extra[] = {"--dev", "--rooms", "lobby", NULL};
    CU_ASSERT_EQUAL_FATAL(tc_server_start(&s, g_bin, NULL, extra), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/dev-secret", s.dir);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    char org[1024] = "", part[1024] = "";
    const char *o = strstr(s.banner, " organizer ");
    const char *p = strstr(s.banner, " participant ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    sscanf(o, " organizer %1023s", org);
    sscanf(p, " participant %1023s", part);
    grpc_channel *ch = tc_channel(s.addr);
    Parley__V1__CreateRoomRequest q = PARLEY__V1__CREATE_ROOM_REQUEST__INIT;
    q.name = "dev-room";
    tc_result r = call(ch, H("CreateRoom"), org, &q, NULL);
    CU_ASSERT_EQUAL(r.status, GRPC_STATUS_OK);
    tc_result_free(&r);
    r = call(ch, H("CreateRoom"), part, &q, NULL);
    expect_fail(&r, GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED");
    /* not our test secret */
    r = call(ch, H("CreateRoom"), t_org, &q, NULL);
    expect_fail(&r, GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED");
    grpc_channel_destroy(ch);
    CU_ASSERT_EQUAL(tc_server_stop(&s, 0), 0);
    tc_server_cleanup(&s);
}

/* ---------- main ---------- */

static int suite_init(void) {
    const char *extra[] = {"--rooms", "lobby", NULL};
    if (tc_server_start(&g_srv, g_bin, NULL, extra) != 0) return -1;
    g_ch = tc_channel(g_srv.addr);
    return 0;
}

static int suite_clean(void) {
    grpc_channel_destroy(g_ch);
    int rc = tc_server_stop(&g_srv, 0);
    if (rc != 0) fprintf(stderr, "parleyd exited with %d on SIGTERM\n", rc);
    tc_server_cleanup(&g_srv);
    return rc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PARLEYD_BINARY [postgres]\n", argv[0]);
        return 2;
    }
    if (argc == 4 && !strcmp(argv[1], "--publisher"))
        return publisher_main(argv[2], argv[3]);
    g_bin = argv[1];
    int pg = argc > 2 && !strcmp(argv[2], "postgres");
    if (pg) {
        const char *h = getenv("PARLEY_PG_HOST"), *p = getenv("PARLEY_PG_PORT"),
                   *u = getenv("PARLEY_PG_USER");
        if (!h || !p || !u) {
            fprintf(stderr, "%s: PARLEY_PG_HOST/_PORT/_USER unset (run under "
                            "tests/pg/pgtmp exec)\n", argv[0]);
            return 2;
        }
        tc_use_postgres(h, p, u);
    }
    grpc_init();
    t_org = tc_token("olga", "organizer", 3600, NULL);
    t_pat = tc_token("pat", "participant", 3600, NULL);
    t_quinn = tc_token("quinn", "participant", 3600, NULL);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite(pg ? "parleyd (postgres)" : "parleyd",
                               suite_init, suite_clean);
    CU_add_test(s, "store runs with synchronous=FULL", test_synchronous_full);
    CU_add_test(s, "rooms", test_rooms);
    CU_add_test(s, "publish and history", test_publish_and_history);
    CU_add_test(s, "tokens", test_tokens);
    CU_add_test(s, "malformed requests", test_malformed);
    CU_add_test(s, "connect", test_connect);
    CU_add_test(s, "replay races publishes", test_replay_races_publishes);
    CU_add_test(s, "batches: replay then live", test_batches_replay_then_live);
    CU_add_test(s, "shared stream: user_token", test_shared_stream_user_token);
    CU_pSuite s2 = CU_add_suite("own servers", NULL, NULL);
    CU_add_test(s2, "slow consumer", test_slow_consumer);
    CU_add_test(s2, "a slow service link is not cut", test_slow_service_link);
    CU_add_test(s2, "replay paced by a small queue", test_replay_small_queue);
    CU_add_test(s2, "restart after SIGKILL", test_restart_after_sigkill);
    CU_add_test(s2, "SIGTERM keeps what was acked", test_sigterm_keeps_acked);
    CU_add_test(s2, "dev mode", test_dev_mode);
    if (pg)
        CU_add_test(s2, "PostgreSQL connection lost mid-batch: refused, "
                        "reconnected, nothing lost",
                    test_pg_connection_lost);
    else
        CU_add_test(s2, "commit failure: no ack, no event, nothing stored",
                    test_commit_failure);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() +
                     CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    free(t_org);
    free(t_pat);
    free(t_quinn);
    grpc_shutdown();
    return fails ? 1 : 0;
}
