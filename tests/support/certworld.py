"""The world of the certificate tests (tests/stack/test_certificate_*.py): a victim tenant whose app
is deployed and served over HTTPS with a certificate of its own, an attacker (mallory: a
non-superuser with an app of her own and an API token), and what HAProxy serves for a name."""
import json
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.test import Client

from deployments import crypto
from deployments.application import apps, domains
from deployments.application.app_settings import AppSpec
from deployments.audit import Actor
from deployments.haproxy import process as haproxy_process, tls
from deployments.models import ApiToken, App, Certificate, Deployment, Domain
from deployments.traffic import changes, target
from deployments.traffic.table import Tls
from tests.support import tls as test_tls
from tests.support.eventually import eventually

VICTIM_DOMAIN = "victim.example.test"
MALLORY_DOMAIN = "mallory.example.test"
PANEL_DOMAIN = "panel.example.test"
DEFAULT_SUBJECT = "switchyard default certificate"
CLI = Actor.cli("test")



def https_port() -> int:
    return settings.SWITCHYARD["HTTPS_BIND"][1]


@dataclass
class World:
    ca: test_tls.PrivateCA
    victim: App
    victim_serial: int
    mallory: App
    api: Client  # mallory's token
    panel: Client  # mallory logged in

    def upload(self, chain_pem: str, key_pem: str):
        return self.api.post(f"/api/apps/{self.mallory.name}/certificate", content_type="application/json",
                             data=json.dumps({"certificate": chain_pem, "key": key_pem}))


def served_serial(host: str | None) -> int:
    return test_tls.served_certificate(https_port(), host).serial_number


def served_subject(host: str | None) -> str:
    return test_tls.served_certificate(https_port(), host).subject.rfc4514_string()


def wait_served(host: str, serial: int, timeout: float = 30) -> None:
    eventually(lambda: served_serial(host) == serial, f"{host} served certificate {serial}", timeout, interval=0.2)




def assert_the_victim_serves(world: World, stack) -> None:
    """Over plain HTTP and over HTTPS with its own certificate, verified against its CA."""
    assert stack.get("victim.localhost") == (200, "v1")
    assert test_tls.get(https_port(), VICTIM_DOMAIN, test_tls.trusting(world.ca.pem))[:2] == (200, "v1")
    assert served_serial(VICTIM_DOMAIN) == world.victim_serial


def restart_haproxy() -> None:
    haproxy_process.stop(target.paths())
    changes.sync_all()



def assert_running_crt_list_is_the_files() -> None:
    """What a restart would read is what HAProxy runs with: each certificate with its SNI filters."""
    paths = target.paths()
    running = tls.crt_list_entries(paths.admin_socket, paths.crt_list)
    files = {line.split()[0]: line for line in paths.crt_list.read_text().splitlines()}
    assert running.keys() == files.keys()
    assert all(tls.same_crt_list_line(running[path], line) for path, line in files.items())  # long ones cut by `show`
    assert all(len(line.split()) > 1 for line in running.values()), running  # never a line without filters



def store_directly(app: App, chain_pem: str, key_pem: str) -> None:
    """As a row that was valid when stored (or written around the upload's checks)."""
    facts = tls.facts(chain_pem)
    Certificate.objects.update_or_create(app=app, defaults=dict(
        source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID, domains=list(facts.names),
        chain_pem=chain_pem, encrypted_key=crypto.encrypt(key_pem), not_before=facts.not_before,
        not_after=facts.not_after, error=""))



LONG_BASE = f"{'b' * 60}.{'c' * 60}.{'d' * 50}.example.test"  # every long host is under it: one wildcard covers them


def long_host(index: int) -> str:
    return f"{index:03d}{'a' * 57}.{LONG_BASE}"  # 246 characters


def wildcard_certificate(world: World) -> test_tls.Issued:
    """A certificate of ~1 KiB (one runtime command) for mallory's domain and every long host."""
    return world.ca.issue([MALLORY_DOMAIN, f"*.{LONG_BASE}"])


def held(pem: str, hosts: tuple[str, ...] = ()) -> Tls:
    return Tls(covered=hosts, redirect=False, hsts=False, pem=pem)



def store_domains_directly(app: App, hosts: list[str]) -> None:
    """As rows written around the cap on domains (from before it, or by hand): more and longer
    SNI filters than one crt-list line holds (HAProxy reads at most 65,535 characters)."""
    Domain.objects.bulk_create([Domain(app=app, hostname=host) for host in hosts])
    assert len(" ".join(hosts)) > 65535


def create_world(*, stack, app_repo, user_model) -> World:
    """Victor's app `victim` deployed and served over HTTPS with its own certificate; mallory's app,
    her token and her panel session. Neither app's upload is held back by the rate limit."""
    victim_user = user_model.objects.create_user("victor", password="pw-victor-12345")
    mallory_user = user_model.objects.create_user("mallory", password="pw-mallory-12345")
    app_repo.commit_version("v1")
    victim = apps.create_app(AppSpec.of(name="victim", repo_url=app_repo.url, domains=[VICTIM_DOMAIN]), actor=CLI, owner=victim_user)
    mallory = apps.create_app(AppSpec.of(name="mallory", repo_url=app_repo.url, domains=[MALLORY_DOMAIN]), actor=CLI, owner=mallory_user)
    deployment = stack.deploy_and_wait(victim)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    ca = test_tls.PrivateCA("tenants' CA")
    own = ca.issue([VICTIM_DOMAIN])
    domains.upload_certificate(victim, chain_pem=own.chain_pem, key_pem=own.key_pem, actor=Actor(user=victim_user, via="api"))
    serial = tls.facts(own.chain_pem).serial
    wait_served(VICTIM_DOMAIN, serial)
    for app in (victim, mallory):  # uploads are rate-limited per app (test_certificate_uploads_...)
        cache.delete(domains.certificate_upload_key(app))
    panel = Client()
    panel.force_login(mallory_user)
    return World(ca, victim, serial, mallory, Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(mallory_user, 'ci')[1]}"),
                 panel)
