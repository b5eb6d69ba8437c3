/*
 * pretok.c - byte-level BPE pre-tokenizers: one table row per tokenizer.ggml.pre
 * value, each a list of regexes applied in sequence (HuggingFace "Split" with
 * the Isolated behaviour: matches and the gaps between them both become
 * pieces), compiled with PCRE2 (UTF + UCP, JIT).
 *
 * The patterns are the published pre_tokenizer definitions of each model
 * family's tokenizer.json, rewritten only where PCRE2 needs it:
 *  - \s / \S are rewritten to the exact Unicode White_Space set (PCRE2's \s also
 *    matches U+180E, which the reference engines do not);
 *  - non-ASCII characters are written as \x{...}.
 * PCRE2 backtracks like the reference engines (Oniguruma, fancy-regex), so
 * \s+(?!\S) leaves the last space of a run for the following word, and
 * (?i:'s|...) folds case as Unicode does.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "tokenizer/tokenizer_int.h"

/* ---- shared patterns ---- */

/* GPT-2's ByteLevel regex (gpt-2, mpt, gpt-neox, starcoder after digits, ...). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* cl100k-style regex of Llama 3 (DIGITS = \p{N}{1,3}) and Qwen2 (DIGITS = \p{N}). */
#define RE_CL100K(DIGITS)                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" DIGITS               \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* CJK ideographs + (as published) U+0800..U+4E00 + Hangul: DeepSeek LLM/Coder. */
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

/* DeepSeek LLM's letter class: cased letters (Unicode L&) of the scripts it lists. */
#define RE_DEEPSEEK_LETTERS                                                                        \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"           \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"       \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"                \
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"  \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"               \
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"               \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"       \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"      \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"               \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"       \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"       \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"                 \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"                \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"               \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"               \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"           \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"       \
    "\\x{1E900}-\\x{1E943}]+"

/* ASCII + fullwidth punctuation, curly quotes, ideographic space/comma/stop. */
#define RE_DEEPSEEK_PUNCT "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"

#define ALIASES(...) ((const char *const[]){ __VA_ARGS__, NULL })

const pl_pretok_def pl_pretok_table[PL_PRETOK_COUNT] = {
    /* GPT-2 ByteLevel(use_regex). "default" (a BPE file converted without a
     * recognised pre-tokenizer) and unknown names also use this row. */
    [PL_PRETOK_GPT2] = {
        .name = "gpt-2",
        .aliases = ALIASES("default", "phi-2", "olmo", "jais", "jina-es", "jina-de", "gigachat",
                           "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe",
                           "exaone4", "trillion", "granite-docling", "a.x-4.0", "mellum"),
        .regex = { RE_GPT2 },
    },
    /* Llama 3.x: digits in groups of 1-3; a word that is a whole token is not
     * merged (ignore_merges in its tokenizer.json). */
    [PL_PRETOK_LLAMA3] = {
        .name = "llama-bpe",
        .aliases = ALIASES("llama3", "llama-v3", "dbrx", "smaug-bpe", "falcon3", "falcon-h1",
                           "pixtral", "chatglm-bpe", "glm4", "midm-2.0", "lfm2"),
        .regex = { RE_CL100K("\\p{N}{1,3}") },
        .ignore_merges = true,
        .add_bos = true,
    },
    /* Qwen2/2.5/3: single digits. */
    [PL_PRETOK_QWEN2] = {
        .name = "qwen2",
        .aliases = ALIASES("deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "grok-2"),
        .regex = { RE_CL100K("\\p{N}") },
    },
    /* Digits(individual_digits) then ByteLevel(use_regex). */
    [PL_PRETOK_SMOLLM] = {
        .name = "smollm",
        .regex = { "\\p{N}", RE_GPT2 },
    },
    [PL_PRETOK_STARCODER] = {
        .name = "starcoder",
        .aliases = ALIASES("command-r", "codeshell", "exaone", "minerva-7b"),
        .regex = { "\\p{N}", RE_GPT2 },
    },
    [PL_PRETOK_REFACT] = {
        .name = "refact",
        .regex = { "\\p{N}", RE_GPT2 },
    },
    /* DeepSeek LLM (and V2): newlines, letters, punctuation, trailing space,
     * CJK, then single digits. */
    [PL_PRETOK_DEEPSEEK_LLM] = {
        .name = "deepseek-llm",
        .regex = { "[\\r\\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, "\\s+$", RE_DEEPSEEK_CJK,
                   "\\p{N}" },
    },
    [PL_PRETOK_DEEPSEEK_CODER] = {
        .name = "deepseek-coder",
        .regex = { "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}" },
    },
    /* DeepSeek V3/R1: digits in 1-3, CJK + kana, then its word regex. */
    [PL_PRETOK_DEEPSEEK3] = {
        .name = "deepseek-v3",
        .aliases = ALIASES("hunyuan-dense"),
        .regex = { "\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
                   "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
                   "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    },
    /* Falcon: Punctuation(Contiguous), ByteLevel(use_regex), Digits(contiguous),
     * Split([0-9]{3}). The last two run after ByteLevel, i.e. on the byte-mapped
     * text (so a byte whose map image is numeric, such as 0xBD '½', splits). */
    [PL_PRETOK_FALCON] = {
        .name = "falcon",
        .regex = { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" },
        .mapped_from = 2,
    },
    [PL_PRETOK_MPT] = {
        .name = "mpt",
        .regex = { RE_GPT2 },
    },
    [PL_PRETOK_GPT_NEOX] = {
        .name = "gpt-neox",
        .regex = { RE_GPT2 },
    },
    [PL_PRETOK_BLOOM] = {
        .name = "bloom",
        .aliases = ALIASES("poro-chat", "gpt3-finnish"),
        .regex = { " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+" },
    },
    /* Mistral Tekken: case-aware words, single digits. */
    [PL_PRETOK_TEKKEN] = {
        .name = "tekken",
        .regex = { "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
                   "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
                   "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
        .ignore_merges = true,
        .add_bos = true,
    },
};

bool pl_pretok_lookup(const char *name, size_t len, pl_pretok *out) {
    for (int r = 0; r < PL_PRETOK_COUNT; r++) {
        const pl_pretok_def *d = &pl_pretok_table[r];
        if (strlen(d->name) == len && memcmp(d->name, name, len) == 0) {
            *out = (pl_pretok)r;
            return true;
        }
        for (const char *const *a = d->aliases; a && *a; a++) {
            if (strlen(*a) == len && memcmp(*a, name, len) == 0) {
                *out = (pl_pretok)r;
                return true;
            }
        }
    }
    return false;
}

/* Unicode White_Space, as a class body. */
#define WS_CLASS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

size_t pl_regex_rewrite_space(const char *pat, char *out, size_t cap) {
    size_t n = 0;
    bool in_class = false;
#define EMIT(str)                                                                  \
    do {                                                                           \
        const char *s_ = (str);                                                    \
        size_t l_ = strlen(s_);                                                    \
        if (n + l_ < cap) memcpy(out + n, s_, l_);                                 \
        n += l_;                                                                   \
    } while (0)
    for (size_t i = 0; pat[i]; i++) {
        char c = pat[i];
        if (c == '\\' && pat[i + 1]) {
            char e = pat[i + 1];
            i++;
            if (e == 's') {
                EMIT(in_class ? WS_CLASS : "[" WS_CLASS "]");
            } else if (e == 'S') {
                if (in_class) return 0;
                EMIT("[^" WS_CLASS "]");
            } else {
                char two[3] = { '\\', e, 0 };
                EMIT(two);
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            EMIT("[");
            /* a ']' (after an optional '^') right after '[' is literal */
            if (pat[i + 1] == '^') {
                EMIT("^");
                i++;
            }
            if (pat[i + 1] == ']') {
                EMIT("]");
                i++;
            }
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        char one[2] = { c, 0 };
        EMIT(one);
    }
#undef EMIT
    if (n < cap) out[n] = 0;
    else if (cap) out[cap - 1] = 0;
    return n;
}

/* PCRE2 allocations go through the ctx allocator. */
static void *rx_malloc(PCRE2_SIZE n, void *ud) { return pl_malloc((pl_ctx *)ud, n); }
static void rx_free(void *p, void *ud) { pl_free((pl_ctx *)ud, p); }

pl_status pl_regex_set_compile(pl_ctx *ctx, pl_pretok row, pl_regex_set *rs) {
    memset(rs, 0, sizeof *rs);
    if ((int)row < 0 || row >= PL_PRETOK_COUNT) return PL_ERR_INVALID_ARG;
    const pl_pretok_def *d = &pl_pretok_table[row];
    rs->mapped_from = d->mapped_from > 0 ? d->mapped_from : -1;
    pcre2_general_context *gctx = pcre2_general_context_create(rx_malloc, rx_free, ctx);
    if (!gctx) return PL_ERR_NOMEM;
    rs->gctx = gctx;
    pcre2_compile_context *cctx = pcre2_compile_context_create(gctx);
    if (!cctx) {
        pl_regex_set_free(rs);
        return PL_ERR_NOMEM;
    }
    pl_status st = PL_OK;
    for (int i = 0; i < PL_PRETOK_MAX_REGEX && d->regex[i]; i++) {
        size_t need = pl_regex_rewrite_space(d->regex[i], NULL, 0);
        char *pat = need ? pl_malloc(ctx, need + 1) : NULL;
        if (!pat) {
            st = need ? PL_ERR_NOMEM : PL_ERR_INTERNAL;
            break;
        }
        pl_regex_rewrite_space(d->regex[i], pat, need + 1);
        int err = 0;
        PCRE2_SIZE eoff = 0;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, need, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                         &err, &eoff, cctx);
        pl_free(ctx, pat);
        if (!code && err == PCRE2_ERROR_HEAP_FAILED) {
            st = pl_ctx_err(ctx, PL_ERR_NOMEM, "pre-tokenizer %s: out of memory compiling its regexes", d->name);
            break;
        }
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            st = pl_ctx_err(ctx, PL_ERR_INTERNAL, "pre-tokenizer %s regex %d does not compile: %s at %zu",
                            d->name, i, (const char *)msg, (size_t)eoff);
            break;
        }
        rs->code[i] = code;
        rs->jit[i] = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
        rs->n = i + 1;
    }
    pcre2_compile_context_free(cctx);
    if (st != PL_OK) pl_regex_set_free(rs);
    return st;
}

void pl_regex_set_free(pl_regex_set *rs) {
    if (!rs) return;
    for (int i = 0; i < PL_PRETOK_MAX_REGEX; i++) pcre2_code_free((pcre2_code *)rs->code[i]);
    pcre2_general_context_free((pcre2_general_context *)rs->gctx);
    memset(rs, 0, sizeof *rs);
}

/* JIT stack: a word longer than the default 32 KiB machine stack allows
 * (Tekken's repeated lookahead groups keep state per character) needs more.
 * Past this the match fails and the piece is kept whole. */
#define RX_JIT_STACK_MIN (32u << 10)
#define RX_JIT_STACK_MAX (1u << 20)

pl_status pl_regex_state_init(pl_ctx *ctx, const pl_regex_set *rs, pl_regex_state *st) {
    memset(st, 0, sizeof *st);
    st->ctx = ctx;
    pcre2_general_context *gctx = (pcre2_general_context *)rs->gctx;
    st->md = pcre2_match_data_create(1, gctx);
    st->mctx = pcre2_match_context_create(gctx);
    st->jstack = pcre2_jit_stack_create(RX_JIT_STACK_MIN, RX_JIT_STACK_MAX, gctx);
    if (!st->md || !st->mctx || !st->jstack) {
        pl_regex_state_free(st);
        return PL_ERR_NOMEM;
    }
    pcre2_jit_stack_assign((pcre2_match_context *)st->mctx, NULL, st->jstack);
    return PL_OK;
}

void pl_regex_state_free(pl_regex_state *st) {
    if (!st) return;
    pcre2_match_data_free((pcre2_match_data *)st->md);
    pcre2_match_context_free((pcre2_match_context *)st->mctx);
    pcre2_jit_stack_free((pcre2_jit_stack *)st->jstack);
    pl_free(st->ctx, st->mbuf);
    memset(st, 0, sizeof *st);
}

typedef struct split_job {
    const pl_regex_set *rs;
    pl_regex_state     *st;
    pl_word_fn          fn;
    void               *ud;
    /* byte-mapped stages: the original piece and how far its words got */
    const pl_bytemap   *bm;
    const char         *orig;
    size_t              orig_pos;
} split_job;

static pl_status split_level(split_job *j, int level, const char *text, size_t len);

/* A finished word: in the byte-mapped domain each character stands for one
 * original byte, so count characters to find the original span. */
static pl_status emit_word(split_job *j, int level_domain_mapped, const char *w, size_t len) {
    if (!level_domain_mapped) return j->fn(j->ud, w, len);
    size_t nb = 0;
    for (size_t i = 0; i < len; i++) nb += ((uint8_t)w[i] & 0xC0) != 0x80;
    pl_status st = j->fn(j->ud, j->orig + j->orig_pos, nb);
    j->orig_pos += nb;
    return st;
}

static pl_status piece(split_job *j, int level, const char *p, size_t len) {
    if (len == 0) return PL_OK;
    int next = level + 1;
    bool mapped = j->rs->mapped_from >= 0 && level >= j->rs->mapped_from;
    if (next >= j->rs->n) return emit_word(j, mapped, p, len);
    if (next == j->rs->mapped_from) {
        /* Switch to the byte-mapped domain for the remaining regexes (each
         * byte becomes a 1-2 byte character). */
        pl_regex_state *st = j->st;
        size_t need;
        if (!pl_size_mul(len, 2, &need)) return PL_ERR_OVERFLOW;
        if (need > st->mcap) {
            char *nb = pl_realloc(st->ctx, st->mbuf, need);
            if (!nb) return PL_ERR_NOMEM;
            st->mbuf = nb;
            st->mcap = need;
        }
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            uint8_t b = (uint8_t)p[i];
            memcpy(st->mbuf + m, j->bm->utf8[b], j->bm->len[b]);
            m += j->bm->len[b];
        }
        j->orig = p;
        j->orig_pos = 0;
        return split_level(j, next, st->mbuf, m);
    }
    return split_level(j, next, p, len);
}

static pl_status split_level(split_job *j, int level, const char *text, size_t len) {
    pcre2_code *code = (pcre2_code *)j->rs->code[level];
    pcre2_match_data *md = (pcre2_match_data *)j->st->md;
    pcre2_match_context *mctx = (pcre2_match_context *)j->st->mctx;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0, gap = 0; /* gap: start of text not yet emitted */
    while (pos < len) {
        int rc = j->rs->jit[level]
                     ? pcre2_jit_match(code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, mctx)
                     : pcre2_match(code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, mctx);
        if (rc < 0) break; /* no match, or a resource limit: the rest stays one piece */
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {
            /* empty match: no cut here, step one character */
            pos = ms + 1;
            while (pos < len && ((uint8_t)text[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        pl_status st = piece(j, level, text + gap, ms - gap);
        if (st == PL_OK) st = piece(j, level, text + ms, me - ms);
        if (st != PL_OK) return st;
        gap = pos = me;
    }
    return piece(j, level, text + gap, len - gap);
}

pl_status pl_regex_split(const pl_regex_set *rs, pl_regex_state *st, const pl_bytemap *bm,
                         const char *text, size_t len, pl_word_fn fn, void *ud) {
    split_job j = { .rs = rs, .st = st, .fn = fn, .ud = ud, .bm = bm };
    if (rs->n == 0) return len ? fn(ud, text, len) : PL_OK;
    return split_level(&j, 0, text, len);
}
