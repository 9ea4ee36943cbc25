"""ACME (RFC 8555) through certbot's `acme` package: the only module that imports it.

One order per call: register the account if it has no URL yet, order a certificate for the
domains, answer each HTTP-01 challenge through `publish` (HAProxy answers it from a map, see
traffic/changes.py publish_challenge), wait for the server to validate, finalize with our CSR and return
the chain. Every failure becomes AcmeFailed with the server's own words, for the app page.
"""
import datetime
import re
from dataclasses import dataclass
from typing import Callable

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization

ORDER_TIMEOUT = 90  # seconds for the server to validate and issue; then the attempt failed
NETWORK_TIMEOUT = 30
USER_AGENT = "switchyard"
# Tokens and key authorizations go into HAProxy's challenge map: nothing but base64url and ".".
SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
SAFE_KEY_AUTHORIZATION = re.compile(r"[A-Za-z0-9_-]{16,256}\.[A-Za-z0-9_-]{16,128}")


class AcmeFailed(Exception):
    """The ACME server refused or could not be reached: the message says why, in its words."""


@dataclass(frozen=True)
class AccountKey:
    key_pem: str
    uri: str = ""  # "" until registered


@dataclass(frozen=True)
class Issued:
    chain_pem: str
    account_uri: str  # the account's URL, new if it was registered on this call


Publish = Callable[[str, str], None]  # (token, key authorization)
Withdraw = Callable[[str], None]  # (token)


def issue(directory_url: str, ca_bundle: str, account: AccountKey, email: str, domains: list[str], key_pem: str,
          publish: Publish, withdraw: Withdraw) -> Issued:
    """Order and fetch a certificate for `domains` with `key_pem`; raises AcmeFailed."""
    key = josepy.JWKRSA(key=serialization.load_pem_private_key(account.key_pem.encode(), password=None))
    try:
        acme, uri = _client(directory_url, ca_bundle, key, account.uri, email)
        order = acme.new_order(crypto_util.make_csr(key_pem.encode(), domains))
        tokens = []
        try:
            for authorization in order.authorizations:
                # An authorization the account won earlier may be reused by the server (a renewal,
                # a retry): it is valid already, and answering its challenge again is refused.
                if authorization.body.status != messages.STATUS_VALID:
                    tokens.append(_answer_http01(acme, key, authorization, publish))
            order = acme.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT))
        finally:
            for token in tokens:
                withdraw(token)
    except errors.ValidationError as error:
        raise AcmeFailed(f"validation refused: {_validation_reasons(error)}") from None
    except errors.TimeoutError:
        raise AcmeFailed(f"the ACME server did not issue within {ORDER_TIMEOUT}s") from None
    except messages.Error as error:
        raise AcmeFailed(_problem(error)) from None
    except requests.exceptions.RequestException as error:
        raise AcmeFailed(f"could not reach the ACME server at {directory_url}: {_short(error)}") from None
    except errors.Error as error:
        raise AcmeFailed(f"ACME error: {type(error).__name__} {error!r}") from None
    return Issued(chain_pem=order.fullchain_pem, account_uri=uri)


def _client(directory_url: str, ca_bundle: str, key: josepy.JWKRSA, uri: str, email: str) -> tuple[client.ClientV2, str]:
    network = client.ClientNetwork(key, user_agent=USER_AGENT, verify_ssl=ca_bundle or True, timeout=NETWORK_TIMEOUT)
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, network), net=network)
    if uri:
        network.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
    else:
        registration = messages.NewRegistration.from_data(email=email or None, terms_of_service_agreed=True)
        try:
            network.account = acme.new_account(registration)
        except errors.ConflictError as existing:  # registered by an attempt that failed later: the same account
            network.account = messages.RegistrationResource(uri=existing.location, body=messages.Registration())
    return acme, network.account.uri


def _answer_http01(acme: client.ClientV2, key: josepy.JWKRSA, authorization: messages.AuthorizationResource,
                   publish: Publish) -> str:
    """Publish the key authorization of the authorization's HTTP-01 challenge and tell the
    server to check it; returns the token (to withdraw afterwards)."""
    found = [c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)]
    if not found:
        raise AcmeFailed(f"the ACME server offers no HTTP-01 challenge for {authorization.body.identifier.value}")
    challenge = found[0]
    response, key_authorization = challenge.response_and_validation(key)
    token = challenge.chall.encode("token")
    if not SAFE_TOKEN.fullmatch(token) or not SAFE_KEY_AUTHORIZATION.fullmatch(key_authorization):
        raise AcmeFailed(f"the ACME server sent a challenge token Switchyard will not serve: {token[:80]!r}")
    publish(token, key_authorization)
    acme.answer_challenge(challenge, response)
    return token


def _validation_reasons(error: errors.ValidationError) -> str:
    reasons = []
    for authorization in error.failed_authzrs:
        for challenge in authorization.body.challenges:
            if challenge.error is not None:
                reasons.append(f"{authorization.body.identifier.value}: {_problem(challenge.error)}")
    return "; ".join(reasons) or "the ACME server gave no reason"


def _problem(error: messages.Error) -> str:
    """`rateLimited: too many certificates ...`: the problem's code and the server's detail."""
    code = error.code or error.typ
    return f"{code}: {error.detail or error.title or error.description or 'no detail'}"


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 300 else text[:300] + "…"
