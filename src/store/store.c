/*
 * store.c - the model store directory: names, manifests, list, resolve, remove.
 * Downloads are in pull.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "parley/gguf.h"
#include "parley/tensor.h"
#include "store_int.h"

pl_status pl_store_errf(pl_store *s, pl_status st, const char *fmt, ...) {
    if (!s) return st;
    va_list ap;
    va_start(ap, fmt);
    char tmp[sizeof s->err];
    vsnprintf(tmp, sizeof tmp, fmt, ap); /* fmt may quote s->err itself */
    va_end(ap);
    memcpy(s->err, tmp, sizeof tmp);
    return st;
}

static bool copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_regular_file(const char *path, uint64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (size) *size = (uint64_t)st.st_size;
    return true;
}

/* ---- open / free ---- */

pl_status pl_store_open(pl_ctx *ctx, const char *dir, pl_store **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "store: out is NULL");
    *out = NULL;
    char buf[PL_STORE_PATH_MAX];
    if (!dir || !*dir) {
        const char *home = getenv("PARLEY_HOME");
        if (home && *home) {
            dir = home;
        } else {
            home = getenv("HOME");
            if (!home || !*home)
                return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "store: neither $PARLEY_HOME nor $HOME is set");
            int n = snprintf(buf, sizeof buf, "%s/.local/share/parley/models", home);
            if (n < 0 || (size_t)n >= sizeof buf) return pl_ctx_err(ctx, PL_ERR_RANGE, "store: $HOME is too long");
            dir = buf;
        }
    }
    /* room for "/<name>.gguf.part.json" after the directory */
    if (strlen(dir) + PL_STORE_NAME_MAX + 16 >= PL_STORE_PATH_MAX)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "store: directory path is too long");
    pl_store *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "store: out of memory");
    s->ctx = ctx;
    copy_str(s->dir, sizeof s->dir, dir);
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/') s->dir[--n] = '\0';
    *out = s;
    return PL_OK;
}

void pl_store_free(pl_store *s) {
    if (!s) return;
    pl_free(s->ctx, s);
}

const char *pl_store_dir(const pl_store *s) { return s ? s->dir : ""; }
const char *pl_store_last_error(const pl_store *s) { return s ? s->err : ""; }

/* ---- names ---- */

static bool name_char(int c) {
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == ':';
}

bool pl_store_name_valid(const char *name) {
    if (!name || !*name || name[0] == '.' || name[0] == '-') return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++)
        if (!name_char(*p) || n + 1 >= PL_STORE_NAME_MAX) return false;
    return true;
}

bool pl_store_file_path(const pl_store *s, const char *name, const char *ext, char *out, size_t cap) {
    char file[PL_STORE_NAME_MAX + 8];
    size_t n = strlen(name);
    if (n + strlen(ext) >= sizeof file) return false;
    for (size_t i = 0; i < n; i++) file[i] = name[i] == ':' ? '-' : name[i];
    strcpy(file + n, ext);
    int w = snprintf(out, cap, "%s/%s", s->dir, file);
    return w > 0 && (size_t)w < cap;
}

bool pl_store_name_from_file(const char *file, char *name, size_t name_cap, char *ext, size_t ext_cap) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    const char *e = "";
    if (n > 5 && strcasecmp(base + n - 5, ".gguf") == 0) {
        e = ".gguf";
        n -= 5;
    } else if (n > 4 && strcasecmp(base + n - 4, ".bin") == 0) {
        e = ".bin";
        n -= 4;
    }
    if (n == 0 || n >= name_cap || n >= PL_STORE_NAME_MAX || strlen(e) >= ext_cap) return false;
    for (size_t i = 0; i < n; i++) name[i] = name_char((unsigned char)base[i]) && base[i] != ':' ? base[i] : '_';
    name[n] = '\0';
    if (name[0] == '.' || name[0] == '-') name[0] = '_';
    strcpy(ext, e);
    return pl_store_name_valid(name);
}

void pl_hex(const unsigned char *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

bool pl_is_hex(const char *s, size_t n) {
    if (!s || strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

/* ---- manifests ---- */

static bool json_str(const cJSON *o, const char *key, char *dst, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        dst[0] = '\0';
        return true;
    }
    return cJSON_IsString(v) && v->valuestring && copy_str(dst, cap, v->valuestring);
}

pl_status pl_manifest_read(pl_store *s, const char *path, pl_manifest *m) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND
                               : pl_store_errf(s, PL_ERR_IO, "%s: %s", path, strerror(errno));
    char buf[PL_MANIFEST_MAX_BYTES + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf) break;
    }
    close(fd);
    if (len > PL_MANIFEST_MAX_BYTES) return pl_store_errf(s, PL_ERR_FORMAT, "%s: manifest is too large", path);
    cJSON *o = cJSON_ParseWithLength(buf, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pl_store_errf(s, PL_ERR_FORMAT, "%s: manifest is not a JSON object", path);
    }
    bool ok = json_str(o, "name", m->name, sizeof m->name) && json_str(o, "url", m->url, sizeof m->url) &&
              json_str(o, "sha256", m->sha256, sizeof m->sha256) && json_str(o, "sha1", m->sha1, sizeof m->sha1) &&
              json_str(o, "hash_source", m->hash_source, sizeof m->hash_source) &&
              json_str(o, "quant", m->quant, sizeof m->quant) && json_str(o, "kind", m->kind, sizeof m->kind) &&
              json_str(o, "etag", m->etag, sizeof m->etag);
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size");
    if (ok && sz) {
        ok = cJSON_IsNumber(sz) && sz->valuedouble >= 0 && sz->valuedouble < 9.0e15;
        if (ok) m->size = (uint64_t)sz->valuedouble;
    }
    cJSON_Delete(o);
    if (!ok || (m->name[0] && !pl_store_name_valid(m->name)) || (m->sha256[0] && !pl_is_hex(m->sha256, 64)) ||
        (m->sha1[0] && !pl_is_hex(m->sha1, 40)))
        return pl_store_errf(s, PL_ERR_FORMAT, "%s: malformed manifest", path);
    return PL_OK;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

pl_status pl_manifest_write(pl_store *s, const char *path, const pl_manifest *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return pl_store_errf(s, PL_ERR_NOMEM, "out of memory");
    struct { const char *key, *val; } fields[] = {
        { "name", m->name }, { "url", m->url }, { "sha256", m->sha256 }, { "sha1", m->sha1 },
        { "hash_source", m->hash_source }, { "quant", m->quant }, { "kind", m->kind }, { "etag", m->etag },
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].val[0]) ok = ok && cJSON_AddStringToObject(o, fields[i].key, fields[i].val);
    ok = ok && cJSON_AddNumberToObject(o, "size", (double)m->size);
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return pl_store_errf(s, PL_ERR_NOMEM, "out of memory");
    char tmp[PL_STORE_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    pl_status st = PL_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = pl_store_errf(s, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
    } else {
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL; written with the length below */
        if (write_all(fd, text, n + 1) != 0 || fsync(fd) != 0)
            st = pl_store_errf(s, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
        close(fd);
        if (st == PL_OK && rename(tmp, path) != 0) st = pl_store_errf(s, PL_ERR_IO, "%s: %s", path, strerror(errno));
        if (st != PL_OK) unlink(tmp);
    }
    cJSON_free(text);
    return st;
}

/* ---- pull targets ---- */

static bool url_path_char(int c) {
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '/' || c == '%' || c == '=' ||
           c == '~';
}

static pl_status target_paths(pl_store *s, pl_pull_target *t) {
    if (!pl_store_file_path(s, t->name, t->ext, t->path, sizeof t->path) ||
        snprintf(t->part, sizeof t->part, "%s.part", t->path) >= (int)sizeof t->part ||
        snprintf(t->part_meta, sizeof t->part_meta, "%s.part.json", t->path) >= (int)sizeof t->part_meta ||
        snprintf(t->manifest, sizeof t->manifest, "%s.json", t->path) >= (int)sizeof t->manifest)
        return pl_store_errf(s, PL_ERR_RANGE, "store path too long for '%s'", t->name);
    return PL_OK;
}

static void trim_endpoint(const char *endpoint, char *out, size_t cap) {
    snprintf(out, cap, "%s", endpoint);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/') out[--n] = '\0';
}

/* hf://OWNER/REPO/PATH -> ENDPOINT/OWNER/REPO/resolve/main/PATH */
static pl_status hf_url(pl_store *s, const char *spec, const char *endpoint, pl_pull_target *t, const char **file) {
    const char *p = spec + 5;
    const char *slash1 = strchr(p, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (!slash1 || !slash2 || slash1 == p || slash2 == slash1 + 1 || !slash2[1] || ends_with(spec, "/"))
        return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s': expected hf://OWNER/REPO/FILE", spec);
    for (const char *q = p; *q; q++) {
        bool in_repo = q < slash2;
        if (in_repo ? !(isalnum((unsigned char)*q) || strchr("._-/", *q)) : !url_path_char((unsigned char)*q))
            return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s': character '%c' is not allowed in a Hugging Face path",
                                 spec, *q);
    }
    if (strstr(p, "..") || strstr(p, "//"))
        return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s': '..' and '//' are not allowed", spec);
    char base[PL_STORE_URL_MAX];
    trim_endpoint(endpoint, base, sizeof base);
    int n = snprintf(t->url, sizeof t->url, "%s/%.*s/resolve/main/%s", base, (int)(slash2 - p), p, slash2 + 1);
    if (n < 0 || (size_t)n >= sizeof t->url) return pl_store_errf(s, PL_ERR_RANGE, "'%s': URL too long", spec);
    *file = slash2 + 1;
    return PL_OK;
}

pl_status pl_store_target(pl_store *s, const char *spec, const char *endpoint, const char *name_override,
                          pl_pull_target *t) {
    memset(t, 0, sizeof *t);
    if (!spec || !*spec) return pl_store_errf(s, PL_ERR_INVALID_ARG, "no model name given");
    if (name_override && !pl_store_name_valid(name_override))
        return pl_store_errf(s, PL_ERR_INVALID_ARG,
                             "'%s' is not a valid store name (letters, digits and . _ + : -; at most %d)",
                             name_override, PL_STORE_NAME_MAX - 1);
    const char *file = NULL;
    if (strncmp(spec, "hf://", 5) == 0) {
        pl_status st = hf_url(s, spec, endpoint, t, &file);
        if (st != PL_OK) return st;
    } else if (strncasecmp(spec, "https://", 8) == 0 || strncasecmp(spec, "http://", 7) == 0) {
        if (!copy_str(t->url, sizeof t->url, spec)) return pl_store_errf(s, PL_ERR_RANGE, "URL too long");
        for (const unsigned char *q = (const unsigned char *)spec; *q; q++)
            if (*q <= ' ' || *q >= 0x7f)
                return pl_store_errf(s, PL_ERR_INVALID_ARG, "URL has a space or control character");
        /* the file name: last path segment before any query or fragment */
        const char *host = strstr(spec, "://") + 3;
        size_t end = strcspn(host, "?#");
        const char *last = NULL;
        for (const char *q = host; q < host + end; q++)
            if (*q == '/') last = q;
        if (!last || last + 1 >= host + end) {
            if (!name_override)
                return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s': no file name in the URL; give one with --name",
                                     spec);
        } else {
            char fname[PL_STORE_NAME_MAX + 8];
            size_t fl = (size_t)(host + end - last - 1);
            if (fl >= sizeof fname) fl = sizeof fname - 1;
            memcpy(fname, last + 1, fl);
            fname[fl] = '\0';
            if (!pl_store_name_from_file(fname, t->name, sizeof t->name, t->ext, sizeof t->ext) && !name_override)
                return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s': cannot make a store name from '%s'; use --name",
                                     spec, fname);
        }
    } else {
        const pl_catalog_entry *c = pl_catalog_find(spec);
        if (c) {
            t->cat = c;
            copy_str(t->name, sizeof t->name, c->name);
            char dummy[PL_STORE_NAME_MAX];
            pl_store_name_from_file(c->file, dummy, sizeof dummy, t->ext, sizeof t->ext);
            char base[PL_STORE_URL_MAX];
            trim_endpoint(endpoint, base, sizeof base);
            snprintf(t->url, sizeof t->url, "%s/%s/resolve/main/%s", base, c->repo, c->file);
        } else if (pl_store_name_valid(spec)) {
            /* a name pulled earlier from a URL: its manifest records where from */
            static const char *const exts[] = { ".gguf", ".bin", "" };
            for (size_t i = 0; i < 3 && !t->url[0]; i++) {
                copy_str(t->name, sizeof t->name, spec);
                copy_str(t->ext, sizeof t->ext, exts[i]);
                if (target_paths(s, t) != PL_OK) continue;
                pl_manifest m;
                if (pl_manifest_read(s, t->manifest, &m) == PL_OK && m.url[0] && strcmp(m.name, spec) == 0)
                    copy_str(t->url, sizeof t->url, m.url);
            }
        }
        if (!t->url[0])
            return pl_store_errf(s, PL_ERR_NOT_FOUND,
                                 "unknown model '%s': not in the catalog (see 'parley pull --list') and not a "
                                 "hf://OWNER/REPO/FILE or https:// URL",
                                 spec);
    }
    if (file && !pl_store_name_from_file(file, t->name, sizeof t->name, t->ext, sizeof t->ext) && !name_override)
        return pl_store_errf(s, PL_ERR_INVALID_ARG, "cannot make a store name from '%s'; use --name", file);
    if (name_override) copy_str(t->name, sizeof t->name, name_override);
    return target_paths(s, t);
}

/* ---- find a model in the store ---- */

/* Path of an existing model file in the store for name, or false. */
static bool find_in_store(pl_store *s, const char *name, char *out, size_t cap) {
    if (!pl_store_name_valid(name)) return false;
    const pl_catalog_entry *c = pl_catalog_find(name);
    if (c) {
        char n2[PL_STORE_NAME_MAX], ext[8];
        if (pl_store_name_from_file(c->file, n2, sizeof n2, ext, sizeof ext) &&
            pl_store_file_path(s, c->name, ext, out, cap) && is_regular_file(out, NULL))
            return true;
    }
    static const char *const exts[] = { ".gguf", ".bin", "" };
    for (size_t i = 0; i < 3; i++)
        if (pl_store_file_path(s, name, exts[i], out, cap) && !ends_with(out, ".json") &&
            !ends_with(out, ".part") && is_regular_file(out, NULL))
            return true;
    /* a manifest that carries this name (e.g. a URL pull saved under --name) */
    DIR *d = opendir(s->dir);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".json") || ends_with(e->d_name, ".part.json")) continue;
        char mpath[PL_STORE_PATH_MAX];
        if (snprintf(mpath, sizeof mpath, "%s/%s", s->dir, e->d_name) >= (int)sizeof mpath) continue;
        pl_manifest m;
        if (pl_manifest_read(s, mpath, &m) != PL_OK || strcmp(m.name, name) != 0) continue;
        size_t n = strlen(mpath) - 5; /* minus ".json" */
        if (n < cap) {
            memcpy(out, mpath, n);
            out[n] = '\0';
            found = is_regular_file(out, NULL);
        }
    }
    closedir(d);
    s->err[0] = '\0'; /* a malformed manifest met on the way is not this call's error */
    return found;
}

pl_status pl_store_resolve(pl_store *s, const char *spec, char **path_out) {
    if (!s || !spec || !path_out) return pl_store_errf(s, PL_ERR_INVALID_ARG, "resolve: NULL argument");
    *path_out = NULL;
    s->err[0] = '\0';
    char path[PL_STORE_PATH_MAX];
    if (!*spec) return pl_store_errf(s, PL_ERR_INVALID_ARG, "empty model name");
    bool is_url = strncmp(spec, "hf://", 5) == 0 || strncasecmp(spec, "https://", 8) == 0 ||
                  strncasecmp(spec, "http://", 7) == 0;
    if (!is_url && is_regular_file(spec, NULL)) {
        if (!copy_str(path, sizeof path, spec)) return pl_store_errf(s, PL_ERR_RANGE, "path too long");
    } else if (is_url) {
        pl_pull_target t;
        pl_status st = pl_store_target(s, spec, PL_STORE_HF_ENDPOINT, NULL, &t);
        if (st != PL_OK) return st;
        if (!find_in_store(s, t.name, path, sizeof path))
            return pl_store_errf(s, PL_ERR_NOT_FOUND, "model '%s' is not in the store (%s); run 'parley pull %s'",
                                 t.name, s->dir, spec);
    } else if (strchr(spec, '/') || !pl_store_name_valid(spec)) {
        return pl_store_errf(s, PL_ERR_NOT_FOUND, "%s: no such file", spec);
    } else if (!find_in_store(s, spec, path, sizeof path)) {
        const pl_catalog_entry *c = pl_catalog_find(spec);
        if (c)
            return pl_store_errf(s, PL_ERR_NOT_FOUND,
                                 "model '%s' is not downloaded yet (store: %s); run 'parley pull %s'", c->name,
                                 s->dir, c->name);
        return pl_store_errf(s, PL_ERR_NOT_FOUND,
                             "'%s' is not a file, not in the model store (%s) and not a known model name "
                             "(see 'parley pull --list')",
                             spec, s->dir);
    }
    *path_out = pl_strdup(s->ctx, path);
    return *path_out ? PL_OK : pl_store_errf(s, PL_ERR_NOMEM, "out of memory");
}

pl_status pl_model_resolve(pl_ctx *ctx, const char *spec, char **path_out) {
    if (path_out) *path_out = NULL;
    /* an existing file needs no store (and no $HOME) */
    if (spec && path_out && strncmp(spec, "hf://", 5) != 0 && is_regular_file(spec, NULL)) {
        *path_out = pl_strdup(ctx, spec);
        return *path_out ? PL_OK : pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    }
    pl_store *s = NULL;
    pl_status st = pl_store_open(ctx, NULL, &s);
    if (st != PL_OK) return st;
    st = pl_store_resolve(s, spec, path_out);
    if (st != PL_OK) pl_ctx_err(ctx, st, "%s", s->err);
    pl_store_free(s);
    return st;
}

/* ---- remove ---- */

static int unlink_if(const char *path, bool *removed) {
    if (unlink(path) == 0) {
        *removed = true;
        return 0;
    }
    return errno == ENOENT ? 0 : -1;
}

pl_status pl_store_remove(pl_store *s, const char *name) {
    if (!s || !name) return pl_store_errf(s, PL_ERR_INVALID_ARG, "remove: NULL argument");
    s->err[0] = '\0';
    if (!pl_store_name_valid(name))
        return pl_store_errf(s, PL_ERR_INVALID_ARG, "'%s' is not a store name (rm removes store models only)", name);
    char path[PL_STORE_PATH_MAX];
    bool have_file = find_in_store(s, name, path, sizeof path);
    if (!have_file) {
        /* maybe only a partial download: where the file would go */
        const pl_catalog_entry *c = pl_catalog_find(name);
        char cname[PL_STORE_NAME_MAX], cext[8] = "";
        if (c) pl_store_name_from_file(c->file, cname, sizeof cname, cext, sizeof cext);
        const char *const exts[] = { cext, ".gguf", ".bin", "" };
        bool found = false;
        for (size_t i = c ? 0 : 1; i < 4 && !found; i++) {
            char part[PL_STORE_PATH_MAX + 8];
            if (!pl_store_file_path(s, c ? c->name : name, exts[i], path, sizeof path)) continue;
            snprintf(part, sizeof part, "%s.part", path);
            found = is_regular_file(part, NULL);
        }
        if (!found) return pl_store_errf(s, PL_ERR_NOT_FOUND, "'%s' is not in the store (%s)", name, s->dir);
    }
    static const char *const suffixes[] = { "", ".json", ".part", ".part.json" };
    bool removed = false;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[PL_STORE_PATH_MAX + 16];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        if (unlink_if(p, &removed) != 0) return pl_store_errf(s, PL_ERR_IO, "%s: %s", p, strerror(errno));
    }
    if (!removed) return pl_store_errf(s, PL_ERR_NOT_FOUND, "'%s' is not in the store (%s)", name, s->dir);
    return PL_OK;
}

/* ---- list ---- */

void pl_store_gguf_quant(pl_ctx *ctx, const char *path, char *out, size_t cap) {
    pl_gguf *g = NULL;
    if (pl_gguf_open(ctx, path, &g) != PL_OK) {
        pl_ctx_clear_error(ctx);
        return;
    }
    uint32_t ft = 0;
    const char *nm = pl_gguf_get_u32(g, "general.file_type", &ft) == PL_OK ? pl_ftype_name(ft) : NULL;
    if (nm) snprintf(out, cap, "%s", nm);
    pl_gguf_free(g);
}

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const pl_store_entry *)a)->name, ((const pl_store_entry *)b)->name);
}

pl_status pl_store_list(pl_store *s, pl_store_entry **out, size_t *n_out) {
    if (!s || !out || !n_out) return pl_store_errf(s, PL_ERR_INVALID_ARG, "list: NULL argument");
    *out = NULL;
    *n_out = 0;
    s->err[0] = '\0';
    DIR *d = opendir(s->dir);
    if (!d) return errno == ENOENT ? PL_OK : pl_store_errf(s, PL_ERR_IO, "%s: %s", s->dir, strerror(errno));
    pl_store_entry *list = NULL;
    size_t n = 0, cap = 0;
    pl_status st = PL_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *f = e->d_name;
        if (f[0] == '.' || ends_with(f, ".json") || ends_with(f, ".tmp")) continue;
        bool partial = ends_with(f, ".part");
        char path[PL_STORE_PATH_MAX];
        uint64_t size = 0;
        if (snprintf(path, sizeof path, "%s/%s", s->dir, f) >= (int)sizeof path || !is_regular_file(path, &size))
            continue;
        if (partial) {
            path[strlen(path) - 5] = '\0';
            if (is_regular_file(path, NULL)) continue; /* stale .part beside a finished file */
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16, bytes;
            if (!pl_size_mul(nc, sizeof *list, &bytes)) { st = PL_ERR_OVERFLOW; break; }
            pl_store_entry *nl = pl_realloc(s->ctx, list, bytes);
            if (!nl) { st = pl_store_errf(s, PL_ERR_NOMEM, "out of memory"); break; }
            list = nl;
            cap = nc;
        }
        pl_store_entry *en = &list[n];
        memset(en, 0, sizeof *en);
        copy_str(en->path, sizeof en->path, path);
        en->partial = partial;
        if (partial) en->partial_bytes = size;
        else en->size = size;
        char mpath[PL_STORE_PATH_MAX + 8];
        snprintf(mpath, sizeof mpath, "%s%s", path, partial ? ".part.json" : ".json");
        pl_manifest m;
        if (pl_manifest_read(s, mpath, &m) == PL_OK && m.name[0]) {
            en->has_manifest = !partial;
            copy_str(en->name, sizeof en->name, m.name);
            copy_str(en->quant, sizeof en->quant, m.quant);
            copy_str(en->sha256, sizeof en->sha256, m.sha256);
            copy_str(en->hash_source, sizeof en->hash_source, m.hash_source);
            if (partial) en->size = m.size;
        } else {
            char ext[8];
            if (!pl_store_name_from_file(path, en->name, sizeof en->name, ext, sizeof ext)) continue;
        }
        s->err[0] = '\0';
        const pl_catalog_entry *c = pl_catalog_find(en->name);
        if (!en->quant[0] && c) copy_str(en->quant, sizeof en->quant, c->quant);
        if (!en->quant[0] && !partial && ends_with(path, ".gguf"))
            pl_store_gguf_quant(s->ctx, path, en->quant, sizeof en->quant);
        n++;
    }
    closedir(d);
    if (st != PL_OK) {
        pl_free(s->ctx, list);
        return st;
    }
    if (n > 1) qsort(list, n, sizeof *list, entry_cmp);
    *out = list;
    *n_out = n;
    return PL_OK;
}

void pl_store_list_free(pl_store *s, pl_store_entry *list) {
    if (s && list) pl_free(s->ctx, list);
}

/* ---- hashing ---- */

pl_status pl_sha256_file(pl_ctx *ctx, const char *path, char hex[65]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pl_ctx_err(ctx, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1u << 20;
    unsigned char *buf = pl_malloc(ctx, cap);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    pl_status st = PL_OK;
    if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        st = pl_ctx_err(ctx, PL_ERR_NOMEM, "sha256: out of memory");
    } else {
        for (;;) {
            ssize_t r = read(fd, buf, cap);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) { st = pl_ctx_err(ctx, PL_ERR_IO, "%s: %s", path, strerror(errno)); break; }
            if (r == 0) break;
            EVP_DigestUpdate(md, buf, (size_t)r);
        }
        unsigned char dig[32];
        unsigned int dl = 0;
        if (st == PL_OK && EVP_DigestFinal_ex(md, dig, &dl) == 1 && dl == 32) pl_hex(dig, 32, hex);
        else if (st == PL_OK) st = pl_ctx_err(ctx, PL_ERR_INTERNAL, "sha256: digest failed");
    }
    EVP_MD_CTX_free(md);
    pl_free(ctx, buf);
    close(fd);
    return st;
}
