"""Subscriptions become names of their own (RFC 3501 §6.3.6: they outlive the folder), taken
over from the folders' former ``subscribed`` flag."""

from django.db import migrations, models
import django.db.models.deletion


def copy_subscriptions(apps, schema_editor):
    Folder = apps.get_model("mailcore", "Folder")
    Subscription = apps.get_model("mailcore", "Subscription")
    rows = Folder.objects.filter(subscribed=True).values_list("mailbox_id", "name")
    Subscription.objects.bulk_create(
        [Subscription(mailbox_id=mailbox_id, name=name) for mailbox_id, name in rows.iterator()],
        batch_size=1000,
    )


def restore_flags(apps, schema_editor):
    Folder = apps.get_model("mailcore", "Folder")
    Subscription = apps.get_model("mailcore", "Subscription")
    Folder.objects.update(subscribed=False)
    for mailbox_id, name in Subscription.objects.values_list("mailbox_id", "name").iterator():
        Folder.objects.filter(mailbox_id=mailbox_id, name=name).update(subscribed=True)


class Migration(migrations.Migration):

    dependencies = [
        ("mailcore", "0011_app_passwords_and_two_factor"),
    ]

    operations = [
        migrations.CreateModel(
            name="Subscription",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=500)),
                ("mailbox", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="subscriptions", to="mailcore.mailbox")),
            ],
            options={
                "ordering": ["mailbox", "name"],
                "constraints": [models.UniqueConstraint(fields=("mailbox", "name"), name="subscription_unique_name")],
            },
        ),
        migrations.RunPython(copy_subscriptions, restore_flags),
        migrations.RemoveField(
            model_name="folder",
            name="subscribed",
        ),
    ]
