"""Stand-ins of real sinks (an SMTP server...) for `make run` and tests: real protocols."""
