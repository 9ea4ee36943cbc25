"""The app page's tabs and the settings groups, read from their definitions alone."""
from collections import Counter

from deployments.app_pages import TabConverter
from deployments.app_tabs import SETTINGS_GROUPS, TABS
from deployments.forms import SettingsForm


def test_every_settings_field_is_in_exactly_one_group():
    grouped = Counter(name for group in SETTINGS_GROUPS for name in group.fields)

    assert set(grouped) == set(SettingsForm.base_fields)
    assert [name for name, times in grouped.items() if times > 1] == []


def test_tab_slugs_are_unique_and_each_besides_the_overview_is_a_path_segment():
    slugs = [tab.slug for tab in TABS]

    assert len(set(slugs)) == len(slugs) and slugs[0] == "overview"
    assert TabConverter.regex.split("|") == slugs[1:]
