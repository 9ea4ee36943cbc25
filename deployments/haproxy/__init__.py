"""HAProxy, the one system between the internet and the apps, behind one package:
config.py renders config, maps and crt-list from plain data; runtime_api.py speaks the admin
socket, the master CLI and the read-only stats page; process.py starts, checks, reloads and
stops it; tls.py holds keys, certificate facts and the runtime `ssl cert` commands; router.py
keeps database, files and the running HAProxy equal. Nothing outside this package parses
`show stat` or builds a runtime command."""
