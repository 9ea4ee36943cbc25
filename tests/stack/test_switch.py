"""The switch: HAProxy first, then the map file and the database, and all three agree after."""
from deployments.haproxy import process as haproxy_process, runtime_api
from deployments.haproxy.config import map_entries, parse_map, route_app_to
from deployments.models import App, Deployment
from deployments.traffic import changes, rows, target


def _runtime_map() -> list[tuple[str, str]]:
    """`show map` of the running HAProxy: lines of "<ref> <host> <backend>"."""
    location = target.paths()
    answer = runtime_api.send(location.admin_socket, f"show map {location.hosts_map}")
    return [tuple(line.split()[1:]) for line in answer.splitlines() if line.strip()]


def _file_map() -> list[tuple[str, str]]:
    return parse_map(target.paths().hosts_map.read_text())


def _database_map() -> list[tuple[str, str]]:
    return map_entries(rows.app_routes())


def test_a_switch_leaves_runtime_file_and_database_equal_and_other_apps_alone(stack, app_repo):
    app_repo.commit_version("v1")
    shop = stack.create_app(app_repo, name="shop", domains=["shop.example.com"])
    other = stack.create_app(app_repo, name="shop2")  # a name that starts like the first one
    stack.deploy_live(shop)
    other_release = stack.deploy_and_wait(other)
    app_repo.commit_version("v2")

    second = stack.deploy_and_wait(shop)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert _runtime_map() == _file_map() == _database_map()
    assert dict(_file_map()) == {
        "shop.localhost": f"app_shop_{second.colour}", "shop.example.com": f"app_shop_{second.colour}",
        "shop2.localhost": f"app_shop2_{other_release.colour}",
    }
    assert stack.get("shop.example.com") == (200, "v2")
    assert stack.get("shop2.localhost") == (200, "v1")
    assert "ms after HAProxy reported it UP" in "\n".join(second.log_lines.values_list("text", flat=True))


def test_a_switch_while_haproxy_is_down_starts_it_on_the_new_routing(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    first = stack.deploy_and_wait(app)
    app_repo.commit_version("v2")
    second = stack.deploy_and_wait(app)
    haproxy_process.stop(target.paths())

    changes.switch_to(first)  # back to v1's colour, whose containers are gone by now

    assert haproxy_process.is_running(target.paths())
    assert App.objects.get(pk=app.pk).live_colour == first.colour
    assert _runtime_map() == _file_map() == _database_map()
    assert stack.get(f"{app.name}.localhost")[0] == 503  # HAProxy routes there: an empty backend

    changes.switch_to(second)  # HAProxy is up again: the runtime-first way

    assert stack.get(f"{app.name}.localhost") == (200, "v2")
    assert _runtime_map() == _file_map() == _database_map()


def test_route_app_to_changes_only_the_apps_own_hosts():
    entries = [("a.localhost", "app_a_blue"), ("x.example.com", "app_a_blue"), ("ab.localhost", "app_ab_blue")]

    assert route_app_to(entries, "a", "green") == [
        ("a.localhost", "app_a_green"), ("x.example.com", "app_a_green"), ("ab.localhost", "app_ab_blue")]
    assert route_app_to(entries, "missing", "green") is None
