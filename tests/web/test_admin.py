"""Django's admin edits apps too: what it changes reaches HAProxy like the panel's edits do."""

from deployments.dockerd import containers
from deployments.models import App, AuditEvent


def _change_form_data(page) -> dict:
    """What the admin's change form would post back unchanged, inline management forms included."""
    data = {}
    form = page.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
    return data


def test_a_domain_added_in_the_admin_routes_to_the_app(stack, app_repo, admin_client):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stack.deploy_live(app)
    url = f"/admin/deployments/app/{app.pk}/change/"
    data = _change_form_data(admin_client.get(url))
    data.update({"domains-TOTAL_FORMS": "1", "domains-0-hostname": "added-in-admin.example.com",
                 "domains-0-app": str(app.pk)})

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    stack.eventually(lambda: stack.get("added-in-admin.example.com")[0] != 404, "the worker routes the domain")
    assert stack.get("added-in-admin.example.com") == (200, "v1")
    event = AuditEvent.objects.get(action="app.admin_edit")
    assert (event.via, event.app_name, event.username) == ("admin", app.name, "admin")


def test_deleting_an_app_in_the_admin_removes_its_containers_and_routing(stack, app_repo, admin_client):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stack.deploy_live(app)
    assert containers.listed(app_name=app.name)

    response = admin_client.post(f"/admin/deployments/app/{app.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not App.objects.filter(pk=app.pk).exists()
    stack.eventually(lambda: containers.listed(app_name=app.name) == [], "the worker removes the containers")
    # Routing is changed by another worker (the control queue) than the one that removes the
    # containers: either may finish first, and until the map loses the host it answers 503.
    stack.eventually(lambda: stack.get(app.default_hostname)[0] == 404, "HAProxy no longer knows the host")
    assert AuditEvent.objects.filter(action="app.delete", app_name=app.name, via="admin").exists()
