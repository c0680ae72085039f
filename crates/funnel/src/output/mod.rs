//! What people read: the per-layer table ([`table`]), the findings under it ([`findings`]),
//! `report.md` ([`report_md`], [`gibbs_md`]) and the files of a run folder ([`files`]). Builds
//! text and bytes; the commands print it.

pub mod estimate_table;
pub mod files;
pub mod findings;
pub mod gibbs_md;
pub mod report_md;
pub mod table;
