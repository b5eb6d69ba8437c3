/*
 * fuzz_multipart.c - libFuzzer target for the server's multipart/form-data
 * parser (POST /v1/audio/transcriptions uploads): pl_srv_multipart_parse on
 * arbitrary bytes. The first line of the input (up to '\n', at most 200
 * bytes) is the Content-Type header value, the rest is the body, copied to an
 * exact-size heap buffer so ASan sees any read past it (the parser must not
 * rely on a NUL).
 *
 * Invariants (abort on violation):
 *  - an accepted body gives at most `cap` parts, each with a non-empty,
 *    NUL-terminated name, and its data lies inside the body;
 *  - parts do not overlap and come in body order;
 *  - a rejection is a 400 with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#define FUZZ_NAME "fuzz_multipart"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    fuzz_write_text(dir, "form.txt",
               "multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
               "whisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".wav\"\r\n"
               "Content-Type: audio/wav\r\n\r\nRIFF\r\n--X\r\n\r\n--XyZ--\r\n");
    fuzz_write_text(dir, "quoted.txt",
               "multipart/form-data; charset=utf-8; boundary=\"a b\"\npreamble\r\n--a b\r\n\r\n\r\n--a b  \r\n"
               "content-disposition: form-data; name=x\r\n\r\nv\r\n--a b--");
    fuzz_write_text(dir, "truncated.txt", "multipart/form-data; boundary=q\n--q\r\nContent-Disposition: form-data; name=f\r\n\r\nab");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t nl = 0;
    while (nl < size && nl < 200 && data[nl] != '\n') nl++;
    char ct[201];
    memcpy(ct, data, nl);
    ct[nl] = 0;
    size_t blen = nl < size ? size - nl - 1 : 0;
    char *body = malloc(blen ? blen : 1);
    if (!body) return 0;
    if (blen) memcpy(body, data + nl + 1, blen);
    pl_srv_part parts[4];
    size_t n = 99;
    pl_srv_error err;
    memset(&err, 0, sizeof err);
    pl_status st = pl_srv_multipart_parse(ct, body, blen, parts, 4, &n, &err);
    if (st == PL_OK) {
        CHECK(n <= 4);
        const char *prev_end = body;
        for (size_t i = 0; i < n; i++) {
            CHECK(parts[i].name[0] != 0);
            CHECK(memchr(parts[i].name, 0, sizeof parts[i].name) != NULL);
            CHECK(memchr(parts[i].filename, 0, sizeof parts[i].filename) != NULL);
            CHECK(parts[i].data >= prev_end && parts[i].data + parts[i].len <= body + blen);
            prev_end = parts[i].data + parts[i].len;
            CHECK(pl_srv_multipart_find(parts, n, parts[i].name) != NULL);
        }
    } else {
        CHECK(st == PL_ERR_INVALID_ARG);
        CHECK(err.http == 400 && err.message[0]);
    }
    free(body);
    return 0;
}
