"""The address book page: contacts with their addresses, phones, notes and groups (through
``mailcore.services.contacts``), "add from correspondents" on request, a new message to a
group, and vCard import and export (RFC 6350). A file that is not a vCard is a form error and
changes nothing."""

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from mailcore.models import Contact, ContactGroup
from mailcore.services import contacts as address_book
from webmail import contacts as correspondents
from webmail.contact_forms import ContactForm, VCardImportForm
from webmail.views.common import mailbox_required, user_settings

TEMPLATE = "webmail/addressbook.html"


def _initial(contact: Contact) -> dict:
    return {
        "name": contact.name,
        "emails": "\n".join(e.address for e in contact.emails.all()),
        "phones": contact.phones,
        "notes": contact.notes,
        "groups": ", ".join(g.name for g in contact.groups.all()),
    }


def _page(request, *, form=None, import_form=None, editing=None, status=200):
    mailbox = request.mailbox
    group_id = request.GET.get("group", "")
    group = None
    if group_id.isdigit():
        group = ContactGroup.objects.filter(mailbox=mailbox, pk=int(group_id)).first()
    context = {
        "mailbox": mailbox,
        "prefs": user_settings(mailbox),
        "contacts": address_book.list_contacts(mailbox, group.pk if group else None),
        "groups": ContactGroup.objects.filter(mailbox=mailbox),
        "group": group,
        "form": form or ContactForm(initial=_initial(editing) if editing else None),
        "import_form": import_form or VCardImportForm(),
        "editing": editing,
    }
    return render(request, TEMPLATE, context, status=status)


def _owned(request, contact_id: int) -> Contact:
    try:
        return Contact.objects.get(pk=contact_id, mailbox=request.mailbox)
    except Contact.DoesNotExist:
        raise Http404("No such contact") from None


@mailbox_required
def book_view(request):
    """The list, with the form for a new contact; POST saves one."""
    if request.method == "POST":
        return _save(request, None)
    return _page(request)


@mailbox_required
def contact_view(request, contact_id: int):
    contact = _owned(request, contact_id)
    if request.method == "POST":
        return _save(request, contact)
    return _page(request, editing=contact)


def _save(request, contact):
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            saved = address_book.save_contact(request.mailbox, form.contact_input(),
                                              contact.pk if contact else None)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            flash.success(request, f"Saved {saved.name}.")
            return redirect("webmail:addressbook")
    return _page(request, form=form, editing=contact, status=400)


@require_POST
@mailbox_required
def delete_view(request, contact_id: int):
    contact = _owned(request, contact_id)
    address_book.delete_contact(request.mailbox, contact.pk)
    flash.success(request, f"Deleted {contact.name}.")
    return redirect("webmail:addressbook")


@require_POST
@mailbox_required
def from_correspondents_view(request):
    people = correspondents.top_correspondents(request.mailbox, user_settings(request.mailbox))
    added = address_book.add_correspondents(request.mailbox, people)
    flash.success(request, f"Added {added} contact{'s' if added != 1 else ''} from your mail.")
    return redirect("webmail:addressbook")


@require_POST
@mailbox_required
def import_view(request):
    form = VCardImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = address_book.import_vcards(request.mailbox, form.cleaned_data["file"].read())
        except (address_book.VCardError, ValidationError) as exc:
            message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            form.add_error("file", message)
        else:
            flash.success(request, f"Imported {result.created} new and updated "
                                   f"{result.updated} contact{'s' if result.updated != 1 else ''}.")
            return redirect("webmail:addressbook")
    return _page(request, import_form=form, status=400)


@require_GET
@mailbox_required
def export_view(request):
    response = HttpResponse(address_book.export_vcards(request.mailbox),
                            content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="contacts.vcf"'
    return response
