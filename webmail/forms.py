"""The webmail's forms: login, search, folders, settings and password."""

from django import forms

from webmail.models import Theme


class LoginForm(forms.Form):
    # A missing field is said in words, tied to it by aria-describedby (Django adds that and
    # aria-invalid; the template gives the message the id), never by colour alone.
    address = forms.CharField(
        label="Email address", max_length=320,
        error_messages={"required": "Enter your email address."},
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password", max_length=1024, strip=False,
        error_messages={"required": "Enter your password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(forms.Form):
    """The second step of signing in (or turning two-factor on or off): a code from the
    authenticator app, or a recovery code."""

    code = forms.CharField(
        label="Code from your authenticator app, or a recovery code", max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text",
                                      "autofocus": True}),
    )


class AppPasswordForm(forms.Form):
    label = forms.CharField(label="Name (the device or app it is for)", max_length=100)


class FolderNameForm(forms.Form):
    name = forms.CharField(label="Folder name", max_length=500)


class ActionForm(forms.Form):
    ACTIONS = [
        ("read", "Mark read"), ("unread", "Mark unread"), ("flag", "Flag"),
        ("unflag", "Unflag"), ("delete", "Delete"), ("archive", "Archive"), ("junk", "Junk"),
        ("notjunk", "Not junk"), ("move", "Move"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    target = forms.IntegerField(required=False)

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        # Ids are checked for ownership by the view, not against a list of choices.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()


class PreferencesForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=200, required=False)
    load_remote_images = forms.BooleanField(
        label="Load remote images in every message", required=False
    )
    conversation_view = forms.BooleanField(
        label="Show whole conversations when reading", required=False
    )
    theme = forms.ChoiceField(label="Theme", choices=Theme.choices)


class PasswordForm(forms.Form):
    current = forms.CharField(
        label="Current password", strip=False, max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new = forms.CharField(
        label="New password", strip=False, max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    confirm = forms.CharField(
        label="New password again", strip=False, max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("new") and data.get("new") != data.get("confirm"):
            self.add_error("confirm", "The two new passwords differ.")
        return data


class ComposeForm(forms.Form):
    """What the compose form posts. Addresses are checked by the MIME layer (one set of rules
    for every door); this form only bounds sizes."""

    from_addr = forms.CharField(label="From", max_length=320, required=False)
    to = forms.CharField(label="To", max_length=20000, required=False, strip=False)
    cc = forms.CharField(label="Cc", max_length=20000, required=False, strip=False)
    bcc = forms.CharField(label="Bcc", max_length=20000, required=False, strip=False)
    subject = forms.CharField(label="Subject", max_length=998, required=False, strip=False)
    body = forms.CharField(label="Message", required=False, strip=False,
                           max_length=5 * 1024 * 1024, widget=forms.Textarea)
    # Rich text: the editor's HTML, used only when its script said it is running (rich_active).
    body_html = forms.CharField(required=False, strip=False, max_length=9 * 1024 * 1024)
    rich_active = forms.BooleanField(required=False)
    send_at = forms.DateTimeField(
        label="Send at", required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    # Minutes from UTC to the browser's local time, as JavaScript's getTimezoneOffset() gives
    # them (UTC minus local); empty without JavaScript (the server's time zone applies then).
    tz_offset = forms.IntegerField(required=False, min_value=-24 * 60, max_value=24 * 60)
    no_attachment_ok = forms.BooleanField(required=False)


class SignatureForm(forms.Form):
    signature = forms.CharField(
        label="Signature", required=False, max_length=4000, strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    default_identity = forms.ChoiceField(label="Send new mail from", choices=())
    undo_seconds = forms.TypedChoiceField(label="Offer Undo after Send for", coerce=int,
                                          choices=())

    def __init__(self, *args, identities=(), undo_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_identity"].choices = [(a, a) for a in identities]
        self.fields["undo_seconds"].choices = undo_choices
