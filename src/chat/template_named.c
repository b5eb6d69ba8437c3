/*
 * template_named.c - the named built-in chat templates, written for this
 * project from each chat format's public description:
 *
 *   chatml       <|im_start|>ROLE\nTEXT<|im_end|>\n ... <|im_start|>assistant\n
 *   llama3       <|begin_of_text|><|start_header_id|>ROLE<|end_header_id|>\n\nTEXT<|eot_id|>
 *   llama2       <s>[INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ANSWER </s><s>[INST] ...
 *   mistral      <s>[INST] USER [/INST] ANSWER</s>[INST] USER [/INST]
 *   phi3         <|system|>\nTEXT<|end|>\n<|user|>\nTEXT<|end|>\n<|assistant|>\n
 *   gemma        <bos><start_of_turn>user\nTEXT<end_of_turn>\n<start_of_turn>model\n
 *   deepseek-r1  <bos>SYSTEM<｜User｜>TEXT<｜Assistant｜>ANSWER<｜end▁of▁sentence｜>
 *                (reasoning before </think> is dropped from past answers; the
 *                generation prompt opens <think>)
 *
 * Formats without a system role (llama2, mistral, gemma) fold the system
 * message into the first user turn; those that require alternating turns
 * refuse other orders with raise_exception. Message content may be a string
 * or a list of {"type": "text", "text": ...} parts.
 */
#include <strings.h>

#include "parley/template.h"

/* content -> text: a string, or the text parts of a list */
#define TEXT_MACRO                                                                                  \
    "{%- macro text(c) -%}"                                                                         \
    "{%- if c is string -%}{{ c }}"                                                                 \
    "{%- elif c is iterable and c is not mapping -%}"                                               \
    "{%- for p in c if p is mapping and p.type == 'text' -%}{{ p.text }}{%- endfor -%}"            \
    "{%- endif -%}"                                                                                 \
    "{%- endmacro -%}\n"

/* system message folded into the first user turn; sets loop_messages and system */
#define SPLIT_SYSTEM                                                                                \
    "{%- if messages and messages[0].role == 'system' -%}"                                          \
    "{%- set system = text(messages[0].content) -%}{%- set loop_messages = messages[1:] -%}"        \
    "{%- else -%}{%- set system = '' -%}{%- set loop_messages = messages -%}{%- endif -%}\n"

#define ALTERNATE                                                                                   \
    "{%- if (message.role == 'user') != (loop.index0 % 2 == 0) -%}"                                 \
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}" \
    "{%- endif -%}\n"

static const char chatml[] =
    TEXT_MACRO
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' ~ message.role ~ '\\n' ~ text(message.content) ~ '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

static const char llama3[] =
    TEXT_MACRO
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' ~ message.role ~ '<|end_header_id|>\\n\\n' ~ text(message.content)|trim ~ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}";

static const char llama2[] =
    TEXT_MACRO SPLIT_SYSTEM
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- if message.role == 'user' -%}"
    "{%- set content = text(message.content)|trim -%}"
    "{%- if loop.first and system -%}"
    "{%- set content = '<<SYS>>\\n' ~ system|trim ~ '\\n<</SYS>>\\n\\n' ~ content -%}"
    "{%- endif -%}"
    "{{- bos_token ~ '[INST] ' ~ content ~ ' [/INST]' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- ' ' ~ text(message.content)|trim ~ ' ' ~ eos_token -}}"
    "{%- else -%}{{- raise_exception('Only user, assistant and system roles are supported') -}}"
    "{%- endif -%}"
    "{%- endfor -%}";

static const char mistral[] =
    TEXT_MACRO SPLIT_SYSTEM
    "{{- bos_token -}}"
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- if message.role == 'user' -%}"
    "{%- set content = text(message.content) -%}"
    "{%- if loop.first and system -%}{%- set content = system ~ '\\n\\n' ~ content -%}{%- endif -%}"
    "{{- '[INST] ' ~ content ~ ' [/INST]' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- ' ' ~ text(message.content) ~ eos_token -}}"
    "{%- else -%}{{- raise_exception('Only user, assistant and system roles are supported') -}}"
    "{%- endif -%}"
    "{%- endfor -%}";

static const char phi3[] =
    TEXT_MACRO
    "{%- for message in messages -%}"
    "{%- if message.role in ['system', 'user', 'assistant'] -%}"
    "{{- '<|' ~ message.role ~ '|>\\n' ~ text(message.content) ~ '<|end|>\\n' -}}"
    "{%- else -%}{{- raise_exception('Only user, assistant and system roles are supported') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

static const char gemma[] =
    TEXT_MACRO SPLIT_SYSTEM
    "{{- bos_token -}}"
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- set role = 'model' if message.role == 'assistant' else message.role -%}"
    "{%- set content = text(message.content)|trim -%}"
    "{%- if loop.first and system -%}{%- set content = system|trim ~ '\\n\\n' ~ content -%}{%- endif -%}"
    "{{- '<start_of_turn>' ~ role ~ '\\n' ~ content ~ '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

static const char deepseek_r1[] =
    TEXT_MACRO
    "{{- bos_token -}}"
    "{%- for message in messages if message.role == 'system' -%}{{- text(message.content) -}}{%- endfor -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'user' -%}"
    "{{- '<\xef\xbd\x9cUser\xef\xbd\x9c>' ~ text(message.content) -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{%- set content = text(message.content) -%}"
    "{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1]|trim -%}{%- endif -%}"
    "{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>' ~ content ~ '<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\\n' -}}{%- endif -%}";

static const struct {
    const char *name;
    const char *src;
} builtins[] = {
    { "chatml", chatml }, { "llama3", llama3 }, { "llama2", llama2 },           { "mistral", mistral },
    { "phi3", phi3 },     { "gemma", gemma },   { "deepseek-r1", deepseek_r1 },
};

const char *pl_template_builtin(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcasecmp(builtins[i].name, name) == 0) return builtins[i].src;
    return NULL;
}

const char *pl_template_builtin_name(size_t i) {
    return i < sizeof builtins / sizeof builtins[0] ? builtins[i].name : NULL;
}
