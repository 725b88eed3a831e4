"""The Node.js twin of examples/forward_service: a forwarding subscriber's service in JavaScript."""
