"""Under ASGI the panel's middleware chain runs in one thread (panel.middleware.OneThreadMiddleware):
Django hands a request's work to a thread a few times, not once more per hook of each
async-capable middleware (ten hops more: 3 to 4 ms of every request on two busy cores)."""
import asyncio
from unittest import mock

from asgiref.sync import SyncToAsync
from django.test import AsyncClient, override_settings

ONE_THREAD = "panel.middleware.OneThreadMiddleware"


def _hops_for_one_request() -> int:
    """How often Django hands work to a thread while it answers GET /login/ over ASGI."""
    calls = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    with mock.patch.object(SyncToAsync, "__call__", counted):
        response = asyncio.run(AsyncClient().get("/login/"))
    assert response.status_code == 200
    return len(calls)


def test_a_request_is_handed_to_a_thread_a_few_times_not_once_per_middleware_hook(db, settings):
    hops = _hops_for_one_request()
    with override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != ONE_THREAD]):
        hops_without = _hops_for_one_request()

    # Signals, the chain, the view's process_view and the view, rendering, closing: 6 (16 without).
    assert hops <= 6
    assert hops_without >= hops + 8  # what the innermost sync middleware saves: the check can fail
