/*
 * cmd_pull.c - `parley pull`, `parley list` and `parley rm`: the model store
 * from the command line (see parley/store.h).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "parley/store.h"

#define MIB (1024.0 * 1024.0)

/* Ctrl-C stops a download cleanly (the partial file is kept for a resume). */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void fmt_size(uint64_t b, char *buf, size_t cap) {
    if (b >= (uint64_t)1 << 30) snprintf(buf, cap, "%.2f GiB", (double)b / (MIB * 1024.0));
    else if (b >= (uint64_t)1 << 20) snprintf(buf, cap, "%.1f MiB", (double)b / MIB);
    else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", (double)b / 1024.0);
    else snprintf(buf, cap, "%" PRIu64 " B", b);
}

static void fmt_eta(double s, char *buf, size_t cap) {
    if (s < 0 || s > 359999) {
        snprintf(buf, cap, "--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%u:%02u", t / 60, t % 60);
}

typedef struct bar {
    const char *name;
    bool        tty;
    int         last_decile; /* non-TTY: one line per 10% */
    int         last_attempt;
    size_t      last_len;    /* TTY: width of the line to overwrite */
} bar;

/* A rewritten line on a terminal; plain lines (every 10%, and at the end)
 * when stderr is a file or a pipe. */
static void on_progress(void *ud, const pl_pull_progress *p) {
    bar *b = ud;
    char done[32], total[32], rate[32], eta[16], line[256];
    fmt_size(p->done, done, sizeof done);
    fmt_size(p->total, total, sizeof total);
    fmt_size((uint64_t)(p->rate_bps > 0 ? p->rate_bps : 0), rate, sizeof rate);
    fmt_eta(p->eta_s, eta, sizeof eta);
    int pct = p->total ? (int)(100.0 * (double)p->done / (double)p->total) : -1;
    if (pct > 100) pct = 100;
    if (pct >= 0)
        snprintf(line, sizeof line, "%s: %3d%% %s / %s  %s/s  ETA %s", b->name, pct, done, total, rate, eta);
    else
        snprintf(line, sizeof line, "%s: %s  %s/s", b->name, done, rate);
    if (p->attempt != b->last_attempt) {
        if (p->attempt > 1 && b->tty && b->last_len) fputc('\n', stderr), b->last_len = 0;
        b->last_attempt = p->attempt;
        b->last_decile = -1;
        if (p->resumed_from) {
            char from[32];
            fmt_size(p->resumed_from, from, sizeof from);
            fprintf(stderr, "parley pull: %s: resuming at %s\n", b->name, from);
        }
    }
    if (b->tty) {
        size_t len = strlen(line);
        fprintf(stderr, "\r%s%*s", line, b->last_len > len ? (int)(b->last_len - len) : 0, "");
        b->last_len = len;
        if (p->finished) {
            fputc('\n', stderr);
            b->last_len = 0;
        }
    } else {
        /* a line per 10%, or per 64 MiB when the size is unknown */
        int decile = pct >= 0 ? pct / 10 : (int)(p->done / ((uint64_t)64 << 20));
        if (decile != b->last_decile) {
            fprintf(stderr, "%s\n", line);
            b->last_decile = decile;
        }
    }
    fflush(stderr);
}

static void print_catalog(void) {
    pl_store *s = NULL;
    if (pl_store_open(NULL, NULL, &s) != PL_OK) s = NULL;
    printf("%-30s %-10s %-12s %-9s %s\n", "NAME", "SIZE", "HASH", "PRESENT", "SOURCE (huggingface.co)");
    for (size_t i = 0; i < pl_catalog_count(); i++) {
        const pl_catalog_entry *c = pl_catalog_at(i);
        char size[32];
        if (c->size) fmt_size(c->size, size, sizeof size);
        else snprintf(size, sizeof size, "~%u MB", c->approx_mb);
        char *path = NULL;
        bool present = s && pl_store_resolve(s, c->name, &path) == PL_OK;
        pl_free(NULL, path);
        printf("%-30s %-10s %-12s %-9s %s/%s\n", c->name, size, c->sha256 ? "sha256" : c->sha1 ? "sha1" : "first-use",
               present ? "yes" : "", c->repo, c->file);
    }
    pl_store_free(s);
    printf("\nA name without ':QUANT' picks Q4_K_M (e.g. 'parley pull qwen3-0.6b'). HASH 'first-use': no hash is\n"
           "published, so the store records the one computed at the first download and checks later ones.\n"
           "Default model for 'make run': %s\n",
           PL_STORE_DEFAULT_MODEL);
}

char *pl_cli_model_path(pl_cli *cli, const char *spec) {
    char *path = NULL;
    if (pl_model_resolve(cli->ctx, spec, &path) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        return NULL;
    }
    return path;
}

int cmd_pull(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        printf("usage: parley pull [options] NAME | hf://OWNER/REPO/FILE | https://URL\n"
               "       parley pull --list\n"
               "\n"
               "Download a model into the store and print its path on stdout. A download that is\n"
               "interrupted (network, Ctrl-C, full disk) resumes where it stopped when run again.\n"
               "The file is checked against its published SHA-256 (or whisper.cpp's SHA-1); where\n"
               "none is published the hash computed at the first download is recorded and later\n"
               "downloads must match it. A model already present is not downloaded again.\n"
               "\n"
               "options:\n"
               "  --list          list the built-in catalog of well-known models\n"
               "  --name NAME     store name for a hf:// or URL pull (default: the file name)\n"
               "  --sha256 HEX    expected SHA-256 (overrides the catalog and the recorded hash)\n"
               "  --force         download again even when present (atomically replaces it)\n"
               "  --verify        re-hash a model that is already present\n"
               "  --timeout S     give up on an attempt after S s below 1 KiB/s (default 30)\n"
               "  --retries N     retries after a dropped connection, stall or 5xx (default 3)\n"
               "  -q, --quiet     no progress output\n"
               "\n"
               "environment:\n"
               "  PARLEY_HOME          the store directory (default ~/.local/share/parley/models)\n"
               "  PARLEY_HF_ENDPOINT   Hugging Face base URL (default %s)\n"
               "  HF_TOKEN             token for gated or private repositories\n",
               PL_STORE_HF_ENDPOINT);
        return 0;
    }
    pl_pull_opts o = pl_pull_default_opts();
    const char *spec = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t v;
        if (strcmp(a, "--list") == 0) {
            print_catalog();
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            o.force = true;
        } else if (strcmp(a, "--verify") == 0) {
            o.verify = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (pl_cli_is_opt(a, "--name")) {
            if (!(o.name = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--sha256")) {
            if (!(o.sha256 = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--timeout")) {
            const char *s = pl_cli_opt_value(cli, argc, argv, &i);
            if (!s) return 2;
            if (!pl_cli_parse_i64(s, 1, 3600, &v)) return pl_cli_usage_error(cli, "--timeout needs 1..3600 seconds");
            o.stall_timeout_s = (int)v;
        } else if (pl_cli_is_opt(a, "--retries")) {
            const char *s = pl_cli_opt_value(cli, argc, argv, &i);
            if (!s) return 2;
            if (!pl_cli_parse_i64(s, 0, 100, &v)) return pl_cli_usage_error(cli, "--retries needs 0..100");
            o.retries = (int)v;
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else if (spec) {
            return pl_cli_usage_error(cli, "one model at a time");
        } else {
            spec = a;
        }
    }
    if (!spec) return pl_cli_usage_error(cli, "missing NAME (see 'parley pull --list')");

    pl_store *s = NULL;
    if (pl_store_open(cli->ctx, NULL, &s) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    /* label: the name, or a URL's file name */
    const char *label = spec;
    if (strstr(spec, "://") && strrchr(spec, '/')[1]) label = strrchr(spec, '/') + 1;
    bar b = { .name = label, .tty = isatty(2) == 1, .last_decile = -1 };
    if (!quiet) {
        o.progress = on_progress;
        o.progress_ud = &b;
    }
    struct sigaction sa = { .sa_handler = on_sigint }, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
    o.cancel = &interrupted;
    pl_pull_result r;
    pl_status st = pl_store_pull(s, spec, &o, &r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int rc = 0;
    if (st != PL_OK) {
        rc = r.name[0] ? pl_cli_fail(cli, "%s: %s", r.name, pl_store_last_error(s))
                       : pl_cli_fail(cli, "%s", pl_store_last_error(s));
    } else {
        char size[32];
        fmt_size(r.size, size, sizeof size);
        if (!quiet)
            fprintf(stderr, "parley pull: %s: %s %s, sha256 %.16s... (%s)\n", r.name,
                    r.already_present ? "already in the store," : "done,", size, r.sha256,
                    strcmp(r.hash_source, "published") == 0 ? "matches the published hash"
                    : strcmp(r.hash_source, "user") == 0    ? "matches --sha256"
                    : strcmp(r.hash_source, "download") == 0 && !r.already_present
                        ? "recorded; later downloads must match"
                        : r.hash_source);
        printf("%s\n", r.path);
    }
    pl_store_free(s);
    return rc;
}

int cmd_list(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        printf("usage: parley list [--json]\n"
               "       parley list --path NAME-or-PATH\n"
               "\n"
               "List the models in the store ($PARLEY_HOME or ~/.local/share/parley/models): name,\n"
               "size, quantization and path. Interrupted downloads are listed as partial.\n"
               "\n"
               "  --json         one JSON array\n"
               "  --path NAME    print the file a name resolves to (what -m NAME loads); a path to\n"
               "                 an existing file is printed as is; exit 1 when not found\n");
        return 0;
    }
    bool json = false;
    const char *want = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (pl_cli_is_opt(argv[i], "--path")) {
            if (!(want = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else return pl_cli_usage_error(cli, "unknown argument '%s'", argv[i]);
    }
    pl_store *s = NULL;
    if (pl_store_open(cli->ctx, NULL, &s) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    int rc = 0;
    if (want) {
        char *path = NULL;
        if (pl_store_resolve(s, want, &path) == PL_OK) printf("%s\n", path);
        else rc = pl_cli_fail(cli, "%s", pl_store_last_error(s));
        pl_free(cli->ctx, path);
        pl_store_free(s);
        return rc;
    }
    pl_store_entry *list = NULL;
    size_t n = 0;
    if (pl_store_list(s, &list, &n) != PL_OK) {
        rc = pl_cli_fail(cli, "%s", pl_store_last_error(s));
    } else if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", list[i].name);
            cJSON_AddNumberToObject(o, "size", (double)(list[i].partial ? list[i].partial_bytes : list[i].size));
            cJSON_AddStringToObject(o, "quant", list[i].quant);
            cJSON_AddStringToObject(o, "path", list[i].path);
            cJSON_AddStringToObject(o, "sha256", list[i].sha256);
            cJSON_AddBoolToObject(o, "partial", list[i].partial);
            cJSON_AddItemToArray(arr, o);
        }
        char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        if (text) printf("%s\n", text);
        else rc = pl_cli_fail(cli, "out of memory");
        cJSON_free(text);
        cJSON_Delete(arr);
    } else if (n == 0) {
        fprintf(stderr, "parley list: no models in %s; get one with 'parley pull NAME' (see 'parley pull --list')\n",
                pl_store_dir(s));
    } else {
        size_t w = 4;
        for (size_t i = 0; i < n; i++) w = strlen(list[i].name) > w ? strlen(list[i].name) : w;
        printf("%-*s  %10s  %-8s  %s\n", (int)w, "NAME", "SIZE", "QUANT", "PATH");
        for (size_t i = 0; i < n; i++) {
            char size[32];
            fmt_size(list[i].partial ? list[i].partial_bytes : list[i].size, size, sizeof size);
            if (list[i].partial) {
                char pct[48] = "";
                if (list[i].size)
                    snprintf(pct, sizeof pct, " at %d%%", (int)(100.0 * (double)list[i].partial_bytes / (double)list[i].size));
                printf("%-*s  %10s  %-8s  %s.part (partial%s; 'parley pull %s' resumes it)\n", (int)w, list[i].name,
                       size, list[i].quant[0] ? list[i].quant : "-", list[i].path, pct, list[i].name);
            } else {
                printf("%-*s  %10s  %-8s  %s\n", (int)w, list[i].name, size, list[i].quant[0] ? list[i].quant : "-",
                       list[i].path);
            }
        }
    }
    pl_store_list_free(s, list);
    pl_store_free(s);
    return rc;
}

int cmd_rm(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        printf("usage: parley rm NAME...\n"
               "\n"
               "Remove models from the store (the file, its manifest and any partial download).\n"
               "Only store names are accepted (see 'parley list'); paths outside the store are never touched.\n");
        return 0;
    }
    if (argc < 2) return pl_cli_usage_error(cli, "missing NAME");
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') return pl_cli_usage_error(cli, "unknown option '%s'", argv[i]);
    pl_store *s = NULL;
    if (pl_store_open(cli->ctx, NULL, &s) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (pl_store_remove(s, argv[i]) == PL_OK) fprintf(stderr, "parley rm: removed %s\n", argv[i]);
        else rc = pl_cli_fail(cli, "%s", pl_store_last_error(s));
    }
    pl_store_free(s);
    return rc;
}
