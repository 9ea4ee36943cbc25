"""The Docker adapter: the only package that imports `docker` (the SDK).

One module per sub-area: daemon (the client, reachability), networks, builds (and the build's
cgroup parent), images (pulls, inspection, pruning), containers, one-off runs, output, volumes,
cleanup. values.py holds the typed values the rest of Switchyard passes around and the labels; it
imports no Docker, so the models and the web process use them without the SDK. This file imports
nothing, so importing values.py does not bring Docker in.
"""
