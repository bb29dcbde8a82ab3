"""The schema as SQLAlchemy metadata: what the Alembic migrations must produce (a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
)
from sqlalchemy import Integer as sa_Integer

from atlas_log.tdx.collateral import COLLATERAL_PARTS

metadata = MetaData()

log_state = Table(
    "log_state",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    # The right edge of the tree: one hash per set bit of `size`, largest subtree first.
    Column("frontier", LargeBinary, nullable=False),
    Column("checkpoint", LargeBinary, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("frozen_note", LargeBinary, nullable=True),  # the final checkpoint of a frozen log
    CheckConstraint("size >= 0", name="log_state_size_nonnegative"),
    CheckConstraint("length(root_hash) = 32", name="log_state_root_32"),
    CheckConstraint("length(frontier) % 32 = 0", name="log_state_frontier_hashes"),
)

entries = Table(
    "entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_id", LargeBinary, nullable=False, unique=True),
    Column("leaf_hash", LargeBinary, nullable=False, unique=True),
    Column("leaf", LargeBinary, nullable=False),
    # The submission exactly as received (JSON), so anyone can re-verify what the leaf commits to.
    Column("submission", LargeBinary, nullable=False),
    Column("integrated_time", BigInteger, nullable=False),
    Column("predicate_type", Text, nullable=True),
    # SHA-256 of the entry's own quote (zero padding cut off): one quote is used by at most one entry.
    Column("quote_sha256", LargeBinary, nullable=True),
    CheckConstraint("idx >= 0", name="entries_idx_nonnegative"),
    CheckConstraint("length(leaf_hash) = 32 AND length(entry_id) = 32", name="entries_hash_lengths"),
    CheckConstraint("length(leaf) <= 65535", name="entries_leaf_fits_bundle"),
    CheckConstraint("length(quote_sha256) = 32", name="entries_quote_sha256_length"),
)

tiles = Table(
    "tiles",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
    Column("nodes", LargeBinary, nullable=True),  # a full tile's inner nodes, stored as it fills
    CheckConstraint("level BETWEEN 0 AND 63", name="tiles_level_range"),
    CheckConstraint("length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0", name="tiles_hashes_shape"),
    CheckConstraint("nodes IS NULL OR (length(hashes) = 8192 AND length(nodes) = 8160)", name="tiles_nodes_shape"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("length(root_hash) = 32", name="checkpoints_root_32"),
)

Index("entries_integrated_time", entries.c.integrated_time)

pcs_collateral = Table(
    "pcs_collateral",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("fmspc", Text, nullable=False),
    Column("ca", Text, nullable=False),
    *(Column(part, LargeBinary, nullable=False) for part in COLLATERAL_PARTS),
    Column("not_before", BigInteger, nullable=False),
    Column("not_after", BigInteger, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("checkpoints_root_hash", checkpoints.c.root_hash, checkpoints.c.size)
Index("pcs_collateral_platform", pcs_collateral.c.fmspc, pcs_collateral.c.ca, pcs_collateral.c.not_after)

gpu_rims = Table(
    "gpu_rims",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("rim_id", Text, nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("not_before", BigInteger, nullable=False),
    Column("not_after", BigInteger, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("gpu_rims_id", gpu_rims.c.rim_id, gpu_rims.c.not_after)

gpu_ocsp = Table(
    "gpu_ocsp",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("certificate", Text, nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("this_update", BigInteger, nullable=False),
    Column("next_update", BigInteger, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("gpu_ocsp_certificate", gpu_ocsp.c.certificate, gpu_ocsp.c.this_update)

entry_artifacts = Table(
    "entry_artifacts",
    metadata,
    Column("idx", BigInteger, nullable=False),
    Column("digest", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("name", Text, nullable=True),
    Column("json_path", Text, nullable=False),
    Column("version", Text, nullable=True),
    # What the artifact is to the step naming it (the descriptor's mlRole annotation): a hint for people, such as
    # the explorer's choice of a node's shape; nothing is proved by it.
    Column("ml_role", Text, nullable=True),
)
Index("entry_artifacts_digest", entry_artifacts.c.digest, entry_artifacts.c.idx)
Index("entry_artifacts_idx", entry_artifacts.c.idx)
Index("entry_artifacts_name", func.lower(entry_artifacts.c.name), postgresql_where=entry_artifacts.c.name.isnot(None))
Index("entries_predicate_type", entries.c.predicate_type, entries.c.idx)
Index(
    "entries_quote_sha256",
    entries.c.quote_sha256,
    unique=True,
    postgresql_where=entries.c.quote_sha256.isnot(None),
)

published_checkpoints = Table(
    "published_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", LargeBinary, nullable=False),
    Column("cosigners", sa_Integer, nullable=False),
    # An idle log re-publishes its unchanged checkpoint: a publication is one (size, time).
    Column("created_at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
)

tenants = Table(
    "tenants",
    metadata,
    Column("name", Text, primary_key=True),
    Column("rate_per_s", Float, nullable=False),
    Column("burst", sa_Integer, nullable=False),
    Column("daily_quota", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant", Text, ForeignKey("tenants.name"), nullable=False),
    Column("secret_sha256", LargeBinary, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("holder", Text, nullable=True),
    Column("artifacts", ARRAY(Text), nullable=True),
)

tenant_usage = Table(
    "tenant_usage",
    metadata,
    Column("tenant", Text, ForeignKey("tenants.name"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("used", BigInteger, nullable=False),
)

# The verifiable map (atlas_log.vmap): per position and version, a key's leaf or a subtree's hash.
map_nodes = Table(
    "map_nodes",
    metadata,
    Column("depth", SmallInteger, primary_key=True, autoincrement=False),
    Column("prefix", LargeBinary, primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    Column("leaf_key", LargeBinary, nullable=True),
    Column("newest", BigInteger, nullable=True),
    Column("count", BigInteger, nullable=True),
    CheckConstraint("depth BETWEEN 0 AND 256", name="map_nodes_depth_range"),
    CheckConstraint("length(prefix) = 32 AND length(hash) = 32", name="map_nodes_lengths"),
    CheckConstraint(
        "(leaf_key IS NULL AND newest IS NULL AND count IS NULL) OR "
        "(length(leaf_key) = 32 AND newest >= 0 AND count >= 1)",
        name="map_nodes_leaf_shape",
    ),
)

map_versions = Table(
    "map_versions",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("keys", BigInteger, nullable=False),
    Column("commitment_idx", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("length(root) = 32", name="map_versions_root_32"),
)
Index("map_versions_commitment", map_versions.c.commitment_idx, unique=True)

# Confidential entries: each entry's sealed disclosures (or when, by whom and why they were erased).
entry_disclosures = Table(
    "entry_disclosures",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("tenant", Text, nullable=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    Column("erased_by", Text, nullable=True),
    Column("erase_reason", Text, nullable=True),
    CheckConstraint(
        "(erased_at IS NULL AND wrapped_key IS NOT NULL AND ciphertext IS NOT NULL) OR "
        "(erased_at IS NOT NULL AND wrapped_key IS NULL AND ciphertext IS NULL)",
        name="entry_disclosures_sealed_or_erased",
    ),
)

# Every read and erasure of a tenant's disclosures.
disclosure_reads = Table(
    "disclosure_reads",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("idx", BigInteger, nullable=True),
    Column("tenant", Text, nullable=True),
    Column("reader", Text, nullable=False),
    Column("action", Text, nullable=False),
)
Index("disclosure_reads_tenant", disclosure_reads.c.tenant, disclosure_reads.c.at)
