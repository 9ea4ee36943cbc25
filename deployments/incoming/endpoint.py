"""The webhook endpoint, POST /hooks/<app>/: only records and enqueues (see application/pushes.py)."""
import logging

import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_ratelimit.core import is_ratelimited

from deployments.application import pushes
from deployments.audit import client_address
from deployments.models import App

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024  # GitHub caps payloads at 25 MB, but a push we act on is a few kB


@csrf_exempt
@require_POST
def receive(request: HttpRequest, name: str) -> JsonResponse:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY:
        return JsonResponse({"detail": "body larger than 1 MiB"}, status=413)
    app = App.objects.filter(name=name).only("id", "name", "webhook_secret").first()  # a push reads the rest locked
    if app is None:
        return JsonResponse({"detail": f"no app named {name!r}"}, status=404)
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return JsonResponse({"detail": "body larger than 1 MiB"}, status=413)
    status, payload = pushes.receive_webhook(app, headers=request.headers, body=body, address=client_address(request),
                                             within_budget=lambda: _rejection_within_budget(request))
    return JsonResponse(payload, status=status)


def _rejection_within_budget(request: HttpRequest) -> bool:
    """Count one rejected delivery against the sender's address (REMOTE_ADDR; the cache is Redis,
    so every web worker shares the count); False once it has sent more this minute than allowed."""
    rate = f"{settings.WEBHOOK_REJECTIONS_PER_MINUTE}/m"
    try:
        return not is_ratelimited(request, group="webhook-rejections", key="ip", rate=rate, increment=True)
    except redis.RedisError:  # while Redis is away the count is lost; the delivery is refused all the same
        logger.warning("webhook rejections not counted: Redis is unreachable")
        return True
