/* test_list.c: CUnit tests of base/list.h, the intrusive doubly-linked
 * list: order at both ends, removal at the front, middle and back, removal
 * while walking, owner tracking and list_entry. */
#include <CUnit/Basic.h>

#include "list.h"

typedef struct item {
    int id;
    list_node link;
} item;

static int ids(const list *l, int *out, int max)
{
    int n = 0;
    list_for_each(l, node, next) {
        if (n < max) out[n] = list_entry(node, item, link)->id;
        n++;
    }
    return n;
}

static void test_order_and_remove(void)
{
    list l = {0};
    item it[5];
    for (int i = 0; i < 5; i++) it[i] = (item){.id = i};
    list_push_back(&l, &it[2].link);
    list_push_front(&l, &it[1].link);
    list_push_back(&l, &it[3].link);
    list_push_front(&l, &it[0].link);
    list_push_back(&l, &it[4].link);
    int got[8];
    CU_ASSERT_EQUAL(ids(&l, got, 8), 5);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(got[i], i);
    CU_ASSERT_EQUAL(l.len, 5);

    list_remove(&it[2].link); /* middle */
    list_remove(&it[0].link); /* front */
    list_remove(&it[4].link); /* back */
    CU_ASSERT_EQUAL(ids(&l, got, 8), 2);
    CU_ASSERT_EQUAL(got[0], 1);
    CU_ASSERT_EQUAL(got[1], 3);
    CU_ASSERT_PTR_EQUAL(l.first, &it[1].link);
    CU_ASSERT_PTR_EQUAL(l.last, &it[3].link);
    CU_ASSERT_FALSE(list_node_is_linked(&it[2].link));
    CU_ASSERT_TRUE(list_node_is_linked(&it[3].link));
    CU_ASSERT_PTR_EQUAL(it[3].link.owner, &l);

    CU_ASSERT_PTR_EQUAL(list_pop_front(&l), &it[1].link);
    CU_ASSERT_PTR_EQUAL(list_pop_front(&l), &it[3].link);
    CU_ASSERT_PTR_NULL(list_pop_front(&l));
    CU_ASSERT_EQUAL(l.len, 0);
    CU_ASSERT_PTR_NULL(l.first);
    CU_ASSERT_PTR_NULL(l.last);
}

/* Every other node removed during the walk, then all of them. */
static void test_remove_while_walking(void)
{
    list l = {0};
    item it[10];
    for (int i = 0; i < 10; i++) {
        it[i] = (item){.id = i};
        list_push_back(&l, &it[i].link);
    }
    list_for_each(&l, node, next) {
        if (list_entry(node, item, link)->id % 2) list_remove(node);
    }
    int got[10];
    CU_ASSERT_EQUAL(ids(&l, got, 10), 5);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(got[i], 2 * i);
    list_for_each(&l, node, next) list_remove(node);
    CU_ASSERT_EQUAL(l.len, 0);
    CU_ASSERT_EQUAL(ids(&l, got, 10), 0);
}

/* A node moves between lists once removed from the first. */
static void test_two_lists(void)
{
    list a = {0}, b = {0};
    item x = {.id = 7};
    list_push_back(&a, &x.link);
    CU_ASSERT_PTR_EQUAL(x.link.owner, &a);
    list_remove(&x.link);
    list_push_front(&b, &x.link);
    CU_ASSERT_PTR_EQUAL(x.link.owner, &b);
    CU_ASSERT_EQUAL(a.len, 0);
    CU_ASSERT_EQUAL(b.len, 1);
    CU_ASSERT_EQUAL(list_entry(b.first, item, link)->id, 7);
    list_remove(&x.link);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("list", NULL, NULL);
    CU_add_test(s, "order and remove", test_order_and_remove);
    CU_add_test(s, "remove while walking", test_remove_while_walking);
    CU_add_test(s, "two lists", test_two_lists);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
