"""Code that runs inside receiver child processes during tests."""
