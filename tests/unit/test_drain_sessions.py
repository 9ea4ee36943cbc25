"""HAProxy's `show sess` read as the drain needs it: which requests still wait for their answer
(waited for) and which streams are long-lived (not waited for)."""
from django.conf import settings

from deployments.haproxy import sessions


SHOW_SESS = """0x55d2: [02/Dec/2026:09:58:54.570076] id=1 proto=tcpv4 source=127.0.0.1:47582
  flags=0x1ce, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn=0x55d2, pend_pos=(nil) waiting=0 epoch=0
  frontend=apps (id=3 mode=http), listener=? (id=1) addr=127.0.0.1:9100
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55408
  server=s1 (id=1) addr=127.0.0.1:9101
  txn=0x56208571a0b0 flags=0x3000 meth=1 status=200 req.st=MSG_DONE rsp.st=MSG_DATA req.f=0x4c rsp.f=0x0e
0x56208571aa90: [02/Dec/2026:09:58:55.566344] id=2 proto=unix_stream source=unix:1
  backend=<NONE> (id=-1 mode=-)
  server=<NONE> (id=-1)
0x7fd9dc041da0: [02/Dec/2026:09:58:54.567475] id=0 proto=tcpv4 source=127.0.0.1:47572
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55400
  server=s2 (id=2) addr=127.0.0.1:9101
  txn=0x7fd9dc042370 flags=0x3000 meth=1 status=-1 req.st=MSG_DONE rsp.st=MSG_RPBEFORE req.f=0x4c rsp.f=0x00
0x7fd9dc041da1: [02/Dec/2026:09:58:54.567475] id=4 proto=tcpv4 source=127.0.0.1:47573
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55401
  server=s1 (id=1) addr=127.0.0.1:9101
  txn=0x55d267b9b6b0 flags=0x8000 meth=1 status=101 req.st=MSG_TUNNEL rsp.st=MSG_TUNNEL req.f=0xcc rsp.f=0xcc
"""


def test_show_sess_is_read_as_waiting_requests_and_long_lived_streams():
    streams = sessions.parse(SHOW_SESS)
    assert [(s.server, s.status, s.waiting) for s in streams] == [("s1", 200, False), ("s2", -1, True),
                                                                   ("s1", 101, False)]
    assert settings.SWITCHYARD["DRAIN_TIMEOUT"] == 10  # the slow request (8 s) ends before it
