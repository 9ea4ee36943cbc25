"""The app's settings schema (application/app_settings.py) is the one place the panel's forms, the
API's schemas and the CLI's options take an app's settings from; and the application layer has
no import cycle and no import hidden in a function to break one."""
import argparse
import ast
from pathlib import Path

from deployments.api_schemas import AppIn, AppOut, AppPatch
from deployments.application.app_settings import ASKED_AT_CREATE, LABELS, SETTINGS_FIELDS, AppSpec, default
from deployments.forms import NewAppForm, SettingsForm
from deployments.management.commands.apps import Command
from deployments.models import App

ROOT = Path(__file__).resolve().parents[2]


def _cli_defaults(action: str) -> dict:
    parser = argparse.ArgumentParser()
    Command().add_arguments(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[action]
    return {a.dest: a.default for a in sub._actions}


def test_a_new_apps_settings_take_the_models_defaults_in_the_form_the_api_and_the_cli():
    form, cli = NewAppForm(), _cli_defaults("create")
    for name in ASKED_AT_CREATE:
        expected = App._meta.get_field(name).get_default()
        assert default(name) == expected
        initial = form.fields[name].initial
        assert (initial if initial is not None else "") == expected, name
        if name != "repo_url":
            assert AppIn.model_fields[name].default == expected, name
            assert cli[name] == expected, name
    assert AppIn.model_fields["replicas"].default == App._meta.get_field("replicas").get_default()


def test_every_setting_is_in_the_settings_form_the_api_and_the_cli_update():
    assert list(SettingsForm.base_fields)[:len(SETTINGS_FIELDS)] == list(SETTINGS_FIELDS)
    assert set(SETTINGS_FIELDS) <= set(AppPatch.model_fields) & set(AppOut.model_fields) & set(AppIn.model_fields)
    assert set(SETTINGS_FIELDS) <= set(_cli_defaults("update"))
    assert {SettingsForm.base_fields[name].label for name in LABELS} == set(LABELS.values())


def test_the_create_form_checks_the_bounds_the_model_declares():
    form = NewAppForm({"name": "shop", "repo_url": "https://git.example.com/shop.git", "branch": "main",
                       "dockerfile": "Dockerfile", "port": "0", "health_path": "/health"})
    assert not form.is_valid() and "greater than or equal to 1" in str(form.errors["port"])


def test_an_app_spec_takes_settings_as_keywords_or_a_dict_and_refuses_what_is_not_a_setting():
    spec = AppSpec.of(name="shop", repo_url="/srv/shop.git", port=8080, settings={"hsts": True}, health_host=None)
    assert spec.settings == {"port": 8080, "hsts": True}
    try:
        AppSpec.of(name="shop", repo_url="/srv/shop.git", live_colour="green")
    except TypeError as error:
        assert "live_colour" in str(error)
    else:
        raise AssertionError("live_colour is not a setting")


def test_the_models_import_no_form_and_nothing_imports_inside_a_function_to_dodge_a_cycle():
    for path in (ROOT / "deployments").rglob("*.py"):
        if "migrations" in path.parts or path.name in ("apps.py", "signals.py") and path.parent.name == "deployments":
            continue  # Django's AppConfig.ready and the worker's start-up import on purpose, late
        tree = ast.parse(path.read_text(), str(path))
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deployments"):
                    raise AssertionError(f"{path.relative_to(ROOT)}: {node.module} imported inside {function.name}")
