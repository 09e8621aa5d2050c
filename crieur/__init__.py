"""Crieur's shared runtime: logging, the NATS connection, the village launcher and the CLI."""
