"""Git: the tenant's repository reached through the git CLI (source.py: remotes, the per-app bare
cache, refs, archives of a commit, files read at a commit), the addresses a repository may have
(repo_policy.py), and the per-app SSH deploy keys it is read with (deploy_keys.py)."""
