"""In headless Chromium: why HTTPS failed and an uploaded certificate, an expired one left out of
HAProxy, and the deploy key copied and rotated with a repository token masked."""
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from deployments import crypto
from deployments.haproxy import tls
from deployments.models import App, Certificate
from tests.support.browser import SCREENSHOTS, log_in
from tests.support.tls import PrivateCA


def test_person_sees_why_https_failed_and_uploads_their_own_certificate(transactional_db, page, django_user_model,
                                                                          app_repo):
    cy = django_user_model.objects.create_user("cy", password="pw-cy-45678")
    app = App.objects.create(name="shop", repo_url=app_repo.url, owner=cy)
    app.domains.create(hostname="shop.example.test")
    # What the worker leaves after an order the ACME server refused (tests/stack/test_https.py does it for real).
    Certificate.objects.create(app=app, status=Certificate.Status.FAILED, failures=2,
                               error="validation refused: shop.example.test: connection: 127.0.0.2: Connection refused",
                               next_attempt_at=timezone.now() + timedelta(minutes=2))
    log_in(page, "cy", "pw-cy-45678")

    page.goto("/apps/shop/")
    expect(page.locator("#certificate-status")).to_have_text("failed")
    expect(page.locator("#certificate-error")).to_contain_text("Connection refused")
    expect(page.locator("#certificate-error")).to_contain_text("the app keeps serving meanwhile")

    ca = PrivateCA("cy's CA")
    own, stranger = ca.issue(["shop.example.test"]), ca.issue(["shop.example.test"])
    page.goto("/apps/shop/settings/")
    page.locator("#https summary").click()
    page.fill("#id_certificate", own.chain_pem)
    page.fill("#id_key", stranger.key_pem)
    page.get_by_role("button", name="Upload certificate").click()
    expect(page.locator("#certificate-form .errorlist")).to_contain_text("the key does not belong to the certificate")
    page.fill("#id_certificate", own.chain_pem)
    page.fill("#id_key", own.key_pem)
    page.get_by_role("button", name="Upload certificate").click()
    expect(page.locator(".messages")).to_contain_text("Certificate saved")
    expect(page).to_have_url("/apps/shop/settings/")
    expect(page.locator("#certificate-status")).to_have_text("valid")
    expect(page.locator("#https")).to_contain_text("uploaded")
    expect(page.locator("#https")).to_contain_text("cy's CA")
    page.locator("#https").scroll_into_view_if_needed()
    page.locator("#https").screenshot(path=str(SCREENSHOTS / "https.png"))


def test_person_sees_that_an_expired_certificate_is_left_out_of_haproxy(transactional_db, page, django_user_model,
                                                                         app_repo):
    dee = django_user_model.objects.create_user("dee", password="pw-dee-456789")
    app = App.objects.create(name="kiosk", repo_url=app_repo.url, owner=dee)
    app.domains.create(hostname="kiosk.example.test")
    # Valid when it was uploaded; it ran out since (tests/stack/test_certificate_left_out.py restarts HAProxy with one).
    expired = PrivateCA("dee's CA").issue(["kiosk.example.test"], ago=timedelta(days=40), days=30)
    facts = tls.facts(expired.chain_pem)
    Certificate.objects.create(app=app, source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID,
                               domains=list(facts.names), chain_pem=expired.chain_pem,
                               encrypted_key=crypto.encrypt(expired.key_pem), issuer=facts.issuer,
                               not_before=facts.not_before, not_after=facts.not_after)
    log_in(page, "dee", "pw-dee-456789")

    page.goto("/apps/kiosk/")
    expect(page.locator("#certificate-status")).to_have_text("not served")
    expect(page.locator("#certificate-warning")).to_contain_text("This certificate is not served: it expired on")
    expect(page.locator("#certificate-warning")).to_contain_text("upload a valid one or let ACME issue one")
    page.goto("/apps/kiosk/settings/")
    expect(page.locator("#certificate-warning")).to_contain_text("This certificate is not served: it expired on")
    expect(page.locator("#https")).to_contain_text("plain HTTP until a certificate is issued")
    page.locator("#https").scroll_into_view_if_needed()
    page.locator("#https").screenshot(path=str(SCREENSHOTS / "https_expired.png"))


def test_person_copies_the_deploy_key_rotates_it_and_sees_a_repository_token_masked(transactional_db, page,
                                                                                      django_user_model, app_repo):
    fay = django_user_model.objects.create_user("fay", password="pw-fay-456789")
    app = App.objects.create(name="vault", repo_url="https://deploy:ghp_T0kenNeverShown@git.example.com/fay/vault.git",
                             owner=fay)
    log_in(page, "fay", "pw-fay-456789")

    page.goto("/apps/vault/")
    assert "ghp_T0kenNeverShown" not in page.content()  # the source line: masked
    page.goto("/apps/vault/settings/")
    block = page.locator("#deploy-key")
    expect(block).to_contain_text("read-only deploy key")
    expect(page.locator("#deploy-public-key")).to_have_text(app.deploy_public_key)
    assert "ghp_T0kenNeverShown" not in page.content()  # the settings form: masked
    expect(page.locator("#id_repo_url")).to_have_value("https://deploy:****@git.example.com/fay/vault.git")
    block.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "deploy_key.png"), full_page=False)

    page.get_by_role("button", name="Save settings").click()  # the form sends the masked URL back
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    assert App.objects.get(pk=app.pk).repo_url == app.repo_url  # kept, token and all

    block = page.locator("#deploy-key")
    block.get_by_role("button", name="Rotate key").click()
    expect(page.locator(".messages")).to_contain_text("New deploy key")
    rotated = App.objects.get(pk=app.pk).deploy_public_key
    assert rotated != app.deploy_public_key
    expect(page.locator("#deploy-public-key")).to_have_text(rotated)


TAB_LABELS = {"overview": "Overview", "deployments": "Deployments", "logs": "Logs", "settings": "Settings",
              "environment": "Environment", "webhooks": "Webhooks and events", "members": "Members",
              "activity": "Activity"}
