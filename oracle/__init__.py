"""The oracle: procsim checked against a real kernel booted in qemu (see oracle/run.py)."""
