"""How a deploy event is worded for its receiver: a commit status URL made of checked words only,
and a Slack message that can neither ping a channel nor make a link of the reason."""
import pytest
from django.conf import settings

from deployments.outgoing import events


@pytest.mark.parametrize("provider, repository, url", [
    ("github", "octocat/shop", "{github}/repos/octocat/shop/statuses/{sha}"),
    ("gitea", "gitea/webhooks", "{gitea}/api/v1/repos/gitea/webhooks/statuses/{sha}"),
    ("gitlab", "15", "{gitlab}/api/v4/projects/15/statuses/{sha}"),
    ("github", "../../admin", None), ("github", "octocat/shop?x=1", None), ("gitlab", "mike/diaspora", None),
])
def test_a_commit_status_url_is_made_of_checked_words(provider, repository, url):
    sha = "a" * 40
    bases = {"github": settings.SWITCHYARD["GITHUB_API_URL"], "gitea": settings.SWITCHYARD["GITEA_URL"],
             "gitlab": settings.SWITCHYARD["GITLAB_URL"]}
    assert events._status_url(provider, repository, sha) == (url and url.format(sha=sha, **bases))


def test_a_slack_message_cannot_ping_the_channel_or_make_links():
    message = events._slack_message({"summary": "shop #3 failed", "reason": "boom <!channel> <https://evil|click>",
                                     "deployment": {"url": "https://panel.example.com/deployments/3/"}})
    assert message["text"] == ("<https://panel.example.com/deployments/3/|shop #3 failed>\n"
                               "> boom &lt;!channel&gt; &lt;https://evil|click&gt;")
