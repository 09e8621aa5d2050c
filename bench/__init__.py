"""`make bench`: Crieur's fan-out against raw baselines measured in the same run (bench/run.py)."""
