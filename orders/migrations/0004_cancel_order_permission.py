from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_drop_plaintext_api_tokens"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="order",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("act_for_any_customer", "Can create, read and cancel orders of any customer through the API"),
                    ("view_customer_pii", "Can see the customer's name and email on an order"),
                    ("cancel_order", "Can cancel orders from the admin"),
                ],
            },
        ),
    ]
