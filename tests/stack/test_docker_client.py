"""One Docker client per thread and process (dockerd/daemon.py): making one costs a request
(the API version) and a connection pool, and a deploy talks to Docker a few dozen times."""
import os
import threading

from deployments.dockerd import daemon


def test_a_thread_keeps_its_client_and_another_thread_or_process_makes_its_own(monkeypatch):
    first = daemon.client()
    assert daemon.client() is first

    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(daemon.client()))
    thread.start()
    thread.join()
    assert elsewhere[0] is not first  # a requests Session is not shared by threads

    monkeypatch.setattr(os, "getpid", lambda: -1)  # a process forked from this one (a Celery child)
    forked = daemon.client()
    assert forked is not first and daemon.client() is forked
    assert forked.ping()
