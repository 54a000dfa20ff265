"""one open payment per invoice: a payment row is claimed before the provider is asked

Revision ID: c3a9e51f7d20
Revises: a7c3e91d2b40
Create Date: 2026-12-02 04:50:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3a9e51f7d20"
down_revision = "a7c3e91d2b40"
branch_labels = None
depends_on = None

OPEN = "state IN ('starting', 'pending')"
DUPLICATE_REASON = "Paiement en double d'une facture, remplacé par le plus récent."


def upgrade():
    # Before this index, several tabs could start several payments of one invoice. Keep
    # the newest open one per invoice; the older ones can no longer be told apart from
    # it by the portal, so they are closed (the back-end's own invoice list still says
    # whether the invoice is paid).
    op.execute(
        sa.text(
            "UPDATE payment SET state = 'abandoned', reason = :reason "
            f"WHERE {OPEN} AND EXISTS (SELECT 1 FROM payment AS newer "
            "WHERE newer.citizen_id = payment.citizen_id "
            "AND newer.instance_slug = payment.instance_slug "
            "AND newer.invoice_id = payment.invoice_id "
            "AND newer.state IN ('starting', 'pending') AND newer.id > payment.id)"
        ).bindparams(reason=DUPLICATE_REASON)
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.alter_column("payment_id", existing_type=sa.String(length=128), nullable=True)
    op.create_index(
        "uq_payment_open_invoice",
        "payment",
        ["citizen_id", "instance_slug", "invoice_id"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade():
    op.drop_index("uq_payment_open_invoice", table_name="payment")
    op.execute("DELETE FROM payment WHERE payment_id IS NULL")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.alter_column("payment_id", existing_type=sa.String(length=128), nullable=False)
