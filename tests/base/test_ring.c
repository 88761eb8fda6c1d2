/* test_ring.c: CUnit tests of base/ring.c, the bounded growable FIFO: order
 * across wrap-around and growth, the bound, pop and peek on empty, items
 * larger than a word, reuse after ring_free. */
#include <CUnit/Basic.h>
#include <stdint.h>
#include <string.h>

#include "ring.h"

static void test_fifo_order_and_bound(void)
{
    ring r;
    ring_init(&r, sizeof(int), 100);
    CU_ASSERT_EQUAL(ring_len(&r), 0);
    CU_ASSERT_PTR_NULL(r.items); /* nothing allocated before a push */
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(ring_push(&r, &i), 0);
    CU_ASSERT_TRUE(ring_is_full(&r));
    CU_ASSERT_EQUAL(ring_room(&r), 0);
    int x = -1;
    CU_ASSERT_EQUAL(ring_push(&r, &x), -1); /* over max: refused */
    CU_ASSERT_EQUAL(ring_len(&r), 100);
    CU_ASSERT_EQUAL(r.cap, 100); /* grew 16, 32, 64, then to max */
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(ring_pop(&r, &x), 0);
        CU_ASSERT_EQUAL(x, i);
    }
    CU_ASSERT_EQUAL(ring_pop(&r, &x), -1);
    CU_ASSERT_EQUAL(x, 99); /* untouched by a failed pop */
    ring_free(&r);
}

/* Pushes and pops interleaved so head wraps many times, with a growth
 * while the items are wrapped around the end of the array. */
static void test_wrap_and_grow(void)
{
    ring r;
    ring_init(&r, sizeof(uint64_t), 1000);
    uint64_t next_in = 0, next_out = 0, v;
    for (int round = 0; round < 50; round++) {
        for (int k = 0; k < 13; k++) {
            CU_ASSERT_EQUAL_FATAL(ring_push(&r, &next_in), 0);
            next_in++;
        }
        for (int k = 0; k < 11; k++) {
            CU_ASSERT_EQUAL_FATAL(ring_pop(&r, &v), 0);
            CU_ASSERT_EQUAL(v, next_out);
            next_out++;
        }
        CU_ASSERT_EQUAL(ring_len(&r), next_in - next_out);
        for (size_t i = 0; i < ring_len(&r); i++)
            CU_ASSERT_EQUAL(*(uint64_t *)ring_at(&r, i), next_out + i);
        CU_ASSERT_PTR_NULL(ring_at(&r, ring_len(&r)));
    }
    while (ring_pop(&r, &v) == 0) CU_ASSERT_EQUAL(v, next_out++);
    CU_ASSERT_EQUAL(next_out, next_in);
    ring_free(&r);
}

typedef struct wide {
    char name[40];
    int n;
} wide;

static void test_wide_items_and_reuse(void)
{
    ring r;
    ring_init(&r, sizeof(wide), 3);
    wide w = {"first", 1};
    CU_ASSERT_EQUAL(ring_push(&r, &w), 0);
    snprintf(w.name, sizeof w.name, "second");
    w.n = 2;
    CU_ASSERT_EQUAL(ring_push(&r, &w), 0);
    CU_ASSERT_STRING_EQUAL(((wide *)ring_at(&r, 1))->name, "second");
    CU_ASSERT_EQUAL(ring_pop(&r, NULL), 0); /* drop without copying */
    CU_ASSERT_STRING_EQUAL(((wide *)ring_at(&r, 0))->name, "second");
    ring_free(&r);
    CU_ASSERT_EQUAL(ring_len(&r), 0);
    CU_ASSERT_EQUAL(ring_push(&r, &w), 0); /* usable again */
    CU_ASSERT_EQUAL(((wide *)ring_at(&r, 0))->n, 2);
    ring_free(&r);
}

static void test_max_one(void)
{
    ring r;
    ring_init(&r, 1, 1);
    char c = 'a';
    CU_ASSERT_EQUAL(ring_push(&r, &c), 0);
    CU_ASSERT_EQUAL(ring_push(&r, &c), -1);
    CU_ASSERT_EQUAL(r.cap, 1);
    CU_ASSERT_EQUAL(ring_pop(&r, &c), 0);
    CU_ASSERT_EQUAL(ring_push(&r, &c), 0);
    ring_free(&r);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("ring", NULL, NULL);
    CU_add_test(s, "fifo order and bound", test_fifo_order_and_bound);
    CU_add_test(s, "wrap-around and growth", test_wrap_and_grow);
    CU_add_test(s, "wide items and reuse", test_wide_items_and_reuse);
    CU_add_test(s, "max of one", test_max_one);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
