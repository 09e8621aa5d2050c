"""The documentation's generated pages (`python -m docs.gen_settings`)."""
