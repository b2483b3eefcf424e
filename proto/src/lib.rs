//! The interbank-sim wire protocol. Only the nodes' `grpc/` modules and the CLI use these types;
//! domain code never sees them.
#![allow(clippy::all, missing_docs)]

/// Types both institutions use.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("interbank.common.v1");
    }
}

/// Services the bank node serves.
pub mod bank {
    pub mod v1 {
        tonic::include_proto!("interbank.bank.v1");
    }
}

/// Services the platform node serves.
pub mod platform {
    pub mod v1 {
        tonic::include_proto!("interbank.platform.v1");
    }
}

/// Simulator controls both nodes serve (clock, faults, reset) and the bank's SMS outbox.
pub mod sim {
    pub mod v1 {
        tonic::include_proto!("interbank.sim.v1");
    }
}

/// The encoded `FileDescriptorSet` of every interbank-sim proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/interbank_descriptor.bin"));
