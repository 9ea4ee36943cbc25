"""A tenant's request to the running panel's API (tests/web/test_access_*.py)."""
import requests


def call_api(panel_server: str, token: str, method: str, path: str, **body) -> requests.Response:
    """`method` on /api`path` with `body` as JSON, as the holder of `token`; a 5xx fails the test
    there, whatever it was about."""
    response = requests.request(method, f"{panel_server}/api{path}", json=body or None, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, response.text
    return response
