/* COCO instances JSON: parsing, the category map, the per-image index, malformed input. */
#include <criterion/criterion.h>
#include <string.h>

#include "coco/coco.h"
#include "common/status.h"

#define FIX "tests/fixtures/coco_data/"

Test(coco_dataset, reads_tiny_fixture_with_sorted_category_map) {
    coco_dataset ds;
    cr_assert_eq(coco_dataset_read(FIX "tiny.json", &ds), 0, "%s", nd_last_error());
    cr_assert_eq(ds.num_images, 3);
    cr_assert_eq(ds.num_anns, 3);
    cr_assert_eq(ds.num_classes, 3);
    /* Categories sorted by id: 1 -> 0, 3 -> 1, 90 -> 2, and back. */
    cr_expect_eq(ds.categories[0].id, 1);
    cr_expect_str_eq(ds.categories[2].name, "toothbrush");
    cr_expect_str_eq(ds.categories[2].supercategory, "indoor");
    cr_expect_str_eq(ds.categories[1].supercategory, "");
    cr_expect_eq(coco_category_to_class(&ds, 90), 2);
    cr_expect_eq(coco_category_to_class(&ds, 3), 1);
    cr_expect_eq(coco_category_to_class(&ds, 2), -1);
    for (int32_t k = 0; k < ds.num_classes; k++)
        cr_expect_eq(coco_category_to_class(&ds, coco_class_to_category(&ds, k)), k);
    cr_expect_eq(coco_class_to_category(&ds, 3), -1);
    cr_expect_eq(coco_class_to_category(&ds, -1), -1);
    /* Images keep file order; lookup by id. */
    cr_expect_eq(ds.images[0].id, 42);
    cr_expect_eq(coco_dataset_find_image(&ds, 7), 1);
    cr_expect_eq(coco_dataset_find_image(&ds, 8), -1);
    cr_expect_str_eq(ds.images[1].file_name, "b.png");
    cr_expect_eq(ds.images[1].width, 20);
    /* Per-image index: image 7 owns annotations 1 and 5 in file order; image 9 none. */
    const coco_image *b = &ds.images[1];
    cr_assert_eq(b->ann_count, 2);
    cr_expect_eq(ds.anns[ds.ann_index[b->ann_first]].id, 1);
    cr_expect_eq(ds.anns[ds.ann_index[b->ann_first + 1]].id, 5);
    cr_expect_eq(ds.images[2].ann_count, 0);
    cr_expect_eq(ds.images[0].ann_count, 1);
    /* Fields. */
    const coco_ann *a0 = &ds.anns[0], *a1 = &ds.anns[1], *a2 = &ds.anns[2];
    cr_expect_eq(a0->class_index, 2);
    cr_expect_eq(a0->image_index, 1);
    cr_expect_float_eq(a0->area, 150.5, 1e-12);
    cr_expect_eq(a1->iscrowd, 1);
    cr_expect_float_eq(a2->area, 12.0, 1e-12, "area defaults to the box's w*h");
    cr_expect_float_eq(a2->bbox[1], 6.25, 1e-12);
    coco_dataset_free(&ds);
    coco_dataset_free(&ds); /* freeing twice (zeroed) is harmless */
    coco_dataset_free(NULL);
}

Test(coco_dataset, truncated_json_names_file_and_place) {
    coco_dataset ds;
    cr_assert_eq(coco_dataset_read(FIX "truncated.json", &ds), ND_ERR_FORMAT);
    const char *m = nd_last_error();
    cr_expect(strstr(m, "truncated.json") && strstr(m, "not valid JSON") && strstr(m, "line") &&
                  strstr(m, "ends early"),
              "%s", m);
}

Test(coco_dataset, bbox_as_string_names_json_path) {
    coco_dataset ds;
    cr_assert_eq(coco_dataset_read(FIX "bbox_string.json", &ds), ND_ERR_FORMAT);
    const char *m = nd_last_error();
    cr_expect(strstr(m, "bbox_string.json: annotations[1].bbox: expected an array of 4 numbers") &&
                  strstr(m, "got a string"),
              "%s", m);
}

Test(coco_dataset, unknown_image_id_is_named) {
    coco_dataset ds;
    cr_assert_eq(coco_dataset_read(FIX "unknown_image.json", &ds), ND_ERR_NOT_FOUND);
    const char *m = nd_last_error();
    cr_expect(strstr(m, "annotations[2].image_id") && strstr(m, "image id 17 is not in"), "%s", m);
}

Test(coco_dataset, missing_file_names_it) {
    coco_dataset ds;
    cr_assert_eq(coco_dataset_read(FIX "no_such_file.json", &ds), ND_ERR_IO);
    cr_expect(strstr(nd_last_error(), "no_such_file.json"), "%s", nd_last_error());
}

/* Table of small malformed documents: the status and a piece of the message each must give. */
static const struct {
    const char *json, *want;
    int status;
} bad[] = {
    {"[1, 2]", "(top level): expected an object", ND_ERR_FORMAT},
    {"{\"images\": {}, \"categories\": []}", "images: expected an array, got an object", ND_ERR_FORMAT},
    {"{\"images\": []}", "categories: expected an array, got nothing", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1.5, \"file_name\": \"a\", \"width\": 1, \"height\": 1}], \"categories\": []}",
     "images[0].id: expected an integer, got 1.5", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 0, \"height\": 1}], \"categories\": []}",
     "images[0].width: expected a width of 1..1000000 pixels, got 0", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": 3, \"width\": 1, \"height\": 1}], \"categories\": []}",
     "images[0].file_name: expected a string, got a number", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 1, \"height\": 1},"
     "{\"id\": 1, \"file_name\": \"b\", \"width\": 1, \"height\": 1}], \"categories\": []}",
     "id 1 is used twice", ND_ERR_FORMAT},
    {"{\"images\": [], \"categories\": [{\"id\": 1}]}", "categories[0].name: expected a string, got nothing",
     ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 4, \"bbox\": [0,0,1,1]}], \"categories\": [{\"id\": 1, \"name\": \"x\"}]}",
     "annotations[0].category_id: category id 4 is not in", ND_ERR_NOT_FOUND},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1]}], \"categories\": [{\"id\": 1, \"name\": \"x\"}]}",
     "annotations[0].bbox: expected an array of 4 numbers [x, y, width, height], got 3 items", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,\"0\",1,1]}], \"categories\": [{\"id\": 1, \"name\": \"x\"}]}",
     "annotations[0].bbox[1]: expected a number, got a string", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,-1,1]}], \"categories\": [{\"id\": 1, \"name\": \"x\"}]}",
     "annotations[0].bbox: expected width and height >= 0", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1,1], \"iscrowd\": 2}], \"categories\": [{\"id\": 1, "
     "\"name\": \"x\"}]}",
     "annotations[0].iscrowd: expected 0 or 1, got 2", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{\"id\": 1, "
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1,1], \"area\": \"big\"}], \"categories\": [{\"id\": 1, "
     "\"name\": \"x\"}]}",
     "annotations[0].area: expected a number, got a string", ND_ERR_FORMAT},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a\", \"width\": 9, \"height\": 9}], \"annotations\": [{"
     "\"image_id\": 1, \"category_id\": 1, \"bbox\": [0,0,1,1]}], \"categories\": [{\"id\": 1, \"name\": \"x\"}]}",
     "annotations[0].id: expected an integer, got nothing", ND_ERR_FORMAT},
};

Test(coco_dataset, malformed_documents_give_path_and_expectation) {
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        coco_dataset ds;
        int rc = coco_dataset_parse(bad[i].json, strlen(bad[i].json), "doc.json", &ds);
        cr_expect_eq(rc, bad[i].status, "case %zu: status %d, message: %s", i, rc, nd_last_error());
        cr_expect(strstr(nd_last_error(), bad[i].want) != NULL, "case %zu: want '%s' in '%s'", i, bad[i].want,
                  nd_last_error());
        cr_expect(strncmp(nd_last_error(), "doc.json: ", 10) == 0, "case %zu: %s", i, nd_last_error());
        cr_expect_eq(ds.images, NULL, "a failed parse leaves nothing allocated");
    }
}

Test(coco_dataset, json_without_annotations_is_an_image_list) {
    const char *j = "{\"images\": [{\"id\": 3, \"file_name\": \"x.jpg\", \"width\": 5, \"height\": 6}], "
                    "\"categories\": [{\"id\": 1, \"name\": \"a\"}]}";
    coco_dataset ds;
    cr_assert_eq(coco_dataset_parse(j, strlen(j), "t", &ds), 0, "%s", nd_last_error());
    cr_expect_eq(ds.num_anns, 0);
    cr_expect_eq(ds.images[0].ann_count, 0);
    coco_dataset_free(&ds);
}
