//! Gateways: listeners that speak the seismology world's protocols, DataLink
//! (ringserver's, read and write) and SeedLink (read-only), against the same ring,
//! access rules and limits as the native port. docs/GATEWAYS.md describes what each
//! protocol can do against an orb and how their stream ids map to srcnames.
//!
//! - `datalink`: the DataLink 1.0 listener (1.1 is not spoken; docs/GATEWAYS.md)
//! - `seedlink`: the SeedLink 3.1 listener

pub mod datalink;
pub mod seedlink;

// Each gateway is a `crate::conn::Protocol`: a session on the one connection driver,
// with the native port's admission, limits, client table and counters.
