/* hub.h — models from the Hugging Face hub, kept in huggingface_hub's cache.
 *
 * A repo id ("HuggingFaceTB/SmolLM2-360M-Instruct") names a model on the hub.
 * hub_fetch() downloads what dam needs to run it (config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json and the
 * safetensors weights) into the very cache that Python's huggingface_hub
 * uses, so a model downloaded by either is found by the other:
 *
 *   $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
 *     models--ORG--NAME/
 *       blobs/<etag>                   file contents, named by etag
 *       blobs/<etag>.incomplete        a download in progress (resumable)
 *       snapshots/<commit>/<file>      relative symlink -> ../../blobs/<etag>
 *       refs/<revision>                the commit the revision pointed at
 *       .no_exist/<commit>/<file>      empty: the file is absent at that commit
 *     .locks/models--ORG--NAME/<etag>.lock   one downloader per blob
 *
 * A file appears in snapshots/ only once it is complete and verified (size,
 * and SHA-256 for LFS files, whose etag is their SHA-256). Everything else —
 * the HTTP protocol, retries, offline mode — is described in the README.
 *
 * Environment: HF_ENDPOINT, HF_TOKEN, HF_TOKEN_PATH, HF_HOME, HF_HUB_CACHE,
 * HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT,
 * DAM_HUB_RETRY_BASE_MS, DAM_HUB_RETRY_MAX_MS. */
#ifndef DAM_HUB_H
#define DAM_HUB_H

#include <stddef.h>

/* Zero-initialise, then set what you need. */
struct hub_fetch_options {
    const char *revision;          /* branch, tag or commit; NULL = "main" */
    const char *const *include;    /* (n_include) more files to fetch: names or
                                      fnmatch globs ("*.md") matched against
                                      the repo's file list */
    int n_include;
    int quiet;                     /* 1: no progress lines on stderr */
};

/* True when s has the "org/name" form of a repo id and is not an existing
 * local path (so "-m some/dir" that exists stays a folder). */
int hub_is_repo_id(const char *s);

/* True when s is a valid repo id, "name" or "org/name": letters, digits,
 * '-', '_', '.', no "--" or "..", at most 96 characters. */
int hub_valid_repo_id(const char *s);

/* Makes sure the model's files are in the cache (downloading what is
 * missing, unless HF_HUB_OFFLINE is set) and writes the snapshot folder,
 * .../models--ORG--NAME/snapshots/<commit>, into out_dir. 0 or -1. */
int hub_fetch(const char *repo_id, const struct hub_fetch_options *opts,
              char *out_dir, size_t size);

/* True when the last hub_fetch stopped because of Ctrl-C (or SIGTERM). */
int hub_interrupted(void);
/* hub_fetch with the default files and progress; revision may be NULL. */
int hub_resolve_model(const char *repo_id, const char *revision, char *out_dir, size_t size);

/* The hub cache folder (it may not exist yet). 0 or -1. */
int hub_cache_dir(char *out, size_t size);

#endif
