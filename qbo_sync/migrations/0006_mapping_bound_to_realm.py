"""Bind every link to its QuickBooks company: the host-row constraint includes the realm, and a link stored without
one takes its organization's current realm (the only company it can have been made in)."""

from django.db import migrations, models


def fill_realm_ids(apps, schema_editor):
    EntityMapping = apps.get_model("qbo_sync", "EntityMapping")
    QboConnection = apps.get_model("qbo_sync", "QboConnection")
    realms = dict(QboConnection.objects.exclude(realm_id="").values_list("organization_id", "realm_id"))
    for organization_id, realm_id in realms.items():
        EntityMapping.objects.filter(organization_id=organization_id, realm_id="").update(realm_id=realm_id)


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("qbo_sync", "0005_connection_pause"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="entitymapping",
            name="uniq_mapping_host_row",
        ),
        migrations.AddIndex(
            model_name="entitymapping",
            index=models.Index(fields=["content_type", "object_id"], name="qbo_mapping_host_row_idx"),
        ),
        migrations.AddConstraint(
            model_name="entitymapping",
            constraint=models.UniqueConstraint(fields=("realm_id", "content_type", "object_id"),
                                               name="uniq_mapping_host_row"),
        ),
        # After the schema changes (PostgreSQL refuses ALTER TABLE with pending trigger events of an UPDATE).
        migrations.RunPython(fill_realm_ids, migrations.RunPython.noop),
    ]
