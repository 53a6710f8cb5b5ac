"""The admin of the outbound queue (filters by state, each recipient's attempt history, "retry
now", "bounce now" and delete, all through the queue service) and of DKIM keys."""

from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join

from mailcore.models import DkimKey, OutboundMessage, OutboundRecipient, RecipientState
from mailcore.services.dkim import generate_dkim_key
from mailcore.services.outbound import admin as outbound_admin
from mailcore.services.outbound.queue import delete_outbound


class RecipientStateFilter(admin.SimpleListFilter):
    title = "recipient state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return RecipientState.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(recipients__state=self.value()).distinct()
        return queryset


def history_table(recipient: OutboundRecipient) -> str:
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (a.at.strftime("%Y-%m-%d %H:%M:%S"), a.host, a.code or "", a.outcome, a.reply)
            for a in recipient.history.all()
        ),
    )
    if not rows:
        return "no attempt yet"
    return format_html(
        "<table><tr><th>when</th><th>host</th><th>code</th><th>outcome</th><th>reply</th></tr>"
        "{}</table>",
        rows,
    )


class RecipientInline(admin.TabularInline):
    model = OutboundRecipient
    extra = 0
    can_delete = False
    fields = ["address", "state", "attempts", "next_attempt", "last_host", "history"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Attempts (history)")
    def history(self, obj: OutboundRecipient) -> str:
        return history_table(obj)


class QueueActions:
    """What the message and recipient lists share: read-only rows, and actions that act on
    whole messages (``_message_ids`` gives the messages of the selected rows)."""

    actions = ["retry_now", "bounce_now", "delete_from_queue"]

    def _message_ids(self, queryset) -> list[int]:
        raise NotImplementedError

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting goes through the service, which also frees the stored bytes.
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        count = outbound_admin.retry_now(self._message_ids(queryset))
        messages.success(request, f"{count} recipient(s) will be retried now.")

    @admin.action(description="Bounce now (DSN to the sender)")
    def bounce_now(self, request, queryset):
        count = outbound_admin.bounce_now(self._message_ids(queryset))
        messages.success(request, f"{count} recipient(s) bounced.")

    @admin.action(description="Delete from the queue (no DSN)")
    def delete_from_queue(self, request, queryset):
        count = delete_outbound(self._message_ids(queryset))
        messages.success(request, f"{count} message(s) deleted from the queue.")


@admin.register(OutboundMessage)
class OutboundMessageAdmin(QueueActions, admin.ModelAdmin):
    list_display = ["created", "sender", "subject", "recipient_states", "size_display",
                    "hold_until", "finished"]
    list_filter = [RecipientStateFilter, "finished"]
    search_fields = ["mail_from", "subject", "message_id", "recipients__address"]
    date_hierarchy = "created"
    fields = ["mail_from", "mailbox", "subject", "message_id", "size", "created", "expires",
              "hold_until", "finished", "lock_token", "locked_until"]
    readonly_fields = fields
    inlines = [RecipientInline]

    def _message_ids(self, queryset) -> list[int]:
        return list(queryset.values_list("pk", flat=True))

    @admin.display(description="Sender", ordering="mail_from")
    def sender(self, obj: OutboundMessage) -> str:
        return obj.mail_from or "<>"

    @admin.display(description="Size", ordering="size")
    def size_display(self, obj: OutboundMessage) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="Recipients")
    def recipient_states(self, obj: OutboundMessage) -> str:
        counts: dict[str, int] = {}
        for recipient in obj.recipients.all():
            counts[recipient.state] = counts.get(recipient.state, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("recipients")


@admin.register(OutboundRecipient)
class OutboundRecipientAdmin(QueueActions, admin.ModelAdmin):
    list_display = ["address", "state", "attempts", "next_attempt", "last_reply", "last_host",
                    "message"]
    list_filter = ["state", "domain"]
    search_fields = ["address", "message__mail_from", "message__subject", "last_reply"]
    fields = ["message", "address", "state", "attempts", "next_attempt", "last_attempt",
              "last_host", "last_reply", "delay_notified", "history"]
    readonly_fields = fields
    list_select_related = ["message"]

    def _message_ids(self, queryset) -> list[int]:
        return list(queryset.values_list("message_id", flat=True).distinct())

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Attempts (history)")
    def history(self, obj: OutboundRecipient) -> str:
        return history_table(obj)


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    list_display = ["domain", "selector", "dns_name", "active", "created"]
    list_filter = ["active"]
    readonly_fields = ["dns_name", "txt_record"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["domain", "selector"]
        return ["domain", "selector", "active", "dns_name", "txt_record"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["domain", "selector", "dns_name", "txt_record"]

    @admin.display(description="DNS name")
    def dns_name(self, obj: DkimKey) -> str:
        return obj.dns_name

    @admin.display(description="TXT record to publish")
    def txt_record(self, obj: DkimKey) -> str:
        return format_html("<code style='word-break: break-all'>{}</code>", obj.txt_record)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key = generate_dkim_key(obj.domain, obj.selector or "correio")
        obj.pk = key.pk
        messages.success(request, f"Publish this TXT record at {key.dns_name}: {key.txt_record}")
