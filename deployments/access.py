"""Who may do what with an app. One place, used by pages, WebSockets and the API.

Roles grow: viewer (see) < deployer (deploy, cancel, redeploy) < admin (settings, env
vars, members, webhook secret, delete). The owner and superusers act as admin. Anyone
else is an outsider and must not learn that the app exists: 404, never 403.
"""
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from deployments.models import App, Deployment, Membership

VIEWER, DEPLOYER, ADMIN = Membership.Role.VIEWER, Membership.Role.DEPLOYER, Membership.Role.ADMIN
RANK = {VIEWER: 1, DEPLOYER: 2, ADMIN: 3}


def role_of(user: AbstractBaseUser | AnonymousUser, app: App) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser or app.owner_id == user.pk:
        return ADMIN
    return Membership.objects.filter(app=app, user=user).values_list("role", flat=True).first()


def allows(role: str | None, needed: str) -> bool:
    return role is not None and RANK[role] >= RANK[needed]


def visible_apps(user: AbstractBaseUser) -> QuerySet[App]:
    if user.is_superuser:
        return App.objects.all()
    return App.objects.filter(Q(owner=user) | Q(memberships__user=user)).distinct()


def app_for_user(user: AbstractBaseUser, name: str, needed: str = VIEWER) -> App:
    """The app if `user` holds at least `needed`; 404 for outsiders, 403 for a lower role."""
    app = App.objects.filter(name=name).first()
    role = role_of(user, app) if app else None
    if role is None:
        raise Http404("No such app")
    if not allows(role, needed):
        raise PermissionDenied(f"This needs the {needed} role on {name}")
    return app


def deployment_for_user(user: AbstractBaseUser, deployment_id: int, needed: str = VIEWER) -> Deployment:
    deployment = Deployment.objects.select_related("app").filter(pk=deployment_id).first()
    if deployment is None:
        raise Http404("No such deployment")
    app_for_user(user, deployment.app.name, needed)
    return deployment
