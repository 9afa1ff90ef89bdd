//! Integration tests of cim-cid.

mod suite;
