//! The `demo` source: a deterministic five-outlet news site served on
//! 127.0.0.1 (one port per outlet, so per-host politeness applies per outlet
//! as it would live), with deliberate faults and their ground truth.
//!
//! - [`site`]: the plan (articles, images, faults), a pure function of the
//!   article count, and the ground truth rows;
//! - [`faults`]: every fault and the status / error class / drop reason it
//!   must end as;
//! - [`markup`]: article pages in each outlet's real markup;
//! - [`photos`]: public-domain photos from registry wheels plus generated
//!   ones, and derived near-duplicates;
//! - [`server`]: the HTTP servers;
//! - [`truth_table`]: the `demo_truth` table.

pub mod faults;
pub mod markup;
pub mod photos;
pub mod server;
pub mod site;
pub mod truth_table;

pub use site::{SitePlan, demo_host};
