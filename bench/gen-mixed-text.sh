#!/bin/sh
# gen-mixed-text.sh [BYTES] - deterministic mixed text for tokenizer throughput
# (default 1000000 bytes, whole lines, to stdout). Nothing generated is
# committed; regenerate it where you measure:
#
#   bench/gen-mixed-text.sh > /tmp/mixed.txt
#   parley tokenize -m VOCAB.gguf --stdin --ids --stats < /tmp/mixed.txt > /dev/null
#
# About 60% English-like prose over a 65536-word lexicon with a Zipf-like
# frequency (common words repeat, the long tail does not), 25% code-like lines
# (identifiers, numbers, operators, indentation), 15% other scripts (Cyrillic,
# Greek, CJK, Arabic, Devanagari, emoji, combining marks) built from
# syllables, so words are varied the way real text is. Plain POSIX sh + awk.
set -eu
bytes=${1:-1000000}
awk -v limit="$bytes" '
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }   # Park-Miller: exact in doubles
function pick(arr, n) { return arr[int(rnd() * n) + 1] }
function zipf(n) { return int(n ^ rnd()) }           # log-uniform: index 1 is most frequent
function word(i,    w, x) {                             # the i-th lexicon word: i in base nsyl
    w = ""; x = i
    do { w = w syl[(x % nsyl) + 1]; x = int(x / nsyl) } while (x > 0)
    return w
}
BEGIN {
    seed = 42
    nsyl = split("ka ri to na me lo sa ve di pu an en in on st th er re ou ly ng ch sh ph qu al el il ar or ur ex ta de", syl, " ")
    ncommon = split("the of and to a in is it that was for on are as with his they at be this from I have or by one had not but what all were when we there can an your which their said if do will each about how up out them then she many some so these would other into has more her two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know", common, " ")
    nop = split("= == != += -= * / % && || -> :: ( ) { } [ ] ; , < > <= >= ++ --", ops, " ")
    nkw = split("if else for while return int char void static const struct switch case break def class import from self None True False let var function", kw, " ")
    nforeign = split("при вет мир как де ла кни га сло во γει ά σου κό σμε λό γος 你 好 世 界 今 天 天 气 很 好 こん にち は あり がと う 안녕 하세 요 세계 مر حبا بال عالم नम स्ते दुनि या 😀 👍🏽 🚀 ✅ 🇫🇷 é ç ñ ü ø e\314\201 a\314\212", foreign, " ")
    total = 0
    while (total < limit) {
        r = rnd(); line = ""
        if (r < 0.60) {                                  # prose
            n = 6 + int(rnd() * 14)
            for (j = 0; j < n; j++) {
                if (rnd() < 0.45) w = pick(common, ncommon); else w = word(zipf(65536))
                if (j == 0) w = toupper(substr(w, 1, 1)) substr(w, 2)
                line = line (j ? " " : "") w
                if (rnd() < 0.08) line = line ","
                if (rnd() < 0.03) line = line " " int(rnd() * 10000)
            }
            line = line (rnd() < 0.8 ? "." : "?")
        } else if (r < 0.85) {                           # code
            ind = int(rnd() * 4); for (j = 0; j < ind; j++) line = line "    "
            n = 3 + int(rnd() * 8)
            for (j = 0; j < n; j++) {
                q = rnd()
                if (q < 0.3) t = pick(kw, nkw)
                else if (q < 0.6) t = word(zipf(65536)) "_" word(zipf(1024))
                else if (q < 0.8) t = pick(ops, nop)
                else t = int(rnd() * 100000) (rnd() < 0.3 ? "." int(rnd() * 1000) : "")
                line = line (j ? " " : "") t
            }
        } else {                                         # other scripts
            n = 3 + int(rnd() * 10)
            for (j = 0; j < n; j++) {
                w = ""; m = 1 + int(rnd() * 3)
                for (k = 0; k < m; k++) w = w pick(foreign, nforeign)
                line = line (j ? " " : "") w
            }
        }
        if (rnd() < 0.1) line = line "\n"                # paragraph breaks
        print line
        total += length(line) + 1
    }
}'
