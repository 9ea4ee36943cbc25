"""Switchyard's labels go into the checked Dockerfile as one LABEL instruction ending the stage
that is built (dockerfile/build_context.with_labels): one build step, not one per label."""
import pytest

from deployments.dockerfile.build_context import with_labels

TWO_STAGES = ("FROM scratch AS stage-0\nCOPY a /a\nLABEL switchyard.app=theirs\n"
              "FROM stage-0 AS stage-1\nCOPY b /b\n")


def test_without_a_target_the_labels_end_the_last_stage_in_one_instruction():
    labelled = with_labels(TWO_STAGES, "", {"switchyard.b": "2", "switchyard.a": "1"})
    assert labelled == TWO_STAGES + 'LABEL switchyard.a="1" switchyard.b="2"\n'


def test_with_a_target_the_labels_end_that_stage_after_its_own_labels():
    labelled = with_labels(TWO_STAGES, "stage-0", {"switchyard.app": "ours"})
    assert labelled.split("\n")[:4] == ["FROM scratch AS stage-0", "COPY a /a", "LABEL switchyard.app=theirs",
                                        'LABEL switchyard.app="ours"']
    assert labelled.endswith("FROM stage-0 AS stage-1\nCOPY b /b\n")


def test_a_value_is_read_back_exactly_quotes_backslashes_and_dollars_escaped():
    labelled = with_labels("FROM scratch AS stage-0\n", "", {"switchyard.instance": 'a"b\\c$HOME'})
    assert labelled.endswith('LABEL switchyard.instance="a\\"b\\\\c\\$HOME"\n')
    with pytest.raises(ValueError):
        with_labels("FROM scratch AS stage-0\n", "", {"switchyard.instance": "two\nlines"})
