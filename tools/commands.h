/* The parley subcommands: X(name, function, one-line summary).
 * Each cmd_<name>.c defines `int cmd_<name>(pl_cli *cli, int argc, char **argv)`
 * where argv[0] is the command name. Add a row here to add a command. */
#define PL_COMMAND_LIST(X)                                                          \
    X(inspect, cmd_inspect, "print a GGUF file's metadata, tensors and architecture") \
    X(fixture, cmd_fixture, "write a random-weight GGUF model at a real architecture's shape") \
    X(generate, cmd_generate, "continue a prompt with a GGUF language model (greedy or sampled)") \
    X(tokenize, cmd_tokenize, "tokenize text with a GGUF file's vocabulary and print ids or pieces") \
    X(version, cmd_version, "print the version and the CPU features parley detected")
