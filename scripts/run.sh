#!/bin/sh
# run.sh - what `make run` does after building: find the model, then start the
# main job. The server (with the web page) when parley has one, else the
# interactive chat, else (early builds) a summary of the model.
#
# The model comes from MODEL=path-or-name (a name is looked up in the model
# store, $PARLEY_HOME or ~/.local/share/parley/models).
set -eu
BUILD=${BUILD:-build}
bin="$BUILD/parley"
[ -x "$bin" ] || { echo "make run: $bin is missing; run 'make build' first" >&2; exit 1; }

store=${PARLEY_HOME:-${HOME:-/root}/.local/share/parley/models}
model=${MODEL:-}
if [ -n "$model" ] && [ ! -e "$model" ]; then
  # a name: look for NAME.gguf or NAME in the store
  for cand in "$store/$model" "$store/$model.gguf"; do
    [ -f "$cand" ] && { model=$cand; break; }
  done
fi
if [ -z "$model" ] || [ ! -f "$model" ]; then
  if [ -n "$model" ]; then
    echo "make run: model '$model' not found (not a file, and not in $store)." >&2
  fi
  cat >&2 <<'MSG'
make run: no model. parley runs GGUF language models from your disk. Download
one (for example SmolLM2-360M-Instruct or Qwen2.5-0.5B-Instruct in Q4_K_M or
Q8_0 from Hugging Face, a few hundred MB), then run `make run MODEL=/path/to/model.gguf`,
or put it in ~/.local/share/parley/models/ and pass its name, `make run MODEL=NAME`.
To try parley without a download, make a random-weight test model with
`build/parley fixture --preset tiny -o tiny.gguf` (it talks nonsense, but it runs).
MSG
  exit 1
fi

has() { "$bin" "$1" --help >/dev/null 2>&1; }
if has serve; then
  exec "$bin" serve -m "$model"
elif has chat; then
  exec "$bin" chat -m "$model"
else
  echo "make run: this build has no chat or server yet; showing the model instead." >&2
  exec "$bin" inspect --no-tensors "$model"
fi
