# The webmail's Correspondent model moves to mailcore (its table stays: state only), so that the
# MX can judge lookalike senders at delivery; LookalikeVerdict keeps that judgement (issue 14).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailcore', '0019_webmail_list_indexes'),
        ('webmail', '0006_conversation_list'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Correspondent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('address', models.CharField(max_length=320)),
                        ('name', models.CharField(blank=True, max_length=200)),
                        ('score', models.PositiveIntegerField(default=0)),
                        ('last_seen', models.DateTimeField()),
                        ('mailbox', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='correspondents', to='mailcore.mailbox')),
                    ],
                    options={
                        'db_table': 'webmail_correspondent',
                        'constraints': [models.UniqueConstraint(fields=('mailbox', 'address'), name='correspondent_unique')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.CreateModel(
            name='LookalikeVerdict',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('name', 'Display name of a known correspondent'), ('domain', 'Domain like a known domain')], max_length=8)),
                ('from_name', models.CharField(blank=True, max_length=200)),
                ('from_addr', models.CharField(max_length=320)),
                ('imitated', models.CharField(max_length=320)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('blob', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lookalikes', to='mailcore.blob')),
                ('mailbox', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lookalike_verdicts', to='mailcore.mailbox')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('mailbox', 'blob'), name='lookalike_verdict_unique')],
            },
        ),
    ]
