"""A service that receives events from a forwarding subscriber (see app.py)."""
