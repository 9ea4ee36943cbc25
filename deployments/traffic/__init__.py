"""Traffic as data: what every app's domains are routed to, as one routing table.

table.py holds the table's typed values and how an app's route follows from what holds its
backends (pure); rows.py derives the table from the database; changes.py is the one module that
applies a routing change (lock → state written → table derived → HAProxy files → runtime
commands) and the only caller of the HAProxy adapter's writing side; readings.py reads what
HAProxy counts for an app or a deployment; target.py says which HAProxy this process drives."""
