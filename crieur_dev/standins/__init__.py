"""Stand-ins of real sinks (an SMTP server, FCM, an SMS provider, a CAP feed) and the demo
phone, for `make run` and tests: real protocols, never mocks."""
