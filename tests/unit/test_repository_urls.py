"""A delivery's repository against the app's: URLs reduced to host and path, so every spelling of
one repository matches and no other repository does (incoming/repository.py)."""
import pytest

from deployments.incoming import repository

SAME = ["https://github.com/octo/shop.git", "HTTPS://GitHub.com/Octo/Shop.git/", "http://github.com/octo/shop",
        "git@github.com:octo/shop.git", "ssh://git@github.com:22/octo/shop/", "https://token:x@github.com/octo/shop",
        "git://github.com/octo/shop.git"]


@pytest.mark.parametrize("spelling", SAME)
def test_every_spelling_of_one_repository_is_the_same(spelling):
    assert repository.normalised(spelling) == "github.com/octo/shop"


@pytest.mark.parametrize("url", ["/srv/shop.git", "file:///srv/shop.git", "", "shop", "https://github.com/"])
def test_a_url_without_host_or_path_matches_nothing(url):
    assert repository.normalised(url) == ""
    assert repository.mismatch(app_name="shop", repo_url=url, payload_urls=[url, "https://github.com/octo/shop"])


@pytest.mark.parametrize("theirs", ["https://github.com/octo/shop-old", "https://github.com/octo/shop/wiki",
                                    "https://gitlab.com/octo/shop", "https://github.com.evil.net/octo/shop"])
def test_another_repository_is_named_but_the_apps_url_is_not(theirs):
    reason = repository.mismatch(app_name="shop", repo_url="https://me:s3cret@github.com/octo/shop.git",
                                 payload_urls=[theirs])
    assert reason == f"the delivery is for {repository.normalised(theirs)}, which is not the repository shop deploys"
    assert "s3cret" not in reason


def test_any_of_the_payloads_urls_may_match():
    urls = ["https://github.com/octo/shop", "git@github.com:octo/shop.git", "https://github.com/octo/shop.git"]
    assert repository.mismatch(app_name="shop", repo_url="ssh://git@github.com/octo/shop.git", payload_urls=urls) == ""
