/* test_hub.c — the hub client's names, paths and cache layout, without a
 * network (tests/hub/test_fetch.sh covers the protocol against a fake hub). */
#include "../harness.h"
#include "../../src/hub/hub_internal.h"
#include "dam/common.h"
#include "dam/hub.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_repo_ids) {
    static const char *good[] = {
        "HuggingFaceTB/SmolLM2-360M-Instruct", "gpt2", "a/b", "org_1/model.v2", "meta-llama/Llama-3.2-1B",
    };
    static const char *bad[] = {
        "", "../x", "a/../b", "a//b", "/a/b", "a/b/c", "a--b/c", "a/b.git", ".a/b", "a/b-", "a/.b",
        "a b/c", "a/b\n", "a/b;c", "a/b%2e", "~/x", "a/", "/",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(hub_valid_repo_id(good[i]), "'%s' should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!hub_valid_repo_id(bad[i]), "'%s' should be refused", bad[i]);
    char longer[128];
    memset(longer, 'a', 97);
    longer[97] = 0;
    longer[10] = '/';
    ck_assert(!hub_valid_repo_id(longer));
    longer[96] = 0;
    ck_assert(hub_valid_repo_id(longer));
}
END_TEST

START_TEST(test_is_repo_id) {
    ck_assert(hub_is_repo_id("dam-test/surely-not-a-folder"));
    ck_assert(!hub_is_repo_id("gpt2"));                 /* "org/name" only */
    ck_assert(!hub_is_repo_id("third_party/models"));   /* an existing folder */
    ck_assert(!hub_is_repo_id("./x/y"));
    ck_assert(!hub_is_repo_id(NULL));
}
END_TEST

START_TEST(test_file_names) {
    static const char *good[] = {
        "config.json", "a/b/c.safetensors", "model-00001-of-00002.safetensors", "x+y.json", ".gitattributes",
    };
    static const char *bad[] = {
        "", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", "a b", "a\\b", "a;b", "x\n", "..", ".",
        "a/..", "$HOME", "a*b",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(hub_valid_filename(good[i]), "'%s' should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!hub_valid_filename(bad[i]), "'%s' should be refused", bad[i]);
}
END_TEST

START_TEST(test_revisions) {
    ck_assert(hub_valid_revision("main"));
    ck_assert(hub_valid_revision("v1.0"));
    ck_assert(hub_valid_revision("refs/pr/1"));
    ck_assert(hub_valid_revision("0123456789abcdef0123456789abcdef01234567"));
    ck_assert(!hub_valid_revision("../x"));
    ck_assert(!hub_valid_revision("a/../b"));
    ck_assert(!hub_valid_revision("/abs"));
    ck_assert(!hub_valid_revision("-x"));
    ck_assert(!hub_valid_revision(".x"));
    ck_assert(!hub_valid_revision(""));
    ck_assert(!hub_valid_revision("a b"));
    ck_assert(hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
    ck_assert(!hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
    ck_assert(!hub_is_commit("0123456789abcdef"));
    ck_assert(hub_is_sha256("c549afd8464a1250200b5338d39d23d0bf096c7f6578944268d40512c133daa6"));
    ck_assert(!hub_is_sha256("0123456789abcdef0123456789abcdef01234567"));
}
END_TEST

START_TEST(test_etags) {
    char e[HUB_ETAG_MAX + 1];
    ck_assert_int_eq(hub_normalize_etag("\"abc123\"", e, sizeof e), 0);
    ck_assert_str_eq(e, "abc123");
    ck_assert_int_eq(hub_normalize_etag("W/\"abc-9\"", e, sizeof e), 0);
    ck_assert_str_eq(e, "abc-9");
    ck_assert_int_eq(hub_normalize_etag("plain", e, sizeof e), 0);
    ck_assert_str_eq(e, "plain");
    ck_assert_int_eq(hub_normalize_etag("\"\"", e, sizeof e), -1);
    ck_assert_int_eq(hub_normalize_etag("\"../x\"", e, sizeof e), -1);
    ck_assert_int_eq(hub_normalize_etag("\"a/b\"", e, sizeof e), -1);
    ck_assert_int_eq(hub_normalize_etag("", e, sizeof e), -1);
}
END_TEST

START_TEST(test_url_encode) {
    char out[128] = "x/";
    hub_url_encode("refs/pr/1", 0, out, sizeof out);
    ck_assert_str_eq(out, "x/refs%2Fpr%2F1");
    out[0] = 0;
    hub_url_encode("a b+c/d.json", 1, out, sizeof out);
    ck_assert_str_eq(out, "a%20b%2Bc/d.json");
}
END_TEST

/* The cache folder follows huggingface_hub's precedence. */
START_TEST(test_cache_dir) {
    char dir[PATH_MAX];
    unsetenv("HUGGINGFACE_HUB_CACHE");
    setenv("HF_HUB_CACHE", "/x/cache", 1);
    setenv("HF_HOME", "/h", 1);
    ck_assert_int_eq(hub_cache_dir(dir, sizeof dir), 0);
    ck_assert_str_eq(dir, "/x/cache");
    unsetenv("HF_HUB_CACHE");
    ck_assert_int_eq(hub_cache_dir(dir, sizeof dir), 0);
    ck_assert_str_eq(dir, "/h/hub");
    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    ck_assert_int_eq(hub_cache_dir(dir, sizeof dir), 0);
    ck_assert_str_eq(dir, "/xdg/huggingface/hub");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    ck_assert_int_eq(hub_cache_dir(dir, sizeof dir), 0);
    ck_assert_str_eq(dir, "/home/u/.cache/huggingface/hub");
    setenv("HF_HUB_CACHE", "~/c", 1);
    ck_assert_int_eq(hub_cache_dir(dir, sizeof dir), 0);
    ck_assert_str_eq(dir, "/home/u/c");
    unsetenv("HF_HUB_CACHE");
}
END_TEST

/* Snapshot links are relative (the cache can move) and point at the blob. */
START_TEST(test_snapshot_links) {
    const char *tmp = tmp_dir();
    setenv("HF_HUB_CACHE", tmp, 1);
    struct hub_repo r;
    ck_assert_int_eq(hub_repo_init(&r, "org/name"), 0);
    char expect[PATH_MAX + 32];
    snprintf(expect, sizeof expect, "%s/models--org--name", tmp);
    ck_assert_str_eq(r.dir, expect);
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char blob[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
    hub_pathf(blob, sizeof blob, "%s/blobs", r.dir);
    ck_assert_int_eq(hub_mkdirs(blob), 0);
    hub_blob_path(&r, "e1", blob, sizeof blob);
    ck_assert_int_eq(write_file_atomic(blob, "hi", 2), 0);
    ck_assert(!hub_snapshot_has(&r, commit, "a/b/c.txt"));
    ck_assert_int_eq(hub_link_snapshot(&r, commit, "a/b/c.txt", "e1"), 0);
    hub_snapshot_path(&r, commit, "a/b/c.txt", link, sizeof link);
    ssize_t n = readlink(link, target, sizeof target - 1);
    ck_assert_int_gt(n, 0);
    target[n] = 0;
    ck_assert_str_eq(target, "../../../../blobs/e1");
    ck_assert(hub_snapshot_has(&r, commit, "a/b/c.txt"));
    ck_assert_int_eq(hub_link_snapshot(&r, commit, "top.json", "e1"), 0);   /* replaces nothing, top level */
    hub_snapshot_path(&r, commit, "top.json", link, sizeof link);
    n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    ck_assert_str_eq(target, "../../blobs/e1");
    /* A dangling link is not a file. */
    ck_assert_int_eq(hub_link_snapshot(&r, commit, "gone.json", "missing"), 0);
    ck_assert(!hub_snapshot_has(&r, commit, "gone.json"));
    /* refs hold the bare commit; .no_exist markers are empty files. */
    char got[HUB_COMMIT_LEN + 1];
    ck_assert_int_eq(hub_read_ref(&r, "refs/pr/1", got), -1);
    ck_assert_int_eq(hub_write_ref(&r, "refs/pr/1", commit), 0);
    ck_assert_int_eq(hub_read_ref(&r, "refs/pr/1", got), 0);
    ck_assert_str_eq(got, commit);
    size_t len;
    char path[PATH_MAX];
    hub_pathf(path, sizeof path, "%s/refs/refs/pr/1", r.dir);
    free(read_file(path, &len));
    ck_assert_uint_eq(len, HUB_COMMIT_LEN);
    ck_assert(!hub_no_exist_has(&r, commit, "x.json"));
    ck_assert_int_eq(hub_mark_no_exist(&r, commit, "x.json"), 0);
    ck_assert(hub_no_exist_has(&r, commit, "x.json"));
    int fd = hub_lock_blob(&r, "e1");
    ck_assert_int_ge(fd, 0);
    hub_unlock(fd);
    unsetenv("HF_HUB_CACHE");
}
END_TEST

/* Offline with an empty cache: a clear error, no crash, no network. */
START_TEST(test_offline_errors) {
    char dir[PATH_MAX];
    setenv("HF_HUB_CACHE", tmp_dir(), 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    ck_assert_int_eq(hub_resolve_model("org/name", NULL, dir, sizeof dir), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "not in the cache"));
    ck_assert_int_eq(hub_resolve_model("../etc", NULL, dir, sizeof dir), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "invalid repo id"));
    ck_assert_int_eq(hub_resolve_model("org/name", "../../x", dir, sizeof dir), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "invalid revision"));
    const char *inc[] = { "../x" };
    struct hub_fetch_options o = { .include = inc, .n_include = 1 };
    ck_assert_int_eq(hub_fetch("org/name", &o, dir, sizeof dir), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "refusing"));
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_HUB_CACHE");
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");
    tcase_add_test(tc, test_repo_ids);
    tcase_add_test(tc, test_is_repo_id);
    tcase_add_test(tc, test_file_names);
    tcase_add_test(tc, test_revisions);
    tcase_add_test(tc, test_etags);
    tcase_add_test(tc, test_url_encode);
    tcase_add_test(tc, test_cache_dir);
    tcase_add_test(tc, test_snapshot_links);
    tcase_add_test(tc, test_offline_errors);
    suite_add_tcase(s, tc);
    return s;
}
