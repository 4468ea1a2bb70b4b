"""Exemplar.public_id: the random id annotators see instead of the pk and the file path (issue 10).

Added nullable, filled row by row (a column default would give every existing row the same value),
then made unique and required.
"""
import secrets

from django.db import migrations, models

import units.dissection.models.dissection


def fill_public_ids(apps, schema_editor):
    Exemplar = apps.get_model("units", "Exemplar")
    batch = []
    for exemplar in Exemplar.objects.filter(public_id__isnull=True).only("pk").iterator(chunk_size=2000):
        exemplar.public_id = secrets.token_urlsafe(16)
        batch.append(exemplar)
        if len(batch) >= 2000:
            Exemplar.objects.bulk_update(batch, ["public_id"])
            batch = []
    if batch:
        Exemplar.objects.bulk_update(batch, ["public_id"])


class Migration(migrations.Migration):
    dependencies = [("units", "0001_initial")]

    operations = [
        migrations.AddField(model_name="exemplar", name="public_id",
                            field=models.CharField(max_length=32, null=True, editable=False)),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(model_name="exemplar", name="public_id",
                              field=models.CharField(default=units.dissection.models.dissection.new_public_id,
                                                     editable=False, max_length=32, unique=True)),
    ]
