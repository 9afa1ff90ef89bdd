//! Integration tests of the Storage Manager against a real nats-server and
//! two real S3 servers (SeaweedFS as warm, s3s-fs as cold): one binary,
//! one module per concern.

mod support;

mod archive;
mod crash;
mod dirs;
mod faults;
mod gc;
mod provision;
mod retention;
mod scrub;
