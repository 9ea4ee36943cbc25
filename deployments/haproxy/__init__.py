"""HAProxy, the one system between the internet and the apps, behind a pure adapter: it applies a
routing table (traffic/table.py) to one HAProxy and reads what HAProxy counts, as typed values.
No ORM and no engine import: which table, and when, is traffic/changes.py's.

config.py renders config, maps and crt-list from the table; files.py writes them (atomic rename);
commands.py makes the runtime commands for server slots; apply.py applies a table (files, then
start, reload or runtime commands); challenges.py holds ACME's HTTP-01 entries; runtime_api.py
speaks the admin socket, the master CLI and the read-only stats page; stats.py reads `show stat`
and the stats page into typed values; sessions.py reads what is open on servers; latency.py
follows the latency ring; process.py starts, checks, reloads and stops HAProxy; tls.py holds keys,
certificate facts and the runtime `ssl cert` commands. Nothing outside this package parses
HAProxy's answers or builds a runtime command."""
