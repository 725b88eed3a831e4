"""Agent adherence from Engage Voice WFM and Enreach events: states in SQLite, a dashboard, CSV.

`handlers` (run by the receiver) writes each agent's states as intervals to `store`; the
`dashboard` app reads them and serves the page and `/export.csv`; `python -m
examples.wfm_adherence` runs both with a known day of events (see README.md).
"""
