/* The parley subcommands: X(name, function, one-line summary).
 * Each cmd_<name>.c defines `int cmd_<name>(pl_cli *cli, int argc, char **argv)`
 * where argv[0] is the command name. Add a row here to add a command. */
#define PL_COMMAND_LIST(X)                                                          \
    X(inspect, cmd_inspect, "print a GGUF file's metadata, tensors and architecture") \
    X(fixture, cmd_fixture, "write a random-weight GGUF model at a real architecture's shape") \
    X(template, cmd_template, "render a chat template for a conversation and print the prompt") \
    X(generate, cmd_generate, "continue a prompt with a GGUF language model (greedy or sampled)") \
    X(chat,    cmd_chat,    "talk with a GGUF model: REPL, one turn per stdin line, or one-shot -p") \
    X(tokenize, cmd_tokenize, "tokenize text with a GGUF file's vocabulary and print ids or pieces") \
    X(pull,    cmd_pull,    "download a model into the store (a catalog name, hf://OWNER/REPO/FILE or a URL)") \
    X(list,    cmd_list,    "list the models in the store: name, size, quant, path") \
    X(rm,      cmd_rm,      "remove a model from the store") \
    X(config,  cmd_config,  "show the effective configuration (parley.yaml, PARLEY_* env, flags)") \
    X(transcribe, cmd_transcribe, "transcribe a recording (text, json, srt or vtt)") \
    X(speak,   cmd_speak,   "speak text into a WAV or raw PCM file") \
    X(voice,   cmd_voice,   "talk by voice: recording in, spoken answer out, per-stage latency") \
    X(bench-voice, cmd_bench_voice, "measure the voice pipeline's latency stage by stage") \
    X(quantize, cmd_quantize, "rewrite a GGUF model in a quant mix (q8_0, q4_0, q4_k_m, ...)") \
    X(bench,   cmd_bench,   "measure prompt (pp) and generation (tg) speed of a model, llama-bench style") \
    X(top,     cmd_top,     "live view of a running server: slots, queue, tok/s, TTFT, memory (from /metrics)") \
    X(serve,   cmd_serve,   "serve a model over an OpenAI-compatible HTTP API (continuous batching, SSE, metrics)") \
    X(bench-serve, cmd_bench_serve, "drive a running server with concurrent streaming clients: TTFT, tok/s") \
    X(bench_stt, cmd_bench_stt, "time the native Whisper recognizer: mel, encoder, decoder per token, RTF") \
    X(version, cmd_version, "print the version and the CPU features parley detected")
