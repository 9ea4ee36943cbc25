"""Certificates: each app's (and the panel's) certificate requested, issued through ACME, renewed,
retried, or uploaded (app_certificates.py), and the ACME protocol itself (acme_client.py, the only
module that imports certbot's `acme` package). Worker side: the web process only marks what is
wanted and checks uploads."""
