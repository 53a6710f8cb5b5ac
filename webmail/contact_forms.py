"""Forms of the address book page: one contact, and a vCard file to import."""

from django import forms

from mailcore.mime.vcard import MAX_BYTES
from mailcore.services.contacts import ContactInput


class ContactForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200, required=False)
    emails = forms.CharField(label="E-mail addresses (one a line)", max_length=20_000,
                             required=False, widget=forms.Textarea(attrs={"rows": 3}))
    phones = forms.CharField(label="Phone numbers (one a line)", max_length=2000,
                             required=False, widget=forms.Textarea(attrs={"rows": 2}))
    notes = forms.CharField(label="Notes", max_length=4000, required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))
    groups = forms.CharField(label="Groups (separated by commas)", max_length=2000,
                             required=False)

    def contact_input(self) -> ContactInput:
        data = self.cleaned_data
        return ContactInput(
            name=data["name"],
            emails=data["emails"].replace(",", "\n").splitlines(),
            phones=data["phones"].splitlines(),
            notes=data["notes"],
            groups=data["groups"].split(","),
        )


class VCardImportForm(forms.Form):
    file = forms.FileField(label="vCard file (.vcf)")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        return upload
