"""How a deploy event is worded for its receiver: a commit status URL made of checked words only,
and a Slack message that can neither ping a channel nor make a link of the reason."""
import pytest

from deployments.outgoing import commit_status, events


@pytest.mark.parametrize("provider, repository, url", [
    ("github", "octocat/shop", "https://api.example/repos/octocat/shop/statuses/{sha}"),
    ("gitea", "gitea/webhooks", "https://api.example/api/v1/repos/gitea/webhooks/statuses/{sha}"),
    ("forgejo", "forgejo/webhooks", "https://api.example/api/v1/repos/forgejo/webhooks/statuses/{sha}"),
    ("gitlab", "15", "https://api.example/api/v4/projects/15/statuses/{sha}"),
    ("github", "../../admin", None), ("github", "octocat/shop?x=1", None), ("gitlab", "mike/diaspora", None),
])
def test_a_commit_status_url_is_made_of_checked_words(provider, repository, url):
    sha = "a" * 40
    if url is None:
        with pytest.raises(commit_status.Refused, match="no commit status"):
            commit_status.status_url(provider, repository, sha, base="https://api.example")
    else:
        assert commit_status.status_url(provider, repository, sha, base="https://api.example") == url.format(sha=sha)


def test_a_slack_message_cannot_ping_the_channel_or_make_links():
    message = events._slack_message({"summary": "shop #3 failed", "reason": "boom <!channel> <https://evil|click>",
                                     "deployment": {"url": "https://panel.example.com/deployments/3/"}})
    assert message["text"] == ("<https://panel.example.com/deployments/3/|shop #3 failed>\n"
                               "> boom &lt;!channel&gt; &lt;https://evil|click&gt;")
