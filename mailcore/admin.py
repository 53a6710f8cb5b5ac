"""The Django admin: domains, mailboxes (created and reset through the service layer), aliases,
and read-only views of folders and messages."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.password_validation import validate_password
from django.template.defaultfilters import filesizeformat

from mailcore.models import Alias, Domain, Folder, Mailbox, Message
from mailcore.services import accounts


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "mailbox_count", "created"]
    list_filter = ["active"]
    search_fields = ["name"]
    actions = ["generate_dkim_key"]

    @admin.display(description="Mailboxes")
    def mailbox_count(self, obj: Domain) -> int:
        return obj.mailboxes.count()

    @admin.action(description="Generate a DKIM key (shows the DNS record to publish)")
    def generate_dkim_key(self, request, queryset):
        from mailcore.services.dkim import generate_dkim_key

        for domain in queryset:
            key = generate_dkim_key(domain)
            messages.success(
                request, f"Publish this TXT record at {key.dns_name}: {key.txt_record}"
            )


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        help_text="Required for a new mailbox. On an existing one, fill it in to reset the password.",
    )

    class Meta:
        model = Mailbox
        fields = ["domain", "local_part", "display_name", "quota", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The address is the login and the IMAP identity: it does not change.
            for name in ("domain", "local_part"):
                self.fields[name].disabled = True

    def clean_local_part(self):
        local = self.cleaned_data["local_part"].strip().lower()
        if not local or "@" in local or any(ch.isspace() for ch in local):
            raise forms.ValidationError("Enter the part of the address before the @.")
        return local

    def clean(self):
        data = super().clean()
        password = data.get("password")
        if not self.instance.pk:
            if not password:
                self.add_error("password", "A new mailbox needs a password.")
            domain, local = data.get("domain"), data.get("local_part")
            if domain and local and Mailbox.objects.filter(domain=domain, local_part=local).exists():
                self.add_error("local_part", "This address already exists.")
        if password:
            try:
                validate_password(password)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = ["address", "display_name", "active", "usage", "quota_display", "created"]
    list_filter = ["active", "domain"]
    search_fields = ["address", "display_name"]
    readonly_fields = ["address", "usage"]

    def get_fields(self, request, obj=None):
        fields = ["domain", "local_part", "display_name", "quota", "active", "password"]
        return fields + (["address", "usage"] if obj else [])

    @admin.display(description="Used")
    def usage(self, obj: Mailbox) -> str:
        percent = obj.quota_percent
        used = filesizeformat(obj.used_bytes)
        return used if percent is None else f"{used} ({percent}%)"

    @admin.display(description="Quota", ordering="quota")
    def quota_display(self, obj: Mailbox) -> str:
        return filesizeformat(obj.quota) if obj.quota else "unlimited"

    def save_model(self, request, obj, form, change):
        password = form.cleaned_data.get("password")
        if change:
            super().save_model(request, obj, form, change)
            if password:
                accounts.set_password(obj, password)
                messages.info(request, f"The password of {obj.address} was reset.")
            return
        created = accounts.create_mailbox(
            f"{obj.local_part}@{obj.domain.name}",
            password,
            display_name=obj.display_name,
            quota=obj.quota,
        )
        if not obj.active:
            created.active = False
            created.save(update_fields=["active"])
        obj.pk = created.pk
        obj.user = created.user
        obj.address = created.address


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    list_display = ["source", "destinations", "active"]
    list_filter = ["active", "domain"]
    search_fields = ["local_part", "domain__name", "destinations"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Folder)
class FolderAdmin(ReadOnlyAdmin):
    list_display = ["name", "mailbox", "role", "message_count", "unseen_count"]
    list_filter = ["role"]
    search_fields = ["name", "mailbox__address"]
    list_select_related = ["mailbox"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["subject", "from_addr", "folder", "uid", "internal_date", "size", "seen"]
    list_filter = ["seen", "flagged", "has_attachments", "folder__role"]
    search_fields = ["subject", "from_addr", "from_name", "message_id", "mailbox__address"]
    list_select_related = ["folder", "folder__mailbox"]
    exclude = ["envelope", "structure"]
    show_full_result_count = False
    date_hierarchy = None

    def has_delete_permission(self, request, obj=None):
        # Messages are removed through the service layer (expunge), which keeps counts right.
        return False


# --- The outbound queue and DKIM keys ---------------------------------------------------------

from mailcore.admin_outbound import DkimKeyAdmin, OutboundMessageAdmin  # noqa: E402, F401
