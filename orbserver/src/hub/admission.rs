//! Admission: the `connect` access rules and the client limits, applied to every new
//! connection on every port, with the refusal counted and logged with the address.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::clients::Registration;
use super::Hub;

/// Applies the `connect` access rules and the client limits to a new connection from
/// `peer`: registers it, or counts and logs the refusal and returns the message to tell
/// the client. Every listener (native and gateways) admits through here, so the rules
/// and limits are the same on every port.
pub fn admit(shared: &Arc<Hub>, peer: SocketAddr) -> Result<Registration, String> {
    let limits = &shared.limits;
    let (_, rules) = shared.policy.current();
    if let Err(msg) = rules.admits(peer.ip()) {
        shared.refused.connects_denied.fetch_add(1, Relaxed);
        tracing::warn!(
            "{peer}: refused connection: address not admitted by access.connect_allow/connect_deny"
        );
        return Err(msg);
    }
    let per_address = if limits.writers_exempt && rules.writes_by_address(peer.ip()) {
        usize::MAX
    } else {
        limits.max_clients_per_address
    };
    shared
        .clients
        .register(peer, limits.max_clients, per_address)
        .map_err(|refusal| {
            shared.refused.connects_limit.fetch_add(1, Relaxed);
            tracing::warn!("{peer}: refused connection: {refusal}");
            refusal.to_string()
        })
}
