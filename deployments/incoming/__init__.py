"""Incoming webhooks: a provider's push to POST /hooks/<app>/ (endpoint.py: size and app checks, then
application/pushes.py), and what each provider sends (providers.py: recognised by its headers,
its signature verified, its push read; pure functions). Outgoing deploy events are in
deployments/outgoing/."""
