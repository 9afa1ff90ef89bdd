//! The hub's error codes.

cim_wire::codes! {
    /// Errors the hub's NATS API answers with, besides the common ones
    /// ([`cim_wire::CommonCode`]).
    pub enum HubCode {
        /// A field is not valid. Details: `field`.
        InvalidInput = ("invalid_input", 400),
        /// No token with this id. Details: `id`.
        UnknownToken = ("unknown_token", 404),
        /// No webhook subscription with this id. Details: `id`.
        UnknownSubscription = ("unknown_subscription", 404),
        /// No inbound endpoint with this id. Details: `id`.
        UnknownInbound = ("unknown_inbound", 404),
        /// An inbound endpoint with this id exists already. Details: `id`.
        InboundExists = ("inbound_exists", 409),
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::{Code, CommonCode};

    use super::*;

    #[test]
    fn codes_do_not_shadow_common_ones() {
        assert!(HubCode::ALL.iter().all(|c| CommonCode::parse(c.as_str()).is_none()));
    }
}
