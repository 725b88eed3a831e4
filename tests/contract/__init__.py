"""The inbox contract: one suite that every inbox backend must pass."""
