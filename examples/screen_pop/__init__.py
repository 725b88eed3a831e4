"""Screen pop: the caller's number, queue and customer record on the agent's page the moment
Enreach allocates the call to the agent, pushed with Server-Sent Events (README.md)."""
