"""Outgoing deploy events: recorded with a deployment's state change, sent by a worker to the app's
targets (signed webhooks, Slack, e-mail, the provider's commit status), retried (events.py), over
HTTP pinned to the address that was checked (pinned_http.py). What the panel and the API do with
targets is in deployments/application/events.py; incoming pushes are in deployments/incoming/."""
