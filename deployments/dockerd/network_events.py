"""Sent once Docker has made a network of this installation, before any container joins it.

The egress rules let the containers of one bridge reach each other bridge by bridge
(engine/egress.py), so they must know a new bridge first; deployments/signals.py connects them. A
receiver's error fails the network's first use. Its own module: the web process, which connects
the receivers too, loads no Docker SDK."""
from django.dispatch import Signal

network_created = Signal()  # keyword: bridge, the network's host interface name
