#!/bin/sh
# run.sh - what `make run` does after building: find the model, then start the
# main job. The server (with the web page) when parley has one, else the
# interactive chat, else (early builds) a summary of the model.
#
# The model comes from MODEL=path-or-name, else from the config's llm.model
# (parley.yaml, or PARLEY_LLM_MODEL; by default the catalog's small instruct
# model). A name is looked up in the model store ($PARLEY_HOME or
# ~/.local/share/parley/models) with `parley list --path`; a catalog name (or
# hf://OWNER/REPO/FILE, or a URL) that is not downloaded yet is pulled first.
set -eu
BUILD=${BUILD:-build}
bin="$BUILD/parley"
[ -x "$bin" ] || { echo "make run: $bin is missing; run 'make build' first" >&2; exit 1; }

how_to_get_a_model() {
  cat >&2 <<MSG
make run: no model. parley runs GGUF language models from your disk. \`make run\`
downloads the configured one (default: the small Qwen2.5-0.5B-Instruct, Q4_K_M, about
470 MiB) with \`$bin pull\`, which needs a connection to huggingface.co. Without one,
download a GGUF file elsewhere (for example SmolLM2-360M-Instruct or Qwen2.5-0.5B-Instruct
in Q4_K_M or Q8_0 from Hugging Face) and run \`make run MODEL=/path/to/model.gguf\`, or
put it in ~/.local/share/parley/models/ and pass its name, \`make run MODEL=NAME\`.
\`$bin pull --list\` shows the models parley knows. To try parley without a download,
make a random-weight test model with \`$bin fixture --preset tiny -o tiny.gguf\` (it
talks nonsense, but it runs).
MSG
}

model=${MODEL:-}
if [ -z "$model" ]; then
  # a bad parley.yaml stops here with its FILE:LINE message
  model=$("$bin" config --get llm.model) || exit 1
fi
if [ -z "$model" ]; then
  how_to_get_a_model
  exit 1
fi

if [ -f "$model" ]; then
  path=$model
elif path=$("$bin" list --path "$model" 2>/dev/null); then
  :
else
  echo "make run: model '$model' is not in the store; pulling it." >&2
  if ! path=$("$bin" pull "$model"); then
    echo "make run: could not get model '$model' (the reason is above)." >&2
    how_to_get_a_model
    exit 1
  fi
fi

has() { "$bin" "$1" --help >/dev/null 2>&1; }
if has serve; then
  exec "$bin" serve -m "$path"
elif has chat; then
  exec "$bin" chat -m "$path"
else
  echo "make run: this build has no chat or server yet; showing the model instead." >&2
  exec "$bin" inspect --no-tensors "$path"
fi
