import uuid

from django.db import migrations, models

import mailcore.models.contacts


def distinct_uids(apps, schema_editor):
    # AddField computes a callable default once for the existing rows: give each its own.
    group_model = apps.get_model("mailcore", "ContactGroup")
    for group in group_model.objects.all().only("pk"):
        group_model.objects.filter(pk=group.pk).update(uid=f"urn:uuid:{uuid.uuid4()}")


class Migration(migrations.Migration):

    dependencies = [
        ("mailcore", "0016_address_book"),
    ]

    operations = [
        migrations.AddField(
            model_name="contactgroup",
            name="uid",
            field=models.CharField(default=mailcore.models.contacts.new_uid, max_length=255),
        ),
        migrations.RunPython(distinct_uids, migrations.RunPython.noop),
    ]
