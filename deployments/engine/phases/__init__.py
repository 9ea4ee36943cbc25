"""A deployment's phases, one module each, every function working on the deployment's context
(context.py); engine/pipeline.py says in which order they run."""
