"""A tenant's Dockerfile, checked before Docker sees it: read as Docker reads it (syntax.py), its $
expansion (expansion.py), the images it may start from or copy out of (base_images.py), the check
itself and the canonical Dockerfile built instead (check.py), and that Dockerfile put into the build
context (build_context.py). No Docker import: Docker is reached through the callables the engine
passes (dockerd.images.image_facts, pull_image)."""
