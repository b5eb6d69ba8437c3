/*
 * cmd_tokenize.c - `parley tokenize -m FILE.gguf [--ids|--pieces] [--no-bos]
 *                  [--no-parse-special] [--stats] [--stdin | TEXT]`
 *
 * Tokenizes TEXT (or all of stdin, raw: no trimming, no newline removal) with
 * the vocabulary of a GGUF file and prints the tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parley/gguf.h"
#include "parley/store.h"
#include "parley/tokenizer.h"

static const char usage_text[] =
    "usage: parley tokenize -m FILE.gguf [options] [--stdin | TEXT]\n"
    "\n"
    "Tokenize TEXT (or stdin, read raw) with the file's vocabulary.\n"
    "Default output: one token per line, its id and its decoded piece.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE     GGUF file with a tokenizer (a vocabulary-only file is fine),\n"
    "                       or the name of a model in the store (see 'parley list')\n"
    "  --ids                print only the ids, space-separated on one line\n"
    "  --pieces             print only the decoded pieces, one quoted piece per line\n"
    "  --no-bos             never add BOS (EOS is still added if the vocabulary asks)\n"
    "  --no-parse-special   treat special-token text such as <|im_end|> as plain text\n"
    "  --stdin              read the text from stdin (raw bytes)\n"
    "  --stats              print bytes, tokens and encode throughput to stderr\n"
    "  -h, --help           this text\n";

typedef enum out_mode { OUT_TABLE, OUT_IDS, OUT_PIECES } out_mode;

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void print_quoted(const char *s, size_t n) {
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('\'');
}

/* ids, space-separated: formatted by hand into one buffer (the CLI is used to
 * measure tokenizer throughput, so printing must not dominate). */
static int print_ids(const pl_token *ids, size_t n) {
    size_t cap = n * 12 + 2;
    char *buf = malloc(cap);
    if (!buf) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char tmp[12];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (i) buf[o++] = ' ';
        while (k) buf[o++] = tmp[--k];
    }
    buf[o++] = '\n';
    fwrite(buf, 1, o, stdout);
    free(buf);
    return 0;
}

int cmd_tokenize(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *model = NULL, *text_arg = NULL;
    bool use_stdin = false, stats = false;
    out_mode mode = OUT_TABLE;
    pl_encode_params ep = pl_encode_default_params();
    ep.parse_special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (pl_cli_is_opt(a, "-m") || pl_cli_is_opt(a, "--model")) {
            if (!(model = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (strcmp(a, "--ids") == 0) {
            mode = OUT_IDS;
        } else if (strcmp(a, "--pieces") == 0) {
            mode = OUT_PIECES;
        } else if (strcmp(a, "--no-bos") == 0) {
            ep.add_bos = false;
        } else if (strcmp(a, "--no-parse-special") == 0) {
            ep.parse_special = false;
        } else if (strcmp(a, "--stdin") == 0) {
            use_stdin = true;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) {
                if (text_arg || i + 2 < argc) return pl_cli_usage_error(cli, "give one TEXT argument");
                text_arg = argv[i + 1];
            }
            break;
        } else if (a[0] == '-' && a[1] != '\0') {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else {
            if (text_arg) return pl_cli_usage_error(cli, "give one TEXT argument (quote it)");
            text_arg = a;
        }
    }
    if (!model) return pl_cli_usage_error(cli, "-m FILE.gguf is required");
    if (use_stdin && text_arg) return pl_cli_usage_error(cli, "give either --stdin or TEXT, not both");
    if (!use_stdin && !text_arg) return pl_cli_usage_error(cli, "give TEXT or --stdin");

    pl_tokenizer *tok = NULL;
    pl_tok_scratch *scratch = NULL;
    char *input = NULL, *resolved = NULL;
    pl_token *ids = NULL;
    int rc = 1;
    /* -m NAME: a model in the store (see parley/store.h) */
    if (access(model, F_OK) != 0 && !strchr(model, '/') && pl_model_resolve(cli->ctx, model, &resolved) == PL_OK)
        model = resolved;
    pl_ctx_clear_error(cli->ctx);
    if (pl_tokenizer_load_file(cli->ctx, model, &tok) != PL_OK) {
        pl_cli_fail(cli, "%s: %s", model, pl_ctx_last_error(cli->ctx));
        goto out;
    }
    size_t len;
    const char *text;
    if (use_stdin) {
        input = read_all(stdin, &len);
        if (!input) {
            pl_cli_fail(cli, "cannot read stdin");
            goto out;
        }
        text = input;
    } else {
        text = text_arg;
        len = strlen(text_arg);
    }
    if (pl_tok_scratch_init(tok, &scratch) != PL_OK) {
        pl_cli_fail(cli, "out of memory");
        goto out;
    }
    /* a byte-level token covers at least one byte; +3 for BOS/EOS and slack */
    size_t cap = len + 3, n = 0;
    ids = malloc(cap * sizeof *ids);
    if (!ids) {
        pl_cli_fail(cli, "out of memory");
        goto out;
    }
    uint64_t t0 = pl_time_ns();
    pl_status st = pl_tokenizer_encode(tok, scratch, text, len, &ep, ids, cap, &n);
    if (st == PL_ERR_RANGE) { /* SPM byte fallback can exceed one id per byte */
        cap = n;
        pl_token *ni = realloc(ids, cap * sizeof *ids);
        if (!ni) {
            pl_cli_fail(cli, "out of memory");
            goto out;
        }
        ids = ni;
        st = pl_tokenizer_encode(tok, scratch, text, len, &ep, ids, cap, &n);
    }
    uint64_t t1 = pl_time_ns();
    if (st != PL_OK) {
        pl_cli_fail(cli, "tokenize failed: %s", pl_status_str(st));
        goto out;
    }
    if (stats) {
        double s = (double)(t1 - t0) / 1e9;
        fprintf(stderr, "parley tokenize: %zu bytes -> %zu tokens in %.3f ms (%.1f MB/s)\n", len, n, s * 1e3,
                s > 0 ? (double)len / 1e6 / s : 0.0);
    }
    if (mode == OUT_IDS) {
        if (print_ids(ids, n) != 0) {
            pl_cli_fail(cli, "out of memory");
            goto out;
        }
    } else {
        char *piece = malloc(pl_tokenizer_max_piece(tok) + 1);
        if (!piece) {
            pl_cli_fail(cli, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            size_t pl = pl_tokenizer_piece(tok, ids[i], true, piece, pl_tokenizer_max_piece(tok));
            if (mode == OUT_TABLE) printf("%6d ", (int)ids[i]);
            print_quoted(piece, pl);
            putchar('\n');
        }
        free(piece);
    }
    rc = 0;
out:
    free(ids);
    free(input);
    pl_free(cli->ctx, resolved);
    pl_tok_scratch_free(scratch);
    pl_tokenizer_free(tok);
    return rc;
}
