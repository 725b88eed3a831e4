"""A CRM bridge with a bug, for the walkthrough in docs/operating.md."""
