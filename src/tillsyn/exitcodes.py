"""Exit codes of every ``tillsyn`` command, in one place."""

EXIT_OK = 0  # nothing failed
EXIT_FAILED = 1  # a check failed or errored, evidence did not verify, a push was refused
EXIT_USAGE = 2  # a usage or configuration error
