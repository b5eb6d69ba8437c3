/*
 * catalog.c - the built-in table of well-known models for `parley pull NAME`.
 *
 * Sources of the facts below (no value here is guessed):
 *  - repository and file names: the model publishers' Hugging Face repos
 *    (Qwen/..., bartowski/..., unsloth/..., ggerganov/whisper.cpp), checked
 *    against public download scripts and manifests that fetch them. Rows whose
 *    exact file name follows the publisher's naming pattern but was not seen
 *    in such a source are marked "name by pattern".
 *  - size and sha256: only where the file's Git LFS object id (the SHA-256
 *    Hugging Face shows on the file page) and byte size were found recorded
 *    identically by several independent public projects. Everywhere else they
 *    are left empty: the store then records the hash it computes at the first
 *    download and checks later downloads against it (trust on first use).
 *  - sha1: whisper.cpp's models/README.md publishes SHA-1 (not SHA-256) for
 *    its ggml files; those are checked too.
 *  - approx_mb: display only (a rough size for `parley pull --list`).
 * A publisher can replace a file on its main branch; a published-hash
 * mismatch then fails the pull with both hashes named, and `--sha256 HEX`
 * overrides the table after the user has checked the new file.
 */
#include <string.h>
#include <strings.h>

#include "store_int.h"

#define KIND_LLM     PL_MODEL_KIND_LLM
#define KIND_WHISPER PL_MODEL_KIND_WHISPER

static const pl_catalog_entry catalog[] = {
    /* ---- SmolLM2 Instruct (llama architecture), bartowski's quantizations ---- */
    { .name = "smollm2-135m-instruct:q4_k_m", .title = "SmolLM2 135M Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-135M-Instruct-GGUF",
      .file = "SmolLM2-135M-Instruct-Q4_K_M.gguf" /* name by pattern */, .approx_mb = 105, .preferred = true },
    { .name = "smollm2-135m-instruct:q8_0", .title = "SmolLM2 135M Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-135M-Instruct-GGUF",
      .file = "SmolLM2-135M-Instruct-Q8_0.gguf", .approx_mb = 145 },
    { .name = "smollm2-360m-instruct:q4_k_m", .title = "SmolLM2 360M Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-360M-Instruct-GGUF",
      .file = "SmolLM2-360M-Instruct-Q4_K_M.gguf", .size = 270590880,
      .sha256 = "2fa3f013dcdd7b99f9b237717fa0b12d75bbb89984cc1274be1471a465bac9c2", .preferred = true },
    { .name = "smollm2-360m-instruct:q8_0", .title = "SmolLM2 360M Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-360M-Instruct-GGUF",
      .file = "SmolLM2-360M-Instruct-Q8_0.gguf", .approx_mb = 386 },
    { .name = "smollm2-1.7b-instruct:q4_k_m", .title = "SmolLM2 1.7B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-1.7B-Instruct-GGUF",
      .file = "SmolLM2-1.7B-Instruct-Q4_K_M.gguf", .approx_mb = 1060, .preferred = true },
    { .name = "smollm2-1.7b-instruct:q8_0", .title = "SmolLM2 1.7B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/SmolLM2-1.7B-Instruct-GGUF",
      .file = "SmolLM2-1.7B-Instruct-Q8_0.gguf", .approx_mb = 1820 },

    /* ---- Qwen2.5 Instruct (qwen2 architecture), Qwen's own GGUF repos ---- */
    { .name = "qwen2.5-0.5b-instruct:q4_k_m", .title = "Qwen2.5 0.5B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      .file = "qwen2.5-0.5b-instruct-q4_k_m.gguf", .size = 491400032,
      .sha256 = "74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db", .preferred = true },
    { .name = "qwen2.5-0.5b-instruct:q8_0", .title = "Qwen2.5 0.5B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      .file = "qwen2.5-0.5b-instruct-q8_0.gguf", .approx_mb = 676 },
    { .name = "qwen2.5-1.5b-instruct:q4_k_m", .title = "Qwen2.5 1.5B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
      .file = "qwen2.5-1.5b-instruct-q4_k_m.gguf", .size = 1117320736,
      .sha256 = "6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e", .preferred = true },
    { .name = "qwen2.5-1.5b-instruct:q8_0", .title = "Qwen2.5 1.5B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
      .file = "qwen2.5-1.5b-instruct-q8_0.gguf", .approx_mb = 1890 },
    { .name = "qwen2.5-3b-instruct:q4_k_m", .title = "Qwen2.5 3B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-3B-Instruct-GGUF",
      .file = "qwen2.5-3b-instruct-q4_k_m.gguf", .size = 2104932768,
      .sha256 = "626b4a6678b86442240e33df819e00132d3ba7dddfe1cdc4fbb18e0a9615c62d", .preferred = true },
    { .name = "qwen2.5-3b-instruct:q8_0", .title = "Qwen2.5 3B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "Qwen/Qwen2.5-3B-Instruct-GGUF",
      .file = "qwen2.5-3b-instruct-q8_0.gguf" /* name by pattern */, .approx_mb = 3620 },

    /* ---- Qwen3 (qwen3 architecture, thinks in <think>): Qwen publishes Q8_0,
     *      unsloth the Q4_K_M ---- */
    { .name = "qwen3-0.6b:q4_k_m", .title = "Qwen3 0.6B", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "unsloth/Qwen3-0.6B-GGUF",
      .file = "Qwen3-0.6B-Q4_K_M.gguf", .approx_mb = 397, .preferred = true },
    { .name = "qwen3-0.6b:q8_0", .title = "Qwen3 0.6B", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "Qwen/Qwen3-0.6B-GGUF",
      .file = "Qwen3-0.6B-Q8_0.gguf", .size = 639446688,
      .sha256 = "9465e63a22add5354d9bb4b99e90117043c7124007664907259bd16d043bb031" },
    { .name = "qwen3-1.7b:q4_k_m", .title = "Qwen3 1.7B", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "unsloth/Qwen3-1.7B-GGUF",
      .file = "Qwen3-1.7B-Q4_K_M.gguf", .approx_mb = 1110, .preferred = true },
    { .name = "qwen3-1.7b:q8_0", .title = "Qwen3 1.7B", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "Qwen/Qwen3-1.7B-GGUF",
      .file = "Qwen3-1.7B-Q8_0.gguf", .size = 1834426016,
      .sha256 = "061b54daade076b5d3362dac252678d17da8c68f07560be70818cace6590cb1a" },

    /* ---- Llama 3.2 Instruct (llama architecture), bartowski's quantizations ---- */
    { .name = "llama-3.2-1b-instruct:q4_k_m", .title = "Llama 3.2 1B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/Llama-3.2-1B-Instruct-GGUF",
      .file = "Llama-3.2-1B-Instruct-Q4_K_M.gguf", .size = 807694464,
      .sha256 = "6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83", .preferred = true },
    { .name = "llama-3.2-1b-instruct:q8_0", .title = "Llama 3.2 1B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/Llama-3.2-1B-Instruct-GGUF",
      .file = "Llama-3.2-1B-Instruct-Q8_0.gguf" /* name by pattern */, .approx_mb = 1320 },
    { .name = "llama-3.2-3b-instruct:q4_k_m", .title = "Llama 3.2 3B Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/Llama-3.2-3B-Instruct-GGUF",
      .file = "Llama-3.2-3B-Instruct-Q4_K_M.gguf", .size = 2019377696,
      .sha256 = "6c1a2b41161032677be168d354123594c0e6e67d2b9227c84f296ad037c728ff", .preferred = true },
    { .name = "llama-3.2-3b-instruct:q8_0", .title = "Llama 3.2 3B Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/Llama-3.2-3B-Instruct-GGUF",
      .file = "Llama-3.2-3B-Instruct-Q8_0.gguf", .approx_mb = 3420 },

    /* ---- Phi-3.5 mini Instruct (phi3 architecture), bartowski's quantizations ---- */
    { .name = "phi-3.5-mini-instruct:q4_k_m", .title = "Phi-3.5 mini Instruct", .quant = "Q4_K_M",
      .kind = KIND_LLM, .repo = "bartowski/Phi-3.5-mini-instruct-GGUF",
      .file = "Phi-3.5-mini-instruct-Q4_K_M.gguf", .approx_mb = 2390, .preferred = true },
    { .name = "phi-3.5-mini-instruct:q8_0", .title = "Phi-3.5 mini Instruct", .quant = "Q8_0",
      .kind = KIND_LLM, .repo = "bartowski/Phi-3.5-mini-instruct-GGUF",
      .file = "Phi-3.5-mini-instruct-Q8_0.gguf" /* name by pattern */, .approx_mb = 4060 },

    /* ---- Whisper (whisper.cpp ggml files, F16), for speech-to-text ---- */
    { .name = "whisper-tiny.en", .title = "Whisper tiny (English)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-tiny.en.bin",
      .sha1 = "c78c86eb1a8faa21b369bcd33207cc90d64ae9df", .approx_mb = 78, .preferred = true },
    { .name = "whisper-tiny", .title = "Whisper tiny (multilingual)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-tiny.bin",
      .sha1 = "bd577a113a864445d4c299885e0cb97d4ba92b5f", .approx_mb = 78, .preferred = true },
    { .name = "whisper-base.en", .title = "Whisper base (English)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-base.en.bin",
      .sha1 = "137c40403d78fd54d454da0f9bd998f78703390c", .approx_mb = 148, .preferred = true },
    { .name = "whisper-base", .title = "Whisper base (multilingual)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-base.bin",
      .sha1 = "465707469ff3a37a2b9b8d8f89f2f99de7299dac", .approx_mb = 148, .preferred = true },
    { .name = "whisper-small.en", .title = "Whisper small (English)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-small.en.bin",
      .sha1 = "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022", .approx_mb = 488, .preferred = true },
    { .name = "whisper-small", .title = "Whisper small (multilingual)", .quant = "F16",
      .kind = KIND_WHISPER, .repo = "ggerganov/whisper.cpp", .file = "ggml-small.bin",
      .sha1 = "55356645c2b361a969dfd0ef2c5a50d530afd8d5", .approx_mb = 488, .preferred = true },
};

static const char *const kind_names[PL_MODEL_KIND_COUNT] = {
    [PL_MODEL_KIND_LLM] = "llm",
    [PL_MODEL_KIND_WHISPER] = "whisper",
};

const char *pl_model_kind_name(pl_model_kind k) {
    return (unsigned)k < PL_MODEL_KIND_COUNT ? kind_names[k] : "unknown";
}

size_t pl_catalog_count(void) { return sizeof catalog / sizeof catalog[0]; }

const pl_catalog_entry *pl_catalog_at(size_t i) {
    return i < pl_catalog_count() ? &catalog[i] : NULL;
}

const pl_catalog_entry *pl_catalog_find(const char *name) {
    if (!name || !*name) return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < pl_catalog_count(); i++)
        if (strcasecmp(catalog[i].name, name) == 0) return &catalog[i];
    if (memchr(name, ':', n)) return NULL;
    /* a family name: the preferred row whose name is "<name>:..." */
    for (size_t i = 0; i < pl_catalog_count(); i++)
        if (catalog[i].preferred && strncasecmp(catalog[i].name, name, n) == 0 && catalog[i].name[n] == ':')
            return &catalog[i];
    return NULL;
}
