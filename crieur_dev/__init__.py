"""Development only: what `make run`, the tests and the bench need and production must not
carry. Neither in the wheel (pyproject.toml excludes it) nor in the Docker image; its
dependencies (aiosmtpd) are the `dev` extra. The runtime never imports it: the village
starts its stand-ins by module name (services' manifests name them, `StandIn.module`)."""
