"""API tokens moved to django-rest-knox (hashed, expiring): drop rest_framework.authtoken's table,
whose keys were stored in plain text and never expired (issue 10). Clients ask for a new token."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crowd", "0002_annotators")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", migrations.RunSQL.noop)]
