"""Domains Correio receives mail for, and aliases within them."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models


def normalize_domain(name: str) -> str:
    return name.strip().rstrip(".").lower()


def validate_domain_name(value: str) -> None:
    name = normalize_domain(value)
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(labels):
        raise ValidationError(f"{value!r} is not a fully qualified domain name.")
    for label in labels:
        if len(label) > 63 or label.startswith("-") or label.endswith("-"):
            raise ValidationError(f"{value!r} has an invalid label {label!r}.")
        if not all(ch.isalnum() or ch == "-" for ch in label):
            raise ValidationError(f"{value!r} has an invalid character in {label!r}.")


class Domain(models.Model):
    name = models.CharField(max_length=253, unique=True, validators=[validate_domain_name])
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = normalize_domain(self.name)


def validate_destinations(value: str) -> None:
    for address in split_destinations(value):
        validate_email(address)
    if not split_destinations(value):
        raise ValidationError("An alias needs at least one destination address.")


def split_destinations(value: str) -> list[str]:
    parts = value.replace(",", "\n").split()
    return [part.strip().lower() for part in parts if part.strip()]


class Alias(models.Model):
    """``local_part@domain`` (or every unknown address of the domain, for a catch-all) delivered
    to one or more destinations, local or remote."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="aliases")
    local_part = models.CharField(
        max_length=64, blank=True, help_text="Leave empty for a catch-all of the domain."
    )
    destinations = models.TextField(
        validators=[validate_destinations], help_text="One address per line (or comma-separated)."
    )
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain__name", "local_part"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="alias_unique_source")
        ]
        verbose_name_plural = "aliases"

    def __str__(self) -> str:
        return self.source

    @property
    def source(self) -> str:
        return f"{self.local_part or '*'}@{self.domain.name}"

    @property
    def destination_list(self) -> list[str]:
        return split_destinations(self.destinations)

    def clean(self) -> None:
        self.local_part = self.local_part.strip().lower()
