"""Who may act on an app (its members and their roles) and as whom the API acts (a user's tokens)."""
from django.contrib.auth import get_user_model
from django.db import transaction

from deployments.application.errors import InvalidInput
from deployments.audit import Actor, record
from deployments.models import ApiToken, App, Membership


def set_member(app: App, *, username: str, role: str, actor: Actor) -> Membership:
    """Give `username` the role on the app (a member already: their role changes)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput({"username": [f"there is no user {username!r}"]})
    if role not in Membership.Role.values:
        raise InvalidInput({"role": [f"{role!r} is not a role; use viewer, deployer or admin"]})
    if user.pk == app.owner_id:
        raise InvalidInput({"username": [f"{username} owns the app and has every right already"]})
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(app=app, user=user, defaults={"role": role})
        record(actor, "member.set", app, f"{username} as {role}")
    return membership


def remove_member(app: App, *, user_id: int, actor: Actor) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_related("user").filter(app=app, user_id=user_id).first()
        if membership is not None:
            membership.delete()
            record(actor, "member.remove", app, membership.user.get_username())


def create_token(*, name: str, actor: Actor) -> str:
    """A new API token of the actor's user; the token itself is returned once, never stored."""
    with transaction.atomic():
        token, plain = ApiToken.issue(actor.user, name)
        record(actor, "token.create", detail=f"{token.name} ({token.prefix}…)")
    return plain


def revoke_token(*, token_id: int, actor: Actor) -> bool:
    """False if the actor's user has no such token."""
    with transaction.atomic():
        token = actor.user.api_tokens.filter(pk=token_id).first()
        if token is None:
            return False
        token.delete()
        record(actor, "token.revoke", detail=f"{token.name} ({token.prefix}…)")
    return True
