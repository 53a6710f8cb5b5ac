"""The webmail's forms: login, search, folders, settings and password."""

from django import forms

from webmail.models import Theme


class LoginForm(forms.Form):
    address = forms.CharField(
        label="Email address", max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password", max_length=1024, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


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
