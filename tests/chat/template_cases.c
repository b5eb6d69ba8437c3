/*
 * template_cases.c - the case table of Jinja semantics for test_template.
 *
 * Each row: template, context (a JSON object: `messages` and
 * `add_generation_prompt` go to their parameters, every key is also a
 * variable), and the expected output, or the expected failure (status, a
 * substring of the message, and the line/column it must name; 0 = unchecked).
 * Expectations were written from the Jinja2 template designer docs and
 * Python 3 semantics (str(), repr(), json.dumps) with trim_blocks and
 * lstrip_blocks on, as Hugging Face renders chat templates.
 */
#include "template_cases.h"

#define OK(t, c, w) { t, c, w, PL_OK, NULL, 0, 0 }
#define ERR(t, c, st, msg, l, col) { t, c, NULL, st, msg, l, col }

#define MSGS "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys\"}, {\"role\": \"user\", \"content\": \" Hi \"}," \
             " {\"role\": \"assistant\", \"content\": \"Yo\"}]}"

const template_case template_cases[] = {
    /* ---- output and literals ---- */
    OK("plain text", NULL, "plain text"),
    OK("{{ 'a' }}{{ \"b\" }}{{ 'c' 'd' }}", NULL, "abcd"),
    OK("{{ 'tab\\there' }}|{{ 'nl\\n' }}|{{ 'q\\'s' }}|{{ '\\u00e9\\x41' }}|{{ '\\q' }}", NULL,
       "tab\there|nl\n|q's|éA|\\q"),
    OK("{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 2.0 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }}", NULL,
       "1 -2 1.5 2.0 1000.0 1000 31 5 15"),
    OK("{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", NULL, "True True False None None"),
    OK("{{ [1, 'a', none, true, 1.5] }}", NULL, "[1, 'a', None, True, 1.5]"),
    OK("{{ (1, 2) }}{{ (1,) }}{{ () }}", NULL, "(1, 2)(1,)()"),
    OK("{{ {'a': 1, 'b': [2]} }}", NULL, "{'a': 1, 'b': [2]}"),
    OK("{{ [\"it's\", 'say \"hi\"', 'a\\nb'] }}", NULL, "[\"it's\", 'say \"hi\"', 'a\\nb']"),
    OK("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.5e-7 }}", NULL,
       "0.30000000000000004 1e+16 1000000000000000.0 0.0001 1e-05 1.5e-07"),
    OK("{{ undefined_thing }}|{{ 'x' if false }}|", NULL, "||"),

    /* ---- whitespace control, trim_blocks, lstrip_blocks ---- */
    OK("{% if true %}\nyes\n{% endif %}\nno", NULL, "yes\nno"),
    OK("  {% if true %}\n  x\n  {% endif %}\n  y", NULL, "  x\n  y"),
    OK("a\n  {# comment #}\nb", NULL, "a\nb"),
    OK("{% for i in [1, 2, 3] %}\n  {{ i }}\n{% endfor %}\n", NULL, "  1\n  2\n  3\n"),
    OK("{% for i in [1, 2, 3] -%}\n  {{ i }}\n{%- endfor %}", NULL, "123"),
    OK("x  {{- 'a' -}}  y", NULL, "xay"),
    OK("a {#- c -#} b", NULL, "ab"),
    OK("{{ 'a' }}\n{{ 'b' }}\n", NULL, "a\nb"),
    OK("x\n  {%+ if true %}y{% endif %}\nz", NULL, "x\n  yz"),
    OK("{% if true +%}\ny{% endif %}", NULL, "\ny"),
    OK("{% raw %}{{ x }}{% endraw %}|  {% raw %}a{% endraw %}\n  {% raw %}b{% endraw %}", NULL, "{{ x }}|  ab"),
    OK("l1\r\nl2\r\n{% if true %}\r\nx\r\n{% endif %}\r\n", NULL, "l1\nl2\nx\n"),
    OK("\t{% if true %}\tX\n{% endif %}", NULL, "\tX\n"),
    OK("end\n", NULL, "end"),
    OK("end\n\n", NULL, "end\n"),

    /* ---- if / elif / else ---- */
    OK("{% if 0 %}a{% elif '' %}b{% elif [1] %}c{% else %}d{% endif %}", NULL, "c"),
    OK("{% if none %}a{% else %}b{% endif %}{% if {} %}c{% endif %}{% if 0.0 %}d{% endif %}", NULL, "b"),
    OK("{% if x is defined and x.y %}y{% else %}n{% endif %}", NULL, "n"),

    /* ---- for loops ---- */
    OK("{% for i in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
       "{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}",
       NULL, "10TrueFalse332;21FalseFalse321;32FalseTrue310;"),
    OK("{% for i in 'abc' %}{{ loop.previtem }}{{ i }}{{ loop.nextitem }}|{% endfor %}", NULL, "ab|abc|bc|"),
    OK("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}", NULL, "aba"),
    OK("{% for i in range(6) if i is even %}{{ loop.index }}/{{ loop.length }}:{{ i }} {% endfor %}", NULL,
       "1/3:0 2/3:2 3/3:4 "),
    OK("{% for i in [] %}x{% else %}empty{% endfor %}{% for i in [1] if i > 5 %}x{% else %}none{% endfor %}", NULL,
       "emptynone"),
    OK("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}",
       NULL, "a=1;b=2;xy"),
    OK("{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}", NULL, "1234"),
    OK("{% for i in range(10) %}{% if i > 2 %}{% break %}{% endif %}{{ i }}{% endfor %}", NULL, "012"),
    OK("{% for i in range(5) %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}", NULL, "024"),
    OK("{% for i in range(2) %}{% for j in range(3) %}{% if j == 1 %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
       NULL, "00 10 "),
    OK("{% for a in [1, 2] %}{% for b in [3] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}", NULL, "1112"),
    OK("{% for x in undefined_list %}a{% else %}b{% endfor %}", NULL, "b"),
    /* scoping: a for body's assignments do not leak, nor survive an iteration */
    OK("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", NULL, "12121"),
    OK("{% for i in [1, 2] %}{% if i == 2 %}[{{ y }}]{% endif %}{% set y = i %}{% endfor %}", NULL, "[]"),
    OK("{% if true %}{% set z = 5 %}{% endif %}{{ z }}", NULL, "5"),

    /* ---- set, namespace, with ---- */
    OK("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = 'xy' %}{{ c }}{{ d }}", NULL, "12xy"),
    OK("{% set ns = namespace(x=0) %}{% for i in range(5) %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}", NULL,
       "10"),
    OK("{% set ns = namespace() %}{% set ns.a = 'v' %}{{ ns.a }}{{ ns.b is defined }}{{ ns }}", NULL,
       "vFalse<Namespace {'a': 'v'}>"),
    OK("{% set ns = namespace({'k': 1}, j=2) %}{{ ns.k }}{{ ns.j }}{{ ns['k'] }}", NULL, "121"),
    OK("{% set x %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}[{{ x }}]{{ x | length }}", NULL, "[012]3"),
    OK("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", NULL, "3[]"),
    OK("{% set messages = messages[1:] %}{{ messages | length }}", MSGS, "2"),

    /* ---- macros and call ---- */
    OK("{% macro m(a, b='x') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}[{{ m() }}]", NULL,
       "1x1243[x]"),
    OK("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, c=3) }}", NULL, "1(2,){'c': 3}"),
    OK("{% macro m(a, b=a) %}{{ b }}{% endmacro %}{{ m(5) }}", NULL, "5"),
    OK("{% macro outer() %}[{{ caller('x') }}]{% endmacro %}{% call(v) outer() %}got {{ v }}{% endcall %}", NULL,
       "[got x]"),
    OK("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", NULL, "54321"),
    OK("{% macro m() %}{% set x = 1 %}{{ x }}{% endmacro %}{{ m() }}[{{ x }}]", NULL, "1[]"),
    OK("{% set x = 5 %}{% macro m() %}{{ x }}{% endmacro %}{{ m() }}", NULL, "5"),
    OK("{% filter upper %}a{{ 'b' }}{% endfilter %}{% filter replace('a', 'b') | upper %}aaa{% endfilter %}", NULL,
       "ABBBB"),
    OK("{% generation %}gen{% endgeneration %}", NULL, "gen"), /* HF's AssistantTracker tag */

    /* ---- operators ---- */
    OK("{{ 3 // 2 }} {{ 3 % 2 }} {{ 3 / 2 }} {{ 4 / 2 }} {{ -3 // 2 }} {{ -3 % 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
       NULL, "1 1 1.5 2.0 -2 1 3.0 0.5"),
    OK("{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }}", NULL, "1024 0.5 64 4"),
    OK("{{ true + true }}{{ true * 3 }}{{ 1 + 1.0 }}", NULL, "232.0"),
    OK("{{ 'a' ~ 1 ~ none ~ true ~ undefined_x }}", NULL, "a1NoneTrue"),
    OK("{{ 'a' + 'b' + 'c' + 'd' + 'e' + 'f' + 'g' + 'h' + 'i' + 'j' + 'k' + 'l' + 'm' + 'n' + 'o' + 'p' + 'q' + 'r' + 's' + 't' }}"
       "{{ 1 + 2 + 3.5 }}{{ [1] + [2] + [3] }}", NULL, "abcdefghijklmnopqrst6.5[1, 2, 3]"),
    ERR("{{ 'a' + 'b' + 1 + 'c' }}", NULL, PL_ERR_FORMAT, "unsupported operand type(s) for +: 'str' and 'int'", 1, 14),
    OK("{{ 'ab' + 'cd' }}{{ [1] + [2] }}{{ 'ab' * 3 }}{{ [0] * 2 }}{{ 'x' * -1 }}|", NULL, "abcd[1, 2]ababab[0, 0]|"),
    OK("{{ 1 == 1.0 }}{{ true == 1 }}{{ (1, 2) == [1, 2] }}{{ [1, 2] == [1, 2] }}{{ {'a': 1} == {'a': 1} }}"
       "{{ none == none }}{{ u == u }}{{ 'a' != 'b' }}", NULL, "TrueTrueFalseTrueTrueTrueTrueTrue"),
    OK("{{ 'b' > 'a' }}{{ 2 >= 2.0 }}{{ [1, 2] < [1, 3] }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}", NULL, "TrueTrueTrueTrueFalse"),
    OK("{{ 1 in [1, 2] }}{{ 'a' not in 'cat' }}{{ 'k' in {'k': 1} }}{{ '' in 'x' }}{{ 1 in u }}", NULL,
       "TrueFalseTrueTrueFalse"),
    OK("{{ true and 'x' }}|{{ false or 'y' }}|{{ none or 0 or '' }}|{{ 1 and 0 }}|{{ not 0 }}{{ not not 1 }}", NULL,
       "x|y||0|TrueTrue"),
    OK("{{ 1 if true else 2 }}{{ 1 if false else 2 if true else 3 }}", NULL, "12"),
    OK("{{ not 1 == 2 }}{{ -(3) }}{{ +3 }}", NULL, "True-33"),

    /* ---- attribute, subscript, slicing ---- */
    OK("{{ messages[0].content }}{{ messages[1]['role'] }}{{ messages[-1].content }}{{ messages[5] }}|", MSGS,
       "SysuserYo|"),
    OK("{{ messages[0].nope is defined }}{{ messages[0].nope is undefined }}{{ none.x is defined }}{{ [].x }}|", MSGS,
       "FalseTrueFalse|"),
    OK("{{ {'items': 1}['items'] }}{{ {'a': 1}.a }}{{ {'a': 1}['b'] }}|", NULL, "11|"),
    OK("{{ 'abcdef'[1:-1:2] }}{{ 'abcdef'[::-2] }}{{ 'hello'[::-1] }}{{ 'hello'[10:] }}|{{ 'hello'[-10:2] }}", NULL,
       "bdfdbolleh|he"),
    OK("{{ [1, 2, 3][::-1] }}{{ [1, 2, 3][5:1:-1] }}{{ [1, 2, 3][-1:-5:-1] }}{{ [1, 2, 3][:] }}", NULL,
       "[3, 2, 1][3][3, 2, 1][1, 2, 3]"),
    OK("{{ 'aéb'[1] }}{{ 'aéb'[1:] }}{{ 'aéb' | length }}{{ '中文'[-1] }}", NULL, "ééb3文"),
    OK("{{ (1, 2, 3)[1:] }}", NULL, "(2, 3)"),

    /* ---- tests ---- */
    OK("{{ 'x' is string }}{{ 1 is string }}{{ 1 is number }}{{ true is number }}{{ 1.5 is integer }}{{ 1.5 is float }}",
       NULL, "TrueFalseTrueTrueFalseTrue"),
    OK("{{ none is none }}{{ 0 is none }}{{ {} is mapping }}{{ [] is mapping }}{{ 'a' is sequence }}{{ 1 is sequence }}",
       NULL, "TrueFalseTrueFalseTrueFalse"),
    OK("{{ 'a' is iterable }}{{ u is iterable }}{{ none is iterable }}{{ true is boolean }}{{ 1 is boolean }}", NULL,
       "TrueTrueFalseTrueFalse"),
    OK("{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}", NULL, "TrueFalseTrueFalse"),
    OK("{{ 4 is even }}{{ 5 is even }}{{ 3 is odd }}{{ 10 is divisibleby(3) }}{{ 9 is divisibleby 3 }}", NULL,
       "TrueFalseTrueFalseTrue"),
    OK("{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 2 is gt 1 }}{{ 2 is ge 2 }}{{ 1 is lt 2 }}{{ 1 is le 0 }}{{ 1 is in [1] }}",
       NULL, "TrueTrueTrueTrueTrueFalseTrue"),
    OK("{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}", NULL,
       "TrueTrueTrueFalseTrue"),
    OK("{{ range is callable }}{{ 1 is callable }}{{ x is not defined }}{{ none is sameas none }}", NULL,
       "TrueFalseTrueTrue"),

    /* ---- filters ---- */
    OK("{{ '  a  ' | trim }}|{{ 'xax' | trim('x') }}|{{ u | trim }}|", NULL, "a|a||"),
    OK("{{ [1, 2, 3] | length }}{{ 'héllo' | length }}{{ {'a': 1} | count }}{{ u | length }}", NULL, "3510"),
    OK("{{ 'abc' | upper }}{{ 'ABC' | lower }}{{ 'hello wORLD' | title }}{{ 'hELLO' | capitalize }}", NULL,
       "ABCabcHello WorldHello"),
    OK("{{ \"they're bill's\" | title }}|{{ \"they're bill's\".title() }}", NULL, "They're Bill's|They'Re Bill'S"),
    OK("{{ 'é' | upper }}{{ 'ÉCOLE' | lower }}{{ 'Ж' | lower }}", NULL, "Éécoleж"),
    OK("{{ ['a', 'b'] | join(', ') }}{{ [1, 2] | join }}{{ [{'n': 'x'}, {'n': 'y'}] | join('-', attribute='n') }}", NULL,
       "a, b12x-y"),
    OK("{{ 'aXbX' | replace('X', 'y') }}{{ 'aXbX' | replace('X', 'y', 1) }}{{ 'abc' | replace('', '-') }}", NULL,
       "aybyaybX-a-b-c-"),
    OK("{{ x | default('d') }}{{ none | default('d') }}{{ none | default('d', true) }}{{ '' | d('e', true) }}", NULL,
       "dNonede"),
    OK("{{ [3, 1, 2] | first }}{{ 'abc' | last }}{{ [] | first }}|{{ {'a': 1} | list }}{{ 'ab' | list }}", NULL,
       "3c|['a']['a', 'b']"),
    OK("{{ 3.7 | int }}{{ '42' | int }}{{ 'x' | int }}{{ 'x' | int(7) }}{{ '3.9' | int }}{{ '0x1A' | int(base=16) }}",
       NULL, "34207326"),
    OK("{{ '1.5' | float }}{{ 'x' | float }}{{ 2 | float }}{{ -3 | abs }}{{ -2.5 | abs }}", NULL, "1.50.02.032.5"),
    OK("{{ 42 | string }}{{ 42 | string | length }}{{ [1] | string }}", NULL, "422[1]"),
    OK("{{ 2.5 | round }}{{ 3.5 | round }}{{ 2.675 | round(2) }}{{ 7 | round }}{{ 1.234 | round(1, 'ceil') }}"
       "{{ 1.7 | round(0, 'floor') }}", NULL, "2.04.02.6771.31.0"),
    OK("{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'a'] | sort }}{{ [3, 1, 2] | sort(reverse=true) }}", NULL,
       "[1, 2, 3]['A', 'a', 'b'][3, 2, 1]"),
    OK("{{ [{'n': 'b'}, {'n': 'a'}] | sort(attribute='n') | map(attribute='n') | join }}", NULL, "ab"),
    OK("{{ ['a', 'A', 'b'] | unique | list }}{{ ['a', 'A', 'b'] | unique(case_sensitive=true) | list }}", NULL,
       "['a', 'b']['a', 'A', 'b']"),
    OK("{{ [1, 2, 3] | reverse | list }}{{ 'abc' | reverse }}", NULL, "[3, 2, 1]cba"),
    OK("{{ [1, 2, 3] | sum }}{{ [1.5, 2] | sum }}{{ [{'a': 1}, {'a': 2}] | sum(attribute='a') }}{{ [3, 1] | max }}"
       "{{ [3, 1] | min }}{{ [] | max }}|", NULL, "63.5331|"),
    OK("{{ {'b': 2, 'a': 1} | dictsort }}{{ {'a': 1} | items | list }}", NULL, "[('a', 1), ('b', 2)][('a', 1)]"),
    OK("{{ [1, 2, 3] | select('odd') | list }}{{ [1, 2, 3] | reject('odd') | list }}"
       "{{ [1, 2, 3] | select('greaterthan', 1) | list }}", NULL, "[1, 3][2][2, 3]"),
    OK("{{ messages | selectattr('role', 'equalto', 'user') | list | length }}"
       "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | join(',') }}", MSGS,
       "1system,assistant"),
    OK("{{ messages | map(attribute='nope', default='-') | join }}{{ [1, 2] | map('string') | join('+') }}", MSGS,
       "---1+2"),
    /* generators: always true, consumed once */
    OK("{% set g = [] | select('odd') %}{{ 'yes' if g else 'no' }}", NULL, "yes"),
    OK("{% set g = [1, 2] | map('string') %}{{ g | join }}|{{ g | join }}|", NULL, "12||"),
    OK("{{ 'a\\nb\\nc' | indent }}|{{ 'a\\nb' | indent(first=true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|"
       "{{ 'a\\n' | indent }}|{{ 'a\\nb' | indent('--') }}", NULL, "a\n    b\n    c|    a\n    b|a\n  \n  b|a\n|a\n--b"),
    OK("{{ '<a>&\"' | e }}{{ '<b>' | safe }}{{ [1, 2] | pprint }}{{ 'a b c' | wordcount }}{{ 'x' | center(5) }}|",
       NULL, "&lt;a&gt;&amp;&#34;<b>[1, 2]3  x  |"),
    OK("{{ '%s-%d' | format('a', 3) }}{{ '%s and %s' % ('a', 'b') }}{{ '%d%%' % 50 }}{{ '%.2f' % 3.14159 }}"
       "{{ '%5s|%-5s|' % ('r', 'l') }}{{ '%(k)s' % {'k': 'v'} }}", NULL, "a-3a and b50%3.14    r|l    |v"),
    OK("{{ {'a': 1} | attr('a') }}|{{ {'a': 1} | attr('items') is defined }}", NULL, "|True"),

    /* ---- tojson (json.dumps, ensure_ascii=False) ---- */
    OK("{{ {'b': 1, 'a': [1, 2.5, 'xé\\n\"', none, true]} | tojson }}", NULL,
       "{\"b\": 1, \"a\": [1, 2.5, \"xé\\n\\\"\", null, true]}"),
    OK("{{ {'b': {'c': []}, 'd': [1, {}]} | tojson(indent=2) }}", NULL,
       "{\n  \"b\": {\n    \"c\": []\n  },\n  \"d\": [\n    1,\n    {}\n  ]\n}"),
    OK("{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }}", NULL,
       "{\"a\": 2, \"b\": 1}{\"a\":[1,2]}"),
    OK("{{ 'é\\u0001' | tojson }}{{ 'é' | tojson(ensure_ascii=true) }}{{ 1.0 | tojson }}{{ 1e100 | tojson }}", NULL,
       "\"é\\u0001\"\"\\u00e9\"1.01e+100"),
    OK("{{ {1: 'a', true: 'b', none: 'c'} | tojson }}", NULL, "{\"1\": \"b\", \"null\": \"c\"}"), /* True == 1: one key */
    OK("{{ messages[0] | tojson }}", MSGS, "{\"role\": \"system\", \"content\": \"Sys\"}"),

    /* ---- str, dict and list methods ---- */
    OK("{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('lo', 'x')) }}{{ 'abc'.startswith('b', 1) }}", NULL,
       "TrueTrueTrue"),
    OK("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a-b-c'.rsplit('-', 1) }}", NULL,
       "['a', 'b', '', 'c']['a', 'b']['a', 'b,c']['a-b', 'c']"),
    OK("{{ 'x</think>y</think>z'.split('</think>')[-1] }}{{ 'a\\nb\\r\\nc'.splitlines() }}", NULL, "z['a', 'b', 'c']"),
    OK("{{ ' a '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ '\\n\\na\\n'.strip('\\n') }}|", NULL,
       "a|axx|xxa|a|"),
    OK("{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ 'abc'.capitalize() }}{{ 'aaa'.replace('a', 'b', 2) }}", NULL,
       "ABCabcAbcbba"),
    OK("{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}{{ 'aXa'.count('a') }}{{ 'héllo'.find('l') }}{{ ', '.join(['a', 'b']) }}",
       NULL, "2-122a, b"),
    OK("{{ '{} {}'.format('a', 'b') }}{{ '{0}{0}'.format('x') }}{{ '{n}!'.format(n=1) }}", NULL, "a bxx1!"),
    OK("{{ '123'.isdigit() }}{{ 'ab'.isalpha() }}{{ '  '.isspace() }}{{ 'a,b'.partition(',') }}{{ '5'.zfill(3) }}", NULL,
       "TrueTrueTrue('a', ',', 'b')005"),
    OK("{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b') }}{{ {'a': 1}.get('b', 3) }}{{ {'a': 1}.keys() | list }}"
       "{{ {'a': 1}.values() | list }}", NULL, "1None3['a'][1]"),
    OK("{{ [1, 2, 1].count(1) }}{{ [1, 2].index(2) }}", NULL, "21"),

    /* ---- global functions ---- */
    OK("{{ range(3) | list }}{{ range(1, 10, 3) | list }}{{ range(5, 0, -2) | list }}{{ range(0) | list }}", NULL,
       "[0, 1, 2][1, 4, 7][5, 3, 1][]"),
    OK("{{ dict(a=1, b=2) }}{{ namespace(a=1).a }}", NULL, "{'a': 1, 'b': 2}1"),
    OK("{{ strftime_now('%d %b %Y') }}", NULL, "26 Jul 2024"),

    /* ---- variables from the context ---- */
    OK("{{ bos_token }}{{ add_generation_prompt }}{{ enable_thinking is defined }}",
       "{\"bos_token\": \"<s>\", \"add_generation_prompt\": true}", "<s>TrueFalse"),
    OK("{% if enable_thinking is defined and enable_thinking is false %}off{% endif %}", "{\"enable_thinking\": false}",
       "off"),
    OK("{{ tools | length }}{{ tools[0].function.name }}{{ tools[0].function.parameters | tojson }}",
       "{\"tools\": [{\"function\": {\"name\": \"f\", \"parameters\": {\"x\": 1.5, \"y\": [1, \"a\"]}}}]}",
       "1f{\"x\": 1.5, \"y\": [1, \"a\"]}"),

    /* ---- runtime errors ---- */
    ERR("{{ raise_exception('bad ' ~ 42) }}", NULL, PL_ERR_INVALID_ARG, "template refused: bad 42", 1, 4),
    ERR("a\n{{ foo.bar }}", NULL, PL_ERR_FORMAT, "'foo' is undefined", 2, 7),
    ERR("{{ foo['bar'] }}", NULL, PL_ERR_FORMAT, "'foo' is undefined", 1, 7),
    ERR("{{ undefined_fn(1) }}", NULL, PL_ERR_FORMAT, "'undefined_fn' is undefined", 1, 0),
    ERR("{{ 'abc'.nope() }}", NULL, PL_ERR_FORMAT, "no attribute or key 'nope'", 1, 9),
    ERR("{{ 'abc' + 1 }}", NULL, PL_ERR_FORMAT, "unsupported operand", 1, 10),
    ERR("{{ x + 1 }}", NULL, PL_ERR_FORMAT, "'x' is undefined", 1, 0),
    ERR("{{ 1 < 'a' }}", NULL, PL_ERR_FORMAT, "not supported between", 1, 0),
    ERR("{{ 10 / 0 }}", NULL, PL_ERR_FORMAT, "division by zero", 1, 7),
    ERR("{{ u | tojson }}", NULL, PL_ERR_FORMAT, "not JSON serializable", 1, 0),
    ERR("{{ 1 | length }}", NULL, PL_ERR_FORMAT, "has no len()", 1, 0),
    ERR("{% set n = none %}{{ n[1:] }}", NULL, PL_ERR_FORMAT, "not subscriptable", 1, 0),
    ERR("{% set a, b = [1, 2, 3] %}", NULL, PL_ERR_FORMAT, "too many values to unpack", 1, 0),
    ERR("{% set x = 1 %}{% set x.y = 2 %}", NULL, PL_ERR_FORMAT, "non-namespace", 1, 19),
    ERR("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, PL_ERR_FORMAT, "takes not more than 1", 1, 0),
    ERR("{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", NULL, PL_ERR_FORMAT, "no keyword argument 'b'", 1, 0),
    ERR("{{ 'x'.split('') }}", NULL, PL_ERR_FORMAT, "empty separator", 1, 0),
    ERR("{{ 9223372036854775807 + 1 }}", NULL, PL_ERR_RANGE, "integer overflow", 1, 0), /* Python: a big int */

    /* ---- compile errors, with positions ---- */
    ERR("{% if true %}\n{% endfor %}", NULL, PL_ERR_FORMAT, "innermost open block is 'if'", 2, 4),
    ERR("{% if true %}", NULL, PL_ERR_FORMAT, "'if' block is not closed", 1, 14),
    ERR("{% for %}", NULL, PL_ERR_FORMAT, "a variable name", 1, 8),
    ERR("{{ }}", NULL, PL_ERR_FORMAT, "expected an expression", 1, 4),
    ERR("{{ 1 + }}", NULL, PL_ERR_FORMAT, "expected an expression", 1, 8),
    ERR("x\n  {{ 'unterminated }}", NULL, PL_ERR_FORMAT, "unterminated string", 2, 6),
    ERR("{% foo %}", NULL, PL_ERR_FORMAT, "unknown tag 'foo'", 1, 4),
    ERR("{% include 'x' %}", NULL, PL_ERR_UNSUPPORTED, "'include' tag is not supported", 1, 4),
    ERR("{% extends 'x' %}", NULL, PL_ERR_UNSUPPORTED, "'extends'", 1, 4),
    ERR("{% for x in y recursive %}{% endfor %}", NULL, PL_ERR_UNSUPPORTED, "recursive", 1, 15),
    ERR("{{ x | nosuchfilter }}", NULL, PL_ERR_UNSUPPORTED, "no filter named 'nosuchfilter'", 1, 8),
    ERR("{{ x is nosuchtest }}", NULL, PL_ERR_UNSUPPORTED, "no test named 'nosuchtest'", 1, 9),
    ERR("{% endif %}", NULL, PL_ERR_FORMAT, "no open block", 1, 4),
    ERR("{{ (1, 2 }}", NULL, PL_ERR_FORMAT, "unexpected '}'", 1, 10),
    ERR("{{ [1, 2) }}", NULL, PL_ERR_FORMAT, "expected ']'", 1, 9),
    ERR("ok {# unclosed", NULL, PL_ERR_FORMAT, "missing end of comment", 1, 4),
    ERR("{% break %}", NULL, PL_ERR_FORMAT, "outside of a loop", 1, 4),
    ERR("{{ 1 }", NULL, PL_ERR_FORMAT, "unexpected '}'", 1, 6),
    ERR("{{ a $ b }}", NULL, PL_ERR_FORMAT, "unexpected character '$'", 1, 6),
    ERR("{% macro m(a=1, b) %}{% endmacro %}", NULL, PL_ERR_FORMAT, "non-default argument", 1, 17),
};

const size_t template_case_count = sizeof template_cases / sizeof template_cases[0];
