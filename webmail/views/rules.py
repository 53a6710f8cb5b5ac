"""The rules page: simple filters (if From/To/Subject/List contains ..., then move, mark read,
flag, forward or delete), a vacation responder with dates, and a raw editor for the Sieve
script with the server's syntax errors, all written through ``mailcore.services.filters``;
plus what filtering did lately (errors, vacation replies with their delivery status)."""

from dataclasses import replace

from django import forms
from django.contrib import messages as flash
from django.shortcuts import redirect, render

from mailcore.exceptions import MailError
from mailcore.services import filters
from mailcore.services.folders import list_folders
from mailcore.sieve.rules import ACTIONS, FIELDS, MAX_RULES, Rule, RuleSet, VacationSettings
from webmail.views.common import error_text, mailbox_required

TEMPLATE = "webmail/rules.html"
FIELD_LABELS = {"from": "From", "to": "To or Cc", "subject": "Subject", "list": "Mailing list"}
ACTION_LABELS = {"move": "Move to folder", "read": "Mark as read", "flag": "Flag",
                 "forward": "Forward a copy to", "delete": "Delete"}


class RuleForm(forms.Form):
    field = forms.ChoiceField(choices=[(k, FIELD_LABELS[k]) for k in FIELDS], label="If")
    contains = forms.CharField(max_length=200, label="contains")
    action = forms.ChoiceField(choices=[(a, ACTION_LABELS[a]) for a in ACTIONS], label="then")
    folder = forms.ChoiceField(required=False, label="Folder")
    address = forms.EmailField(required=False, label="Address")

    def __init__(self, *args, folder_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["folder"].choices = [("", "—")] + [(n, n) for n in folder_names]

    def clean(self):
        data = super().clean()
        if data.get("action") == "move" and not data.get("folder"):
            self.add_error("folder", "Choose the folder to move to.")
        if data.get("action") == "forward" and not data.get("address"):
            self.add_error("address", "Give the address to forward to.")
        if "\n" in data.get("contains", "") or "\r" in data.get("contains", ""):
            self.add_error("contains", "One line only.")
        return data


class VacationForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Send automatic replies")
    start = forms.DateField(required=False, label="From (first day)",
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="Until (last day)",
                          widget=forms.DateInput(attrs={"type": "date"}))
    subject = forms.CharField(max_length=200, required=False, label="Subject")
    message = forms.CharField(max_length=10_000, required=False, label="Message",
                              widget=forms.Textarea(attrs={"rows": 5}))
    days = forms.IntegerField(min_value=1, max_value=30, initial=7,
                              label="Days before answering the same sender again")

    def clean(self):
        data = super().clean()
        if data.get("enabled") and not (data.get("message") or "").strip():
            self.add_error("message", "Write the reply to send.")
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The last day comes after the first.")
        return data


class ScriptForm(forms.Form):
    script = forms.CharField(required=False, strip=False, label="Sieve script",
                             widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}))


def _vacation_initial(vacation: VacationSettings) -> dict:
    return {"enabled": vacation.enabled, "start": vacation.start or None,
            "end": vacation.end or None, "subject": vacation.subject,
            "message": vacation.message, "days": vacation.days}


@mailbox_required
def rules_view(request):
    mailbox = request.mailbox
    state = filters.rules_state(mailbox)
    ruleset = state.ruleset or RuleSet()
    folder_names = [f.name for f in list_folders(mailbox)]
    if request.method != "POST":
        return _page(request, None, 200)
    which = request.POST.get("form")
    forms_given: dict = {}
    partial = "raw-editor" if which == "raw" else "rules-panel"
    try:
        if which == "add":
            form = forms_given["rule_form"] = RuleForm(request.POST, folder_names=folder_names)
            if form.is_valid() and len(ruleset.rules) < MAX_RULES:
                data = form.cleaned_data
                target = {"move": data["folder"], "forward": data["address"]}.get(
                    data["action"], "")
                ruleset.rules.append(Rule(data["field"], data["contains"], data["action"],
                                          target))
                filters.save_rules(mailbox, ruleset)
                return _done(request, partial, "Rule added.")
        elif which == "remove":
            index = request.POST.get("index", "")
            if index.isdigit() and int(index) < len(ruleset.rules):
                del ruleset.rules[int(index)]
                filters.save_rules(mailbox, ruleset)
            return _done(request, partial, "Rule removed.")
        elif which == "vacation":
            form = forms_given["vacation_form"] = VacationForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                vacation = VacationSettings(
                    bool(data["enabled"]),
                    data["start"].isoformat() if data["start"] else "",
                    data["end"].isoformat() if data["end"] else "",
                    data["subject"], data["message"].replace("\r\n", "\n"), data["days"])
                filters.save_rules(mailbox, replace(ruleset, vacation=vacation))
                return _done(request, partial, "Vacation reply saved.")
        elif which == "raw":
            form = forms_given["script_form"] = ScriptForm(request.POST)
            if form.is_valid():
                text = form.cleaned_data["script"].replace("\r\n", "\n")
                filters.put_script(mailbox, state.script_name, text, activate=True)
                return _done(request, partial, "Script saved.")
        else:
            return _page(request, None, 400, error="Unknown form.")
    except filters.ScriptInvalid as error:
        # The raw editor shows the server's error with its line (RFC 5804 §2.6 style).
        text = f"Line {error.line}: {error.detail}" if error.line else error.detail
        forms_given.setdefault("script_form", ScriptForm(request.POST)).add_error(
            "script" if which == "raw" else None, text)
    except MailError as error:
        next(iter(forms_given.values())).add_error(None, error_text(error))
    return _page(request, partial, 400, **forms_given)


def _done(request, partial: str, toast: str):
    """Post/redirect/get for a page; an htmx request gets its region re-rendered fresh."""
    if request.htmx:
        return _page(request, partial, 200, toast=toast)
    flash.success(request, toast)
    return redirect("webmail:rules")


def _page(request, partial: str | None, status: int, *, toast: str = "", error: str = "",
          rule_form=None, vacation_form=None, script_form=None):
    mailbox = request.mailbox
    state = filters.rules_state(mailbox)
    ruleset = state.ruleset or RuleSet()
    folder_names = [f.name for f in list_folders(mailbox)]
    context = {
        "mailbox": mailbox,
        "state": state,
        "rules": [(i, FIELD_LABELS[r.field], r, ACTION_LABELS[r.action])
                  for i, r in enumerate(ruleset.rules)],
        "hand_written": bool(state.script_text) and state.ruleset is None,
        "rule_form": rule_form or RuleForm(folder_names=folder_names),
        "vacation_form": vacation_form or VacationForm(
            initial=_vacation_initial(ruleset.vacation)),
        "script_form": script_form or ScriptForm(initial={"script": state.script_text}),
        "events": filters.recent_events(mailbox),
        "toast": toast,
        "error": error,
    }
    name = f"{TEMPLATE}#{partial}" if request.htmx and partial else TEMPLATE
    return render(request, name, context, status=status)
