from django.apps import AppConfig


class MailcoreConfig(AppConfig):
    name = "mailcore"
    verbose_name = "Mail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Models are loaded only now: the services that need them are imported here.
        from mailcore.services import filtering
        from mailcore.services.outbound import queue

        # Local mail from the queue (submission, webmail, held mail) runs the recipients'
        # Sieve scripts too; filtering itself queues redirects, so it registers rather than
        # being imported by the queue.
        queue.set_local_filter(filtering.filter_queued)
