from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the worker's start-up hooks, and the sending of deploy events once recorded (in
        # whichever process records them: web, worker or CLI).
        from deployments import enqueue, signals  # noqa: F401
