"""Adding a host checks what it is given before anything is stored or reaches the broker, says what
to fix, and is the machine's business: a person who is not a superuser cannot."""
import pytest
from django.contrib.auth import get_user_model

from deployments.application import hosts
from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor, Via
from deployments.models import ApiToken, Host


@pytest.mark.django_db
@pytest.mark.parametrize("name, address, labels, field, says", [
    ("H1", "10.0.0.1", [], "name", "lowercase letters"),
    ("h1;rm", "10.0.0.1", [], "name", "lowercase letters"),
    ("a", "10.0.0.1", [], "name", "2 to 40"),
    ("web-", "10.0.0.1", [], "name", "not ending"),
    ("h1", "my.host", [], "address", "not an IP address"),
    ("h1", "10.0.0.1", ["zone"], "labels", "want KEY=VALUE"),
    ("h1", "10.0.0.1", ["zone=a b"], "labels", "want KEY=VALUE"),
    ("h1", "10.0.0.1", ["Zone=a"], "labels", "want KEY=VALUE"),
])
def test_bad_input_is_refused_saying_what_to_fix_and_nothing_is_stored(name, address, labels, field, says):
    with pytest.raises(InvalidInput) as refused:
        hosts.add_host(name=name, address=address, labels=labels, actor=Actor.cli("test"))

    assert says in " ".join(refused.value.errors[field])
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_a_person_who_is_not_a_superuser_cannot_add_remove_or_revoke_a_host():
    person = Actor(user=get_user_model().objects.create_user("someone"), via=Via.API)
    with pytest.raises(NotPossible, match="superuser"):
        hosts.add_host(name="h1", address="10.0.0.1", labels=[], actor=person)
    Host.objects.create(name="h1", address="10.0.0.1", credential_hash="0" * 64)
    for action in (hosts.remove_host, hosts.revoke_host, hosts.new_credential):
        with pytest.raises(NotPossible, match="superuser"):
            action(name="h1", actor=person)
    assert Host.objects.get(name="h1").revoked_at is None


@pytest.mark.django_db
def test_the_hosts_api_is_for_superusers_and_answers_bad_input_with_what_to_fix(client):
    person = get_user_model().objects.create_user("someone")
    admin = get_user_model().objects.create_superuser("root")
    as_person = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(person, 't')[1]}"}
    as_admin = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(admin, 't')[1]}"}
    Host.objects.create(name="h1", address="10.0.0.1", credential_hash="0" * 64)

    for method, path in (("get", "/api/hosts"), ("post", "/api/hosts"), ("get", "/api/hosts/h1"),
                         ("post", "/api/hosts/h1/revoke"), ("post", "/api/hosts/h1/credential"),
                         ("delete", "/api/hosts/h1")):
        answer = getattr(client, method)(path, data={"name": "h2", "address": "10.0.0.2"},
                                         content_type="application/json", **as_person)
        assert answer.status_code == 403, (method, path, answer.content)
    assert client.get("/api/hosts", **{}).status_code == 401

    bad = client.post("/api/hosts", data={"name": "H 2", "address": "nowhere", "labels": ["zone"]},
                      content_type="application/json", **as_admin)
    assert bad.status_code == 400
    assert all(word in bad.json()["detail"] for word in ("name:", "address:", "labels:"))
    assert client.get("/api/hosts/h9", **as_admin).status_code == 404
    listed = client.get("/api/hosts", **as_admin).json()
    assert [(host["name"], host["state"], host["revoked"]) for host in listed] == [("h1", "new", False)]
    assert Host.objects.count() == 1 and Host.objects.get().revoked_at is None


@pytest.mark.django_db
def test_the_hosts_page_and_its_actions_are_not_there_for_anyone_but_superusers(client):
    client.force_login(get_user_model().objects.create_user("someone"))
    Host.objects.create(name="h1", address="10.0.0.1", credential_hash="0" * 64)

    assert client.get("/hosts/").status_code == 404
    assert b'href="/hosts/"' not in client.get("/").content
    for path in ("/hosts/", "/hosts/h1/credential", "/hosts/h1/revoke", "/hosts/h1/remove"):
        assert client.post(path, {"name": "h2", "address": "10.0.0.2"}).status_code == 404, path
    assert list(Host.objects.values_list("name", "revoked_at", "credential_hash")) == [("h1", None, "0" * 64)]
