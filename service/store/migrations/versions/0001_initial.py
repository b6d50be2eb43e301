"""The first schema: job records, uploads, model versions (tombstones included), aliases, blobs.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""
import sqlalchemy as sa
from alembic import op

from service.store.tables import UTC

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
Owner = sa.String(64)


def upgrade() -> None:
    op.create_table("revision", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("value", sa.BigInteger, nullable=False))
    op.execute("INSERT INTO revision (id, value) VALUES (1, 0)")
    op.create_table("blobs", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sha256", sa.String(64), nullable=False), sa.Column("size", sa.BigInteger, nullable=False),
                    sa.Column("created", UTC, nullable=False))
    op.create_table("blob_parts",
                    sa.Column("blob", sa.Integer, sa.ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True),
                    sa.Column("part", sa.Integer, primary_key=True), sa.Column("data", sa.LargeBinary, nullable=False))
    op.create_table("models", sa.Column("name", sa.String(128), primary_key=True),
                    sa.Column("next_version", sa.Integer, nullable=False), sa.Column("owner", Owner),
                    sa.Column("created", UTC, nullable=False))
    op.create_table("versions", sa.Column("name", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
                    sa.Column("version", sa.Integer, primary_key=True), sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("card", sa.JSON, nullable=False), sa.Column("owner", Owner),
                    sa.Column("job", sa.String(32)), sa.Column("promoted", sa.Boolean, nullable=False),
                    sa.Column("created", UTC, nullable=False), sa.Column("deleted", UTC))
    op.create_table("version_files", sa.Column("name", sa.String(128), primary_key=True),
                    sa.Column("version", sa.Integer, primary_key=True), sa.Column("file", sa.String(128), primary_key=True),
                    sa.Column("sha256", sa.String(64), nullable=False), sa.Column("size", sa.BigInteger, nullable=False),
                    sa.Column("blob", sa.Integer, sa.ForeignKey("blobs.id")))
    op.create_table("aliases", sa.Column("name", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
                    sa.Column("alias", sa.String(32), primary_key=True), sa.Column("version", sa.Integer, nullable=False),
                    sa.Column("owner", Owner), sa.Column("updated", UTC, nullable=False))
    op.create_table("owners", sa.Column("id", Owner, primary_key=True), sa.Column("created", UTC, nullable=False))
    op.create_table("jobs", sa.Column("id", sa.String(32), primary_key=True), sa.Column("owner", Owner, nullable=False),
                    sa.Column("state", sa.String(16), nullable=False), sa.Column("model", sa.String(128), nullable=False),
                    sa.Column("created", UTC, nullable=False), sa.Column("started", UTC), sa.Column("finished", UTC),
                    sa.Column("heartbeat", UTC), sa.Column("cancel_requested", sa.Boolean, nullable=False),
                    sa.Column("requeued", sa.Integer, nullable=False), sa.Column("history", sa.JSON, nullable=False),
                    sa.Column("body", sa.JSON, nullable=False))
    op.create_index("ix_jobs_created_id", "jobs", ["created", "id"])
    op.create_index("ix_jobs_state_created_id", "jobs", ["state", "created", "id"])
    op.create_index("ix_jobs_owner_created_id", "jobs", ["owner", "created", "id"])
    op.create_index("ix_jobs_finished", "jobs", ["finished"])
    op.create_table("job_snapshots",
                    sa.Column("job", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
                    sa.Column("step", sa.Integer, primary_key=True), sa.Column("png", sa.LargeBinary, nullable=False))
    op.create_table("uploads", sa.Column("id", sa.String(32), primary_key=True), sa.Column("owner", Owner, nullable=False),
                    sa.Column("filename", sa.Text, nullable=False), sa.Column("n", sa.Integer, nullable=False),
                    sa.Column("shape", sa.JSON, nullable=False), sa.Column("classes", sa.JSON),
                    sa.Column("labelled", sa.Boolean, nullable=False), sa.Column("bytes", sa.BigInteger, nullable=False),
                    sa.Column("skipped", sa.Integer, nullable=False), sa.Column("sha256", sa.String(64), nullable=False), sa.Column("blob", sa.Integer, sa.ForeignKey("blobs.id")),
                    sa.Column("created", UTC, nullable=False))
    op.create_index("ix_uploads_created_id", "uploads", ["created", "id"])
    op.create_index("ix_uploads_owner_created_id", "uploads", ["owner", "created", "id"])


def downgrade() -> None:
    for table in ("uploads", "job_snapshots", "jobs", "owners", "aliases", "version_files", "versions", "models",
                  "blob_parts", "blobs", "revision"):
        op.drop_table(table)
