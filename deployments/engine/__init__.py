"""The deploy engine: a deployment's states (lifecycle), the queue and its locks, the pipeline and
its phases (engine/phases/), retiring a release, the heartbeat, health checks, canary, companions,
release commands, reconcile, and the egress rules and thread priority they run under. The systems
it drives are reached through adapters outside it: Docker (deployments/dockerd), git
(deployments/git), HAProxy (deployments/haproxy), certificates (deployments/certificates),
outgoing events (deployments/outgoing); a tenant's Dockerfile is checked by deployments/dockerfile."""
