# Correspondent now belongs to mailcore (mailcore 0017 takes it over with its table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('mailcore', '0020_correspondent_lookalike_verdict'),
        ('webmail', '0007_session_user'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Correspondent')],
            database_operations=[],
        ),
    ]
